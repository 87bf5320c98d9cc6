"""Use cases of retention on single files: closing (zdA), reopening, holds, the due list.

Blob locks follow the records core's rule "blob first, then rows" in the protective
direction: retentions and legal holds are set before the rows commit (a failed commit
leaves a blob protected longer, never shorter), and legal holds are lifted only after the
release has committed.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy.orm import Session

from eakte.audit.service import record
from eakte.auth.principal import Permission, Principal
from eakte.db import on_commit, utcnow
from eakte.errors import Conflict, Forbidden, InvalidInput, NotFound
from eakte.files import service as files
from eakte.files.models import File, FileStatus
from eakte.guards import require
from eakte.outgoing import repository as letters
from retention import repository
from retention.models import Hold
from retention.rules import RetentionPolicy, due_date, lock_until
from storage import BlobLocked, BlobNotFound, BlobStore

log = logging.getLogger(__name__)

CLOSED_STATUSES = {FileStatus.CLOSED.value, FileStatus.HELD.value}
FINAL_STATUSES = {FileStatus.DISPOSED.value, FileStatus.TRANSFERRED.value}


@dataclass(frozen=True)
class FileRetention:
    """A file with its due date and number of active holds."""

    file: File
    due_on: date | None
    active_holds: int


def file_due_on(file: File, policy: RetentionPolicy) -> date | None:
    """The file's due date by its plan item's current rule; None while open or permanent."""
    if file.closed_at is None:
        return None
    return due_date(file.closed_at, file.plan_item.retention_years, policy.timezone)


def _lock_date(file: File, policy: RetentionPolicy, now: datetime) -> datetime | None:
    """Until when the file's blobs are locked: the start of its due date, if still ahead."""
    due = file_due_on(file, policy)
    until = lock_until(due) if due is not None else None
    return until if until is not None and until > now else None


def blob_keys(session: Session, file_id: uuid.UUID) -> list[str]:
    """The blob keys of every version of every document of the file."""
    return [v.blob_key for _, v in repository.versions_of_file(session, file_id)]


def _lock_blobs(
    store: BlobStore, keys: Sequence[str], until: datetime, policy: RetentionPolicy
) -> None:
    if not store.supports_object_lock:
        log.warning("the blob store has no Object Lock: %d blobs stay unprotected", len(keys))
        return
    for key in keys:
        try:
            store.set_retention(key, until, policy.mode)
        except BlobLocked as exc:
            # A running retention from an earlier closure is longer or in the other mode:
            # the blob stays protected by it, and S3 allows no shortening anyway.
            log.warning("kept the running retention of %s: %s", key, exc)


def _set_legal_holds(store: BlobStore, keys: Sequence[str], on: bool) -> None:
    if not store.supports_object_lock:
        return
    for key in keys:
        store.set_legal_hold(key, on)


@dataclass
class RestoredProtection:
    """What `protect_restored` did: files protected, and blobs not found to protect."""

    files: int = 0
    #: (file reference, blob key) of each blob the store does not hold.
    missing: list[tuple[str, str]] = field(default_factory=list)


def protect_restored(
    session: Session, store: BlobStore, policy: RetentionPolicy
) -> RestoredProtection:
    """Put Object Lock retentions and legal holds back on the blobs of closed and held files.

    A restore writes blobs afresh, without the locks the originals had; this gives them the
    same protection again. A blob the restore could not bring back (missing or corrupt in
    the backup) is listed, not fatal: the other blobs and files still get their protection,
    and the restore's disposals and audit event, written in the same transaction, are kept.
    """
    now = utcnow()
    result = RestoredProtection()
    lockable = store.supports_object_lock
    if not lockable:
        log.warning("the blob store has no Object Lock: restored blobs stay unprotected")
    for file, held in repository.protected_files(session):
        result.files += 1
        if not lockable:
            continue
        until = _lock_date(file, policy, now)
        for key in blob_keys(session, file.id):
            try:
                if until is not None:
                    _lock_blobs(store, [key], until, policy)
                if held:
                    _set_legal_holds(store, [key], True)
            except BlobNotFound:
                result.missing.append((file.reference, key))
    return result


