"""Use cases of forwarding (Weiterleitung), work lists (Postkorb) and access grants.

A forwarding to another org unit, or to a colleague outside the file's unit, opens
an AccessGrant: read access to exactly that file, ended when the item is done or,
at the latest, after `forward_grant_max_days`, so it never outlives its purpose.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from eakte.audit.service import record
from eakte.auth.principal import Permission, Principal, Role
from eakte.db import utcnow
from eakte.documents.models import Document
from eakte.errors import Forbidden, InvalidInput, NotFound
from eakte.files import service as files
from eakte.files.models import File
from eakte.guards import require
from eakte.orgunits import service as orgunits
from eakte.orgunits.models import OrgUnit
from eakte.worklist import repository
from eakte.worklist.models import AccessGrant, KnownPrincipal, Purpose, WorkItem
from eakte.worklist.schemas import Forwarding, PrincipalIn

# Refreshing last_seen_at on every call would turn each read into a write.
_SEEN_RESOLUTION = timedelta(hours=1)


def remember(session: Session, principal: Principal) -> None:
    """Enter or refresh the calling principal in the directory (cheap: writes only on change)."""
    if principal.kind == "system":
        return
    now = utcnow()
    units = sorted(principal.units)
    row = session.get(KnownPrincipal, principal.subject)
    if row is None:
        try:
            with session.begin_nested():  # a savepoint: losing the race keeps the transaction
                session.add(
                    KnownPrincipal(
                        subject=principal.subject, units=units, first_seen_at=now, last_seen_at=now
                    )
                )
        except IntegrityError:
            pass  # another request of the same principal entered it a moment before
    elif sorted(row.units) != units or now - row.last_seen_at > _SEEN_RESOLUTION:
        row.units = units
        row.last_seen_at = now


def known_principal(session: Session, subject: str) -> KnownPrincipal:
    """A principal of the directory; InvalidInput names an unknown one."""
    row = session.get(KnownPrincipal, subject)
    if row is None:
        raise InvalidInput(
            f"unknown principal {subject!r}: nobody of that name has used eakte or been "
            "entered by an administrator"
        )
    return row


def put_principal(
    session: Session, principal: Principal, subject: str, data: PrincipalIn
) -> KnownPrincipal:
    """Create or change a directory entry (admin)."""
    if Role.ADMIN not in principal.roles:
        raise Forbidden("only administrators manage the principal directory")
    for code in data.units:
        orgunits.get_by_code(session, code)
    row = session.get(KnownPrincipal, subject)
    if row is None:
        row = KnownPrincipal(subject=subject, units=[])
        session.add(row)
    row.display_name = data.display_name
    row.email = str(data.email) if data.email else None
    row.units = sorted(set(data.units))
    session.flush()
    record(session, principal, "principal.updated", "principal", subject, units=row.units)
    return row


def list_principals(session: Session, principal: Principal) -> Sequence[KnownPrincipal]:
    """The directory, for choosing whom to forward to."""
    require(principal, Permission.FILE_READ)
    return repository.all_principals(session)


@dataclass(frozen=True)
class Forwarded:
    """The work item a forwarding created, and the grant if it opened one."""

    item: WorkItem
    grant: AccessGrant | None


def _target_unit(session: Session, code: str) -> OrgUnit:
    unit = orgunits.by_code(session, code)
    if unit is None:
        raise InvalidInput(f"unknown org unit {code!r}")
    return unit


def forward(
    session: Session, principal: Principal, data: Forwarding, max_grant_days: int
) -> Forwarded:
    """Forward a file or a document to a colleague or an org unit, with note, purpose, due date."""
    require(principal, Permission.FILE_READ)
    document: Document | None = None
    if data.document_id is not None:
        document = session.get(Document, data.document_id)
        if document is None:
            raise NotFound(f"document {data.document_id} does not exist")
        file_id = document.file_id
    else:
        assert data.file_id is not None  # noqa: S101 - the schema requires one of the two
        file_id = data.file_id
    try:
        file = files.get_file(session, principal, file_id)
    except NotFound:
        what = f"document {data.document_id}" if document else f"file {file_id}"
        raise NotFound(f"{what} does not exist") from None
    if not principal.in_unit(file.unit_code):
        # A grantee reads; it does not pass the file on to further units.
        raise Forbidden(f"only org unit {file.unit_code} can forward file {file.reference}")
    now = utcnow()
    unit: OrgUnit | None = None
    needs_grant: bool
    if data.to_unit is not None:
        unit = _target_unit(session, data.to_unit)
        needs_grant = unit.code != file.unit_code
    else:
        assert data.to_subject is not None  # noqa: S101 - the schema requires one of the two
        target = known_principal(session, data.to_subject)
        needs_grant = file.unit_code not in target.units
    item = WorkItem(
        purpose=data.purpose,
        object_type="document" if document else "file",
        object_id=str(document.id if document else file.id),
        file_id=file.id,
        document_id=document.id if document else None,
        assignee_subject=data.to_subject,
        assignee_unit_id=unit.id if unit else None,
        note=data.note,
        due_at=data.due_at,
        created_by=principal.subject,
        created_at=now,
    )
    session.add(item)
    session.flush()
    target_name = data.to_subject or data.to_unit
    record(
        session,
        principal,
        "work_item.forwarded",
        "file",
        file.id,
        work_item_id=str(item.id),
        document_id=str(document.id) if document else None,
        to=target_name,
        purpose=data.purpose,
        due_at=data.due_at.isoformat() if data.due_at else None,
    )
    grant = None
    if needs_grant:
        grant = AccessGrant(
            file_id=file.id,
            unit_code=unit.code if unit else None,
            subject=None if unit else data.to_subject,
            work_item_id=item.id,
            granted_by=principal.subject,
            granted_at=now,
            expires_at=now + timedelta(days=max_grant_days),
        )
        session.add(grant)
        session.flush()
        record(
            session,
            principal,
            "access_grant.created",
            "file",
            file.id,
            grant_id=str(grant.id),
            to=target_name,
            expires_at=grant.expires_at.isoformat(),
        )
    files.touch(file)
    return Forwarded(item, grant)


def create_item(
    session: Session,
    actor: Principal,
    *,
    purpose: Purpose,
    object_type: str,
    object_id: str,
    assignee_subject: str | None = None,
    assignee_unit: str | None = None,
    file_id: uuid.UUID | None = None,
    document_id: uuid.UUID | None = None,
    note: str | None = None,
    due_at: datetime | None = None,
) -> WorkItem:
    """Put an item on a work list (co-signatures, triage assignments); no access is granted."""
    if (assignee_subject is None) == (assignee_unit is None):
        raise InvalidInput("a work item goes to exactly one principal or one org unit")
    unit = _target_unit(session, assignee_unit) if assignee_unit else None
    item = WorkItem(
        purpose=purpose.value,
        object_type=object_type,
        object_id=object_id,
        file_id=file_id,
        document_id=document_id,
        assignee_subject=assignee_subject,
        assignee_unit_id=unit.id if unit else None,
        note=note,
        due_at=due_at,
        created_by=actor.subject,
    )
    session.add(item)
    session.flush()
    record(
        session,
        actor,
        "work_item.created",
        object_type,
        object_id,
        work_item_id=str(item.id),
        purpose=purpose.value,
        to=assignee_subject or assignee_unit,
    )
    return item


def _is_assignee(session: Session, principal: Principal, item: WorkItem) -> bool:
    if item.assignee_subject is not None:
        return item.assignee_subject == principal.subject
    unit = session.get(OrgUnit, item.assignee_unit_id)
    return unit is not None and principal.in_unit(unit.code)


@dataclass(frozen=True)
class WorklistEntry:
    """A work item with what the list shows about it."""

    item: WorkItem
    file_reference: str | None
    assignee_unit: str | None
    overdue: bool


def worklist(session: Session, principal: Principal, limit: int = 500) -> list[WorklistEntry]:
    """What waits for the principal: overdue items first, then by due date, then oldest first."""
    remember(session, principal)
    now = utcnow()
    items = repository.open_items_for(
        session, principal.subject, sorted(principal.units), principal.cleared_levels(), now, limit
    )
    entries = []
    for item in items:
        file = session.get(File, item.file_id) if item.file_id else None
        unit = session.get(OrgUnit, item.assignee_unit_id) if item.assignee_unit_id else None
        overdue = item.due_at is not None and item.due_at < now
        reference = file.reference if file else None
        entries.append(WorklistEntry(item, reference, unit.code if unit else None, overdue))
    return entries


def complete(session: Session, principal: Principal, item_id: uuid.UUID) -> WorkItem:
    """Mark an item done; the access its forwarding granted ends now."""
    item = session.get(WorkItem, item_id)
    if item is None or not _is_assignee(session, principal, item):
        raise NotFound(f"work item {item_id} does not exist")
    _end(session, principal, item, "work_item.done")
    return item


def _end(
    session: Session, actor: Principal, item: WorkItem, action: str, **details: object
) -> None:
    """Mark an item done by `actor`, end the access its forwarding granted, and audit it.

    Does nothing if the item is already done, by this or a concurrent request.
    """
    # The row lock makes a second, concurrent completion wait and then see the first one's
    # done_at, so an item is completed (and audited) once and its done_by is not overwritten.
    session.refresh(item, with_for_update=True)
    if item.done_at is not None:
        return
    now = utcnow()
    item.done_at, item.done_by = now, actor.subject
    revoked = repository.revoke_grants_of_item(session, item.id, now)
    session.flush()
    record(session, actor, action, item.object_type, item.object_id,
           work_item_id=str(item.id), grants_ended=revoked, **details)  # fmt: skip


def complete_open(
    session: Session, actor: Principal, purpose: Purpose, object_type: str, object_id: str
) -> None:
    """Mark the actor's open item of this purpose on an object done (e.g. after co-signing)."""
    item = repository.open_item_for_object(
        session, purpose.value, object_type, object_id, actor.subject
    )
    if item is not None:
        complete(session, actor, item.id)


def withdraw_open(
    session: Session,
    actor: Principal,
    purpose: Purpose,
    object_type: str,
    object_id: str,
    assignee: str,
) -> None:
    """End another principal's open item of this purpose on an object: no longer asked of them
    (e.g. a co-signer replaced by another)."""
    item = repository.open_item_for_object(session, purpose.value, object_type, object_id, assignee)
    if item is not None:
        _end(session, actor, item, "work_item.withdrawn", assignee=assignee)


def file_grants(
    session: Session, principal: Principal, file_id: uuid.UUID
) -> list[tuple[AccessGrant, bool]]:
    """The grants on a file of the principal's own unit, each with whether it is active."""
    file = files.get_file(session, principal, file_id)
    if not principal.in_unit(file.unit_code):
        raise Forbidden(f"only org unit {file.unit_code} sees who else may read this file")
    now = utcnow()
    record(session, principal, "access_grant.listed", "file", file.id)
    return [
        (g, g.revoked_at is None and g.expires_at > now)
        for g in repository.grants_of_file(session, file.id)
    ]
