"""Request and response models of contacts."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator


class PhoneIn(BaseModel):
    """A phone number in any notation."""

    number: str = Field(min_length=1, max_length=40)
    label: str | None = Field(default=None, max_length=50)


class ContactCreate(BaseModel):
    """A new contact."""

    name: str = Field(min_length=1, max_length=300)
    postal_address: str | None = Field(default=None, max_length=2000)
    phones: list[PhoneIn] = Field(default_factory=list, max_length=20)
    emails: list[EmailStr] = Field(default_factory=list, max_length=20)


class ContactUpdate(BaseModel):
    """Changes to a contact; lists given replace the stored ones."""

    name: str | None = Field(default=None, min_length=1, max_length=300)
    postal_address: str | None = Field(default=None, max_length=2000)
    phones: list[PhoneIn] | None = Field(default=None, max_length=20)
    emails: list[EmailStr] | None = Field(default=None, max_length=20)

    @field_validator("name")
    @classmethod
    def _name_not_null(cls, value: str | None) -> str | None:
        # Left out means unchanged; a contact cannot be without a name.
        if value is None:
            raise ValueError("may be left out, not null")
        return value


class PhoneOut(BaseModel):
    """A stored phone number (E.164)."""

    model_config = ConfigDict(from_attributes=True)

    e164: str
    label: str | None


class EmailOut(BaseModel):
    """A stored e-mail address."""

    model_config = ConfigDict(from_attributes=True)

    address: str


class ContactOut(BaseModel):
    """A contact as returned by the API."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    postal_address: str | None
    phones: list[PhoneOut]
    emails: list[EmailOut]
    created_at: datetime
