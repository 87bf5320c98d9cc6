"""HTTP routes of forwarding, the work list, access grants and the principal directory."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Query, status

from eakte.deps import PrincipalDep, SessionDep, SettingsDep
from eakte.worklist import service
from eakte.worklist.models import KnownPrincipal
from eakte.worklist.schemas import Forwarding, GrantOut, PrincipalIn, PrincipalOut, WorkItemOut

router = APIRouter(prefix="/api/v1", tags=["worklist"])


def _item_out(entry: service.WorklistEntry) -> WorkItemOut:
    out = WorkItemOut.model_validate(entry.item)
    out.file_reference = entry.file_reference
    out.assignee_unit = entry.assignee_unit
    out.overdue = entry.overdue
    return out


@router.post("/forwardings", status_code=status.HTTP_201_CREATED, response_model=WorkItemOut)
def forward(
    data: Forwarding, session: SessionDep, principal: PrincipalDep, settings: SettingsDep
) -> WorkItemOut:
    """Forward a document or a file to a colleague or an org unit."""
    service.remember(session, principal)
    result = service.forward(session, principal, data, settings.forward_grant_max_days)
    out = WorkItemOut.model_validate(result.item)
    out.assignee_unit = data.to_unit
    out.grant_id = result.grant.id if result.grant else None
    return out


@router.get("/worklist", response_model=list[WorkItemOut])
def worklist(
    session: SessionDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> list[WorkItemOut]:
    """What waits for the caller: overdue items first, then by due date."""
    return [_item_out(e) for e in service.worklist(session, principal, limit)]


@router.post("/worklist/{item_id}/done", response_model=WorkItemOut)
def mark_done(item_id: uuid.UUID, session: SessionDep, principal: PrincipalDep) -> WorkItemOut:
    """Mark a work item done; access granted by its forwarding ends."""
    return WorkItemOut.model_validate(service.complete(session, principal, item_id))


@router.get("/files/{file_id}/grants", response_model=list[GrantOut])
def file_grants(file_id: uuid.UUID, session: SessionDep, principal: PrincipalDep) -> list[GrantOut]:
    """Who outside the file's unit may read it, and until when."""
    result = []
    for grant, active in service.file_grants(session, principal, file_id):
        out = GrantOut.model_validate(grant)
        out.active = active
        result.append(out)
    return result


@router.get("/principals", response_model=list[PrincipalOut])
def list_principals(session: SessionDep, principal: PrincipalDep) -> Sequence[KnownPrincipal]:
    """Known principals (forwarding targets)."""
    service.remember(session, principal)
    return service.list_principals(session, principal)


@router.put("/principals/{subject}", response_model=PrincipalOut)
def put_principal(
    subject: str, data: PrincipalIn, session: SessionDep, principal: PrincipalDep
) -> KnownPrincipal:
    """Enter or change a principal in the directory (admin)."""
    return service.put_principal(session, principal, subject, data)
