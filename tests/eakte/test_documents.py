"""Documents and their immutable versions: streamed upload, download with ETag and Range."""

from __future__ import annotations

import hashlib
import os

import pytest

from eakte.documents.api import SMALL_UPLOAD
from tests import factories
from tests.conftest import Api

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _setup(api: Api) -> tuple[factories.Unit, dict[str, object]]:
    unit = factories.org_unit(api)
    item = factories.plan_item(api)
    return unit, factories.file(api, unit, item["code"])


def test_three_versions_come_back_byte_identical(api_matrix: Api) -> None:
    api = api_matrix
    unit, f = _setup(api)
    contents = [PDF + os.urandom(1000), os.urandom(300_000), b"plain text, version 3\n" * 500]
    r = factories.upload(
        api, unit.clerk, str(f["id"]), contents[0], name="antrag.pdf", title="Antrag"
    )
    assert r.status_code == 201, r.text
    doc = r.json()
    assert doc["latest"]["mime_type"] == "application/pdf"
    assert doc["latest"]["original_name"] == "antrag.pdf"
    for content in contents[1:]:
        r = api.client.post(
            f"/api/v1/documents/{doc['id']}/versions",
            files={"file": ("v.bin", content)},
            headers=unit.clerk,
        )
        assert r.status_code == 201, r.text

    versions = api.client.get(f"/api/v1/documents/{doc['id']}/versions", headers=unit.clerk).json()
    assert [v["number"] for v in versions] == [1, 2, 3]
    for number, content in enumerate(contents, start=1):
        meta = versions[number - 1]
        assert meta["sha256"] == hashlib.sha256(content).hexdigest()
        assert meta["size"] == len(content)
        r = api.client.get(
            f"/api/v1/documents/{doc['id']}/versions/{number}/content", headers=unit.clerk
        )
        assert r.status_code == 200
        assert r.content == content
        assert hashlib.sha256(r.content).hexdigest() == meta["sha256"]
        assert r.headers["etag"] == f'"{meta["sha256"]}"'
    assert (
        api.client.get(f"/api/v1/documents/{doc['id']}", headers=unit.clerk).json()[
            "current_version"
        ]
        == 3
    )


def test_range_requests_return_the_requested_bytes(api: Api) -> None:
    unit, f = _setup(api)
    content = os.urandom(100_000)
    doc = factories.upload(api, unit.clerk, str(f["id"]), content).json()
    url = f"/api/v1/documents/{doc['id']}/versions/1/content"
    for header, expected, content_range in [
        ("bytes=0-0", content[:1], "bytes 0-0/100000"),
        ("bytes=1000-1999", content[1000:2000], "bytes 1000-1999/100000"),
        ("bytes=99990-", content[99990:], "bytes 99990-99999/100000"),
        ("bytes=-10", content[-10:], "bytes 99990-99999/100000"),
        ("bytes=99000-200000", content[99000:], "bytes 99000-99999/100000"),
    ]:
        r = api.client.get(url, headers={**unit.clerk, "Range": header})
        assert r.status_code == 206, header
        assert r.content == expected, header
        assert r.headers["content-range"] == content_range


def test_range_outside_the_content_is_416_problem(api: Api) -> None:
    unit, f = _setup(api)
    doc = factories.upload(api, unit.clerk, str(f["id"]), b"x" * 100).json()
    r = api.client.get(
        f"/api/v1/documents/{doc['id']}/versions/1/content",
        headers={**unit.clerk, "Range": "bytes=100-200"},
    )
    assert r.status_code == 416
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["content-range"] == "bytes */100"


def test_matching_etag_gives_304(api: Api) -> None:
    unit, f = _setup(api)
    doc = factories.upload(api, unit.clerk, str(f["id"]), b"hello").json()
    url = f"/api/v1/documents/{doc['id']}/versions/1/content"
    etag = api.client.get(url, headers=unit.clerk).headers["etag"]
    # Weak comparison (RFC 9110 13.1.2): a proxy may have made the tag weak; * matches too.
    for header in (etag, f'"other", W/{etag}', "*"):
        r = api.client.get(url, headers={**unit.clerk, "If-None-Match": header})
        assert r.status_code == 304, header
        assert r.content == b""
    r = api.client.get(url, headers={**unit.clerk, "If-None-Match": '"other", W/"other"'})
    assert r.status_code == 200 and r.content == b"hello"


