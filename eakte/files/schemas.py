"""Request and response models of files and processes."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from eakte.files.models import Confidentiality, FileStatus, ProcessStatus

REFERENCE_PATTERN = r"^[0-9A-Za-z.]+-[0-9]{4}/[0-9]{1,6}$"  # ASCII digits only


class FileCreate(BaseModel):
    """A new file; the reference is generated unless a legacy one is given."""

    title: str = Field(min_length=1, max_length=500)
    plan_code: str = Field(min_length=1, max_length=64, description="file plan item code")
    org_unit: str | None = Field(
        default=None, description="org unit code; defaults to the caller's only unit"
    )
    reference: str | None = Field(
        default=None,
        pattern=REFERENCE_PATTERN,
        description="only when taking over a file with an existing reference",
    )
    confidentiality: Confidentiality = Confidentiality.NORMAL
    paper_note: str | None = Field(default=None, max_length=2000)
    contact_ids: list[uuid.UUID] = Field(default_factory=list)


def not_null(value: object) -> object:
    """Refuse an explicit null for a field that may only be left out (pydantic validator)."""
    # Left out means unchanged; null would clear a column that must always hold a value.
    if value is None:
        raise ValueError("may be left out, not null")
    return value


class FileUpdate(BaseModel):
    """Changes to a file's descriptive fields."""

    title: str | None = Field(default=None, min_length=1, max_length=500)
    confidentiality: Confidentiality | None = None
    paper_note: str | None = Field(default=None, max_length=2000)

    _required = field_validator("title", "confidentiality")(not_null)


class FileOut(BaseModel):
    """A file as returned by the API."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    reference: str
    title: str
    plan_code: str
    org_unit: str = Field(validation_alias="unit_code")
    status: FileStatus
    confidentiality: Confidentiality
    opened_at: datetime
    closed_at: datetime | None
    paper_note: str | None
    last_activity_at: datetime


class FileContactLink(BaseModel):
    """Link a contact to a file in a role."""

    contact_id: uuid.UUID
    role: str = Field(default="party", min_length=1, max_length=50)


class ProcessCreate(BaseModel):
    """A new process in a file."""

    title: str = Field(min_length=1, max_length=500)


class ProcessUpdate(BaseModel):
    """Changes to a process."""

    title: str | None = Field(default=None, min_length=1, max_length=500)
    status: ProcessStatus | None = None

    _required = field_validator("title", "status")(not_null)


class ProcessOut(BaseModel):
    """A process as returned by the API."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    file_id: uuid.UUID
    title: str
    status: ProcessStatus
    created_at: datetime
    created_by: str
