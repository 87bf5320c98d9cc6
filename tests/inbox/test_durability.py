"""The pipeline survives a killed worker and unreachable storage; nothing is filed twice."""

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
from eakte.documents.models import Document, DocumentVersion
from inbox.models import InboundItem
from inbox.pipeline import Worker
from storage import FilesystemStore, S3Store
from tests import factories
from tests.conftest import api_for
from tests.inbox.conftest import Office, letter_scan, numeric_plan_code
from tests.support.db import fresh_pg_database
from tests.support.server import clean_env


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _state(engine_url: str, item_id: str) -> InboundItem:
    engine = make_engine(engine_url)
    try:
        with unit_of_work(make_session_factory(engine)) as session:
            return session.get_one(InboundItem, uuid.UUID(item_id))
    finally:
        engine.dispose()


@pytest.fixture
def pg_office(pg_server: str, tmp_path: Path) -> Iterator[tuple[Office, str, str]]:
    """An office on a PostgreSQL database of its own, with a filesystem store that worker
    processes can open too; yields the office, the storage URL and the database URL."""
    store_dir = tmp_path / "blobs"
    with fresh_pg_database(pg_server) as url:
        engine = make_engine(url)
        for api in api_for(url, engine, FilesystemStore(store_dir)):
            unit = factories.org_unit(api)
            plan = factories.plan_item(api, code=numeric_plan_code())
            file = factories.file(api, unit, plan["code"])
            office = Office(api, unit, api.auth(["mailroom"], [unit.code]), file)
            yield office, f"file://{store_dir}", url
        engine.dispose()


def _worker_process(pg_url: str, storage_url: str, log: Path,
                    **settings: str) -> subprocess.Popen[bytes]:
    env = clean_env(EAKTE_DATABASE_URL=pg_url, EAKTE_STORAGE_URL=storage_url,
                    EAKTE_INBOX_LEASE_SECONDS="3", EAKTE_LOG_LEVEL="INFO", **settings)
    return subprocess.Popen([sys.executable, "-m", "eakte", "worker"], env=env,
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)


@pytest.mark.slow
def test_worker_killed_during_ocr_leaves_the_item_to_be_filed_once(
    pg_office: tuple[Office, str, str], tmp_path: Path
) -> None:
    office, storage_url, pg_url = pg_office
    item = office.submit(letter_scan(tmp_path, office.file["reference"]))
    log = tmp_path / "workers.log"

    first = _worker_process(pg_url, storage_url, log)
    deadline = time.monotonic() + 60
    while True:  # wait until OCR runs: the item is typed and leased, an OCR child exists
        row = _state(pg_url, item["id"])
        if row.state == "typed" and row.lease_owner and len(_descendants(first.pid)) >= 1:
            break
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    time.sleep(0.5)
    victims = [first.pid, *_descendants(first.pid)]
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    first.wait()
    killed = _state(pg_url, item["id"])
    assert killed.state == "typed" and killed.lease_owner is not None

    second = _worker_process(pg_url, storage_url, log)
    try:
        deadline = time.monotonic() + 120
        while _state(pg_url, item["id"]).state != "filed":
            assert time.monotonic() < deadline, log.read_text()
            assert second.poll() is None, log.read_text()
            time.sleep(0.2)
    finally:
        second.terminate()
        second.wait(timeout=30)

    engine = make_engine(pg_url)
    with unit_of_work(make_session_factory(engine)) as session:
        file_id = uuid.UUID(office.file["id"])
        docs = session.scalars(select(Document).where(Document.file_id == file_id)).all()
        assert len(docs) == 1
        versions = session.scalar(select(func.count()).select_from(DocumentVersion)
                                  .where(DocumentVersion.document_id == docs[0].id))
        assert versions == 1
        filed_events = session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.object_id == item["id"], AuditEvent.action == "inbox.filed"))
        assert filed_events == 1
    engine.dispose()


def test_unreachable_storage_is_retried_with_backoff_then_completes(
    office: Office, tmp_path: Path
) -> None:
    item = office.submit(letter_scan(tmp_path, office.file["reference"]))
    settings = office.api.settings.model_copy(update={"inbox_retry_base_seconds": 1.0})
    # A real S3 client against a port where nothing listens: the network error a down
    # storage server gives.
    unreachable = S3Store("127.0.0.1:9", "x", "y", "nothing", connect_timeout=0.5, retries=0)
    factory = make_session_factory(office.api.engine)
    assert Worker(factory, unreachable, settings).run_once()

    shown = office.item(item["id"])
    assert shown["state"] == "received"
    assert shown["attempts"] == 1
    assert "StorageUnavailable" in shown["last_error"]
    # Not due yet: a worker with working storage leaves it alone until the backoff passes.
    good = Worker(factory, office.api.store, settings)
    while good.run_once():
        assert office.item(item["id"])["state"] == "received"
    time.sleep(1.1)
    good.run_until_idle()
    assert office.item(item["id"])["state"] == "filed"


def test_too_many_transient_failures_end_in_quarantine(office: Office, tmp_path: Path) -> None:
    item = office.submit(letter_scan(tmp_path, None))
    settings = office.api.settings.model_copy(
        update={"inbox_retry_base_seconds": 0.01, "inbox_max_attempts": 2})
    unreachable = S3Store("127.0.0.1:9", "x", "y", "nothing", connect_timeout=0.5, retries=0)
    worker = Worker(make_session_factory(office.api.engine), unreachable, settings)
    for _ in range(2):
        time.sleep(0.05)
        worker.run_until_idle()
    shown = office.item(item["id"])
    assert shown["state"] == "quarantined"
    assert "gave up after 2 attempts" in shown["quarantine_reason"]




@pytest.mark.slow
def test_an_item_that_kills_its_worker_every_time_ends_quarantined(
    pg_office: tuple[Office, str, str], tmp_path: Path
) -> None:
    office, storage_url, pg_url = pg_office
    item = office.submit(letter_scan(tmp_path, office.file["reference"]))
    log = tmp_path / "workers.log"
    owners: list[str] = []
    for attempt in (1, 2):
        # Each worker takes the item, and is killed while it works on it (as the OOM killer
        # would kill a worker that a document blows up).
        worker = _worker_process(pg_url, storage_url, log, EAKTE_INBOX_MAX_ATTEMPTS="2",
                                 EAKTE_TEST_PAUSE_AFTER_STEP="received")
        try:
            deadline = time.monotonic() + 60
            while True:
                row = _state(pg_url, item["id"])
                if row.lease_owner and row.lease_owner not in owners:
                    break
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        finally:
            worker.kill()
            worker.wait()
        owners.append(row.lease_owner)
        assert row.attempts == attempt

    time.sleep(3.5)  # the last lease (3 s) runs out
    settings = office.api.settings.model_copy(update={"inbox_max_attempts": 2})
    Worker(make_session_factory(office.api.engine), office.api.store, settings).run_until_idle()
    shown = office.item(item["id"])
    assert shown["state"] == "quarantined", shown
    reason = shown["quarantine_reason"]
    assert "gave up after 2 attempts" in reason
    assert owners[-1] in reason and "killed" in reason, reason
