"""The pop-up auditor: no pop-up without its audit event, and bursts keep the chain whole."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import text

from eakte.audit.service import verify_chain
from eakte.db import make_engine, make_session_factory, unit_of_work
from storage import BlobStore
from tests.cti_bridge.conftest import CtiApp, _cti_app


@pytest.fixture
def own_cti(fresh_database_url: str, fs_store: BlobStore, tmp_path: Path) -> Iterator[CtiApp]:
    """A bridge on a database of the test's own (the test breaks its audit chain head)."""
    engine = make_engine(fresh_database_url)
    try:
        yield from _cti_app(fresh_database_url, engine, fs_store, tmp_path)
    finally:
        engine.dispose()


def _chain_ok(cti: CtiApp) -> int:
    with unit_of_work(make_session_factory(cti.engine)) as session:
        report = verify_chain(session)
    assert report.ok, report.problems
    return report.checked


def test_no_pop_up_is_shown_when_its_audit_event_cannot_be_written(own_cti: CtiApp) -> None:
    call = own_cti.call_data()
    agent = own_cti.agent(own_cti.enroll(call.clerk_sub, [call.unit.code]), call.extension)
    with own_cti.engine.begin() as conn:  # the chain head vanishes: nothing can be appended
        head = conn.execute(text("SELECT seq, hash FROM audit_head")).one()
        conn.execute(text("DELETE FROM audit_head"))
    r = own_cti.webhook(
        {"event": "ringing", "call_id": "c-lost", "from": call.e164, "to": call.extension}
    )
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "audit" in r.json()["detail"]
    assert agent.receive(1.0) is None

    with own_cti.engine.begin() as conn:
        conn.execute(
            text("INSERT INTO audit_head (id, seq, hash) VALUES (1, :seq, :hash)"),
            {"seq": head.seq, "hash": head.hash},
        )
    r = own_cti.webhook(
        {"event": "ringing", "call_id": "c-back", "from": call.e164, "to": call.extension}
    )
    assert r.status_code == 202, r.text
    event = agent.receive(5.0)
    assert event is not None and event["call_id"] == "c-back"
    _chain_ok(own_cti)


def test_a_burst_of_calls_is_audited_once_each_in_one_unbroken_chain(own_cti: CtiApp) -> None:
    call = own_cti.call_data()
    agent = own_cti.agent(own_cti.enroll(call.clerk_sub, [call.unit.code]), call.extension)
    before = _chain_ok(own_cti)

    def ring(i: int) -> int:
        body = {"event": "ringing", "call_id": f"b-{i}", "from": call.e164, "to": call.extension}
        return int(own_cti.webhook(body).status_code)

    with ThreadPoolExecutor(16) as pool:
        assert set(pool.map(ring, range(120))) == {202}
    received = set()
    while (event := agent.receive(2.0)) is not None:
        received.add(event["call_id"])
    assert received == {f"b-{i}" for i in range(120)}
    assert _chain_ok(own_cti) == before + 120
    with own_cti.engine.connect() as conn:
        popped = conn.execute(
            text("SELECT count(*) FROM audit_events WHERE action = 'cti.call_popped'")
        ).scalar_one()
    assert popped == 120
