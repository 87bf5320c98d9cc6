"""Shared steps of the retention tests: a unit with a clerk and two archivists, closed files."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from eakte.db import make_session_factory, unit_of_work
from eakte.documents.models import Document, DocumentVersion
from tests import factories
from tests.conftest import Api

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@dataclass
class Office:
    """An org unit with its clerk and two archivists (for the four-eyes rule)."""

    unit: factories.Unit
    anna: dict[str, str]
    bert: dict[str, str]


def office(api: Api) -> Office:
    """A fresh org unit with a clerk and archivists anna and bert."""
    unit = factories.org_unit(api)
    return Office(
        unit,
        api.auth(["archivist"], [unit.code], sub="anna"),
        api.auth(["archivist"], [unit.code], sub="bert"),
    )


def file_with_documents(
    api: Api, o: Office, plan_code: str, documents: int = 2, versions: int = 1
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """An open file with documents (each with `versions` versions) of random content."""
    f = factories.file(api, o.unit, plan_code)
    docs = []
    for n in range(documents):
        r = factories.upload(
            api, o.unit.clerk, f["id"], PDF + os.urandom(500), name=f"brief-{n}.pdf"
        )
        assert r.status_code == 201, r.text
        for _ in range(versions - 1):
            rv = api.client.post(
                f"/api/v1/documents/{r.json()['id']}/versions",
                files={"file": ("neu.pdf", PDF + os.urandom(300))},
                headers=o.unit.clerk,
            )
            assert rv.status_code == 201, rv.text
        docs.append(r.json())
    return f, docs


def close(api: Api, o: Office, file_id: str, closed_at: str | None = None) -> dict[str, Any]:
    """Close a file (backdated by an archivist when closed_at is given)."""
    if closed_at is None:
        r = api.client.post(f"/api/v1/retention/files/{file_id}/close", headers=o.unit.clerk)
    else:
        r = api.client.post(
            f"/api/v1/retention/files/{file_id}/close",
            json={"closed_at": closed_at},
            headers=o.anna,
        )
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


def versions(api: Api, o: Office, document_id: str) -> list[dict[str, Any]]:
    """The versions of a document, as the clerk sees them."""
    r = api.client.get(f"/api/v1/documents/{document_id}/versions", headers=o.unit.clerk)
    assert r.status_code == 200, r.text
    result: list[dict[str, Any]] = r.json()
    return result


def approved_run(api: Api, o: Office, as_of: str) -> dict[str, Any]:
    """Propose (anna) and approve (bert) a run of everything due at `as_of`."""
    r = api.client.post("/api/v1/retention/runs", json={"as_of": as_of}, headers=o.anna)
    assert r.status_code == 201, r.text
    run = r.json()
    r = api.client.post(f"/api/v1/retention/runs/{run['id']}/approve", headers=o.bert)
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


def blob_keys(api: Api, file_id: str) -> list[str]:
    """The blob keys of every version of a file's documents, in the order of the versions' ids
    (the order in which fixity reads them)."""
    with unit_of_work(make_session_factory(api.engine)) as session:
        return list(
            session.scalars(
                select(DocumentVersion.blob_key)
                .join(Document, Document.id == DocumentVersion.document_id)
                .where(Document.file_id == uuid.UUID(file_id))
                .order_by(DocumentVersion.id)
            )
        )
