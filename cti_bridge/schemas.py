"""Request and response models of the CTI bridge."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from eakte.auth.principal import CLEARANCE_LEVELS

EXTENSION_PATTERN = r"^[0-9A-Za-z*#+_.-]{1,40}$"


class WebhookCall(BaseModel):
    """A generic PBX webhook: one call event as JSON."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    event: str = Field(min_length=1, max_length=40)
    call_id: str = Field(min_length=1, max_length=200)
    from_: str | None = Field(default=None, alias="from", max_length=200)
    to: str = Field(min_length=1, max_length=200)


class WebhookResult(BaseModel):
    """What the bridge did with a call event."""

    call_id: str
    published: bool
    extension: str
    contact_found: bool = False
    files: int = 0


class ExtensionIn(BaseModel):
    """Who answers an extension, in which org units that clerk works, and their clearance."""

    subject: str = Field(min_length=1, max_length=200)
    units: list[str] = Field(min_length=1, max_length=50)
    clearance: str = Field(
        default=CLEARANCE_LEVELS[0],
        description="the highest confidentiality of files the pop-up may list",
        json_schema_extra={"enum": list(CLEARANCE_LEVELS)},
    )

    @field_validator("clearance")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value not in CLEARANCE_LEVELS:
            raise ValueError(f"clearance must be one of {', '.join(CLEARANCE_LEVELS)}")
        return value


class ExtensionOut(BaseModel):
    """A mapped extension."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    extension: str
    subject: str
    units: list[str]
    clearance: str
    updated_at: datetime
    updated_by: str


class DesktopEnroll(BaseModel):
    """A desktop agent's CURVE public key (Z85, 40 characters)."""

    public_key: str = Field(min_length=40, max_length=40)
    name: str = Field(default="desktop", min_length=1, max_length=100, pattern=r"^[\w.-]+$")


class DesktopEnrolled(BaseModel):
    """Where and how an enrolled desktop connects."""

    id: str
    endpoint: str
    server_public_key: str


class DesktopOut(BaseModel):
    """An enrolled desktop; `enrolled_by` is null for keys placed in the directory by hand."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    public_key: str
    enrolled_by: str | None
    enrolled_at: datetime | None


class PopContact(BaseModel):
    """A contact recognised from the caller's number."""

    id: uuid.UUID
    name: str


class PopFile(BaseModel):
    """A file offered in the pop-up, with the contact it belongs to.

    Several contacts may share a number (a family, a company's switchboard): each file
    names its own, so the clerk never takes one person's file for another's.
    """

    id: uuid.UUID
    reference: str
    title: str
    url: str
    contact: PopContact


class PopEvent(BaseModel):
    """The pop-up event published to the clerk's desktop (ZeroMQ and SSE)."""

    call_id: str
    extension: str
    caller: str | None = Field(description="E.164, or null when withheld or unknown")
    withheld: bool
    contact: PopContact | None = Field(description="the likeliest caller, or null")
    files: list[PopFile]
