"""Disposal runs: approval rules, destruction with a record, handover to the archive, resume."""

from __future__ import annotations

import hashlib
import io
import uuid
import zipfile
from datetime import date
from typing import Any

import defusedxml.ElementTree as SafeET
import pytest

from eakte.auth.principal import Principal, Role
from eakte.db import make_session_factory
from retention.execution import execute_run
from retention.rules import RetentionPolicy
from storage import BlobStore, StorageUnavailable
from tests import factories
from tests.conftest import Api
from tests.retention.helpers import approved_run, close, file_with_documents, office, versions

NS = {"x": "urn:xoev-de:xdomea:schema:3.0.0"}
LONG_AGO = "2012-06-01T10:00:00+02:00"


def _content(api: Api, o: Any, doc: dict[str, Any], number: int = 1) -> int:
    r = api.client.get(
        f"/api/v1/documents/{doc['id']}/versions/{number}/content", headers=o.unit.clerk
    )
    return r.status_code


def test_approval_needs_a_second_archivist_and_decisions_for_b(api: Api) -> None:
    o = office(api)
    item = factories.plan_item(api, retention_years=5, archive_value="B")
    f, _ = file_with_documents(api, o, item["code"], documents=1)
    close(api, o, f["id"], LONG_AGO)
    today = date.today().isoformat()
    r = api.client.post("/api/v1/retention/runs", json={"as_of": today}, headers=o.anna)
    assert r.status_code == 201 and r.json()["undecided"] == 1
    run = r.json()
    approve = f"/api/v1/retention/runs/{run['id']}/approve"
    r = api.client.post(approve, headers=o.anna)
    assert r.status_code == 403 and "four-eyes" in r.json()["detail"]
    r = api.client.post(approve, headers=o.bert)
    assert r.status_code == 409 and "need a decision" in r.json()["detail"]
    clerk = api.client.post(approve, headers=o.unit.clerk)
    assert clerk.status_code == 403
    r = api.client.post(
        f"/api/v1/retention/runs/{run['id']}/decisions",
        json={"decisions": [{"file_id": f["id"], "decision": "X"}]},
        headers=o.anna,
    )
    assert r.status_code == 422
    r = api.client.post(
        f"/api/v1/retention/runs/{run['id']}/decisions",
        json={"decisions": [{"file_id": f["id"], "decision": "V"}]},
        headers=o.anna,
    )
    assert r.status_code == 200 and r.json()["undecided"] == 0
    r = api.client.post(approve, headers=o.bert)
    assert r.status_code == 200 and r.json()["approved_by"] == "bert"
    r = api.client.post(
        f"/api/v1/retention/runs/{run['id']}/decisions",
        json={"decisions": [{"file_id": f["id"], "decision": "A"}]},
        headers=o.anna,
    )
    assert r.status_code == 409  # decisions come before approval
    other = office(api)
    assert (
        api.client.get(f"/api/v1/retention/runs/{run['id']}", headers=other.anna).status_code == 404
    )


def test_destruction_deletes_content_and_keeps_a_certificate(api_matrix: Api) -> None:
    api = api_matrix
    o = office(api)
    item = factories.plan_item(api, retention_years=5, archive_value="V")
    f, docs = file_with_documents(api, o, item["code"], documents=2, versions=2)
    expected = {
        (d["id"], v["number"]): v["sha256"] for d in docs for v in versions(api, o, d["id"])
    }
    close(api, o, f["id"], LONG_AGO)
    run = approved_run(api, o, date.today().isoformat())
    r = api.client.post(f"/api/v1/retention/runs/{run['id']}/execute", headers=o.anna)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "completed" and r.json()["items"] == {"done": 1}

    assert (
        api.client.get(f"/api/v1/files/{f['id']}", headers=o.unit.clerk).json()["status"]
        == "disposed"
    )
    assert _content(api, o, docs[0]) == 409
    assert list(api.store.list(f"docs/{docs[0]['id']}/")) == []

    r = api.client.get(f"/api/v1/retention/runs/{run['id']}/certificate", headers=o.bert)
    assert r.status_code == 200 and "attachment" in r.headers["content-disposition"]
    cert = r.json()
    (rec,) = cert["records"]
    assert rec["reference"] == f["reference"] and rec["action"] == "destroyed"
    assert rec["due_on"] == "2018-01-01"
    assert (rec["proposed_by"], rec["approved_by"]) == ("anna", "bert")
    assert {(v["document_id"], v["version"]): v["sha256"] for v in rec["versions"]} == expected
    body = {k: v for k, v in cert.items() if k != "sha256"}
    import json

    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert cert["sha256"] == hashlib.sha256(canonical.encode()).hexdigest()
    # Executing again destroys nothing twice and writes no second record.
    r = api.client.post(f"/api/v1/retention/runs/{run['id']}/execute", headers=o.anna)
    assert r.status_code == 409


