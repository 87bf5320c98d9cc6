"""Where post comes from: each source is a small plugin that turns its input into items.

A source stores an item's bytes and row through the same service calls as the API, and only
then lets go of its input (moves the scanner's file away, flags the mail), so a crash in
between at worst delivers the same input again, which the source recognises.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import watchfiles
from sqlalchemy.orm import Session

from eakte.auth.principal import Principal, Role
from eakte.db import unit_of_work
from eakte.settings import Settings
from inbox import repository, service
from inbox.models import ItemSource
from storage import BlobStore

log = logging.getLogger(__name__)

HOTFOLDER_PRINCIPAL = Principal(subject="hotfolder", roles=frozenset({Role.MAILROOM}),
                                kind="system")
IGNORED_SUFFIXES = (".part", ".tmp", ".crdownload", "~")


class Source(Protocol):
    """An inbound source: `poll` takes in what is ready; `run` keeps doing so until stopped."""

    name: str

    def poll(self) -> int:
        """Take in everything that is ready now; returns the number of new items."""
        ...

    def run(self, stop: threading.Event) -> None:
        """Poll until `stop` is set."""
        ...


@dataclass
class HotFolder:
    """A folder scanners drop files into.

    A file is taken once its size and modification time have not changed for
    `settle_seconds` (so a file still being written is left alone), stored as an item, and
    only then moved to `processed/`. Files that cannot be stored stay where they are.
    """

    folder: Path
    factory: Callable[[], Session]
    store: BlobStore
    settings: Settings
    settle_seconds: float = 2.0
    name: str = "hotfolder"
    _seen: dict[Path, tuple[int, int, float]] = field(default_factory=dict)

    @property
    def processed(self) -> Path:
        """Where taken files are moved."""
        return self.folder / "processed"

    def _candidates(self) -> list[Path]:
        return sorted(
            p for p in self.folder.iterdir()
            if p.is_file() and not p.name.startswith(".")
            and not p.name.endswith(IGNORED_SUFFIXES)
        )

    def poll(self) -> int:
        """Take every file that has settled; remember the others' sizes for next time."""
        self.folder.mkdir(parents=True, exist_ok=True)
        now = time.monotonic()
        taken = 0
        present = set()
        for path in self._candidates():
            present.add(path)
            st = path.stat()
            signature = (st.st_size, st.st_mtime_ns)
            previous = self._seen.get(path)
            if previous is None or previous[:2] != signature:
                self._seen[path] = (*signature, now)
                if self.settle_seconds > 0:
                    continue
            elif now - previous[2] < self.settle_seconds:
                continue
            try:
                self._take(path)
                taken += 1
            except Exception:
                # Left in place, so it is tried again; never lost.
                log.exception("hot folder: could not take %s; it stays for the next try", path)
            self._seen.pop(path, None)
        for gone in set(self._seen) - present:
            del self._seen[gone]
        return taken

    def _take(self, path: Path) -> None:
        source_ref = f"{self.name}:{path.name}:{path.stat().st_mtime_ns}"
        with path.open("rb") as stream:
            stored = service.store_original(self.store, stream,
                                            max_size=self.settings.max_upload_bytes)
        with unit_of_work(self.factory) as session:
            if repository.by_source(session, source_ref, stored.sha256) is not None:
                duplicate = True  # stored before, the move was lost in a crash
            else:
                duplicate = False
                service.record_item(session, HOTFOLDER_PRINCIPAL, stored,
                                    source=ItemSource.HOTFOLDER, original_name=path.name,
                                    source_ref=source_ref)
        if duplicate:
            self.store.delete(stored.key)
        self.processed.mkdir(exist_ok=True)
        path.rename(self.processed / f"{stored.item_id}-{path.name}")
        log.info("hot folder: took %s as item %s", path.name, stored.item_id)

    def run(self, stop: threading.Event) -> None:
        """Wake on file-system events (and every settle period), then poll."""
        self.folder.mkdir(parents=True, exist_ok=True)
        timeout_ms = int(max(self.settle_seconds, 0.5) * 1000)
        self.poll()
        for _ in watchfiles.watch(self.folder, stop_event=stop, rust_timeout=timeout_ms,
                                  yield_on_timeout=True, recursive=False):
            self.poll()
