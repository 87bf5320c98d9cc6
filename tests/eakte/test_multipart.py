"""Malformed multipart uploads are refused whole: on the in-memory and on the streaming path.

Small uploads with a Content-Length are read whole (`MultipartStream.read_whole`); larger ones
and those without a length stream their file part to the store (`receive_upload`). The test
client hands the app the whole body in one piece, so what can only go wrong when the body
arrives in many pieces (the file part's end in a later piece than its start) is tested
against a real `eakte serve`.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from eakte.documents.api import SMALL_UPLOAD
from eakte.multipart import MAX_FIELD_BYTES, MAX_FIELDS
from tests import factories
from tests.conftest import Api
from tests.support.server import eakte, serve

BOUNDARY = b"eakteB"
CONTENT_TYPE = "multipart/form-data; boundary=" + BOUNDARY.decode()
PDF = b"%PDF-1.4\n" + b"x" * 2000 + b"\n%%EOF\n"


def part(name: str, value: bytes, filename: str | None = None) -> bytes:
    """One part, opened by its delimiter (without the closing one)."""
    disposition = f'form-data; name="{name}"'
    if filename is not None:
        disposition += f'; filename="{filename}"'
    return (b"--" + BOUNDARY + b"\r\nContent-Disposition: " + disposition.encode()
            + b"\r\n\r\n" + value + b"\r\n")


CLOSE = b"--" + BOUNDARY + b"--\r\n"


def bad_bodies(content: bytes) -> dict[str, tuple[bytes, int, str]]:
    """Bodies that must be refused around `content`, each with its status and detail."""
    file_part = part("file", content, "brief.pdf")
    return {
        "second file part": (
            file_part + part("file2", b"more", "zwei.pdf") + CLOSE, 422, "one file per request"
        ),
        "field too long after the file": (
            file_part + part("title", b"t" * (MAX_FIELD_BYTES + 1)) + CLOSE, 422, "too long"
        ),
        "too many fields after the file": (
            file_part + b"".join(part(f"f{i}", b"v") for i in range(MAX_FIELDS + 1)) + CLOSE,
            422, "too many form fields",
        ),
        # The delimiter of a title part, its headers and part of its value, then nothing:
        # a body cut off in transit must not count as a complete form.
        "cut off after the file": (
            file_part + b"--" + BOUNDARY + b'\r\nContent-Disposition: form-data; name="title"'
            b"\r\n\r\nBauantr", 400, "the request body ended"
        ),
        "cut off inside the file": (
            file_part[: len(file_part) // 2], 400, "the request body ended"
        ),
        "no closing delimiter": (file_part, 400, "the request body ended"),
        "part header of 10 KB": (
            file_part + b"--" + BOUNDARY + b"\r\nContent-Disposition: form-data; name="
            b'"title"\r\nX-Long: ' + b"h" * 10_000 + b"\r\n\r\nBauantrag\r\n" + CLOSE,
            400, "malformed multipart body",
        ),
        "another boundary than declared": (
            (file_part + CLOSE).replace(BOUNDARY, b"otherB"), 400, "malformed multipart body"
        ),
    }


CASES = list(bad_bodies(b""))


def assert_problem(r: httpx.Response, status: int, detail: str) -> None:
    """`r` is an RFC 9457 problem with `status` whose detail says `detail`."""
    assert r.status_code == status, r.text[:500]
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["status"] == status
    assert detail in r.json()["detail"], r.json()["detail"]


# -- whole-body path and single-piece streaming, through the test client ----------------------


@pytest.fixture
def clerk_file(api: Api) -> tuple[dict[str, str], str]:
    unit = factories.org_unit(api)
    file = factories.file(api, unit, factories.plan_item(api)["code"])
    return unit.clerk, str(file["id"])


def _post(api: Api, headers: dict[str, str], file_id: str, body: bytes, chunked: bool
          ) -> httpx.Response:
    """Upload `body` with a Content-Length (read whole) or without one (streamed)."""

    def pieces() -> Iterator[bytes]:
        yield body

    return api.client.post(
        f"/api/v1/files/{file_id}/documents",
        content=pieces() if chunked else body,
        headers={**headers, "Content-Type": CONTENT_TYPE},
    )


@pytest.mark.parametrize("chunked", [False, True], ids=["with-length", "chunked"])
def test_well_formed_upload_is_accepted(
    api: Api, clerk_file: tuple[dict[str, str], str], chunked: bool
) -> None:
    # The control for the refusals below: the same framing, closed properly, is fine.
    clerk, file_id = clerk_file
    body = part("file", PDF, "brief.pdf") + part("title", b"Bauantrag") + CLOSE
    r = _post(api, clerk, file_id, body, chunked)
    assert r.status_code == 201, r.text
    assert r.json()["title"] == "Bauantrag"


@pytest.mark.parametrize("chunked", [False, True], ids=["with-length", "chunked"])
@pytest.mark.parametrize("case", CASES)
def test_malformed_upload_is_refused_and_stores_nothing(
    api: Api, clerk_file: tuple[dict[str, str], str], case: str, chunked: bool
) -> None:
    clerk, file_id = clerk_file
    body, status, detail = bad_bodies(PDF)[case]
    blobs_before = {b.key for b in api.store.list("docs/")}
    r = _post(api, clerk, file_id, body, chunked)
    assert_problem(r, status, detail)
    assert api.client.get(f"/api/v1/files/{file_id}/documents", headers=clerk).json() == []
    assert {b.key for b in api.store.list("docs/")} == blobs_before


def test_boundary_longer_than_the_parser_allows_is_a_bad_request(
    api: Api, clerk_file: tuple[dict[str, str], str]
) -> None:
    clerk, file_id = clerk_file
    boundary = b"b" * 300
    body = part("file", PDF, "brief.pdf").replace(BOUNDARY, boundary) + b"--" + boundary + b"--"
    r = api.client.post(
        f"/api/v1/files/{file_id}/documents",
        content=body,
        headers={**clerk, "Content-Type": "multipart/form-data; boundary=" + boundary.decode()},
    )
    assert_problem(r, 400, "boundary")


# -- streaming path with the body in many pieces, against a real server -----------------------


@dataclass
class Served:
    """A running `eakte serve` with a file a clerk may upload into."""

    base: str
    clerk: dict[str, str]
    file_id: str
    blobs: Path

    def upload(self, body: bytes) -> httpx.Response:
        """Upload a multipart body to the file, in pieces, with its Content-Length.

        The last piece holds the last 4 KiB of the file and all that follows, and is sent
        after a pause: the server then gets the file part's end and the parts after it in one
        piece, which is where a mistake after the end of the file used to go unnoticed.
        """
        tail = body.find(BIG[-4096:])
        split = tail if tail > 0 else len(body)

        def pieces() -> Iterator[bytes]:
            for start in range(0, split, 1024 * 1024):
                yield body[start : min(start + 1024 * 1024, split)]
            time.sleep(0.2)  # so the server has taken all before and waits for this piece
            yield body[split:]

        return httpx.post(
            f"{self.base}/api/v1/files/{self.file_id}/documents",
            content=pieces(),
            headers={**self.clerk, "Content-Type": CONTENT_TYPE,
                     "Content-Length": str(len(body))},
            timeout=60,
        )

    def documents(self) -> list[object]:
        """The documents of the file."""
        r = httpx.get(f"{self.base}/api/v1/files/{self.file_id}/documents", headers=self.clerk)
        assert r.status_code == 200, r.text
        result: list[object] = r.json()
        return result

    def stored_blobs(self) -> set[Path]:
        """Every file in the server's blob store."""
        return {p for p in self.blobs.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`eakte serve` with its embedded defaults (SQLite, blobs under var/blobs)."""
    cwd = tmp_path_factory.mktemp("multipart")
    with serve(cwd) as (base, _):
        eakte(cwd, "orgunit", "add", "10", "Hauptamt")
        eakte(cwd, "plan", "add", "01.02", "Organisation")
        token = eakte(
            cwd, "token", "--sub", "anna", "--role", "clerk", "--unit", "10"
        ).stdout.strip()
        yield Served(base, {"Authorization": f"Bearer {token}"}, "", cwd / "var" / "blobs")


@pytest.fixture
def served_file(served: Served) -> Served:
    """`served` with a fresh, empty file to upload into."""
    r = httpx.post(served.base + "/api/v1/files", headers=served.clerk,
                   json={"title": f"Akte {uuid.uuid4().hex[:6]}", "plan_code": "01.02"})
    assert r.status_code == 201, r.text
    return Served(served.base, served.clerk, r.json()["id"], served.blobs)


# Larger than SMALL_UPLOAD, so the upload streams; the network hands the server such a body in
# many pieces, so the file part ends in a later piece than the one it started in.
BIG = PDF + os.urandom(SMALL_UPLOAD + 1024 * 1024)


@pytest.mark.slow
def test_streamed_upload_collects_fields_after_the_file(served_file: Served) -> None:
    # The control for the refusals below.
    r = served_file.upload(part("file", BIG, "gross.pdf") + part("title", "Groß".encode()) + CLOSE)
    assert r.status_code == 201, r.text
    assert r.json()["title"] == "Groß"
    assert r.json()["latest"]["size"] == len(BIG)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_streamed_malformed_upload_is_refused_and_stores_nothing(
    served_file: Served, case: str
) -> None:
    body, status, detail = bad_bodies(BIG)[case]
    before = served_file.stored_blobs()
    r = served_file.upload(body)
    assert_problem(r, status, detail)
    assert served_file.documents() == []
    assert served_file.stored_blobs() == before
