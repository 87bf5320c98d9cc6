"""Hostile uploads: path traversal and odd Unicode in file names, oversized bodies and headers."""

from __future__ import annotations

import socket
import unicodedata
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import factories
from tests.conftest import Api
from tests.support.server import clean_env, serve

HOSTILE_NAMES = [
    "../../../../etc/passwd",
    "..\\..\\windows\\win.ini",
    "/absolute/path.pdf",
    "..",
    "brief\x00.pdf.exe",
    "brief\r\nX-Injected: 1.pdf",
    "rechnung\u202efdp.exe",  # right-to-left override: shows as "rechnungexe.pdf"
    "Ba\u0308rbel.pdf",  # decomposed umlaut (NFD)
    "\u0000\u0001\u001f",
    "ｆｕｌｌｗｉｄｔｈ／ｐａｔｈ.pdf",
    "a" * 1000 + ".pdf",
    "😀 emoji \ud83d.pdf".encode("utf-8", "surrogatepass").decode("utf-8", "replace"),
    'quote"and;semicolon.pdf',
    "CON",
]


@pytest.fixture
def clerk_file(api: Api) -> tuple[dict[str, str], str]:
    unit = factories.org_unit(api)
    file = factories.file(api, unit, factories.plan_item(api)["code"])
    return unit.clerk, str(file["id"])


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=range(len(HOSTILE_NAMES)))
def test_hostile_file_names_never_reach_storage_keys_or_headers(
    api: Api, clerk_file: tuple[dict[str, str], str], name: str
) -> None:
    clerk, file_id = clerk_file
    r = factories.upload(api, clerk, file_id, b"harmless content", name=name)
    if r.status_code != 201:
        assert r.status_code in (400, 422), r.text
        assert r.headers["content-type"] == "application/problem+json"
        return
    doc = r.json()
    stored = doc["latest"]["original_name"]
    if stored is not None:
        assert "/" not in stored and "\\" not in stored
        assert all(unicodedata.category(ch)[0] != "C" for ch in stored), repr(stored)
        assert len(stored) <= 255
    content = api.client.get(f"/api/v1/documents/{doc['id']}/versions/1/content", headers=clerk)
    assert content.status_code == 200
    assert content.content == b"harmless content"
    disposition = content.headers["content-disposition"]
    assert "\r" not in disposition and "\n" not in disposition
    assert "x-injected" not in {k.lower() for k in content.headers}
    # Blob keys are ours: every blob of the document lives under docs/<document id>/.
    keys = [blob.key for blob in api.store.list(f"docs/{doc['id']}/")]
    assert len(keys) == 1
    assert ".." not in keys[0] and "passwd" not in keys[0]


def test_upload_over_the_limit_is_refused_and_leaves_nothing(
    api: Api, clerk_file: tuple[dict[str, str], str]
) -> None:
    clerk, file_id = clerk_file
    blobs_before = {b.key for b in api.store.list("docs/")}
    big = b"\0" * (api.settings.max_upload_bytes + 1)
    r = factories.upload(api, clerk, file_id, big)
    assert r.status_code == 413
    assert r.headers["content-type"] == "application/problem+json"
    assert api.client.get(f"/api/v1/files/{file_id}/documents", headers=clerk).json() == []
    assert {b.key for b in api.store.list("docs/")} == blobs_before


def test_oversized_json_body_is_refused(api: Api, clerk_file: tuple[dict[str, str], str]) -> None:
    clerk, file_id = clerk_file
    body = b'{"title": "' + b"x" * (8 * 1024 * 1024) + b'", "plan_code": "01"}'
    r = api.client.post(
        "/api/v1/files", content=body, headers={**clerk, "Content-Type": "application/json"}
    )
    assert r.status_code == 413, r.status_code
    assert r.headers["content-type"] == "application/problem+json"
    assert len(r.content) < 64 * 1024  # the error does not echo the body back

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"title": "'
        for _ in range(64):
            yield b"x" * (64 * 1024)
        yield b'", "plan_code": "01"}'

    r = api.client.post(
        "/api/v1/files", content=chunks(), headers={**clerk, "Content-Type": "application/json"}
    )
    assert r.status_code == 413, r.status_code
    assert r.headers["content-type"] == "application/problem+json"
    assert api.client.get("/api/v1/files", headers=clerk).json() != []  # still serving


