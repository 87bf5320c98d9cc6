"""HTTP routes of the audit log (admin and archivist)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from eakte.audit.models import AuditEvent
from eakte.audit.service import list_events
from eakte.auth.principal import Permission, Principal
from eakte.deps import PrincipalDep, SessionDep
from eakte.documents.models import Document
from eakte.files.models import File
from eakte.guards import require

#: What a reader sees instead of the details of an event on a file above their clearance.
WITHHELD = {"withheld": "the event concerns a file above your clearance"}

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
) -> list[AuditEventOut]:
    """Audit events in order, filtered; page with `after_seq`.

    Details of events on files above the reader's clearance are withheld.
    """
    require(principal, Permission.AUDIT_READ)
    events = list_events(
        session, object_id=object_id, actor=actor, action=action, after_seq=after_seq, limit=limit
    )
    withheld = _above_clearance(session, principal, events)
    return [
        AuditEventOut.model_validate(event).model_copy(update={"details": WITHHELD})
        if event.seq in withheld
        else AuditEventOut.model_validate(event)
        for event in events
    ]


def _uuid(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _above_clearance(
    session: Session, principal: Principal, events: Iterable[AuditEvent]
) -> set[int]:
    """The events (by seq) whose file is above the reader's clearance.

    Auditors read the whole trail, every unit's included, but a file's confidentiality
    holds there too: the details of such events (titles, references, names) are withheld,
    the events themselves stay, so the trail shows no gaps. An event concerns a file as its
    object, through its document, or by the `file_id` in its details.
    """
    files: dict[int, set[uuid.UUID]] = {}
    documents: dict[uuid.UUID, list[int]] = {}
    for event in events:
        concerned = files.setdefault(event.seq, set())
        named = [event.details.get("file_id")] if isinstance(event.details, dict) else []
        if event.object_type == "file":
            named.append(event.object_id)
        concerned.update(i for i in map(_uuid, named) if i is not None)
        if event.object_type == "document" and (doc := _uuid(event.object_id)) is not None:
            documents.setdefault(doc, []).append(event.seq)
    if documents:
        for doc, file_id in session.execute(
            select(Document.id, Document.file_id).where(Document.id.in_(documents))
        ):
            for seq in documents[doc]:
                files[seq].add(file_id)
    all_files = set().union(*files.values()) if files else set()
    if not all_files:
        return set()
    hidden = {
        file_id
        for file_id, level in session.execute(
            select(File.id, File.confidentiality).where(File.id.in_(all_files))
        )
        if not principal.cleared_for(level)
    }
    return {seq for seq, concerned in files.items() if concerned & hidden}
