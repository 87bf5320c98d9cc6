"""Hybrid files: paper-only documents, where the paper lies, and the replacing scan."""

from __future__ import annotations

import hashlib

from tests import factories
from tests.conftest import Api


def test_paper_document_is_recorded_then_scanned_with_provenance(api: Api) -> None:
    plan = factories.plan_item(api)
    unit = factories.org_unit(api)
    file = factories.file(api, unit, plan["code"])
    assert (
        factories.upload(api, unit.clerk, file["id"], b"%PDF-1.4 elektronisch").status_code == 201
    )
    r = api.client.post(
        f"/api/v1/files/{file['id']}/paper-documents",
        json={
            "title": "Lageplan (Original)",
            "paper_location": "Registratur 2.14",
            "paper_box": "K-7",
        },
        headers=unit.clerk,
    )
    assert r.status_code == 201, r.text
    paper = r.json()
    assert paper["medium"] == "paper" and paper["current_version"] == 0 and paper["latest"] is None

    r = api.client.patch(
        f"/api/v1/documents/{paper['id']}/paper",
        json={"paper_borrowed_by": "Bauaufsicht, Herr Meier"},
        headers=unit.clerk,
    )
    assert r.status_code == 200 and r.json()["paper_borrowed_by"] == "Bauaufsicht, Herr Meier"

    media = {
        d["title"]: d["medium"]
        for d in api.client.get(f"/api/v1/files/{file['id']}/documents", headers=unit.clerk).json()
    }
    assert media == {"brief.pdf": "electronic", "Lageplan (Original)": "paper"}

    scan = b"%PDF-1.4 gescannter Lageplan"
    r = api.client.post(
        f"/api/v1/documents/{paper['id']}/scan",
        files={"file": ("scan.pdf", scan, "application/pdf")},
        headers=unit.clerk,
    )
    assert r.status_code == 201, r.text
    scanned = r.json()
    assert scanned["medium"] == "scanned" and scanned["paper_scanned_version"] == 1
    assert scanned["latest"]["sha256"] == hashlib.sha256(scan).hexdigest()
    assert scanned["paper_destroy_after"] > scanned["latest"]["created_at"]
    events = api.client.get(
        "/api/v1/audit",
        params={"object_id": paper["id"], "action": "document.scanned"},
        headers=api.auth(["admin"], []),
    ).json()
    assert events[0]["details"]["sha256"] == hashlib.sha256(scan).hexdigest()
    assert events[0]["details"]["scanned_by"]

    # Bad input changes nothing: a second scan, a scan of an electronic document.
    again = api.client.post(
        f"/api/v1/documents/{paper['id']}/scan",
        files={"file": ("scan.pdf", b"%PDF-1.4 noch einmal", "application/pdf")},
        headers=unit.clerk,
    )
    assert again.status_code == 409 and again.headers["content-type"] == "application/problem+json"
    r = api.client.post(
        f"/api/v1/files/{file['id']}/paper-documents",
        json={"title": "ohne Ort"},
        headers=unit.clerk,
    )
    assert r.status_code == 422
    versions = api.client.get(f"/api/v1/documents/{paper['id']}/versions", headers=unit.clerk)
    assert len(versions.json()) == 1
