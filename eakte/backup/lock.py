"""One backup at a time per target: a lock object with an owner and an expiry, kept fresh.

A backup removes what an interrupted run left behind (its dump, its staged uploads). A second
run at the same time would take the first one's dump for such a leftover and delete it, and
the first would then write a manifest that names a dump which is gone. So a run holds a lock
object in the target while it works, and a second run is refused while it is held.

Object stores have no "create unless it exists", so a run writes a lock object of its own
(`locks/<run>-<random>.json`) and then lists `locks/`: it goes on only if no other live lock
is there. Two runs that start at the same moment both see each other and both back off, which
is safe; one of them simply has to be started again.

A lock is live until its expiry, which its run pushes forward every REFRESH_SECONDS while it
works. A run killed with SIGKILL leaves its lock behind: on the same host, a lock whose
process is gone is taken over at once (so a rerun after a crash need not wait); a lock of
another host is taken over once it has expired (TTL after its last renewal).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType

from eakte.db import utcnow
from eakte.errors import Conflict
from storage import BlobNotFound, BlobStore

log = logging.getLogger(__name__)

PREFIX = "locks/"
FORMAT = "eakte-backup-lock/1"
#: How long a lock stays live after its last renewal: long enough to ride out a few failed
#: renewals (a short outage of the target) and some clock skew between hosts.
TTL = timedelta(minutes=10)
REFRESH_SECONDS = 60.0


@dataclass(frozen=True)
class Holder:
    """What a lock object says about the run that holds it."""

    key: str
    host: str
    pid: int
    run: str
    acquired_at: datetime
    expires_at: datetime

    def describe(self) -> str:
        """A line naming the run, for the message that refuses a second one."""
        return (
            f"backup {self.run} (host {self.host}, pid {self.pid}, started "
            f"{self.acquired_at.isoformat(timespec='seconds')}; its lock expires "
            f"{self.expires_at.isoformat(timespec='seconds')} unless renewed)"
        )


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists, owned by someone else (EPERM)
    return True


def is_live(holder: Holder, now: datetime) -> bool:
    """True while the lock holds: unexpired, and (on this host) its process still runs.

    The process check assumes one host name means one process namespace; two containers
    sharing a host name and a target would need the expiry to tell a dead run apart.
    """
    if holder.expires_at <= now:
        return False
    return holder.host != socket.gethostname() or _process_exists(holder.pid)


def read_holder(target: BlobStore, key: str, last_modified: datetime) -> Holder | None:
    """The holder a lock object names; None if it is gone.

    An unreadable lock object counts as a lock that expires TTL after it was written: a
    damaged object must neither block backups for good nor be ignored while fresh.
    """
    try:
        with target.open(key) as reader:
            raw = b"".join(reader)
    except BlobNotFound:
        return None
    try:
        data = json.loads(raw)
        return Holder(
            key,
            str(data["host"]),
            int(data["pid"]),
            str(data["run"]),
            datetime.fromisoformat(data["acquired_at"]),
            datetime.fromisoformat(data["expires_at"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("backup lock %s is unreadable (%s)", key, exc)
        return Holder(key, "?", 0, "?", last_modified, last_modified + TTL)


class TargetLock:
    """The lock of one backup run on its target (a context manager)."""

    def __init__(
        self,
        target: BlobStore,
        run: str,
        *,
        ttl: timedelta = TTL,
        refresh_seconds: float = REFRESH_SECONDS,
    ) -> None:
        self.target = target
        self.run = run
        self.key = f"{PREFIX}{run}-{uuid.uuid4().hex}.json"
        self.ttl = ttl
        self.refresh_seconds = refresh_seconds
        self.acquired_at = utcnow()
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self._lost = False

    def _write(self) -> None:
        body = {
            "format": FORMAT,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "run": self.run,
            "acquired_at": self.acquired_at.isoformat(),
            "expires_at": (utcnow() + self.ttl).isoformat(),
        }
        data = json.dumps(body, indent=1).encode()
        self.target.put(self.key, io.BytesIO(data), content_type="application/json")

    def acquire(self) -> None:
        """Take the lock, or raise Conflict naming the run that holds it."""
        self._write()
        now = utcnow()
        live: list[Holder] = []
        for stat in self.target.list(PREFIX):
            if stat.key == self.key:
                continue
            holder = read_holder(self.target, stat.key, stat.last_modified)
            if holder is None:
                continue
            if is_live(holder, now):
                live.append(holder)
            else:
                log.info("taking over the stale backup lock %s", stat.key)
                with contextlib.suppress(BlobNotFound):
                    self.target.delete(stat.key)
        if live:
            self.target.delete(self.key)
            raise Conflict(
                "another backup is running on this target: "
                + "; ".join(h.describe() for h in live)
                + ". Run one backup at a time per target."
            )
        self._heartbeat = threading.Thread(
            target=self._renew, name=f"backup-lock-{self.run}", daemon=True
        )
        self._heartbeat.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.refresh_seconds):
            try:
                if not self.target.exists(self.key):
                    # Taken over as stale (we were silent past the expiry): never recreate
                    # it, since another run may be working now; `check` reports the loss.
                    self._lost = True
                    return
                self._write()
            except Exception:
                log.exception("could not renew the backup lock %s; retrying", self.key)

    def check(self) -> None:
        """Raise Conflict unless the lock is still ours (call before writing the manifest)."""
        if self._lost or not self.target.exists(self.key):
            raise Conflict(
                f"backup {self.run} lost its lock on the target (it could not renew it in "
                "time and another run took over); run the backup again"
            )

    def release(self) -> None:
        """Stop renewing and remove the lock object."""
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join()
        try:
            self.target.delete(self.key)
        except Exception:
            # Do not hide the run's own outcome (or error) behind this one: the lock expires.
            log.exception("could not remove the backup lock %s; it expires by itself", self.key)

    def __enter__(self) -> TargetLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
