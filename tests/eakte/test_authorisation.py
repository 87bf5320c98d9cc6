"""Every route is authenticated, and a principal sees only its org units' files."""

from __future__ import annotations

import time

import jwt
import pytest

from tests import factories
from tests.conftest import TEST_SECRET, Api


@pytest.fixture
def two_units(
    api: Api,
) -> tuple[factories.Unit, factories.Unit, dict[str, object], dict[str, object]]:
    a, b = factories.org_unit(api), factories.org_unit(api)
    item = factories.plan_item(api)
    file_b = factories.file(api, b, item["code"])
    doc_b = factories.upload(api, b.clerk, str(file_b["id"]), b"secret of B").json()
    return a, b, file_b, doc_b


def test_clerk_cannot_see_or_touch_other_units_files(api: Api, two_units: tuple) -> None:  # type: ignore[type-arg]
    a, b, file_b, doc_b = two_units
    fid, did = file_b["id"], doc_b["id"]
    for method, url in [
        ("GET", f"/api/v1/files/{fid}"),
        ("GET", f"/api/v1/files/{fid}/documents"),
        ("GET", f"/api/v1/files/{fid}/processes"),
        ("GET", f"/api/v1/files/{fid}/contacts"),
        ("GET", f"/api/v1/documents/{did}"),
        ("GET", f"/api/v1/documents/{did}/versions"),
        ("GET", f"/api/v1/documents/{did}/versions/1"),
        ("GET", f"/api/v1/documents/{did}/versions/1/content"),
    ]:
        r = api.client.request(method, url, headers=a.clerk)
        assert r.status_code == 404, (url, r.status_code)
        assert r.headers["content-type"] == "application/problem+json"
        assert b"secret of B" not in r.content
    r = api.client.patch(f"/api/v1/files/{fid}", json={"title": "taken over"}, headers=a.clerk)
    assert r.status_code == 404
    r = api.client.post(f"/api/v1/files/{fid}/processes", json={"title": "x"}, headers=a.clerk)
    assert r.status_code == 404
    r = factories.upload(api, a.clerk, str(fid), b"planted")
    assert r.status_code == 404
    r = api.client.post(
        f"/api/v1/documents/{did}/versions", files={"file": ("x", b"planted")}, headers=a.clerk
    )
    assert r.status_code == 404
    listed = api.client.get(
        "/api/v1/files", params={"reference": file_b["reference"]}, headers=a.clerk
    ).json()
    assert listed == []
    # B's clerk still sees everything unchanged.
    assert (
        api.client.get(f"/api/v1/files/{fid}", headers=b.clerk).json()["title"] == file_b["title"]
    )
    content = api.client.get(f"/api/v1/documents/{did}/versions/1/content", headers=b.clerk)
    assert content.content == b"secret of B"


def test_clerk_cannot_create_files_in_another_unit(api: Api, two_units: tuple) -> None:  # type: ignore[type-arg]
    a, b, file_b, _ = two_units
    r = api.client.post(
        "/api/v1/files",
        json={"title": "x", "plan_code": file_b["plan_code"], "org_unit": b.code},
        headers=a.clerk,
    )
    assert r.status_code == 403
    assert r.headers["content-type"] == "application/problem+json"


def test_roles_limit_what_a_principal_may_do(api: Api, two_units: tuple) -> None:  # type: ignore[type-arg]
    a, _, file_b, _ = two_units
    mailroom = api.auth(["mailroom"], [a.code])
    r = api.client.post(
        "/api/v1/files", json={"title": "x", "plan_code": file_b["plan_code"]}, headers=mailroom
    )
    assert r.status_code == 403
    r = api.client.post("/api/v1/plan-items", json={"code": "99.1", "title": "x"}, headers=a.clerk)
    assert r.status_code == 403
    assert api.client.get("/api/v1/audit", headers=a.clerk).status_code == 403
    assert api.client.get("/api/v1/audit", headers=api.auth(["archivist"], [])).status_code == 200


def test_every_api_route_refuses_anonymous_requests(api: Api) -> None:
    paths = api.client.get("/openapi.json").json()["paths"]
    api_routes = sorted(
        (m.upper(), p) for p, ops in paths.items() for m in ops if p.startswith("/api/")
    )
    assert len(api_routes) > 20
    for method, path in api_routes:
        url = path
        for name in ("file_id", "document_id", "process_id", "contact_id", "item_id", "name"):
            url = url.replace("{" + name + "}", "00000000-0000-0000-0000-000000000000")
        url = url.replace("{number}", "1")
        r = api.client.request(method, url)
        assert r.status_code == 401, (method, path, r.status_code)
        assert r.headers["content-type"] == "application/problem+json"
        assert r.headers["www-authenticate"].startswith("Bearer")


def _forged_tokens(unit: str) -> dict[str, str]:
    now = int(time.time())
    claims = {"sub": "mallory", "roles": ["clerk", "admin"], "units": [unit], "exp": now + 600}
    return {
        "wrong secret": jwt.encode(claims, "not-the-secret-" * 4, algorithm="HS256"),
        "expired": jwt.encode({**claims, "exp": now - 10}, TEST_SECRET, algorithm="HS256"),
        "alg none": jwt.encode(claims, None, algorithm="none"),  # type: ignore[arg-type]
        "no exp": jwt.encode(
            {k: v for k, v in claims.items() if k != "exp"}, TEST_SECRET, algorithm="HS256"
        ),
        "garbage": "not.a.token",
        "tampered": jwt.encode(claims, TEST_SECRET, algorithm="HS256")[:-4] + "AAAA",
        "bad api key": "ek_0123456789abcdef_nope",
    }


def test_forged_tokens_are_refused(api: Api) -> None:
    unit = factories.org_unit(api)
    for name, token in _forged_tokens(unit.code).items():
        r = api.client.get("/api/v1/files", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, name
        assert r.headers["content-type"] == "application/problem+json"


def test_api_key_authenticates_a_service_until_revoked(api: Api) -> None:
    unit = factories.org_unit(api)
    item = factories.plan_item(api)
    admin = api.auth(["admin"], [])
    name = factories.unique("fachverfahren-")
    r = api.client.post(
        "/api/v1/api-keys",
        json={"name": name, "roles": ["service"], "units": [unit.code]},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    key = r.json()["key"]
    listed = api.client.get("/api/v1/api-keys", headers=admin).json()
    assert all("key" not in k and "secret_hash" not in k for k in listed)

    r = api.client.post(
        "/api/v1/files",
        json={"title": "Gewerbeanmeldung", "plan_code": item["code"]},
        headers={"X-API-Key": key},
    )
    assert r.status_code == 201, r.text
    assert (
        api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {key}"}).json()["subject"]
        == f"apikey:{name}"
    )

    assert api.client.delete(f"/api/v1/api-keys/{name}", headers=admin).status_code == 200
    r = api.client.get("/api/v1/files", headers={"X-API-Key": key})
    assert r.status_code == 401
    assert "revoked" in r.json()["detail"]