def test_handover_package_lists_every_primary_file_and_waits_for_the_receipt(api: Api) -> None:
    o = office(api)
    item = factories.plan_item(api, retention_years=10, archive_value="A")
    f, _ = file_with_documents(api, o, item["code"], documents=1)
    p = api.client.post(
        f"/api/v1/files/{f['id']}/processes", json={"title": "Nachtrag"}, headers=o.unit.clerk
    ).json()
    r = factories.upload(
        api, o.unit.clerk, f["id"], b"%PDF-1.4 Nachtrag", name="nachtrag.pdf", process_id=p["id"]
    )
    assert r.status_code == 201, r.text
    close(api, o, f["id"], LONG_AGO)
    run = approved_run(api, o, date.today().isoformat())
    r = api.client.post(f"/api/v1/retention/runs/{run['id']}/execute", headers=o.anna)
    assert r.status_code == 200 and r.json()["items"] == {"transferred": 1}
    assert r.json()["status"] == "executing"  # waiting for the archive

    r = api.client.get(f"/api/v1/retention/runs/{run['id']}/package", headers=o.anna)
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    package = zipfile.ZipFile(io.BytesIO(r.content))
    message = package.read(f"{run['id']}_Aussonderung.Aussonderung.0503.xml")
    root = SafeET.fromstring(message)
    assert root.tag == "{urn:xoev-de:xdomea:schema:3.0.0}Aussonderung.Aussonderung.0503"
    assert root.findtext("x:Kopf/x:ProzessID", namespaces=NS) == run["id"]
    (akte,) = root.findall("x:Schriftgutobjekt/x:Akte", NS)
    assert akte.findtext("x:Identifikation/x:ID", namespaces=NS) == f["id"]
    assert akte.findtext("x:AllgemeineMetadaten/x:Kennzeichen", namespaces=NS) == f["reference"]
    (vorgang,) = akte.findall("x:Akteninhalt/x:Vorgang", NS)
    assert vorgang.findtext("x:Identifikation/x:ID", namespaces=NS) == p["id"]
    assert len(vorgang.findall("x:Dokument", NS)) == 1
    assert len(akte.findall("x:Akteninhalt/x:Dokument", NS)) == 1
    names = [e.text for e in akte.iter("{urn:xoev-de:xdomea:schema:3.0.0}Dateiname")]
    assert len(names) == 2
    sums = dict(
        reversed(line.split("  ", 1))
        for line in package.read("sha256sums.txt").decode().splitlines()
    )
    for name in names:
        assert name is not None
        digest = hashlib.sha256(package.read(name)).hexdigest()
        assert sums[name] == digest
        uuid.UUID(name.split("_", 1)[0])

    # Content stays until the archive's receipt is recorded, then it goes.
    doc_id = vorgang.findtext("x:Dokument/x:Identifikation/x:ID", namespaces=NS)
    assert doc_id is not None
    assert list(api.store.list(f"docs/{doc_id}/"))
    r = api.client.post(
        f"/api/v1/retention/runs/{run['id']}/receipt",
        json={"archive_reference": "StadtA Best. 12 Nr. 345"},
        headers=o.bert,
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "completed" and r.json()["items"] == {"done": 1}
    assert list(api.store.list(f"docs/{doc_id}/")) == []
    cert = api.client.get(f"/api/v1/retention/runs/{run['id']}/certificate", headers=o.anna)
    (rec,) = cert.json()["records"]
    assert rec["action"] == "transferred" and rec["archive_reference"] == "StadtA Best. 12 Nr. 345"
    assert (
        api.client.get(f"/api/v1/files/{f['id']}", headers=o.unit.clerk).json()["status"]
        == "transferred"
    )


class FailingDeletes:
    """The real store, except that deleting fails after `allowed` deletions (S3 going down)."""

    def __init__(self, inner: BlobStore, allowed: int) -> None:
        self.inner = inner
        self.allowed = allowed

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def delete(self, key: str, *, bypass_governance: bool = False) -> None:
        if self.allowed <= 0:
            raise StorageUnavailable("S3 went away")
        self.allowed -= 1
        self.inner.delete(key, bypass_governance=bypass_governance)


def test_execution_resumes_after_a_crash_without_losing_or_repeating(api: Api) -> None:
    o = office(api)
    item = factories.plan_item(api, retention_years=5, archive_value="V")
    files = [file_with_documents(api, o, item["code"], documents=2)[0] for _ in range(4)]
    for f in files:
        close(api, o, f["id"], LONG_AGO)
    run = approved_run(api, o, date.today().isoformat())
    factory = make_session_factory(api.engine)
    anna = Principal("anna", frozenset({Role.ARCHIVIST}), frozenset({o.unit.code}))
    policy = RetentionPolicy()
    # Files are processed in id order; the store fails on the 4th blob: in the 2nd file.
    broken = FailingDeletes(api.store, allowed=3)
    with pytest.raises(StorageUnavailable):
        execute_run(factory, broken, anna, policy, uuid.UUID(run["id"]))  # type: ignore[arg-type]
    items = api.client.get(f"/api/v1/retention/runs/{run['id']}/items", headers=o.anna).json()
    assert sorted(i["state"] for i in items) == ["destroying", "done", "pending", "pending"]
    r = api.client.get(f"/api/v1/retention/runs/{run['id']}/certificate", headers=o.anna)
    assert len(r.json()["records"]) == 1

    view = execute_run(factory, api.store, anna, policy, uuid.UUID(run["id"]))
    assert view.items == {"done": 4} and view.run.status == "completed"
    cert = api.client.get(f"/api/v1/retention/runs/{run['id']}/certificate", headers=o.anna)
    records = cert.json()["records"]
    assert sorted(r["file_id"] for r in records) == sorted(f["id"] for f in files)
    assert all(len(r["versions"]) == 2 for r in records)
    for f in files:
        events = api.client.get(
            f"/api/v1/audit?object_id={f['id']}&action=file.destroyed", headers=o.anna
        ).json()
        assert len(events) == 1
