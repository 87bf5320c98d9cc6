"""Use cases of disposal runs: propose, decide, approve, and the single steps of execution.

Each step works on one file in the caller's transaction and only flushes; the executor
(retention/execution.py) runs every step in a transaction of its own, so a crash between
steps leaves each file in a well-defined state from which the next run resumes.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from eakte.audit.service import record
from eakte.auth.principal import Permission, Principal
from eakte.db import utcnow
from eakte.errors import Conflict, Forbidden, InvalidInput, NotFound
from eakte.files.models import File, FileStatus
from eakte.guards import require
from retention import repository
from retention.models import (
    DisposalAction,
    DisposalItem,
    DisposalRecord,
    DisposalRun,
    ItemState,
    RunStatus,
)
from retention.rules import RetentionPolicy
from retention.service import file_due_on


@dataclass
class RunView:
    """A run with the number of its items per state."""

    run: DisposalRun
    items: dict[str, int] = field(default_factory=dict)
    undecided: int = 0


def view(session: Session, run: DisposalRun) -> RunView:
    """The run with its item counts."""
    return RunView(
        run, repository.item_counts(session, run.id), repository.undecided_count(session, run.id)
    )


def propose_run(
    session: Session, principal: Principal, policy: RetentionPolicy, as_of: date | None
) -> RunView:
    """Propose a run of every file of the principal's units due on `as_of` (set-based)."""
    require(principal, Permission.RETENTION_MANAGE)
    if not principal.units:
        raise Forbidden("you belong to no org unit")
    as_of = as_of or policy.today()
    now = utcnow()
    run = DisposalRun(
        as_of=as_of,
        org_units=sorted(principal.units),
        proposed_by=principal.subject,
        proposed_at=now,
    )
    session.add(run)
    session.flush()
    count = repository.propose_items(session, principal, run.id, as_of, policy.timezone, now)
    if count == 0:
        raise Conflict(f"no file of your org units is due on {as_of.isoformat()}")
    record(
        session,
        principal,
        "disposal_run.proposed",
        "disposal_run",
        run.id,
        as_of=as_of.isoformat(),
        files=count,
        org_units=run.org_units,
    )
    return view(session, run)


def get_run(session: Session, principal: Principal, run_id: uuid.UUID) -> DisposalRun:
    """A run of org units the principal works in (all of them); NotFound otherwise."""
    require(principal, Permission.RETENTION_MANAGE)
    run = session.get(DisposalRun, run_id)
    if run is None or not set(run.org_units) <= principal.units:
        raise NotFound(f"disposal run {run_id} does not exist")
    return run


def list_runs(session: Session, principal: Principal, limit: int, offset: int) -> list[RunView]:
    """Runs the principal may see, newest first."""
    require(principal, Permission.RETENTION_MANAGE)
    return [
        view(session, run)
        for run in repository.runs(session, limit, offset)
        if set(run.org_units) <= principal.units
    ]


def run_items(
    session: Session, principal: Principal, run_id: uuid.UUID, limit: int, offset: int
) -> Sequence[tuple[DisposalItem, File]]:
    """A page of the run's files."""
    run = get_run(session, principal, run_id)
    return repository.items_with_files(session, run.id, limit, offset)


def decide(
    session: Session,
    principal: Principal,
    run_id: uuid.UUID,
    decisions: Sequence[tuple[uuid.UUID, str]],
) -> RunView:
    """Record A or V for files of archive value B; only before approval."""
    run = get_run(session, principal, run_id)
    # Locked as `approve_run` locks it: a decision either comes before the approval, and the
    # approver sees it, or finds the run approved.
    session.refresh(run, with_for_update=True)
    if run.status != RunStatus.PROPOSED.value:
        raise Conflict(f"disposal run {run.id} is {run.status}; decisions come before approval")
    for file_id, decision in decisions:
        item = repository.item_for_update(session, run.id, file_id)
        if item is None:
            raise InvalidInput(f"file {file_id} is not part of disposal run {run.id}")
        if item.archive_value != "B":
            raise InvalidInput(
                f"file {file_id} has archive value {item.archive_value}; "
                "only files of value B are appraised"
            )
        item.decision = decision
        item.decided_by = principal.subject
        item.updated_at = utcnow()
        record(
            session,
            principal,
            "disposal_item.decided",
            "file",
            file_id,
            run_id=str(run.id),
            decision=decision,
        )
    session.flush()
    return view(session, run)


