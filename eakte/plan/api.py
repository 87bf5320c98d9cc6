"""HTTP routes of the file plan."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from fastapi import APIRouter, status

from eakte.deps import PrincipalDep, SessionDep
from eakte.plan import service
from eakte.plan.models import FilePlanItem
from eakte.plan.schemas import PlanItemCreate, PlanItemOut, PlanItemUpdate

router = APIRouter(prefix="/api/v1/plan-items", tags=["file plan"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=PlanItemOut)
def create_plan_item(
    data: PlanItemCreate, session: SessionDep, principal: PrincipalDep
) -> FilePlanItem:
    """Create a file plan item (admin)."""
    return service.create_item(session, principal, data)


@router.get("", response_model=list[PlanItemOut])
def list_plan_items(
    session: SessionDep, principal: PrincipalDep, active_only: bool = False
) -> Sequence[FilePlanItem]:
    """The file plan, ordered by code."""
    return service.list_items(session, active_only)


@router.get("/{item_id}", response_model=PlanItemOut)
def get_plan_item(item_id: uuid.UUID, session: SessionDep, principal: PrincipalDep) -> FilePlanItem:
    """One file plan item."""
    return service.get_item(session, item_id)


@router.patch("/{item_id}", response_model=PlanItemOut)
def update_plan_item(
    item_id: uuid.UUID, data: PlanItemUpdate, session: SessionDep, principal: PrincipalDep
) -> FilePlanItem:
    """Change a file plan item (admin)."""
    return service.update_item(session, principal, item_id, data)
