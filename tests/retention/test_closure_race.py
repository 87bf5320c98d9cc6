"""Races that serialise on row locks (PostgreSQL): closing a file while a version is uploaded,
appraising a file while its disposal run is approved."""

from __future__ import annotations

import io
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from eakte.auth.principal import Principal, Role
from eakte.db import make_session_factory, unit_of_work
from eakte.documents import service as documents
from eakte.documents.models import DocumentVersion
from eakte.errors import Conflict
from retention import disposal
from retention.rules import RetentionPolicy
from retention.service import close_file
from tests import factories
from tests.conftest import Api
from tests.retention.helpers import PDF, close, file_with_documents, office

# How long one side holds its transaction open while the other one tries to get in.
HOLD_SECONDS = 0.5


def _content(api: Api, document_id: uuid.UUID) -> documents.StoredContent:
    return documents.store_content(
        api.store,
        io.BytesIO(PDF + uuid.uuid4().bytes),
        max_size=1 << 20,
        original_name="neu.pdf",
        document_id=document_id,
    )


def _setup(api: Api) -> tuple[uuid.UUID, uuid.UUID, Principal]:
    o = office(api)
    item = factories.plan_item(api, retention_years=10)
    f, docs = file_with_documents(api, o, item["code"], documents=1)
    clerk = Principal("clara", frozenset({Role.CLERK}), frozenset({o.unit.code}))
    return uuid.UUID(f["id"]), uuid.UUID(docs[0]["id"]), clerk


def test_a_version_added_before_closure_is_locked_by_it(pg_api: Api) -> None:
    api = pg_api
    file_id, document_id, clerk = _setup(api)
    factory = make_session_factory(api.engine)
    content = _content(api, document_id)
    inside = threading.Event()

    def upload() -> None:
        with unit_of_work(factory) as session:
            documents.add_version(session, clerk, document_id, content)
            inside.set()
            time.sleep(HOLD_SECONDS)  # committed only after the closure has started

    def closure() -> float:
        assert inside.wait(10)
        started = time.monotonic()
        with unit_of_work(factory) as session:
            close_file(session, api.store, clerk, RetentionPolicy(), file_id)
        return time.monotonic() - started

    with ThreadPoolExecutor(2) as pool:
        uploading = pool.submit(upload)
        closing = pool.submit(closure)
        uploading.result()
        waited = closing.result()
    # The closure waited for the upload's transaction, then saw its version.
    assert waited >= HOLD_SECONDS * 0.6
    until = api.store.stat(content.key).retain_until
    assert until is not None and until > datetime.now(UTC)


def test_an_upload_racing_a_closure_is_refused_and_nothing_stays_unlocked(pg_api: Api) -> None:
    api = pg_api
    file_id, document_id, clerk = _setup(api)
    factory = make_session_factory(api.engine)
    content = _content(api, document_id)
    inside = threading.Event()

    def closure() -> None:
        with unit_of_work(factory) as session:
            close_file(session, api.store, clerk, RetentionPolicy(), file_id)
            inside.set()
            time.sleep(HOLD_SECONDS)  # the upload starts while the closure is uncommitted

    def upload() -> None:
        assert inside.wait(10)
        with unit_of_work(factory) as session:
            documents.add_version(session, clerk, document_id, content)

    with ThreadPoolExecutor(2) as pool:
        closing = pool.submit(closure)
        uploading = pool.submit(upload)
        closing.result()
        with pytest.raises(Conflict, match="closed"):
            uploading.result()
    with unit_of_work(factory) as session:
        assert session.get(DocumentVersion, content.version_id) is None
    # The file still has its one version, locked by the closure.
    clerk_header = api.auth(["clerk"], sorted(clerk.units))
    r = api.client.get(f"/api/v1/documents/{document_id}/versions", headers=clerk_header)
    assert [v["number"] for v in r.json()] == [1]


def test_uploads_and_closure_through_the_api_leave_no_version_unlocked(pg_api: Api) -> None:
    api = pg_api
    o = office(api)
    item = factories.plan_item(api, retention_years=10)
    f, docs = file_with_documents(api, o, item["code"], documents=2)
    start = threading.Barrier(5)

    def upload(n: int) -> int:
        start.wait(10)
        r = api.client.post(
            f"/api/v1/documents/{docs[n % 2]['id']}/versions",
            files={"file": ("neu.pdf", PDF + uuid.uuid4().bytes)},
            headers=o.unit.clerk,
        )
        return r.status_code

    def closure() -> int:
        start.wait(10)
        time.sleep(0.01)
        r = api.client.post(f"/api/v1/retention/files/{f['id']}/close", headers=o.unit.clerk)
        return r.status_code

    with ThreadPoolExecutor(5) as pool:
        uploads = [pool.submit(upload, n) for n in range(4)]
        closing = pool.submit(closure)
        codes = [u.result() for u in uploads]
        assert closing.result() == 200
    assert set(codes) <= {201, 409}
    from sqlalchemy import select

    from eakte.documents.models import Document

    with unit_of_work(make_session_factory(api.engine)) as session:
        keys = session.scalars(
            select(DocumentVersion.blob_key)
            .join(Document, Document.id == DocumentVersion.document_id)
            .where(Document.file_id == uuid.UUID(f["id"]))
        ).all()
    assert len(keys) == 2 + codes.count(201)
    for key in keys:
        assert api.store.stat(key).retain_until is not None, key


def test_a_decision_racing_the_approval_is_refused(pg_api: Api) -> None:
    api = pg_api
    o = office(api)
    item = factories.plan_item(api, retention_years=5, archive_value="B")
    f, _ = file_with_documents(api, o, item["code"], documents=1)
    close(api, o, f["id"], "2012-06-01T10:00:00+02:00")
    r = api.client.post("/api/v1/retention/runs", json={"as_of": "2030-01-02"}, headers=o.anna)
    assert r.status_code == 201, r.text
    run_id = uuid.UUID(r.json()["id"])
    r = api.client.post(f"/api/v1/retention/runs/{run_id}/decisions", headers=o.anna,
                        json={"decisions": [{"file_id": f["id"], "decision": "A"}]})  # fmt: skip
    assert r.status_code == 200, r.text
    units = frozenset({o.unit.code})
    anna = Principal("anna", frozenset({Role.ARCHIVIST}), units)
    bert = Principal("bert", frozenset({Role.ARCHIVIST}), units)
    factory = make_session_factory(api.engine)
    inside = threading.Event()

    def approval() -> None:
        with unit_of_work(factory) as session:
            disposal.approve_run(session, bert, RetentionPolicy(), run_id)
            inside.set()
            time.sleep(HOLD_SECONDS)  # the decision comes while the approval is uncommitted

    def decision() -> None:
        assert inside.wait(10)
        with unit_of_work(factory) as session:
            disposal.decide(session, anna, run_id, [(uuid.UUID(f["id"]), "V")])

    with ThreadPoolExecutor(2) as pool:
        approving = pool.submit(approval)
        deciding = pool.submit(decision)
        approving.result()
        with pytest.raises(Conflict, match="before approval"):
            deciding.result()
    items = api.client.get(f"/api/v1/retention/runs/{run_id}/items", headers=o.anna).json()
    assert [(i["decision"], i["decided_by"]) for i in items] == [("A", "anna")]
