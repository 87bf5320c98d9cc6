"""Request and response models of the file plan."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from eakte.plan.models import ArchiveValue


class PlanItemCreate(BaseModel):
    """A new file plan item."""

    code: str = Field(min_length=1, max_length=64, pattern=r"^[0-9A-Za-z]+(\.[0-9A-Za-z]+)*$")
    title: str = Field(min_length=1, max_length=300)
    parent_code: str | None = None
    retention_years: int | None = Field(
        default=None, ge=0, le=500, description="null means permanent"
    )
    archive_value: ArchiveValue = ArchiveValue.APPRAISE


class PlanItemUpdate(BaseModel):
    """Changes to a file plan item."""

    title: str | None = Field(default=None, min_length=1, max_length=300)
    retention_years: int | None = Field(default=None, ge=0, le=500)
    archive_value: ArchiveValue | None = None
    active: bool | None = None

    @field_validator("title", "archive_value", "active")
    @classmethod
    def _not_null(cls, value: object) -> object:
        # Left out means unchanged; unlike retention_years (null: permanent), these columns
        # must always hold a value.
        if value is None:
            raise ValueError("may be left out, not null")
        return value


class PlanItemOut(BaseModel):
    """A file plan item as returned by the API."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    code: str
    title: str
    parent_id: uuid.UUID | None
    retention_years: int | None
    archive_value: ArchiveValue
    active: bool
    created_at: datetime
