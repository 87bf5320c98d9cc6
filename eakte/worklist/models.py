"""Tables of work items, access grants and the directory of known principals."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from eakte.db import Base, UUIDPrimaryKey, utcnow


class Purpose(StrEnum):
    """Why an item waits in somebody's work list."""

    INFORMATION = "information"
    ACTION = "action"
    COSIGN = "cosign"
    TRIAGE = "triage"


class KnownPrincipal(Base):
    """A principal that has used the service or was entered by an administrator.

    Principals come from tokens, so there is no user table; this directory lets a
    forwarding name a colleague and be refused when nobody of that name exists.
    """

    __tablename__ = "principals"

    subject: Mapped[str] = mapped_column(String(200), primary_key=True)
    display_name: Mapped[str | None] = mapped_column(String(300))
    email: Mapped[str | None] = mapped_column(String(320))
    units: Mapped[list[str]] = mapped_column(JSON, default=list)
    first_seen_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class WorkItem(UUIDPrimaryKey, Base):
    """Something waiting for a principal or an org unit: a forwarding, co-signature, triage."""

    __tablename__ = "work_items"
    __table_args__ = (
        Index("ix_work_items_assignee_subject_done_at", "assignee_subject", "done_at"),
        Index("ix_work_items_assignee_unit_id_done_at", "assignee_unit_id", "done_at"),
    )

    purpose: Mapped[str] = mapped_column(String(20))
    object_type: Mapped[str] = mapped_column(String(30))
    object_id: Mapped[str] = mapped_column(String(64))
    file_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("files.id"), index=True)
    document_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("documents.id"))
    assignee_subject: Mapped[str | None] = mapped_column(String(200))
    assignee_unit_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("org_units.id"))
    note: Mapped[str | None] = mapped_column(Text)
    due_at: Mapped[datetime | None]
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    done_at: Mapped[datetime | None]
    done_by: Mapped[str | None] = mapped_column(String(200))


class AccessGrant(UUIDPrimaryKey, Base):
    """Read access to exactly one file for an org unit or a principal outside its own unit.

    Active while not revoked and not expired; it never allows changes.
    """

    __tablename__ = "access_grants"

    file_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("files.id"), index=True)
    unit_code: Mapped[str | None] = mapped_column(String(32), index=True)
    subject: Mapped[str | None] = mapped_column(String(200), index=True)
    work_item_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("work_items.id"))
    granted_by: Mapped[str] = mapped_column(String(200))
    granted_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
