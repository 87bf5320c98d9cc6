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
from sqlalchemy.exc import IntegrityError
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
# Pause before watching a folder again that could not be read or watched.
RETRY_SECONDS = 2.0


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
        """Take every file that has settled; remember the others' sizes for next time.

        Raises OSError when the folder itself cannot be read (a share that went away); a
        single file that vanishes or cannot be taken is logged and left for the next poll.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        now = time.monotonic()
        taken = 0
        present = set()
        for path in self._candidates():
            present.add(path)
            try:
                st = path.stat()
            except FileNotFoundError:
                # Gone since the listing: the other poller of this folder took it, or the
                # scanner replaced it. Nothing to do; a new file is seen at the next poll.
                log.debug("hot folder: %s vanished before it was looked at", path)
                self._seen.pop(path, None)
                continue
            except OSError:
                log.exception("hot folder: cannot read %s; it stays for the next try", path)
                continue
            signature = (st.st_size, st.st_mtime_ns)
            previous = self._seen.get(path)
            if previous is None or previous[:2] != signature:
                self._seen[path] = (*signature, now)
                if self.settle_seconds > 0:
                    continue
            elif now - previous[2] < self.settle_seconds:
                continue
            try:
                if self._take(path, st.st_mtime_ns):
                    taken += 1
            except Exception:
                # Left in place, so it is tried again; never lost.
                log.exception("hot folder: could not take %s; it stays for the next try", path)
            self._seen.pop(path, None)
        for gone in set(self._seen) - present:
            del self._seen[gone]
        return taken

    def _take(self, path: Path, mtime_ns: int) -> bool:
        """Store a settled file as an item and move it away; False if it was in already."""
        source_ref = f"{self.name}:{path.name}:{mtime_ns}"
        try:
            stream = path.open("rb")
        except FileNotFoundError:
            log.debug("hot folder: %s was taken by another poller", path)
            return False
        with stream:
            stored = service.store_original(self.store, stream,
                                            max_size=self.settings.max_upload_bytes)
        try:
            with unit_of_work(self.factory) as session:
                earlier = repository.by_source(session, source_ref, stored.sha256)
                if earlier is None:  # else stored before, and the move was lost in a crash
                    service.record_item(session, HOTFOLDER_PRINCIPAL, stored,
                                        source=ItemSource.HOTFOLDER, original_name=path.name,
                                        source_ref=source_ref)
                item_id = earlier.id if earlier is not None else stored.item_id
        except IntegrityError:
            # Another poller of this folder recorded the same file between our check and our
            # insert (the unique index on source_ref and sha256 refused the second row).
            with unit_of_work(self.factory) as session:
                earlier = repository.by_source(session, source_ref, stored.sha256)
                if earlier is None:
                    raise
                item_id = earlier.id
        new = item_id == stored.item_id
        if not new:
            self.store.delete(stored.key)
        self.processed.mkdir(exist_ok=True)
        try:
            path.rename(self.processed / f"{item_id}-{path.name}")
        except FileNotFoundError:
            log.debug("hot folder: %s was moved by another poller", path)
        if new:
            log.info("hot folder: took %s as item %s", path.name, item_id)
        else:
            log.info("hot folder: %s is item %s already; moved away", path.name, item_id)
        return new

    def run(self, stop: threading.Event) -> None:
        """Wake on file-system events (and every settle period), then poll, until stopped.

        The folder is often a network share. If it goes away, the watch and the polls fail;
        that is logged and both start again after a pause, so the source outlives the outage.
        """
        timeout_ms = int(max(self.settle_seconds, 0.5) * 1000)
        while not stop.is_set():
            try:
                if self._poll_logged():
                    for _ in watchfiles.watch(self.folder, stop_event=stop,
                                              rust_timeout=timeout_ms, yield_on_timeout=True,
                                              recursive=False):
                        if not self._poll_logged():
                            break  # the folder is unreadable: watch it afresh once it is back
            except Exception:
                log.exception("hot folder %s: cannot watch it; trying again in %.0f s",
                              self.folder, RETRY_SECONDS)
            stop.wait(RETRY_SECONDS)

    def _poll_logged(self) -> bool:
        """Poll; a failure is logged instead of raised. False if the poll failed."""
        try:
            self.poll()
        except Exception:
            log.exception("hot folder %s: poll failed; trying again", self.folder)
            return False
        return True
