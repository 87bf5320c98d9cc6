"""The audit log: record events in a unit of work, chain them at commit, verify the chain."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, event, insert, select, update
from sqlalchemy.orm import Session

from eakte.audit.models import AuditEvent, AuditHead
from eakte.auth.principal import Principal
from eakte.db import transaction_list, utcnow

GENESIS = "0" * 64
_PENDING = "audit_pending"


def record(
    session: Session,
    actor: Principal | str,
    action: str,
    object_type: str,
    object_id: object,
    **details: Any,
) -> None:
    """Note an audit event; it is chained and written when the session commits.

    Chaining at commit keeps the lock on the chain head as short as possible and
    means a rolled-back change leaves no audit row claiming it happened.
    """
    record_pending(session, [pending_event(actor, action, object_type, object_id, **details)])


def record_pending(session: Session, events: Sequence[dict[str, Any]]) -> None:
    """Note events made by `pending_event`; like `record`, they are chained at commit."""
    # Kept with the transaction: a rolled-back savepoint takes its events with it.
    transaction_list(session, _PENDING).extend(events)


def pending_event(
    actor: Principal | str, action: str, object_type: str, object_id: object, **details: Any
) -> dict[str, Any]:
    """An audit event not yet chained (see `chain`)."""
    return {
        "actor": actor if isinstance(actor, str) else actor.subject,
        "action": action,
        "object_type": object_type,
        "object_id": str(object_id),
        "details": details,
    }


def event_hash(
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    details: dict[str, Any],
    prev_hash: str,
) -> str:
    """SHA-256 over a canonical JSON of the event and its predecessor's hash."""
    canonical = json.dumps(
        [
            seq,
            at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            actor,
            action,
            object_type,
            object_id,
            details,
            prev_hash,
        ],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


_HEAD = cast(Table, AuditHead.__table__)
_EVENTS = cast(Table, AuditEvent.__table__)
# Built once: a statement object keeps its cache key, so appends skip re-deriving it.
_LOCK_HEAD = select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == 1).with_for_update()
_INSERT_EVENTS = insert(_EVENTS)
_MOVE_HEAD = (
    update(_HEAD)
    .where(_HEAD.c.id == 1)
    .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
)


def _append_pending(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    # Core statements, not ORM objects: appends run at every commit (and the CTI bridge
    # appends a batch per burst of calls), so the chain head stays locked only for one
    # SELECT, one multi-row INSERT and one UPDATE. FOR UPDATE on the single head row
    # serialises appends across processes on PostgreSQL; on SQLite the transaction
    # already holds the write lock.
    connection = session.connection()
    seq, prev = connection.execute(_LOCK_HEAD).one()
    rows = chain(pending, seq, prev)
    connection.execute(_INSERT_EVENTS, rows)
    connection.execute(_MOVE_HEAD, {"new_seq": rows[-1]["seq"], "new_hash": rows[-1]["hash"]})


def chain(pending: Sequence[dict[str, Any]], seq: int, prev: str) -> list[dict[str, Any]]:
    """Rows of `audit_events` for pending events appended after event `seq` (hash `prev`)."""
    rows = []
    for item in pending:
        seq += 1
        at = utcnow()
        # Store details as JSON would return them, so the hash recomputes equal.
        details = json.loads(json.dumps(item["details"], default=str))
        digest = event_hash(
            seq,
            at,
            item["actor"],
            item["action"],
            item["object_type"],
            item["object_id"],
            details,
            prev,
        )
        rows.append(
            {
                "seq": seq,
                "at": at,
                "details": details,
                "prev_hash": prev,
                "hash": digest,
                **{k: item[k] for k in ("actor", "action", "object_type", "object_id")},
            }
        )
        prev = digest
    return rows


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    # SQLAlchemy also fires this when a savepoint is released. Appending then would lock the
    # chain head for the rest of the transaction and put the rows inside any savepoint still
    # open around it, so a later rollback of that one would take them away; only the real
    # commit appends.
    if not session.in_nested_transaction():
        _append_pending(session)


@dataclass
class ChainReport:
    """The result of verifying the audit chain."""

    checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True if no problem was found."""
        return not self.problems


def _events(session: Session, after: int | None, batch: int = 5000) -> Iterator[AuditEvent]:
    """Events in chain order after `after`; with None, every row, whatever its number."""
    last = after
    while True:
        stmt = select(AuditEvent).order_by(AuditEvent.seq).limit(batch)
        if last is not None:
            stmt = stmt.where(AuditEvent.seq > last)
        rows = session.scalars(stmt).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq
        session.expunge_all()


def list_events(
    session: Session,
    *,
    object_id: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    after_seq: int = 0,
    limit: int = 100,
) -> Sequence[AuditEvent]:
    """Audit events in chain order, filtered."""
    stmt = select(AuditEvent).where(AuditEvent.seq > after_seq)
    if object_id is not None:
        stmt = stmt.where(AuditEvent.object_id == object_id)
    if actor is not None:
        stmt = stmt.where(AuditEvent.actor == actor)
    if action is not None:
        stmt = stmt.where(AuditEvent.action == action)
    return session.scalars(stmt.order_by(AuditEvent.seq).limit(limit)).all()


def verify_chain(session: Session) -> ChainReport:
    """Recompute every hash; report modified, inserted, deleted or truncated rows."""
    report = ChainReport()
    expected_prev, expected_seq = GENESIS, 1

    def check(ev: AuditEvent) -> None:
        nonlocal expected_prev, expected_seq
        report.checked += 1
        if ev.seq < 1:
            # The chain starts at 1 and readers page from there: such a row would be seen by
            # nobody, so it can only have been put there by hand.
            report.problems.append(f"event {ev.seq}: outside the chain (inserted row)")
            return
        if ev.seq != expected_seq:
            report.problems.append(
                f"events {expected_seq}..{ev.seq - 1} are missing (deleted rows)"
            )
        if ev.prev_hash != expected_prev:
            report.problems.append(f"event {ev.seq}: link to its predecessor is broken")
        digest = event_hash(
            ev.seq,
            ev.at,
            ev.actor,
            ev.action,
            ev.object_type,
            ev.object_id,
            ev.details,
            ev.prev_hash,
        )
        if digest != ev.hash:
            report.problems.append(f"event {ev.seq}: content was modified (hash mismatch)")
        expected_prev, expected_seq = ev.hash, ev.seq + 1

    for ev in _events(session, None):
        check(ev)
    # The head is read after the events: read before them, it would lag behind events that
    # writers append meanwhile on a live database (PostgreSQL reads committed rows statement
    # by statement). A head ahead of the events read names events appended since the last
    # batch, committed with it: read those, until the head names no event beyond them.
    while True:
        head = session.execute(
            select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1)
        ).one_or_none()
        if head is None or head.seq < expected_seq:
            break
        checked = report.checked
        for ev in _events(session, expected_seq - 1):
            check(ev)
        if report.checked == checked:
            break
    if head is None:
        report.problems.append("the audit chain head row is missing")
    elif head.seq != expected_seq - 1 or head.hash != expected_prev:
        report.problems.append(
            f"the chain ends at event {expected_seq - 1} but the head names event {head.seq}:"
            " events at the end were deleted or the head was altered"
        )
    return report
