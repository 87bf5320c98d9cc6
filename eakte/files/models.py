"""Tables of files, processes, reference counters and file-contact links."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from eakte.db import Base, UUIDPrimaryKey, utcnow
from eakte.orgunits.models import OrgUnit
from eakte.plan.models import FilePlanItem


class FileStatus(StrEnum):
    """Life cycle of a file."""

    OPEN = "open"
    CLOSED = "closed"
    HELD = "held"
    DISPOSED = "disposed"
    TRANSFERRED = "transferred"


class Confidentiality(StrEnum):
    """How widely a file may be read inside its org unit."""

    NORMAL = "normal"
    CONFIDENTIAL = "confidential"
    SECRET = "secret"  # noqa: S105 - a classification level, not a password


class File(UUIDPrimaryKey, Base):
    """A file (Akte): the unit of record keeping, filed under one plan item."""

    __tablename__ = "files"
    __table_args__ = (Index("ix_files_org_unit_status", "org_unit_id", "status"),)

    reference: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(String(500))
    plan_item_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("file_plan_items.id"), index=True)
    org_unit_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("org_units.id"))
    status: Mapped[str] = mapped_column(String(20), default=FileStatus.OPEN.value)
    confidentiality: Mapped[str] = mapped_column(String(20), default=Confidentiality.NORMAL.value)
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None]
    paper_note: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(200))
    last_activity_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)

    plan_item: Mapped[FilePlanItem] = relationship(lazy="joined")
    org_unit: Mapped[OrgUnit] = relationship(lazy="joined")

    @property
    def plan_code(self) -> str:
        """Code of the file's plan item."""
        return self.plan_item.code

    @property
    def unit_code(self) -> str:
        """Code of the file's org unit."""
        return self.org_unit.code


class ReferenceCounter(Base):
    """The last sequence number handed out per plan item and year."""

    __tablename__ = "reference_counters"

    plan_item_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("file_plan_items.id"), primary_key=True
    )
    year: Mapped[int] = mapped_column(primary_key=True)
    last_value: Mapped[int] = mapped_column(default=0)


class ProcessStatus(StrEnum):
    """Life cycle of a process."""

    OPEN = "open"
    DONE = "done"


class Process(UUIDPrimaryKey, Base):
    """A process (Vorgang): one matter inside a file."""

    __tablename__ = "processes"

    file_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("files.id"), index=True)
    title: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(20), default=ProcessStatus.OPEN.value)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))


class FileContact(Base):
    """A contact's part in a file (applicant, sender, ...)."""

    __tablename__ = "file_contacts"

    file_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("files.id"), primary_key=True)
    contact_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("contacts.id"), primary_key=True, index=True
    )
    role: Mapped[str] = mapped_column(String(50), primary_key=True, default="party")
