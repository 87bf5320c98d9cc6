"""Confidentiality: a file above the principal's clearance is invisible, as another unit's is."""

from __future__ import annotations

from typing import Any

import jwt
import pytest

from eakte.auth.tokens import issue_token, principal_from_claims
from eakte.errors import Unauthenticated
from tests import factories
from tests.conftest import TEST_SECRET, Api, make_settings


def cleared(api: Api, roles: list[str], units: list[str], clearance: str) -> dict[str, str]:
    """Authorization header of a principal with the given clearance."""
    token = issue_token(api.settings, factories.unique("u"), roles, units, clearance=clearance)
    return {"Authorization": f"Bearer {token}"}


def secret_file(api: Api, title: str) -> tuple[factories.Unit, dict[str, str], str]:
    """A secret file of a new unit: the unit, a clerk cleared for it, and the file's id."""
    unit = factories.org_unit(api)
    item = factories.plan_item(api)
    secret_clerk = cleared(api, ["clerk"], [unit.code], "secret")
    r = api.client.post(
        "/api/v1/files",
        json={"title": title, "plan_code": item["code"], "confidentiality": "secret"},
        headers=secret_clerk,
    )
    assert r.status_code == 201, r.text
    return unit, secret_clerk, r.json()["id"]


def test_file_above_clearance_is_invisible_everywhere(api: Api) -> None:
    title = factories.unique("Personalakte ")
    unit, secret_clerk, fid = secret_file(api, title)
    doc = factories.upload(api, secret_clerk, fid, b"salary of B").json()

    for clearance in ("normal", "confidential"):
        reader = cleared(api, ["clerk"], [unit.code], clearance)
        for url in (
            f"/api/v1/files/{fid}",
            f"/api/v1/files/{fid}/documents",
            f"/api/v1/documents/{doc['id']}",
            f"/api/v1/documents/{doc['id']}/versions/1/content",
        ):
            r = api.client.get(url, headers=reader)
            assert r.status_code == 404, (clearance, url, r.status_code)
            assert r.headers["content-type"] == "application/problem+json"
        listed = api.client.get("/api/v1/files", headers=reader).json()
        assert fid not in {f["id"] for f in listed}
        r = api.client.patch(f"/api/v1/files/{fid}", json={"title": "x"}, headers=reader)
        assert r.status_code == 404
    # A token without the claim reads only normal files.
    assert api.client.get(f"/api/v1/files/{fid}", headers=unit.clerk).status_code == 404

    r = api.client.get(f"/api/v1/documents/{doc['id']}/versions/1/content", headers=secret_clerk)
    assert r.status_code == 200
    assert r.content == b"salary of B"
    assert fid in {f["id"] for f in api.client.get("/api/v1/files", headers=secret_clerk).json()}


def test_confidential_clearance_reads_confidential_but_not_secret(api: Api) -> None:
    unit = factories.org_unit(api)
    item = factories.plan_item(api)
    top = cleared(api, ["clerk"], [unit.code], "secret")
    ids = {}
    for level in ("normal", "confidential", "secret"):
        body = {"title": f"{level} file", "plan_code": item["code"], "confidentiality": level}
        r = api.client.post("/api/v1/files", json=body, headers=top)
        assert r.status_code == 201, r.text
        ids[level] = r.json()["id"]
    reader = cleared(api, ["clerk"], [unit.code], "confidential")
    seen = {f["id"] for f in api.client.get("/api/v1/files", headers=reader).json()}
    assert ids["normal"] in seen and ids["confidential"] in seen
    assert ids["secret"] not in seen


def test_principal_cannot_classify_a_file_above_its_clearance(api: Api) -> None:
    unit = factories.org_unit(api)
    item = factories.plan_item(api)
    r = api.client.post(
        "/api/v1/files",
        json={"title": "x", "plan_code": item["code"], "confidentiality": "secret"},
        headers=unit.clerk,
    )
    assert r.status_code == 403
    assert r.headers["content-type"] == "application/problem+json"
    file = factories.file(api, unit, item["code"])
    r = api.client.patch(
        f"/api/v1/files/{file['id']}", json={"confidentiality": "confidential"}, headers=unit.clerk
    )
    assert r.status_code == 403
    # Nothing changed: the file is still normal and readable by its clerk.
    r = api.client.get(f"/api/v1/files/{file['id']}", headers=unit.clerk)
    assert r.json()["confidentiality"] == "normal"


def test_unknown_clearance_claim_is_refused(api: Api) -> None:
    settings = make_settings("sqlite://")
    claims = {"sub": "anna", "roles": ["clerk"], "units": ["10"], "clearance": "top-secret"}
    with pytest.raises(Unauthenticated):
        principal_from_claims(claims, settings)
    token = jwt.encode({**claims, "exp": 2**31}, TEST_SECRET, algorithm="HS256")
    r = api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    with pytest.raises(ValueError, match="clearance"):
        issue_token(settings, "anna", ["clerk"], ["10"], clearance="top-secret")


def test_the_audit_log_withholds_what_it_says_of_files_above_clearance(api: Api) -> None:
    title = factories.unique("Disziplinarakte ")
    _, secret_clerk, fid = secret_file(api, title)
    doc = factories.upload(api, secret_clerk, fid, b"finding", name="Befund.pdf").json()
    r = api.client.post(f"/api/v1/files/{fid}/processes", json={"title": "Anhoerung X"},
                        headers=secret_clerk)  # fmt: skip
    assert r.status_code == 201, r.text
    process = r.json()["id"]

    def events(reader: dict[str, str], object_id: str) -> list[dict[str, Any]]:
        r = api.client.get("/api/v1/audit", params={"object_id": object_id}, headers=reader)
        assert r.status_code == 200, r.text
        found: list[dict[str, Any]] = r.json()
        assert found, object_id
        return found

    for clearance in ("normal", "confidential"):
        auditor = cleared(api, ["archivist"], [], clearance)
        seen = [e for oid in (fid, doc["id"], process) for e in events(auditor, oid)]
        assert {e["action"] for e in seen} >= {"file.created", "document.created"}
        for event in seen:  # the events stay, so the trail has no gaps; their details go
            assert "withheld" in event["details"], event
        assert title not in str(seen) and "Befund" not in str(seen) and "Anhoerung" not in str(seen)

    auditor = cleared(api, ["archivist"], [], "secret")
    created = [e for e in events(auditor, fid) if e["action"] == "file.created"]
    assert created and created[0]["details"]["title"] == title
