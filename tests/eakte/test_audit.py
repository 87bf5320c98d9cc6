"""The audit log: every file change and document read/write leaves a chained event."""

from __future__ import annotations

import contextlib

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from eakte.audit.models import AuditEvent
from eakte.audit.service import GENESIS, event_hash, record, verify_chain
from eakte.db import make_engine, make_session_factory, unit_of_work
from tests import factories
from tests.conftest import Api


def test_document_reads_and_writes_are_audited(api: Api) -> None:
    unit = factories.org_unit(api)
    item = factories.plan_item(api)
    f = factories.file(api, unit, item["code"])
    doc = factories.upload(api, unit.clerk, str(f["id"]), b"inhalt").json()
    api.client.get(f"/api/v1/documents/{doc['id']}", headers=unit.clerk)
    api.client.get(
        f"/api/v1/documents/{doc['id']}/versions/1/content",
        headers={**unit.clerk, "Range": "bytes=0-1"},
    )
    auditor = api.auth(["archivist"], [])
    doc_events = api.client.get(
        "/api/v1/audit", params={"object_id": doc["id"]}, headers=auditor
    ).json()
    actions = [e["action"] for e in doc_events]
    assert actions == [
        "document.created",
        "version.created",
        "document.read",
        "version.content_read",
    ]
    assert doc_events[-1]["details"] == {"version": 1, "range": "0-1"}
    file_events = api.client.get(
        "/api/v1/audit", params={"object_id": f["id"]}, headers=auditor
    ).json()
    assert [e["action"] for e in file_events][:1] == ["file.created"]


def test_refused_access_is_not_recorded_as_a_read(api: Api) -> None:
    a, b = factories.org_unit(api), factories.org_unit(api)
    item = factories.plan_item(api)
    f = factories.file(api, b, item["code"])
    doc = factories.upload(api, b.clerk, str(f["id"]), b"inhalt").json()
    assert api.client.get(f"/api/v1/documents/{doc['id']}", headers=a.clerk).status_code == 404
    events = api.client.get(
        "/api/v1/audit", params={"object_id": doc["id"]}, headers=api.auth(["archivist"], [])
    ).json()
    assert "document.read" not in [e["action"] for e in events]


@pytest.fixture
def audited_session(fresh_database_url: str) -> Session:
    engine = make_engine(fresh_database_url)
    factory = make_session_factory(engine)
    for i in range(5):
        with unit_of_work(factory) as session:
            record(session, "tester", "thing.done", "thing", i, n=i, note="ä")
    return factory()


def test_intact_chain_verifies(audited_session: Session) -> None:
    report = verify_chain(audited_session)
    assert report.ok, report.problems
    assert report.checked == 5


def test_modified_row_is_detected(audited_session: Session) -> None:
    audited_session.execute(
        update(AuditEvent).where(AuditEvent.seq == 3).values(actor="someone else")
    )
    report = verify_chain(audited_session)
    assert not report.ok
    assert any("event 3" in p and "modified" in p for p in report.problems)


def test_deleted_row_is_detected(audited_session: Session) -> None:
    audited_session.execute(delete(AuditEvent).where(AuditEvent.seq == 2))
    report = verify_chain(audited_session)
    assert not report.ok
    assert any("missing" in p for p in report.problems)


def test_deleted_last_row_is_detected(audited_session: Session) -> None:
    audited_session.execute(delete(AuditEvent).where(AuditEvent.seq == 5))
    report = verify_chain(audited_session)
    assert not report.ok
    assert any("head" in p for p in report.problems)


def test_rolled_back_work_leaves_no_audit_event(fresh_database_url: str) -> None:
    factory = make_session_factory(make_engine(fresh_database_url))
    with pytest.raises(RuntimeError), unit_of_work(factory) as session:
        record(session, "tester", "thing.done", "thing", 1)
        raise RuntimeError("boom")
    with unit_of_work(factory) as session:
        assert session.scalars(select(AuditEvent)).all() == []


def _actions(factory: sessionmaker[Session]) -> list[str]:
    with unit_of_work(factory) as session:
        assert verify_chain(session).ok
        return list(session.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)))


def test_a_rolled_back_savepoint_drops_only_its_own_events(fresh_database_url: str) -> None:
    # A lost insert race caught with a savepoint (begin_nested) lets the transaction commit:
    # what it recorded before the savepoint must be chained with it.
    factory = make_session_factory(make_engine(fresh_database_url))
    with unit_of_work(factory) as session:
        record(session, "tester", "file.updated", "file", 1)
        with contextlib.suppress(RuntimeError), session.begin_nested():
            record(session, "tester", "thing.lost_race", "thing", 2)
            raise RuntimeError("another request was first")
        with session.begin_nested():
            record(session, "tester", "thing.done", "thing", 3)
        record(session, "tester", "file.closed", "file", 1)
    assert _actions(factory) == ["file.updated", "thing.done", "file.closed"]


def test_events_of_a_released_savepoint_go_with_an_enclosing_one(fresh_database_url: str) -> None:
    factory = make_session_factory(make_engine(fresh_database_url))
    with unit_of_work(factory) as session:
        record(session, "tester", "file.updated", "file", 1)
        with contextlib.suppress(RuntimeError), session.begin_nested():
            with session.begin_nested():
                record(session, "tester", "thing.tried", "thing", 2)
            raise RuntimeError("the enclosing step failed")
    assert _actions(factory) == ["file.updated"]


def test_a_row_numbered_before_the_chain_is_detected(audited_session: Session) -> None:
    # Numbered 0, the row would be listed by nobody (`after_seq` starts at 0).
    at = audited_session.get_one(AuditEvent, 1).at
    digest = event_hash(0, at, "intruder", "file.read", "file", "x", {}, GENESIS)
    audited_session.add(
        AuditEvent(seq=0, at=at, actor="intruder", action="file.read", object_type="file",
                   object_id="x", details={}, prev_hash=GENESIS, hash=digest)
    )  # fmt: skip
    audited_session.flush()
    report = verify_chain(audited_session)
    assert not report.ok
    assert any("event 0" in p for p in report.problems)
