"""Request and response models of org units."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field


class OrgUnitCreate(BaseModel):
    """A new org unit."""

    code: str = Field(min_length=1, max_length=32, pattern=r"^[0-9A-Za-z][0-9A-Za-z._-]*$")
    name: str = Field(min_length=1, max_length=200)


class OrgUnitOut(BaseModel):
    """An org unit as returned by the API."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    code: str
    name: str