def _doc_count(api: Api, unit: factories.Unit, file_id: object) -> int:
    r = api.client.get(f"/api/v1/files/{file_id}/documents", headers=unit.clerk)
    assert r.status_code == 200
    return len(r.json())


def _blob_count(api: Api) -> int:
    return sum(1 for _ in api.store.list("docs/"))


def test_empty_upload_is_refused_and_leaves_nothing(api: Api) -> None:
    unit, f = _setup(api)
    blobs_before = _blob_count(api)
    r = factories.upload(api, unit.clerk, str(f["id"]), b"")
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert "empty" in r.json()["detail"]
    assert _doc_count(api, unit, f["id"]) == 0
    assert _blob_count(api) == blobs_before


def test_upload_over_the_limit_is_413_and_leaves_nothing(api: Api) -> None:
    unit, f = _setup(api)
    blobs_before = _blob_count(api)
    too_big = b"\0" * (api.settings.max_upload_bytes + 1)
    r = factories.upload(api, unit.clerk, str(f["id"]), too_big)
    assert r.status_code == 413
    assert r.headers["content-type"] == "application/problem+json"
    assert _doc_count(api, unit, f["id"]) == 0
    assert _blob_count(api) == blobs_before


def test_invalid_form_field_is_422_and_the_blob_is_removed(api: Api) -> None:
    unit, f = _setup(api)
    blobs_before = _blob_count(api)
    r = factories.upload(api, unit.clerk, str(f["id"]), b"data", kind="nonsense")
    assert r.status_code == 422
    assert _blob_count(api) == blobs_before
    assert _doc_count(api, unit, f["id"]) == 0


# Small uploads are received whole and recorded in one transaction while the blob is
# written; larger ones stream to the store between two transactions (documents/api.py).
BOTH_WAYS = pytest.mark.parametrize(
    "size", [300_000, SMALL_UPLOAD + 200_000], ids=["received-whole", "streamed"]
)


@BOTH_WAYS
def test_both_ways_of_uploading_keep_the_bytes(api: Api, size: int) -> None:
    unit, f = _setup(api)
    content = os.urandom(size)

    r = factories.upload(api, unit.clerk, str(f["id"]), content, **{"title": "Antrag"})

    assert r.status_code == 201, r.text
    latest = r.json()["latest"]
    assert (latest["size"], latest["sha256"]) == (size, hashlib.sha256(content).hexdigest())
    got = api.client.get(
        f"/api/v1/documents/{r.json()['id']}/versions/1/content", headers=unit.clerk
    )
    assert got.status_code == 200 and got.content == content
    assert r.json()["title"] == "Antrag"


@BOTH_WAYS
def test_a_refused_upload_stores_nothing(api: Api, size: int) -> None:
    unit, f = _setup(api)
    outsider = factories.org_unit(api)
    blobs_before = _blob_count(api)

    r = factories.upload(api, outsider.clerk, str(f["id"]), os.urandom(size))

    assert r.status_code == 404  # another unit's file does not exist for them
    assert _blob_count(api) == blobs_before
    assert _doc_count(api, unit, f["id"]) == 0


def test_non_multipart_body_is_a_clear_400(api: Api) -> None:
    unit, f = _setup(api)
    r = api.client.post(
        f"/api/v1/files/{f['id']}/documents",
        content=b"raw",
        headers={**unit.clerk, "Content-Type": "application/pdf"},
    )
    assert r.status_code == 400
    assert "multipart" in r.json()["detail"]


@pytest.mark.parametrize(
    "name,expected",
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\x\\scan.pdf", "scan.pdf"),
        ("Bescheid_Müller_ß.pdf", "Bescheid_Müller_ß.pdf"),
    ],
)
def test_client_file_names_are_reduced_to_their_last_segment(
    api: Api, name: str, expected: str
) -> None:
    unit, f = _setup(api)
    r = factories.upload(api, unit.clerk, str(f["id"]), b"data", name=name)
    assert r.status_code == 201, r.text
    assert r.json()["latest"]["original_name"] == expected
    assert r.json()["latest"]["mime_type"] == "text/plain"


def test_process_of_another_file_is_refused(api: Api) -> None:
    unit, f = _setup(api)
    other = factories.file(api, unit, str(f["plan_code"]))
    p = api.client.post(
        f"/api/v1/files/{other['id']}/processes", json={"title": "Vorgang"}, headers=unit.clerk
    ).json()
    r = factories.upload(api, unit.clerk, str(f["id"]), b"data", process_id=p["id"])
    assert r.status_code == 422
    assert "not part of file" in r.json()["detail"]
