"""Use cases of org units."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from eakte.audit.service import record
from eakte.auth.principal import Permission, Principal
from eakte.errors import Conflict, NotFound
from eakte.guards import require
from eakte.orgunits.models import OrgUnit
from eakte.orgunits.schemas import OrgUnitCreate


def by_code(session: Session, code: str) -> OrgUnit | None:
    """The org unit with this code."""
    return session.scalar(select(OrgUnit).where(OrgUnit.code == code))


def get_by_code(session: Session, code: str) -> OrgUnit:
    """The org unit with this code; NotFound names it."""
    unit = by_code(session, code)
    if unit is None:
        raise NotFound(f"org unit {code} does not exist")
    return unit


def create_unit(session: Session, principal: Principal, data: OrgUnitCreate) -> OrgUnit:
    """Add an org unit (admin)."""
    require(principal, Permission.UNIT_WRITE)
    if by_code(session, data.code) is not None:
        raise Conflict(f"org unit {data.code} exists already")
    unit = OrgUnit(code=data.code, name=data.name)
    try:
        with session.begin_nested():
            session.add(unit)
    except IntegrityError:
        # A concurrent request added the same code between the check and the insert.
        raise Conflict(f"org unit {data.code} exists already") from None
    record(session, principal, "org_unit.created", "org_unit", unit.id, code=unit.code)
    return unit


def list_units(session: Session) -> Sequence[OrgUnit]:
    """All org units by code."""
    return session.scalars(select(OrgUnit).order_by(OrgUnit.code)).all()
