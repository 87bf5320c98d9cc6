"""HTTP routes of org units."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, status

from eakte.deps import PrincipalDep, SessionDep
from eakte.orgunits import service
from eakte.orgunits.models import OrgUnit
from eakte.orgunits.schemas import OrgUnitCreate, OrgUnitOut

router = APIRouter(prefix="/api/v1/org-units", tags=["org units"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=OrgUnitOut)
def create_org_unit(data: OrgUnitCreate, session: SessionDep, principal: PrincipalDep) -> OrgUnit:
    """Create an org unit (admin)."""
    return service.create_unit(session, principal, data)


@router.get("", response_model=list[OrgUnitOut])
def list_org_units(session: SessionDep, principal: PrincipalDep) -> Sequence[OrgUnit]:
    """All org units."""
    return service.list_units(session)
