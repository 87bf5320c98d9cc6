"""Tables of retention: holds, disposal runs and their items, disposal records, fixity reports."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from eakte.db import Base, UUIDPrimaryKey, utcnow


class Hold(UUIDPrimaryKey, Base):
    """A hold (legal hold, Aussonderungssperre) on a file: while active it is never disposed."""

    __tablename__ = "retention_holds"
    __table_args__ = (Index("ix_retention_holds_file_id_released_at", "file_id", "released_at"),)

    file_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("files.id"))
    reason: Mapped[str] = mapped_column(Text)
    # Who answers for the hold (a legal department, a court case's clerk); not the creator.
    owner: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    released_by: Mapped[str | None] = mapped_column(String(200))
    released_at: Mapped[datetime | None]
    release_note: Mapped[str | None] = mapped_column(Text)


class RunStatus(StrEnum):
    """Life cycle of a disposal run."""

    PROPOSED = "proposed"
    APPROVED = "approved"
    EXECUTING = "executing"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class DisposalRun(UUIDPrimaryKey, Base):
    """A disposal run (Aussonderung): the files of some org units due at a date."""

    __tablename__ = "disposal_runs"

    as_of: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), default=RunStatus.PROPOSED.value)
    # The org unit codes the run covers (the proposer's units); only principals of all of
    # them may decide, approve or execute it.
    org_units: Mapped[list[str]] = mapped_column(JSON)
    proposed_by: Mapped[str] = mapped_column(String(200))
    proposed_at: Mapped[datetime] = mapped_column(default=utcnow)
    approved_by: Mapped[str | None] = mapped_column(String(200))
    approved_at: Mapped[datetime | None]
    executed_by: Mapped[str | None] = mapped_column(String(200))
    completed_at: Mapped[datetime | None]


class ItemState(StrEnum):
    """Where a file stands in its run; every step is one transaction, so a crash resumes.

    V: pending -> destroying (file disposed, blobs being deleted) -> done (record written).
    A: pending -> transferred (in the handover package) -> received (archive's receipt)
       -> done (blobs deleted, record written).
    skipped: held or no longer due when its turn came; nothing was changed.
    """

    PENDING = "pending"
    DESTROYING = "destroying"
    TRANSFERRED = "transferred"
    RECEIVED = "received"
    DONE = "done"
    SKIPPED = "skipped"


OPEN_ITEM_STATES = (
    ItemState.PENDING.value,
    ItemState.DESTROYING.value,
    ItemState.TRANSFERRED.value,
    ItemState.RECEIVED.value,
)


class DisposalItem(Base):
    """One file of a disposal run, with its archive value and (for B) the archivist's decision."""

    __tablename__ = "disposal_items"

    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("disposal_runs.id"), primary_key=True)
    # No foreign key to files: like the disposal record, the item is evidence that must
    # outlive the file row, and a proposal inserts hundreds of thousands of items at once,
    # where a per-row check against `files` costs more than the insert itself. The file ids
    # come from a SELECT over `files` in the same statement, so they exist when written.
    # The index serves the per-file question "is a run working on this file?".
    file_id: Mapped[uuid.UUID] = mapped_column(primary_key=True, index=True)
    # The plan item's archive value at proposal (A, V or B) and the decision (A or V).
    archive_value: Mapped[str] = mapped_column(String(1))
    decision: Mapped[str | None] = mapped_column(String(1))
    decided_by: Mapped[str | None] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(20), default=ItemState.PENDING.value)
    note: Mapped[str | None] = mapped_column(Text)
    archive_reference: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class DisposalAction(StrEnum):
    """What happened to a file's content."""

    DESTROYED = "destroyed"
    TRANSFERRED = "transferred"


class DisposalRecord(UUIDPrimaryKey, Base):
    """The tombstone (Vernichtungs- or Abgabenachweis) kept after a file's content is gone.

    Append-only: written once when the content is deleted, never updated, so rows can be
    backed up and re-applied after a restore. `record_hash` covers the certificate fields.
    """

    __tablename__ = "disposal_records"
    __table_args__ = (UniqueConstraint("run_id", "file_id"),)

    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("disposal_runs.id"))
    # No foreign key: the record must outlive anything that may happen to the file row.
    file_id: Mapped[uuid.UUID] = mapped_column(index=True)
    action: Mapped[str] = mapped_column(String(20))
    reference: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(String(500))
    plan_code: Mapped[str] = mapped_column(String(64))
    plan_title: Mapped[str] = mapped_column(String(300))
    org_unit: Mapped[str] = mapped_column(String(32), index=True)
    opened_at: Mapped[datetime]
    closed_at: Mapped[datetime]
    due_on: Mapped[date] = mapped_column(Date)
    disposed_at: Mapped[datetime] = mapped_column(default=utcnow)
    proposed_by: Mapped[str] = mapped_column(String(200))
    approved_by: Mapped[str] = mapped_column(String(200))
    executed_by: Mapped[str] = mapped_column(String(200))
    archive_reference: Mapped[str | None] = mapped_column(String(200))
    # [{document_id, version, sha256, size}] of every version whose content was deleted.
    versions: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    record_hash: Mapped[str] = mapped_column(String(64))


class FixityReport(UUIDPrimaryKey, Base):
    """One fixity check over the stored blobs: counts and every problem found."""

    __tablename__ = "fixity_reports"

    started_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    finished_at: Mapped[datetime | None]
    started_by: Mapped[str] = mapped_column(String(200))
    checked: Mapped[int] = mapped_column(Integer, default=0)
    bytes_read: Mapped[int] = mapped_column(BigInteger, default=0)
    mismatches: Mapped[int] = mapped_column(Integer, default=0)
    missing: Mapped[int] = mapped_column(Integer, default=0)
    # [{kind, document_id, version, blob_key, org_unit, reference, expected, actual}]
    problems: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
