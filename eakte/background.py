"""Background work of a process: the inbound pipeline and periodic tasks (letters,
fixity, expired idempotency keys).

`eakte serve` runs this in-process for the embedded default; larger installations run it in
`eakte worker` processes (any number, on any machine, against one database and store).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from eakte.settings import Settings
from inbox import runner as inbox_runner
from storage import BlobStore, StorageError

log = logging.getLogger(__name__)

OUTGOING_INTERVAL_SECONDS = 30.0
IDEMPOTENCY_PURGE_SECONDS = 3600.0


def _every(interval: float, name: str, task: Callable[[], object],
           stop: threading.Event) -> threading.Thread:
    def loop() -> None:
        while not stop.wait(interval):
            try:
                task()
            except (SQLAlchemyError, StorageError, OSError):
                # The task's own state is durable; the next round picks up where this failed.
                log.warning("periodic task %s failed; retrying in %.0f s", name, interval,
                            exc_info=True)

    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()
    return thread


def start(
    factory: sessionmaker[Session], store: BlobStore, settings: Settings, stop: threading.Event,
    workers: int | None = None,
) -> list[threading.Thread]:
    """Start the pipeline workers, the sources and the periodic tasks; they end with `stop`."""
    from eakte.db import unit_of_work
    from eakte.idempotency.service import purge_expired
    from eakte.outgoing.delivery import deliver_pending
    from retention.fixity import run_fixity

    def purge_idempotency_keys() -> None:
        with unit_of_work(factory) as session:
            purge_expired(session, timedelta(seconds=settings.idempotency_ttl_seconds))

    threads = inbox_runner.start(factory, store, settings, stop, workers)
    threads.append(_every(OUTGOING_INTERVAL_SECONDS, "outgoing-delivery",
                          lambda: deliver_pending(factory, store, settings), stop))
    # Re-reads every blob: a weekly task by default (EAKTE_FIXITY_INTERVAL_SECONDS).
    threads.append(_every(settings.fixity_interval_seconds, "fixity",
                          lambda: run_fixity(factory, store, "fixity-worker"), stop))
    threads.append(_every(IDEMPOTENCY_PURGE_SECONDS, "idempotency-purge",
                          purge_idempotency_keys, stop))
    return threads
