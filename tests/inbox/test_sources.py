"""Sources: a scanner's hot folder and the bulk import of a backlog."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

from eakte.db import make_session_factory
from inbox.sources import HotFolder
from tests.inbox.conftest import Office, letter_scan
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
