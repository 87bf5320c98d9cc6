"""Idempotency-Key on POST routes: a retry returns the first response and creates nothing."""

from __future__ import annotations

import os

from tests import factories
from tests.conftest import Api

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _post(api: Api, url: str, headers: dict[str, str], content: bytes, key: str | None,
          **data: str) -> object:
    extra = {"Idempotency-Key": key} if key else {}
    return api.client.post(
        url, files={"file": ("brief.pdf", content)}, data=data, headers={**headers, **extra}
    )


def test_retried_upload_with_the_same_key_is_not_duplicated(api: Api) -> None:
    unit = factories.org_unit(api)
    f = factories.file(api, unit, factories.plan_item(api)["code"])
    url = f"/api/v1/files/{f['id']}/documents"
    content = PDF + os.urandom(200)
    first = api.client.post(url, files={"file": ("a.pdf", content)}, data={"title": "Antrag"},
                            headers={**unit.clerk, "Idempotency-Key": "upload-1"})
    assert first.status_code == 201, first.text
    again = api.client.post(url, files={"file": ("a.pdf", content)}, data={"title": "Antrag"},
                            headers={**unit.clerk, "Idempotency-Key": "upload-1"})
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    listing = api.client.get(url, headers=unit.clerk).json()
    assert [d["id"] for d in listing] == [first.json()["id"]]
    # The retry's copy of the content was not left behind.
    assert len(list(api.store.list(f"docs/{first.json()['id']}/"))) == 1
    assert sum(1 for s in api.store.list("docs/") if s.size == len(content)) == 1

    without = api.client.post(url, files={"file": ("a.pdf", content)}, headers=unit.clerk)
    assert without.status_code == 201 and without.json()["id"] != first.json()["id"]


def test_same_key_with_another_body_is_refused_and_changes_nothing(api: Api) -> None:
    unit = factories.org_unit(api)
    f = factories.file(api, unit, factories.plan_item(api)["code"])
    url = f"/api/v1/files/{f['id']}/documents"
    headers = {**unit.clerk, "Idempotency-Key": "upload-2"}
    assert api.client.post(url, files={"file": ("a.pdf", PDF + b"1")}, headers=headers
                           ).status_code == 201
    other = api.client.post(url, files={"file": ("b.pdf", PDF + b"2")}, headers=headers)
    assert other.status_code == 422
    assert other.headers["content-type"] == "application/problem+json"
    assert other.json()["type"] == "/problems/idempotency-key-reused"
    assert len(api.client.get(url, headers=unit.clerk).json()) == 1

    bad = api.client.post(url, files={"file": ("a.pdf", PDF)},
                          headers={**unit.clerk, "Idempotency-Key": "x" * 201})
    assert bad.status_code == 400 and bad.json()["type"] == "/problems/bad-request"
    assert len(api.client.get(url, headers=unit.clerk).json()) == 1


def test_keys_are_per_principal_and_per_route(api: Api) -> None:
    unit = factories.org_unit(api)
    f = factories.file(api, unit, factories.plan_item(api)["code"])
    url = f"/api/v1/files/{f['id']}/documents"
    content = PDF + os.urandom(50)
    a = api.auth(["clerk"], [unit.code], sub="anna")
    b = api.auth(["clerk"], [unit.code], sub="bert")
    first = api.client.post(url, files={"file": ("a.pdf", content)},
                            headers={**a, "Idempotency-Key": "k"})
    second = api.client.post(url, files={"file": ("a.pdf", content)},
                             headers={**b, "Idempotency-Key": "k"})
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] != second.json()["id"]

    versions = f"/api/v1/documents/{first.json()['id']}/versions"
    v1 = api.client.post(versions, files={"file": ("n.pdf", content + b"v")},
                         headers={**a, "Idempotency-Key": "k"})
    v2 = api.client.post(versions, files={"file": ("n.pdf", content + b"v")},
                         headers={**a, "Idempotency-Key": "k"})
    assert v1.status_code == v2.status_code == 201 and v1.json() == v2.json()
    numbers = [v["number"] for v in api.client.get(versions, headers=a).json()]
    assert numbers == [1, 2]


def test_retried_inbox_submission_is_not_duplicated(api: Api) -> None:
    unit = factories.org_unit(api)
    mailroom = api.auth(["mailroom"], [unit.code])
    content = PDF + os.urandom(100)
    headers = {**mailroom, "Idempotency-Key": "scan-0001"}
    first = api.client.post("/api/v1/inbox", files={"file": ("scan.pdf", content)},
                            headers=headers)
    assert first.status_code == 202, first.text
    again = api.client.post("/api/v1/inbox", files={"file": ("scan.pdf", content)},
                            headers=headers)
    assert again.status_code == 202 and again.json()["id"] == first.json()["id"]
    assert [s.key for s in api.store.list("inbox/") if s.size == len(content)] == [
        f"inbox/{first.json()['id']}/original"
    ]
