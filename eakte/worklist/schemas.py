"""Request and response models of forwarding, work items, grants and principals."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, EmailStr, Field, model_validator

from eakte.worklist.models import Purpose


class Forwarding(BaseModel):
    """Forward a document or a whole file to a colleague or an org unit."""

    model_config = ConfigDict(extra="forbid")

    file_id: uuid.UUID | None = None
    document_id: uuid.UUID | None = None
    to_subject: str | None = Field(default=None, min_length=1, max_length=200)
    to_unit: str | None = Field(default=None, min_length=1, max_length=32)
    purpose: Literal["information", "action", "cosign"] = "information"
    note: str | None = Field(default=None, max_length=4000)
    due_at: datetime | None = None

    @model_validator(mode="after")
    def _one_object_one_target(self) -> Self:
        if (self.file_id is None) == (self.document_id is None):
            raise ValueError("give exactly one of file_id and document_id")
        if (self.to_subject is None) == (self.to_unit is None):
            raise ValueError("give exactly one of to_subject and to_unit")
        if self.due_at is not None and self.due_at.tzinfo is None:
            raise ValueError("due_at needs a time zone offset")
        if self.due_at is not None:
            try:
                # Stored in UTC: a date at the edge of the calendar (year 1 east of UTC, year
                # 9999 west of it) has no UTC equivalent and must be refused, not crash later.
                self.due_at = self.due_at.astimezone(UTC)
            except OverflowError:
                raise ValueError("due_at is out of range") from None
        return self


class WorkItemOut(BaseModel):
    """An item of a work list."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    purpose: Purpose
    object_type: str
    object_id: str
    file_id: uuid.UUID | None
    file_reference: str | None = None
    document_id: uuid.UUID | None
    assignee_subject: str | None
    assignee_unit: str | None = None
    note: str | None
    due_at: datetime | None
    overdue: bool = False
    created_by: str
    created_at: datetime
    done_at: datetime | None
    done_by: str | None
    grant_id: uuid.UUID | None = None


class GrantOut(BaseModel):
    """Read access to one file for an org unit or a principal."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    file_id: uuid.UUID
    unit_code: str | None
    subject: str | None
    work_item_id: uuid.UUID | None
    granted_by: str
    granted_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    active: bool = False


class PrincipalIn(BaseModel):
    """An administrator's entry in the principal directory."""

    model_config = ConfigDict(extra="forbid")

    display_name: str | None = Field(default=None, max_length=300)
    email: EmailStr | None = None
    units: list[str] = Field(default_factory=list, max_length=100)


class PrincipalOut(BaseModel):
    """A known principal."""

    model_config = ConfigDict(from_attributes=True)

    subject: str
    display_name: str | None
    email: str | None
    units: list[str]
    last_seen_at: datetime
