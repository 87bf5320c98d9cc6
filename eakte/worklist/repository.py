"""SQL of work items, access grants and known principals."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, case, or_, select, update
from sqlalchemy.orm import Session

from eakte.files.models import File
from eakte.orgunits.models import OrgUnit
from eakte.worklist.models import AccessGrant, KnownPrincipal, WorkItem


def active_grant_condition(
    subject: str, unit_codes: Sequence[str], now: datetime
) -> ColumnElement[bool]:
    """SQL condition: an unrevoked, unexpired grant for the subject or one of the units."""
    return (
        AccessGrant.revoked_at.is_(None)
        & (AccessGrant.expires_at > now)
        & or_(AccessGrant.subject == subject, AccessGrant.unit_code.in_(sorted(unit_codes)))
    )


def open_items_for(
    session: Session,
    subject: str,
    unit_codes: Sequence[str],
    cleared_levels: Sequence[str],
    now: datetime,
    limit: int,
) -> Sequence[WorkItem]:
    """Work items not done, addressed to the subject or one of its units, on files it is
    cleared for: overdue first, then by due date (none last), then oldest first."""
    unit_ids = select(OrgUnit.id).where(OrgUnit.code.in_(sorted(unit_codes))).scalar_subquery()
    # The order is applied before the limit, so a short list still holds the overdue items,
    # and the id makes it total, so the same items come back in the same order each time.
    stmt = (
        select(WorkItem)
        .outerjoin(File, File.id == WorkItem.file_id)
        .where(
            WorkItem.done_at.is_(None),
            or_(WorkItem.assignee_subject == subject, WorkItem.assignee_unit_id.in_(unit_ids)),
            # A file above the caller's clearance is invisible to it, and so is its reference
            # or note on a work list.
            or_(WorkItem.file_id.is_(None), File.confidentiality.in_(sorted(cleared_levels))),
        )
        .order_by(
            case((WorkItem.due_at < now, 0), else_=1),
            case((WorkItem.due_at.is_(None), 1), else_=0),
            WorkItem.due_at,
            WorkItem.created_at,
            WorkItem.id,
        )
        .limit(limit)
    )
    return session.scalars(stmt).all()


def open_item_for_object(
    session: Session, purpose: str, object_type: str, object_id: str, subject: str
) -> WorkItem | None:
    """The open item of this purpose on an object for a subject."""
    return session.scalar(
        select(WorkItem).where(
            WorkItem.purpose == purpose,
            WorkItem.object_type == object_type,
            WorkItem.object_id == object_id,
            WorkItem.assignee_subject == subject,
            WorkItem.done_at.is_(None),
        )
    )


def grants_of_file(session: Session, file_id: uuid.UUID) -> Sequence[AccessGrant]:
    """Every grant on a file, newest first."""
    return session.scalars(
        select(AccessGrant)
        .where(AccessGrant.file_id == file_id)
        .order_by(AccessGrant.granted_at.desc(), AccessGrant.id)
    ).all()


def revoke_grants_of_item(session: Session, item_id: uuid.UUID, now: datetime) -> int:
    """End the grants a work item opened; returns how many were still active."""
    result = session.execute(
        update(AccessGrant)
        .where(AccessGrant.work_item_id == item_id, AccessGrant.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def all_principals(session: Session) -> Sequence[KnownPrincipal]:
    """The principal directory by subject."""
    return session.scalars(select(KnownPrincipal).order_by(KnownPrincipal.subject)).all()
