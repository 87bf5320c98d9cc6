"""SQL of files, processes and references."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import cast

from sqlalchemy import ColumnElement, Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from eakte.auth.principal import Principal
from eakte.db import utcnow
from eakte.files.models import File, FileContact, Process, ReferenceCounter
from eakte.orgunits.models import OrgUnit
from eakte.worklist.models import AccessGrant
from eakte.worklist.repository import active_grant_condition


def visible_to(principal: Principal) -> ColumnElement[bool]:
    """SQL condition: the file is within the principal's clearance and its units or grants."""
    granted = select(AccessGrant.file_id).where(
        active_grant_condition(principal.subject, sorted(principal.units), utcnow())
    )
    in_reach = _in_units(principal) | File.id.in_(granted.scalar_subquery())
    return File.confidentiality.in_(principal.cleared_levels()) & in_reach


def owned_by(principal: Principal) -> ColumnElement[bool]:
    """SQL condition: the file belongs to one of the principal's units, within its clearance.

    Unlike `visible_to`, a forwarding's access grant does not count: it lets a unit read a
    file, never change it or decide over it.
    """
    return File.confidentiality.in_(principal.cleared_levels()) & _in_units(principal)


def _in_units(principal: Principal) -> ColumnElement[bool]:
    unit_ids = select(OrgUnit.id).where(OrgUnit.code.in_(sorted(principal.units)))
    return File.org_unit_id.in_(unit_ids.scalar_subquery())


def has_active_grant(session: Session, principal: Principal, file_id: uuid.UUID) -> bool:
    """True if a forwarding currently lets the principal (or one of its units) read the file."""
    return (
        session.scalar(
            select(AccessGrant.id)
            .where(
                AccessGrant.file_id == file_id,
                active_grant_condition(principal.subject, sorted(principal.units), utcnow()),
            )
            .limit(1)
        )
        is not None
    )


def next_sequence(session: Session, plan_item_id: uuid.UUID, year: int) -> int:
    """Hand out the next number for plan item and year, atomically under concurrency.

    The upsert takes a row lock on PostgreSQL (and the database lock on SQLite),
    so two concurrent transactions never receive the same number.
    """
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = cast(Table, ReferenceCounter.__table__)
    stmt = (
        insert(table)
        .values(plan_item_id=plan_item_id, year=year, last_value=1)
        .on_conflict_do_update(
            index_elements=["plan_item_id", "year"],
            set_={"last_value": table.c.last_value + 1},
        )
        .returning(table.c.last_value)
    )
    return int(session.execute(stmt).scalar_one())


def reference_exists(session: Session, reference: str) -> bool:
    """True if a file carries this reference."""
    return session.scalar(select(File.id).where(File.reference == reference)) is not None


def list_files(
    session: Session,
    principal: Principal,
    *,
    reference: str | None,
    contact_id: uuid.UUID | None,
    status: str | None,
    plan_item_id: uuid.UUID | None,
    limit: int,
    offset: int,
) -> Sequence[File]:
    """Files visible to the principal matching the filters, most recently active first."""
    stmt = select(File).where(visible_to(principal))
    if reference is not None:
        stmt = stmt.where(File.reference == reference)
    if status is not None:
        stmt = stmt.where(File.status == status)
    if plan_item_id is not None:
        stmt = stmt.where(File.plan_item_id == plan_item_id)
    if contact_id is not None:
        stmt = stmt.where(
            File.id.in_(select(FileContact.file_id).where(FileContact.contact_id == contact_id))
        )
    stmt = stmt.order_by(File.last_activity_at.desc(), File.id).limit(limit).offset(offset)
    return session.scalars(stmt).unique().all()


def processes_of(session: Session, file_id: uuid.UUID) -> Sequence[Process]:
    """The processes of a file in creation order."""
    return session.scalars(
        select(Process).where(Process.file_id == file_id).order_by(Process.created_at)
    ).all()


def contact_links(session: Session, file_id: uuid.UUID) -> Sequence[FileContact]:
    """The contacts linked to a file."""
    return session.scalars(select(FileContact).where(FileContact.file_id == file_id)).all()