def _multipart_over_the_cap(api: Api) -> bytes:
    """A well-framed multipart body whose file part is larger than max_body_bytes."""
    return (
        b'--B\r\nContent-Disposition: form-data; name="file"; filename="gross.pdf"\r\n\r\n'
        + b"\0" * (api.settings.max_body_bytes + 64 * 1024)
        + b"\r\n--B--\r\n"
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PATCH", "/api/v1/documents/{id}"),
        ("POST", "/api/v1/files"),
        ("POST", "/signin"),  # form fields through request.form(), which spools file parts
    ],
)
def test_multipart_body_on_other_routes_gets_the_small_body_cap(
    api: Api, method: str, path: str
) -> None:
    # Claiming to be multipart must not lift the cap: without a token, the body would otherwise
    # be read whole before the 401 (or spooled to disk by a form parser).
    url = path.format(id=uuid.uuid4())
    body = _multipart_over_the_cap(api)
    headers = {"Content-Type": "multipart/form-data; boundary=B"}
    r = api.client.request(method, url, content=body, headers=headers)
    assert r.status_code == 413, r.text[:300]
    assert r.headers["content-type"] == "application/problem+json"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield body

    r = api.client.request(method, url, content=chunks(), headers=headers)
    assert r.status_code == 413, r.text[:300]


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/v1/files/{id}/documents", 404),
        ("/api/v1/documents/{id}/versions", 404),
        ("/api/v1/documents/{id}/scan", 404),
        ("/api/v1/inbox", 403),  # a clerk may not hand in post
    ],
)
def test_upload_routes_take_bodies_over_the_small_body_cap(
    api: Api, clerk_file: tuple[dict[str, str], str], path: str, status: int
) -> None:
    # Each upload route reads the body through eakte.multipart under max_upload_bytes; the
    # small-body cap would refuse it first with 413.
    clerk, _ = clerk_file
    r = api.client.post(
        path.format(id=uuid.uuid4()),
        content=_multipart_over_the_cap(api),
        headers={**clerk, "Content-Type": "multipart/form-data; boundary=B"},
    )
    assert r.status_code == status, r.text[:300]


@pytest.fixture(scope="module")
def served(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `eakte serve` (PostgreSQL, files), for limits the HTTP server itself enforces."""
    cwd: Path = tmp_path_factory.mktemp("served")
    env = clean_env(
        EAKTE_DATABASE_URL=pg_url,
        EAKTE_STORAGE_URL=f"file://{cwd / 'blobs'}",
        EAKTE_CTI_EMBEDDED="false",
        EAKTE_WORKER_IN_SERVE="false",
    )
    with serve(cwd, env) as (base, _):
        yield base


def _status(answer: bytes) -> bytes:
    return answer.split(b" ", 2)[1] if answer else b"(closed)"


def _raw_request(base: str, request: bytes) -> bytes:
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (ConnectionResetError, TimeoutError):
            pass
        return b"".join(chunks)


@pytest.mark.slow
def test_oversized_headers_are_refused_and_the_server_stays_up(served: str) -> None:
    huge_value = b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 1_000_000 + b"\r\n\r\n"
    answer = _raw_request(served, huge_value)
    assert _status(answer) == b"431", answer[:300]
    assert b"application/problem+json" in answer
    many = b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"".join(
        b"X-H%d: v\r\n" % i for i in range(20_000)
    ) + b"\r\n"
    answer = _raw_request(served, many)
    assert _status(answer) == b"431", answer[:300]
    token = "Bearer " + "a" * 200_000
    r = httpx.get(served + "/api/v1/me", headers={"Authorization": token}, timeout=10)
    assert r.status_code == 431
    assert r.headers["content-type"] == "application/problem+json"
    assert httpx.get(served + "/health", timeout=10).json()["database"] == "ok"