def approve_run(
    session: Session, principal: Principal, policy: RetentionPolicy, run_id: uuid.UUID
) -> RunView:
    """Approve a proposed run; with four eyes, not by its proposer."""
    run = get_run(session, principal, run_id)
    session.refresh(run, with_for_update=True)
    if run.status != RunStatus.PROPOSED.value:
        raise Conflict(f"disposal run {run.id} is {run.status}; only proposed runs are approved")
    if policy.four_eyes and principal.subject == run.proposed_by:
        raise Forbidden("four-eyes rule: a different archivist than the proposer must approve")
    undecided = repository.undecided_count(session, run.id)
    if undecided:
        raise Conflict(f"{undecided} files of archive value B still need a decision (A or V)")
    run.status = RunStatus.APPROVED.value
    run.approved_by = principal.subject
    run.approved_at = utcnow()
    session.flush()
    record(
        session,
        principal,
        "disposal_run.approved",
        "disposal_run",
        run.id,
        proposed_by=run.proposed_by,
        four_eyes=policy.four_eyes,
    )
    return view(session, run)


def cancel_run(session: Session, principal: Principal, run_id: uuid.UUID) -> RunView:
    """Cancel a run nothing has been done for yet; its files can be proposed again."""
    run = get_run(session, principal, run_id)
    session.refresh(run, with_for_update=True)
    if run.status not in (RunStatus.PROPOSED.value, RunStatus.APPROVED.value):
        raise Conflict(f"disposal run {run.id} is {run.status}; it can no longer be cancelled")
    run.status = RunStatus.CANCELLED.value
    run.completed_at = utcnow()
    repository.cancel_items(session, run.id, f"run cancelled by {principal.subject}", utcnow())
    session.flush()
    record(session, principal, "disposal_run.cancelled", "disposal_run", run.id)
    return view(session, run)


def start_execution(
    session: Session, principal: Principal, policy: RetentionPolicy, run_id: uuid.UUID
) -> list[uuid.UUID]:
    """Mark an approved run executing; returns the files left to work on."""
    run = get_run(session, principal, run_id)
    session.refresh(run, with_for_update=True)
    if run.status not in (RunStatus.APPROVED.value, RunStatus.EXECUTING.value):
        raise Conflict(f"disposal run {run.id} is {run.status}; only approved runs execute")
    if run.as_of > policy.today():
        raise Conflict(f"disposal run {run.id} is for {run.as_of.isoformat()}; not before then")
    if run.status == RunStatus.APPROVED.value:
        run.status = RunStatus.EXECUTING.value
        run.executed_by = principal.subject
        record(session, principal, "disposal_run.started", "disposal_run", run.id)
    session.flush()
    return repository.item_file_ids(
        session,
        run.id,
        [ItemState.PENDING.value, ItemState.DESTROYING.value, ItemState.RECEIVED.value],
    )


def begin_item(
    session: Session,
    principal: Principal,
    policy: RetentionPolicy,
    run_id: uuid.UUID,
    file_id: uuid.UUID,
) -> tuple[ItemState, list[str]]:
    """First step for a pending file: skip it, or mark it disposed or transferred.

    Returns the item's state and, where content is to be deleted now, the blob keys.
    """
    run = get_run(session, principal, run_id)
    item = repository.item_for_update(session, run.id, file_id)
    if item is None:
        raise NotFound(f"file {file_id} is not part of disposal run {run_id}")
    file = session.get_one(File, file_id)
    if item.state == ItemState.PENDING.value:
        repository.lock_file(session, file)
        reason = _skip_reason(session, policy, run, file)
        now = utcnow()
        item.updated_at = now
        if reason is not None:
            item.state = ItemState.SKIPPED.value
            item.note = reason
            record(session, principal, "disposal_item.skipped", "file", file.id, reason=reason)
        elif (item.decision or item.archive_value) == "A":
            item.state = ItemState.TRANSFERRED.value
            file.status = FileStatus.TRANSFERRED.value
            record(
                session,
                principal,
                "file.transferred",
                "file",
                file.id,
                run_id=str(run.id),
                reference=file.reference,
            )
        else:
            item.state = ItemState.DESTROYING.value
            # From here on the file is gone for its users, before its first blob goes.
            file.status = FileStatus.DISPOSED.value
            record(
                session,
                principal,
                "file.disposal_started",
                "file",
                file.id,
                run_id=str(run.id),
                reference=file.reference,
            )
        session.flush()
    state = ItemState(item.state)
    if state in (ItemState.DESTROYING, ItemState.RECEIVED):
        return state, [v.blob_key for _, v in repository.versions_of_file(session, file.id)]
    return state, []


