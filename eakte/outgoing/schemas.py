"""Request and response models of letter templates, letters and print batches."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Self

from pydantic import BaseModel, ConfigDict, EmailStr, Field, model_validator

from eakte.outgoing.models import Channel, LetterState


class TemplateIn(BaseModel):
    """A letter template: the letter body as HTML with Jinja2 placeholders."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str | None = Field(default=None, max_length=2000)
    body_html: str = Field(min_length=1, max_length=200_000)
    active: bool = True


class TemplateOut(BaseModel):
    """A letter template as returned by the API."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    description: str | None
    body_html: str
    active: bool
    created_at: datetime
    created_by: str
    updated_at: datetime


#: No line breaks: the name and the subject go into e-mail headers.
ONE_LINE = r"^[^\r\n]+$"


class Recipient(BaseModel):
    """Whom a letter goes to."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=300, pattern=ONE_LINE)
    address: str | None = Field(default=None, max_length=1000, description="postal address lines")
    email: EmailStr | None = None


class LetterCreate(BaseModel):
    """A new letter in a file: rendered from a template, or an uploaded PDF document."""

    model_config = ConfigDict(extra="forbid")

    subject: str = Field(min_length=1, max_length=500, pattern=ONE_LINE)
    recipient: Recipient
    channel: Channel
    template: str | None = Field(default=None, description="template name")
    fields: dict[str, str] = Field(default_factory=dict, max_length=200)
    document_id: uuid.UUID | None = Field(
        default=None, description="an uploaded PDF in the file, instead of a template"
    )
    process_id: uuid.UUID | None = None
    cosigner: str | None = Field(default=None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _source_and_address(self) -> Self:
        if (self.template is None) == (self.document_id is None):
            raise ValueError("give exactly one of template and document_id")
        if self.channel == Channel.EMAIL and self.recipient.email is None:
            raise ValueError("an e-mail letter needs recipient.email")
        if self.channel == Channel.POST and not self.recipient.address:
            raise ValueError("a letter by post needs recipient.address")
        return self


class CosignRequest(BaseModel):
    """Ask a second clerk to co-sign (Mitzeichnung)."""

    model_config = ConfigDict(extra="forbid")

    cosigner: str = Field(min_length=1, max_length=200)


class LetterOut(BaseModel):
    """A letter with its approval and delivery record."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    document_id: uuid.UUID
    file_id: uuid.UUID
    state: LetterState
    channel: Channel
    subject: str
    recipient_name: str
    recipient_address: str | None
    recipient_email: str | None
    letter_date: datetime
    created_by: str
    created_at: datetime
    approved_by: str | None
    approved_at: datetime | None
    approved_version: int | None
    cosigner: str | None
    cosigned_by: str | None
    cosigned_at: datetime | None
    message_id: str | None
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    failure_reason: str | None
    sent_at: datetime | None
    eml_version: int | None
    print_batch_id: uuid.UUID | None


class PrintBatchOut(BaseModel):
    """A print batch of the mailroom."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    created_at: datetime
    created_by: str
    letter_count: int
    posted_at: datetime | None
    posted_by: str | None
    letter_ids: list[uuid.UUID] = Field(default_factory=list)
