"""HTTP routes of the file plan."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from fastapi import APIRouter, status

from eakte.deps import PrincipalDep, SessionDep, SettingsDep, StoreDep
from eakte.plan import service
from eakte.plan.models import FilePlanItem
from eakte.plan.schemas import PlanItemCreate, PlanItemOut, PlanItemUpdate
from retention import service as retention
from retention.rules import RetentionPolicy

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
    item_id: uuid.UUID,
    data: PlanItemUpdate,
    session: SessionDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    store: StoreDep,
) -> FilePlanItem:
    """Change a file plan item (admin).

    A changed retention rule extends the Object Lock of the files closed under the item
    before the change commits (one request to the store per version of those files).
    """
    item = service.update_item(session, principal, item_id, data)
    if "retention_years" in data.model_fields_set:
        policy = RetentionPolicy.from_settings(settings)
        retention.extend_item_locks(session, store, policy, item.id)
    return item
