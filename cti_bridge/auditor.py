"""Group commit of pop-up audit events: one chain append for all calls ringing at once.

Every pop-up that names a contact is audited before it is published. Appending to the
audit chain locks its single head row until the commit; with one transaction per call,
calls queued behind that lock (and, in Python, behind each other for the interpreter
lock while holding it). The auditor collects the audit events of the calls that arrive
while the previous batch commits and appends them in one transaction: one lock, one
commit, and the pop-ups of the batch are published right after that commit. On
PostgreSQL a batch is one autocommit statement (`eakte.audit.postgres`): one round trip.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from psycopg import OperationalError
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from cti_bridge import service
from eakte.audit.postgres import PostgresAppender
from eakte.audit.service import record_pending
from eakte.db import make_engine, on_commit, unit_of_work

log = logging.getLogger(__name__)

MAX_BATCH = 500


@dataclass
class _Item:
    audit: service.PopAudit
    publish: Callable[[], None]
    done: Future[None]


class PopAuditor:
    """A thread appending pop-up audit events in batches, then publishing their pop-ups."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory
        self._appender: PostgresAppender | None = None
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the writer thread (on PostgreSQL with a connection of its own)."""
        engine: Engine = self.session_factory.kw["bind"]
        if engine.dialect.name == "postgresql":
            # Not waiting for the WAL flush keeps each batch short; the price: a crash of
            # the database server may lose the pop-up audit events of the last fraction
            # of a second (whole statements: the head and its events are lost or kept
            # together, so the chain never breaks or forks). Their pop-ups may have been
            # shown; the calls remain in the PBX's records. The setting applies to this
            # connection only, which writes nothing but these events. No ping per batch
            # (a round trip): a dropped connection fails one attempt, which is retried.
            own = make_engine(
                engine.url.render_as_string(hide_password=False),
                pool_size=1,
                max_overflow=0,
                pool_pre_ping=False,
                isolation_level="AUTOCOMMIT",
                connect_args={"options": "-c synchronous_commit=off"},
            )
            self._appender = PostgresAppender(own)
        self._queue = queue.SimpleQueue()
        self._thread = threading.Thread(
            target=self._run, args=(self._queue,), name="cti-pop-audit", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Write what is queued, then stop the thread."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout=30)
        if self._appender is not None:
            self._appender.engine.dispose()
            self._appender = None

    def submit(self, audit: service.PopAudit, publish: Callable[[], None]) -> Future[None]:
        """Queue an audit event; `publish` runs once it has committed, then the future is done."""
        done: Future[None] = Future()
        if self._thread is None:
            done.set_exception(RuntimeError("the pop-up auditor is not running"))
            return done
        self._queue.put(_Item(audit, publish, done))
        return done

    def _run(self, inbox: queue.SimpleQueue[_Item | None]) -> None:
        stopping = False
        while not stopping:
            first = inbox.get()
            if first is None:
                return
            batch = [first]
            # Take whatever arrived meanwhile; never wait for more, so a lone call is
            # not delayed and a burst costs one commit.
            while len(batch) < MAX_BATCH:
                try:
                    item = inbox.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            self._write(batch)

    def _write(self, batch: list[_Item]) -> None:
        try:
            try:
                self._append(batch)
            except (DBAPIError, OperationalError) as exc:
                if isinstance(exc, DBAPIError) and not exc.connection_invalidated:
                    raise
                self._append(batch)  # the server dropped the connection; a fresh one
        except Exception as exc:
            log.exception("pop-up audit events of %d calls were not written", len(batch))
            for item in batch:
                item.done.set_exception(exc)
            return
        for item in batch:
            item.done.set_result(None)

    def _append(self, batch: list[_Item]) -> None:
        """Append the batch's events; each pop-up is published once they have committed."""
        events = [event for item in batch for event in service.pop_events(item.audit)]
        if self._appender is not None:
            self._appender.append(events)
            for item in batch:
                item.publish()
            return
        with unit_of_work(self.session_factory) as session:
            record_pending(session, events)
            for item in batch:
                on_commit(session, item.publish)
