"""HTTP routes of the audit log (admin and archivist)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from eakte.audit.models import AuditEvent
from eakte.audit.service import list_events
from eakte.auth.principal import Permission
from eakte.deps import PrincipalDep, SessionDep
from eakte.guards import require

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


class AuditEventOut(BaseModel):
    """One audit event."""

    model_config = ConfigDict(from_attributes=True)

    seq: int
    at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    details: dict[str, Any]
    hash: str


@router.get("", response_model=list[AuditEventOut])
def list_audit_events(
    session: SessionDep,
    principal: PrincipalDep,
    object_id: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    after_seq: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Sequence[AuditEvent]:
    """Audit events in order, filtered; page with `after_seq`."""
    require(principal, Permission.AUDIT_READ)
    return list_events(
        session, object_id=object_id, actor=actor, action=action, after_seq=after_seq, limit=limit
    )
