"""Request and response models of retention."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from eakte.files.models import FileStatus
from retention.models import ItemState, RunStatus


class CloseRequest(BaseModel):
    """Close a file (zdA); archivists may give the closing time of a legacy file."""

    model_config = ConfigDict(extra="forbid")

    closed_at: datetime | None = Field(
        default=None,
        description="only archivists, for taking over files closed earlier (not in the future)",
    )


class ReopenRequest(BaseModel):
    """Reopen a closed file before it falls due."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000)


class HoldCreate(BaseModel):
    """Place a hold (legal hold) on a file."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000)
    owner: str = Field(min_length=1, max_length=200, description="who answers for the hold")


class HoldRelease(BaseModel):
    """Release a hold."""

    model_config = ConfigDict(extra="forbid")

    note: str | None = Field(default=None, max_length=2000)


class HoldOut(BaseModel):
    """A hold as returned by the API."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    file_id: uuid.UUID
    reason: str
    owner: str
    created_by: str
    created_at: datetime
    released_by: str | None
    released_at: datetime | None
    release_note: str | None


class FileRetentionOut(BaseModel):
    """A file's retention state."""

    file_id: uuid.UUID
    reference: str
    status: FileStatus
    closed_at: datetime | None
    retention_years: int | None
    archive_value: str
    due_on: date | None
    active_holds: int


class DueFileOut(BaseModel):
    """A file due for disposal."""

    file_id: uuid.UUID
    reference: str
    title: str
    plan_code: str
    org_unit: str
    closed_at: datetime
    due_on: date
    archive_value: str


class DueListOut(BaseModel):
    """Files due at a date (one page) and how many there are."""

    as_of: date
    total: int
    files: list[DueFileOut]


class RunCreate(BaseModel):
    """Propose a disposal run of all files due at a date (today by default)."""

    model_config = ConfigDict(extra="forbid")

    as_of: date | None = None


class RunOut(BaseModel):
    """A disposal run with the number of its items per state."""

    id: uuid.UUID
    as_of: date
    status: RunStatus
    org_units: list[str]
    proposed_by: str
    proposed_at: datetime
    approved_by: str | None
    approved_at: datetime | None
    executed_by: str | None
    completed_at: datetime | None
    items: dict[str, int]
    undecided: int


class ItemOut(BaseModel):
    """One file of a run."""

    file_id: uuid.UUID
    reference: str
    title: str
    archive_value: str
    decision: str | None
    decided_by: str | None
    state: ItemState
    note: str | None
    archive_reference: str | None


class Decision(StrEnum):
    """An archivist's decision on a file of archive value B."""

    ARCHIVE = "A"
    DESTROY = "V"


class DecisionIn(BaseModel):
    """The decision for one file."""

    model_config = ConfigDict(extra="forbid")

    file_id: uuid.UUID
    decision: Decision


class DecisionsIn(BaseModel):
    """Decisions for files of archive value B, before approval."""

    model_config = ConfigDict(extra="forbid")

    decisions: list[DecisionIn] = Field(min_length=1, max_length=10000)


class ReceiptIn(BaseModel):
    """The archive's receipt for transferred files (all transferred files by default)."""

    model_config = ConfigDict(extra="forbid")

    archive_reference: str = Field(min_length=1, max_length=200)
    file_ids: list[uuid.UUID] | None = Field(default=None, max_length=10000)


class FixityReportOut(BaseModel):
    """A fixity check's result; problems of other org units are left out."""

    id: uuid.UUID
    started_at: datetime
    finished_at: datetime | None
    started_by: str
    checked: int
    bytes_read: int
    mismatches: int
    missing: int
    problems: list[dict[str, Any]]