def _skip_reason(
    session: Session, policy: RetentionPolicy, run: DisposalRun, file: File
) -> str | None:
    if repository.has_active_hold(session, file.id):
        return "the file is held"
    if file.status != FileStatus.CLOSED.value:
        return f"the file is {file.status}"
    due = file_due_on(file, policy)
    if due is None or due > run.as_of or due > policy.today():
        return "the file is not due (its plan item's rule changed)"
    return None


def finish_item(
    session: Session,
    principal: Principal,
    policy: RetentionPolicy,
    run_id: uuid.UUID,
    file_id: uuid.UUID,
) -> DisposalRecord | None:
    """Last step once the blobs are deleted: write the record, drop the text, mark done."""
    run = get_run(session, principal, run_id)
    item = repository.item_for_update(session, run.id, file_id)
    if item is None or item.state not in (ItemState.DESTROYING.value, ItemState.RECEIVED.value):
        return None  # another executor finished it
    file = session.get_one(File, file_id)
    if file.closed_at is None:  # cannot happen: only closed files are proposed
        raise Conflict(f"file {file.reference} has no closing date")
    versions = repository.versions_of_file(session, file.id)
    action = (
        DisposalAction.DESTROYED
        if item.state == ItemState.DESTROYING.value
        else DisposalAction.TRANSFERRED
    )
    rec = DisposalRecord(
        id=uuid.uuid4(),
        run_id=run.id,
        file_id=file.id,
        action=action.value,
        reference=file.reference,
        title=file.title,
        plan_code=file.plan_item.code,
        plan_title=file.plan_item.title,
        org_unit=file.unit_code,
        opened_at=file.opened_at,
        closed_at=file.closed_at,
        due_on=file_due_on(file, policy) or run.as_of,
        disposed_at=utcnow(),
        proposed_by=run.proposed_by,
        approved_by=run.approved_by or "",
        executed_by=principal.subject,
        archive_reference=item.archive_reference,
        versions=[
            {
                "document_id": str(d.id),
                "version": v.number,
                "sha256": v.sha256,
                "size": v.size,
            }
            for d, v in versions
        ],
        record_hash="",
    )
    rec.record_hash = record_hash(rec)
    session.add(rec)
    repository.clear_extracted_text(session, file.id)
    item.state = ItemState.DONE.value
    item.updated_at = utcnow()
    session.flush()
    for document_id in sorted({str(d.id) for d, _ in versions}):
        record(
            session,
            principal,
            "document.content_deleted",
            "document",
            document_id,
            run_id=str(run.id),
            disposal=action.value,
        )
    record(
        session,
        principal,
        "file.destroyed" if action is DisposalAction.DESTROYED else "file.content_deleted",
        "file",
        file.id,
        run_id=str(run.id),
        reference=file.reference,
        versions=len(versions),
        record_id=str(rec.id),
    )
    return rec


def note_item_problem(
    session: Session, principal: Principal, run_id: uuid.UUID, file_id: uuid.UUID, note: str
) -> None:
    """Remember why a file's content could not be deleted yet (it is retried next time)."""
    run = get_run(session, principal, run_id)
    item = repository.item_for_update(session, run.id, file_id)
    if item is not None:
        item.note = note
        item.updated_at = utcnow()
        session.flush()


