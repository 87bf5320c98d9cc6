"""Sources: a scanner's hot folder and the bulk import of a backlog."""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import make_url, select, text

from eakte.db import make_engine, make_session_factory, unit_of_work
from eakte.migrate import upgrade
from inbox import service
from inbox.models import InboundItem, ItemSource
from inbox.sources import HOTFOLDER_PRINCIPAL, HotFolder
from storage import FilesystemStore
from tests.conftest import make_settings
from tests.inbox.conftest import Office, letter_scan, wait_for_lock_wait
from tests.support.server import eakte


def _hot_folder(office: Office, folder: Path, settle: float) -> HotFolder:
    return HotFolder(folder, make_session_factory(office.api.engine), office.api.store,
                     office.api.settings, settle_seconds=settle)


def _items_named(office: Office, name: str) -> list[dict[str, object]]:
    items = office.api.client.get("/api/v1/inbox", params={"limit": 500},
                                  headers=office.mailroom).json()
    return [i for i in items if i["original_name"] == name]


def test_a_file_still_being_written_is_not_taken(office: Office, tmp_path: Path) -> None:
    folder = tmp_path / "scanner"
    folder.mkdir()
    source = letter_scan(tmp_path, office.file["reference"]).read_bytes()
    name = f"scan-{time.monotonic_ns()}.png"
    target = folder / name
    hot = _hot_folder(office, folder, settle=0.3)

    with target.open("wb") as out:
        out.write(source[: len(source) // 2])
        out.flush()
        assert hot.poll() == 0
        time.sleep(0.4)
        out.write(source[len(source) // 2 :])
        out.flush()
        assert hot.poll() == 0  # it grew since the last look
    assert hot.poll() == 0  # unchanged, but not yet for the settle time
    time.sleep(0.4)
    assert hot.poll() == 1

    assert not target.exists()
    moved = list((folder / "processed").glob(f"*-{name}"))
    assert len(moved) == 1 and moved[0].read_bytes() == source
    (item,) = _items_named(office, name)
    assert item["original_sha256"] == hashlib.sha256(source).hexdigest()
    assert item["source"] == "hotfolder"


def test_the_watching_source_takes_dropped_files(office: Office, tmp_path: Path) -> None:
    folder = tmp_path / "scanner"
    hot = _hot_folder(office, folder, settle=0.2)
    stop = threading.Event()
    thread = threading.Thread(target=hot.run, args=(stop,))
    thread.start()
    try:
        time.sleep(0.3)
        name = f"drop-{time.monotonic_ns()}.png"
        letter_scan(tmp_path, None, name="x.png").rename(folder / name)
        deadline = time.monotonic() + 15
        while not _items_named(office, name):
            assert time.monotonic() < deadline, "the hot folder did not take the file"
            time.sleep(0.1)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()


def test_import_of_a_backlog_skips_what_is_already_in(tmp_path: Path) -> None:
    backlog = tmp_path / "backlog"
    (backlog / "2019").mkdir(parents=True)
    letter_scan(backlog / "2019", None, name="a.png")
    letter_scan(backlog, "32.10-2019/0001", name="b.png")
    eakte(tmp_path, "db", "upgrade")

    first = eakte(tmp_path, "import", str(backlog))
    assert "2 imported, 0 already in the inbox, 0 failed" in first.stdout
    second = eakte(tmp_path, "import", str(backlog))
    assert "0 imported, 2 already in the inbox, 0 failed" in second.stdout

    missing = eakte(tmp_path, "import", str(tmp_path / "nowhere"), check=False)
    assert missing.returncode == 2
    assert "no such file or folder" in missing.stderr

    processed = eakte(tmp_path, "worker", "--until-idle")
    assert "2 items processed" in processed.stdout


def test_two_pollers_of_one_folder_record_a_file_once(pg_url: str, tmp_path: Path) -> None:
    # `eakte serve` and `eakte worker` both watch the hot folder. Here the other one has
    # stored the file and inserted its item, and commits only while this poll is inserting.
    engine = make_engine(pg_url)
    factory = make_session_factory(engine)
    store = FilesystemStore(tmp_path / "blobs")
    folder = tmp_path / "scanner"
    folder.mkdir()
    name = f"scan-{uuid.uuid4().hex}.pdf"
    path = folder / name
    path.write_bytes(b"%PDF-1.4 " + uuid.uuid4().bytes)
    source_ref = f"hotfolder:{name}:{path.stat().st_mtime_ns}"
    try:
        other = factory()
        with path.open("rb") as stream:
            stored = service.store_original(store, stream, max_size=1024)
        service.record_item(other, HOTFOLDER_PRINCIPAL, stored, source=ItemSource.HOTFOLDER,
                            original_name=name, source_ref=source_ref)
        hot = HotFolder(folder, factory, store, make_settings(pg_url), settle_seconds=0)
        outcome: dict[str, object] = {}

        def poll() -> None:
            try:
                outcome["taken"] = hot.poll()
            except Exception as exc:
                outcome["error"] = exc

        thread = threading.Thread(target=poll)
        thread.start()
        wait_for_lock_wait(engine, thread)
        other.commit()
        other.close()
        thread.join(timeout=30)

        assert outcome == {"taken": 0}
        with unit_of_work(factory) as session:
            items = session.scalars(select(InboundItem.id).where(
                InboundItem.source_ref == source_ref)).all()
        assert items == [stored.item_id]
        assert not path.exists()
        assert [p.name for p in hot.processed.iterdir()] == [f"{stored.item_id}-{name}"]
    finally:
        engine.dispose()



class _RemovedAfterListing(HotFolder):
    """A hot folder whose first listed file is deleted right after the listing.

    That is what another poller (or a scanner replacing a file) does between our listing
    and our look at the file; here the timing is forced, the deletion is real.
    """

    def _candidates(self) -> list[Path]:
        listed = super()._candidates()
        if listed:
            listed[0].unlink()
        return listed


def test_a_file_removed_after_the_listing_is_skipped(office: Office, tmp_path: Path) -> None:
    folder = tmp_path / "scanner"
    folder.mkdir()
    (folder / "a-weg.png").write_bytes(b"gone before it is looked at")
    name = f"b-{time.monotonic_ns()}.png"
    letter_scan(tmp_path, None, name="x.png").rename(folder / name)
    hot = _RemovedAfterListing(folder, make_session_factory(office.api.engine),
                               office.api.store, office.api.settings, settle_seconds=0)
    assert hot.poll() == 1
    assert len(_items_named(office, name)) == 1
    assert _items_named(office, "a-weg.png") == []


def test_the_watching_source_outlives_its_folder_going_away(
    office: Office, tmp_path: Path
) -> None:
    folder = tmp_path / "scanner"
    hot = _hot_folder(office, folder, settle=0.2)
    stop = threading.Event()
    thread = threading.Thread(target=hot.run, args=(stop,))
    thread.start()
    try:
        time.sleep(0.3)
        # The share goes away, and in its place is something that is no folder.
        shutil.rmtree(folder)
        folder.write_bytes(b"")
        time.sleep(1.0)
        assert thread.is_alive(), "the hot folder thread ended when its folder went away"
        folder.unlink()
        folder.mkdir()
        name = f"back-{time.monotonic_ns()}.png"
        letter_scan(tmp_path, None, name="x.png").rename(folder / name)
        deadline = time.monotonic() + 20
        while not _items_named(office, name):
            assert thread.is_alive(), "the hot folder thread ended"
            assert time.monotonic() < deadline, "the file was not taken after the outage"
            time.sleep(0.1)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_the_upgrade_keeps_items_a_race_recorded_twice(
    request: pytest.FixtureRequest, dialect: str, tmp_path: Path
) -> None:
    # Items two pollers made of one file before the unique index existed: the upgrade must
    # keep every row (some may be filed) and still build the index.
    with _database_at(request, dialect, tmp_path, "0008_cti_clearance") as url:
        engine = make_engine(url)
        try:
            twins = [_item("hotfolder:scan.pdf:1", "a" * 64, second) for second in (1, 2, 2)]
            other = _item("hotfolder:scan.pdf:1", "b" * 64, 3)
            with unit_of_work(make_session_factory(engine)) as session:
                session.add_all([*twins, other])
            upgrade(url)
            with unit_of_work(make_session_factory(engine)) as session:
                refs = {i.id: i.source_ref for i in session.scalars(select(InboundItem))}
        finally:
            engine.dispose()
    first = min(twins, key=lambda i: (i.received_at, i.id))
    assert refs[first.id] == refs[other.id] == "hotfolder:scan.pdf:1"
    for twin in twins:
        if twin is not first:
            # Each names itself; SQLite spells a UUID without hyphens.
            ref = refs[twin.id] or ""
            assert ref.startswith("hotfolder:scan.pdf:1 (duplicate "), ref
            assert ref.replace("-", "").endswith(f"{twin.id.hex})"), ref


def _item(source_ref: str, sha256: str, second: int) -> InboundItem:
    return InboundItem(id=uuid.uuid4(), source="hotfolder", source_ref=source_ref,
                       received_at=datetime(2026, 11, 2, 9, 0, second, tzinfo=UTC),
                       received_by="hotfolder", original_key=f"inbox/{uuid.uuid4()}/original",
                       original_sha256=sha256, original_size=1, state="received")


@contextlib.contextmanager
def _database_at(
    request: pytest.FixtureRequest, dialect: str, tmp_path: Path, revision: str
) -> Iterator[str]:
    """An empty database migrated up to `revision` only, dropped afterwards."""
    if dialect == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
        upgrade(url, revision)
        yield url
        return
    server = str(request.getfixturevalue("pg_server"))
    name = f"eakte_test_{uuid.uuid4().hex[:12]}"
    admin = make_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(server).set(database=name).render_as_string(hide_password=False)
        upgrade(url, revision)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