def extend_item_locks(
    session: Session, store: BlobStore, policy: RetentionPolicy, plan_item_id: uuid.UUID
) -> int:
    """Extend the Object Lock of the closed files under a plan item to their due dates.

    For a plan item whose retention rule changed: files closed under a shorter rule would
    otherwise be deletable at the storage level before the application counts them as due.
    A shorter rule leaves the longer locks as they are (S3 allows no shortening). Returns
    the number of files whose blobs were locked.
    """
    now = utcnow()
    extended = 0
    for file in repository.closed_files_of_item(session, plan_item_id):
        until = _lock_date(file, policy, now)
        if until is not None:
            _lock_blobs(store, blob_keys(session, file.id), until, policy)
            extended += 1
    return extended


def retention_of(
    session: Session, principal: Principal, policy: RetentionPolicy, file_id: uuid.UUID
) -> FileRetention:
    """The retention state of a visible file."""
    file = files.get_file(session, principal, file_id)
    return FileRetention(
        file, file_due_on(file, policy), repository.holds_active_for(session, file.id)
    )


def close_file(
    session: Session,
    store: BlobStore,
    principal: Principal,
    policy: RetentionPolicy,
    file_id: uuid.UUID,
    closed_at: datetime | None = None,
) -> FileRetention:
    """Close an open file (zdA): set closed_at and lock its blobs until the due date."""
    file = files.get_own_file(session, principal, file_id)
    require(principal, Permission.FILE_CLOSE)
    now = utcnow()
    if closed_at is not None:
        # Backdating moves the due date forward: only archivists take over old closures.
        require(principal, Permission.RETENTION_MANAGE)
        if closed_at.tzinfo is None:
            raise InvalidInput("closed_at needs a time zone offset, e.g. 2019-03-05T10:00:00+01:00")
        if closed_at > now:
            raise InvalidInput("closed_at lies in the future")
    repository.lock_file(session, file)
    if file.status != FileStatus.OPEN.value:
        raise Conflict(f"file {file.reference} is {file.status}; only open files can be closed")
    sending = letters.emails_in_flight(session, file.id)
    if sending:
        # The sent message becomes a version of its letter; after closure it would join a
        # closed file without the closure's Object Lock.
        raise Conflict(
            f"file {file.reference} has {sending} e-mail letter(s) still being sent; "
            "close it once they are sent or have failed"
        )
    file.closed_at = closed_at or now
    held = repository.has_active_hold(session, file.id)
    file.status = FileStatus.HELD.value if held else FileStatus.CLOSED.value
    due = file_due_on(file, policy)
    keys = blob_keys(session, file.id)
    until = _lock_date(file, policy, now)
    if until is not None:
        _lock_blobs(store, keys, until, policy)
    if held:
        # Versions added while the file was open and held get their legal hold now.
        _set_legal_holds(store, keys, True)
    session.flush()
    record(
        session,
        principal,
        "file.closed",
        "file",
        file.id,
        reference=file.reference,
        closed_at=file.closed_at.isoformat(),
        due_on=due.isoformat() if due else None,
        retention_mode=policy.mode.value,
        blobs_locked=len(keys) if due is not None else 0,
    )
    return FileRetention(file, due, repository.holds_active_for(session, file.id))


def reopen_file(
    session: Session,
    principal: Principal,
    policy: RetentionPolicy,
    file_id: uuid.UUID,
    reason: str,
) -> FileRetention:
    """Reopen a closed file before it falls due; the blobs keep their retention."""
    file = files.get_own_file(session, principal, file_id)
    require(principal, Permission.FILE_CLOSE)
    repository.lock_file(session, file)
    if file.status not in CLOSED_STATUSES or file.closed_at is None:
        raise Conflict(f"file {file.reference} is {file.status}; only closed files can reopen")
    due = file_due_on(file, policy)
    if due is not None and policy.today() >= due:
        raise Conflict(f"file {file.reference} fell due on {due.isoformat()}; it cannot reopen")
    if repository.file_in_open_item(session, file.id):
        raise Conflict(f"file {file.reference} is part of a disposal run")
    previous = file.closed_at
    file.closed_at = None
    file.status = FileStatus.OPEN.value
    files.touch(file)
    session.flush()
    record(
        session,
        principal,
        "file.reopened",
        "file",
        file.id,
        reference=file.reference,
        reason=reason,
        was_closed_at=previous.isoformat(),
    )
    return FileRetention(file, None, repository.holds_active_for(session, file.id))


