"""A pipeline worker SIGKILLed at every step boundary: each item ends in exactly one state.

The worker is a real `eakte worker` process. The test hook EAKTE_TEST_PAUSE_AFTER_STEP makes it
hold an item (lease kept) once the item reaches the named state, so the kill lands exactly
there; a second worker takes the item over when the lease has run out. Killing inside a step
(OCR running) is covered by tests/inbox/test_durability.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from eakte.audit.models import AuditEvent
from eakte.db import make_engine, make_session_factory, unit_of_work
from eakte.documents.models import Document
from inbox.models import InboundItem
from storage import FilesystemStore
from tests import factories
from tests.conftest import Api, api_for
from tests.inbox import corpus
from tests.inbox.conftest import numeric_plan_code
from tests.support.server import clean_env

LEASE_SECONDS = "2"

pytestmark = pytest.mark.faults


@pytest.fixture
def shared(pg_url: str, tmp_path: Path) -> Iterator[tuple[Api, str]]:
    """The app on PostgreSQL with a filesystem store that worker processes open too."""
    engine = make_engine(pg_url)
    try:
        for api in api_for(pg_url, engine, FilesystemStore(tmp_path / "blobs")):
            yield api, f"file://{tmp_path / 'blobs'}"
    finally:
        engine.dispose()


def _worker(pg_url: str, storage_url: str, log: Path, **extra: str) -> subprocess.Popen[bytes]:
    env = clean_env(EAKTE_DATABASE_URL=pg_url, EAKTE_STORAGE_URL=storage_url,
                    EAKTE_INBOX_LEASE_SECONDS=LEASE_SECONDS, EAKTE_LOG_LEVEL="INFO", **extra)
    return subprocess.Popen([sys.executable, "-m", "eakte", "worker"], env=env,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def _item(pg_url: str, item_id: str) -> InboundItem:
    engine = make_engine(pg_url)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            return session.get_one(InboundItem, uuid.UUID(item_id))
    finally:
        engine.dispose()


@pytest.mark.slow
@pytest.mark.parametrize("state", ["received", "typed", "ocred", "classified"])
def test_worker_killed_after_each_step_leaves_one_terminal_state(
    shared: tuple[Api, str], pg_url: str, tmp_path: Path, state: str
) -> None:
    api, storage_url = shared
    unit = factories.org_unit(api)
    file = factories.file(api, unit, factories.plan_item(api, code=numeric_plan_code())["code"])
    mailroom = api.auth(["mailroom"], [unit.code])
    marker = uuid.uuid4().hex
    raw = corpus.simple(f"Unterlagen zu {file['reference']}", f"Anbei {marker}.\n",
                        attachments=[("notiz.txt", "text/plain", b"Bitte pruefen.")])
    r = api.client.post("/api/v1/inbox", files={"file": ("m.eml", raw)}, headers=mailroom)
    assert r.status_code == 202, r.text
    item_id = r.json()["id"]
    log = tmp_path / "workers.log"

    first = _worker(pg_url, storage_url, log, EAKTE_TEST_PAUSE_AFTER_STEP=state)
    try:
        deadline = time.monotonic() + 60
        while True:  # the worker holds the item at the boundary
            row = _item(pg_url, item_id)
            if row.state == state and row.lease_owner is not None:
                break
            assert row.state not in ("filed", "triage", "quarantined"), row.state
            assert first.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        time.sleep(0.3)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
    killed = _item(pg_url, item_id)
    assert killed.state == state and killed.lease_owner is not None

    second = _worker(pg_url, storage_url, log)
    try:
        deadline = time.monotonic() + 90
        while (row := _item(pg_url, item_id)).state not in ("filed", "triage", "quarantined"):
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            assert second.poll() is None, log.read_text()[-3000:]
            time.sleep(0.2)
        time.sleep(0.5)  # a late second filing would show up now
    finally:
        second.terminate()
        second.wait(timeout=30)

    final = _item(pg_url, item_id)
    assert final.state == "filed", (final.state, final.last_error, final.quarantine_reason)
    assert final.lease_owner is None
    engine = make_engine(pg_url)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            docs = session.scalars(
                select(Document).where(Document.file_id == uuid.UUID(file["id"]))
            ).all()
            # The body, the attachment and the original mail: each exactly once.
            assert len(docs) == 3, [d.title for d in docs]
            filed = session.scalar(select(func.count()).select_from(AuditEvent).where(
                AuditEvent.object_id == item_id, AuditEvent.action == "inbox.filed"))
            assert filed == 1
    finally:
        engine.dispose()
    # The mail's body arrived intact, once.
    bodies = [
        api.client.get(f"/api/v1/documents/{d['id']}/versions/1/content", headers=unit.clerk)
        for d in api.client.get(f"/api/v1/files/{file['id']}/documents",
                                headers=unit.clerk).json()
    ]
    assert sum(marker.encode() in b.content for b in bodies) == 2  # the body and the original
