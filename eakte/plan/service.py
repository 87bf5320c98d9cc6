"""Use cases of the file plan (Aktenplan)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from eakte.audit.service import record
from eakte.auth.principal import Permission, Principal
from eakte.errors import Conflict, NotFound
from eakte.guards import require
from eakte.plan import repository
from eakte.plan.models import FilePlanItem
from eakte.plan.schemas import PlanItemCreate, PlanItemUpdate


def create_item(session: Session, principal: Principal, data: PlanItemCreate) -> FilePlanItem:
    """Add a plan item; codes are unique and a parent must exist."""
    require(principal, Permission.PLAN_WRITE)
    if repository.by_code(session, data.code) is not None:
        raise Conflict(f"file plan item {data.code} exists already")
    parent_id = None
    if data.parent_code is not None:
        parent = repository.by_code(session, data.parent_code)
        if parent is None:
            raise NotFound(f"parent file plan item {data.parent_code} does not exist")
        parent_id = parent.id
    item = FilePlanItem(
        code=data.code,
        title=data.title,
        parent_id=parent_id,
        retention_years=data.retention_years,
        archive_value=data.archive_value.value,
    )
    try:
        with session.begin_nested():
            session.add(item)
    except IntegrityError:
        # A concurrent request added the same code between the check and the insert.
        raise Conflict(f"file plan item {data.code} exists already") from None
    record(session, principal, "plan_item.created", "plan_item", item.id, code=item.code)
    return item


def get_item(session: Session, item_id: uuid.UUID) -> FilePlanItem:
    """A plan item by id."""
    item = session.get(FilePlanItem, item_id)
    if item is None:
        raise NotFound(f"file plan item {item_id} does not exist")
    return item


def get_by_code(session: Session, code: str) -> FilePlanItem:
    """A plan item by code; NotFound names the code."""
    item = repository.by_code(session, code)
    if item is None:
        raise NotFound(f"file plan item {code} does not exist")
    return item


def list_items(session: Session, active_only: bool = False) -> Sequence[FilePlanItem]:
    """The whole plan."""
    return repository.list_items(session, active_only)


def update_item(
    session: Session, principal: Principal, item_id: uuid.UUID, data: PlanItemUpdate
) -> FilePlanItem:
    """Change title, retention rule or active flag."""
    require(principal, Permission.PLAN_WRITE)
    item = get_item(session, item_id)
    changes = data.model_dump(exclude_unset=True)
    for name, value in changes.items():
        setattr(item, name, value.value if hasattr(value, "value") else value)
    session.flush()
    record(
        session,
        principal,
        "plan_item.updated",
        "plan_item",
        item.id,
        changes={k: str(v) for k, v in changes.items()},
    )
    return item