def place_hold(
    session: Session,
    store: BlobStore,
    principal: Principal,
    file_id: uuid.UUID,
    reason: str,
    owner: str,
) -> Hold:
    """Place a hold on a file: it is never proposed or destroyed while the hold is active."""
    require(principal, Permission.RETENTION_MANAGE)
    file = files.get_own_file(session, principal, file_id)
    # Locked so a disposal step cannot take the file between our check and our commit.
    repository.lock_file(session, file)
    if file.status in FINAL_STATUSES:
        raise Conflict(f"file {file.reference} is {file.status}; there is nothing left to hold")
    hold = Hold(file_id=file.id, reason=reason, owner=owner, created_by=principal.subject)
    session.add(hold)
    if file.status == FileStatus.CLOSED.value:
        file.status = FileStatus.HELD.value
    _set_legal_holds(store, blob_keys(session, file.id), True)
    session.flush()
    record(
        session,
        principal,
        "hold.placed",
        "file",
        file.id,
        hold_id=str(hold.id),
        reason=reason,
        owner=owner,
    )
    return hold


def get_hold(session: Session, principal: Principal, hold_id: uuid.UUID) -> Hold:
    """A hold on a visible file."""
    require(principal, Permission.RETENTION_MANAGE)
    hold = session.get(Hold, hold_id)
    if hold is None:
        raise NotFound(f"hold {hold_id} does not exist")
    try:
        files.get_file(session, principal, hold.file_id)
    except NotFound:
        raise NotFound(f"hold {hold_id} does not exist") from None
    return hold


def release_hold(
    session: Session,
    store: BlobStore,
    principal: Principal,
    hold_id: uuid.UUID,
    note: str | None,
) -> Hold:
    """Release a hold; the blobs' legal holds go once the file's last hold is released."""
    hold = get_hold(session, principal, hold_id)
    file = files.get_own_file(session, principal, hold.file_id)
    repository.lock_file(session, file)
    if hold.released_at is not None:
        raise Conflict(f"hold {hold_id} was released already")
    hold.released_at = utcnow()
    hold.released_by = principal.subject
    hold.release_note = note
    session.flush()
    last = not repository.has_active_hold(session, file.id)
    if last:
        if file.status == FileStatus.HELD.value:
            file.status = FileStatus.CLOSED.value
        keys = blob_keys(session, file.id)

        def lift() -> None:
            try:
                _set_legal_holds(store, keys, False)
            except Exception:
                # Safe direction: the blobs stay held; disposal lifts a stale hold itself.
                log.exception("could not lift the legal holds of file %s", file.reference)

        on_commit(session, lift)
    session.flush()
    record(
        session,
        principal,
        "hold.released",
        "file",
        file.id,
        hold_id=str(hold.id),
        note=note,
        last_hold=last,
    )
    return hold


def list_holds(session: Session, principal: Principal, file_id: uuid.UUID) -> Sequence[Hold]:
    """The holds of a visible file."""
    require(principal, Permission.RETENTION_MANAGE)
    file = files.get_file(session, principal, file_id)
    return repository.holds_of(session, file.id)


def due_list(
    session: Session,
    principal: Principal,
    policy: RetentionPolicy,
    as_of: date,
    limit: int = 100,
    offset: int = 0,
) -> tuple[int, list[tuple[File, date]]]:
    """Files of the principal's units due on `as_of` (unheld, in no run), with due dates."""
    require(principal, Permission.RETENTION_MANAGE)
    if not principal.units:
        raise Forbidden("you belong to no org unit")
    total, page = repository.due_files(session, principal, as_of, policy.timezone, limit, offset)
    result = []
    for file in page:
        due = file_due_on(file, policy)
        if due is not None:  # always: the query returns closed files with a period only
            result.append((file, due))
    return total, result
