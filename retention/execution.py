"""Executing a disposal run: one transaction per file and step, resumable after a crash.

Per file: (1) a transaction marks it disposed (V) or transferred (A), or skips it;
(2) its blobs are deleted, outside any transaction (deleting a missing blob is a no-op);
(3) a transaction writes the disposal record and marks the item done. A crash after (1)
resumes at (2); after (2) it deletes nothing more and writes the record; the record is
written once, in the same transaction that marks the item done. Content of transferred
files is deleted only after the archive's receipt (`receive`).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from eakte.audit.models import AuditEvent
from eakte.auth.principal import Principal
from eakte.db import SessionFactory, unit_of_work
from eakte.errors import Conflict
from retention import disposal
from retention.disposal import RunView
from retention.models import ItemState
from retention.rules import RetentionPolicy
from storage import BlobLocked, BlobStore

log = logging.getLogger(__name__)

#: Ids per IN list (SQLite and PostgreSQL both limit the parameters of one statement).
_IN_CHUNK = 500

#: Called after each file with (files done so far, files in all, the file's state).
Progress = Callable[[int, int, str], None]


def execute_run(
    factory: SessionFactory,
    store: BlobStore,
    principal: Principal,
    policy: RetentionPolicy,
    run_id: uuid.UUID,
    progress: Progress | None = None,
) -> RunView:
    """Execute (or resume) an approved run; returns the run with its item counts."""
    with unit_of_work(factory) as session:
        file_ids = disposal.start_execution(session, principal, policy, run_id)
    _process(factory, store, principal, policy, run_id, file_ids, progress)
    with unit_of_work(factory) as session:
        return disposal.finish_run_if_complete(session, principal, run_id)


def receive(
    factory: SessionFactory,
    store: BlobStore,
    principal: Principal,
    policy: RetentionPolicy,
    run_id: uuid.UUID,
    archive_reference: str,
    file_ids: Sequence[uuid.UUID] | None = None,
    progress: Progress | None = None,
) -> RunView:
    """Record the archive's receipt, then delete the content of the received files."""
    with unit_of_work(factory) as session:
        received = disposal.receive(session, principal, run_id, archive_reference, file_ids)
        # Rolls the receipt back: content is deleted only once it has left in a package.
        _require_exported(session, run_id, received)
    _process(factory, store, principal, policy, run_id, received, progress)
    with unit_of_work(factory) as session:
        return disposal.finish_run_if_complete(session, principal, run_id)


def _require_exported(session: Session, run_id: uuid.UUID, file_ids: Sequence[uuid.UUID]) -> None:
    """Refuse a receipt for files no handover package has held: the archive cannot have them.

    A file becomes `transferred` when the run is executed, not when a package is built; a
    resumed execution may add files after the package was downloaded.
    """
    wanted = [str(f) for f in file_ids]
    exported: set[str] = set()
    for start in range(0, len(wanted), _IN_CHUNK):
        exported.update(
            session.scalars(
                select(AuditEvent.object_id).where(
                    AuditEvent.action == "file.handover_exported",
                    AuditEvent.object_type == "file",
                    AuditEvent.object_id.in_(wanted[start : start + _IN_CHUNK]),
                )
            )
        )
    missing = [f for f in wanted if f not in exported]
    if missing:
        raise Conflict(
            f"{len(missing)} files of disposal run {run_id} were in no handover package yet "
            f"(e.g. {missing[0]}); download the package, hand it to the archive, then record "
            "the receipt"
        )


def _process(
    factory: SessionFactory,
    store: BlobStore,
    principal: Principal,
    policy: RetentionPolicy,
    run_id: uuid.UUID,
    file_ids: Sequence[uuid.UUID],
    progress: Progress | None,
) -> None:
    for n, file_id in enumerate(file_ids, start=1):
        state = _process_file(factory, store, principal, policy, run_id, file_id)
        if progress is not None:
            progress(n, len(file_ids), state)


def _process_file(
    factory: SessionFactory,
    store: BlobStore,
    principal: Principal,
    policy: RetentionPolicy,
    run_id: uuid.UUID,
    file_id: uuid.UUID,
) -> str:
    with unit_of_work(factory) as session:
        state, keys = disposal.begin_item(session, principal, policy, run_id, file_id)
    if state not in (ItemState.DESTROYING, ItemState.RECEIVED):
        return state.value
    try:
        for key in keys:
            _delete(store, key)
    except BlobLocked as exc:
        # A retention that outlasts the due date (the plan's period was shortened after
        # closure): the file stays in this state and the next execution retries it.
        log.warning("file %s: content kept for now: %s", file_id, exc)
        with unit_of_work(factory) as session:
            disposal.note_item_problem(session, principal, run_id, file_id, str(exc))
        return state.value
    with unit_of_work(factory) as session:
        disposal.finish_item(session, principal, policy, run_id, file_id)
    return ItemState.DONE.value


def _delete(store: BlobStore, key: str) -> None:
    try:
        store.delete(key)
    except BlobLocked as exc:
        if not exc.legal_hold:
            raise
        # The database has no active hold (checked when the item was taken), so this legal
        # hold outlived a release whose lifting failed: lift it now.
        log.warning("lifting the stale legal hold of %s before deleting it", key)
        store.set_legal_hold(key, False)
        store.delete(key)