def finish_run_if_complete(session: Session, principal: Principal, run_id: uuid.UUID) -> RunView:
    """Mark the run completed once no file is left to work on or awaiting a receipt."""
    run = get_run(session, principal, run_id)
    counts = repository.item_counts(session, run.id)
    open_states = {s.value for s in ItemState} - {ItemState.DONE.value, ItemState.SKIPPED.value}
    if run.status == RunStatus.EXECUTING.value and not any(counts.get(s) for s in open_states):
        run.status = RunStatus.COMPLETED.value
        run.completed_at = utcnow()
        session.flush()
        record(session, principal, "disposal_run.completed", "disposal_run", run.id, items=counts)
    return view(session, run)


def receive(
    session: Session,
    principal: Principal,
    run_id: uuid.UUID,
    archive_reference: str,
    file_ids: Sequence[uuid.UUID] | None,
) -> list[uuid.UUID]:
    """Record the archive's receipt for transferred files; returns the files received."""
    run = get_run(session, principal, run_id)
    transferred = repository.item_file_ids(session, run.id, [ItemState.TRANSFERRED.value])
    wanted = list(file_ids) if file_ids is not None else transferred
    unknown = [f for f in wanted if f not in set(transferred)]
    if unknown:
        raise InvalidInput(
            f"{len(unknown)} files are not awaiting a receipt in run {run.id}: "
            + ", ".join(str(f) for f in unknown[:5])
        )
    if not wanted:
        raise Conflict(f"no file of disposal run {run.id} awaits a receipt")
    for file_id in wanted:
        item = repository.item_for_update(session, run.id, file_id)
        if item is None:  # listed above in the same transaction
            continue
        item.state = ItemState.RECEIVED.value
        item.archive_reference = archive_reference
        item.updated_at = utcnow()
        record(
            session,
            principal,
            "file.receipt_recorded",
            "file",
            file_id,
            run_id=str(run.id),
            archive_reference=archive_reference,
        )
    session.flush()
    return wanted


def record_hash(rec: DisposalRecord) -> str:
    """SHA-256 over the canonical JSON of a record's certificate fields."""
    return hashlib.sha256(_canonical(record_fields(rec)).encode()).hexdigest()


def record_fields(rec: DisposalRecord) -> dict[str, Any]:
    """The fields of a record as they appear on the certificate."""
    return {
        "record_id": str(rec.id),
        "run_id": str(rec.run_id),
        "file_id": str(rec.file_id),
        "action": rec.action,
        "reference": rec.reference,
        "title": rec.title,
        "plan_code": rec.plan_code,
        "plan_title": rec.plan_title,
        "org_unit": rec.org_unit,
        "opened_at": rec.opened_at.isoformat(),
        "closed_at": rec.closed_at.isoformat(),
        "due_on": rec.due_on.isoformat(),
        "disposed_at": rec.disposed_at.isoformat(),
        "proposed_by": rec.proposed_by,
        "approved_by": rec.approved_by,
        "executed_by": rec.executed_by,
        "archive_reference": rec.archive_reference,
        "versions": rec.versions,
    }


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def certificate(session: Session, principal: Principal, run_id: uuid.UUID) -> dict[str, Any]:
    """The destruction and transfer certificate of a run (JSON), with a digest over its body."""
    run = get_run(session, principal, run_id)
    records = repository.records_of_run(session, run.id)
    body: dict[str, Any] = {
        "certificate": "Vernichtungs- und Abgabenachweis",
        "run_id": str(run.id),
        "as_of": run.as_of.isoformat(),
        "status": run.status,
        "org_units": run.org_units,
        "proposed_by": run.proposed_by,
        "proposed_at": run.proposed_at.isoformat(),
        "approved_by": run.approved_by,
        "approved_at": run.approved_at.isoformat() if run.approved_at else None,
        "executed_by": run.executed_by,
        "completed_at": run.completed_at.isoformat() if run.completed_at else None,
        "records": [{**record_fields(r), "record_hash": r.record_hash} for r in records],
    }
    record(session, principal, "disposal_run.certificate_read", "disposal_run", run.id)
    return {**body, "sha256": hashlib.sha256(_canonical(body).encode()).hexdigest()}
