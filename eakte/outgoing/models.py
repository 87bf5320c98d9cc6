"""Tables of letter templates, letters (with their delivery state) and print batches."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from eakte.db import Base, UUIDPrimaryKey, utcnow


class LetterState(StrEnum):
    """Life cycle of a letter: draft -> approved -> queued -> sent | failed."""

    DRAFT = "draft"
    APPROVED = "approved"
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class Channel(StrEnum):
    """How a letter leaves the house."""

    EMAIL = "email"
    POST = "post"


class LetterTemplate(UUIDPrimaryKey, Base):
    """A letter template: the body of a DIN 5008 letter as HTML with Jinja2 placeholders."""

    __tablename__ = "letter_templates"

    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Letter(UUIDPrimaryKey, Base):
    """An outgoing letter: a document of kind `outgoing` plus its approval and delivery record."""

    __tablename__ = "letters"
    __table_args__ = (Index("ix_letters_state_next_attempt_at", "state", "next_attempt_at"),)

    document_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("documents.id"), unique=True)
    file_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("files.id"), index=True)
    template_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("letter_templates.id"))
    state: Mapped[str] = mapped_column(String(20), default=LetterState.DRAFT.value)
    channel: Mapped[str] = mapped_column(String(10))
    subject: Mapped[str] = mapped_column(String(500))
    recipient_name: Mapped[str] = mapped_column(String(300))
    recipient_address: Mapped[str | None] = mapped_column(Text)
    recipient_email: Mapped[str | None] = mapped_column(String(320))
    fields: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    letter_date: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    approved_by: Mapped[str | None] = mapped_column(String(200))
    approved_at: Mapped[datetime | None]
    approved_version: Mapped[int | None]
    cosigner: Mapped[str | None] = mapped_column(String(200))
    cosigned_by: Mapped[str | None] = mapped_column(String(200))
    cosigned_at: Mapped[datetime | None]
    # Delivery: the Message-ID is fixed when sending is requested, before any attempt.
    message_id: Mapped[str | None] = mapped_column(String(300), unique=True)
    send_requested_by: Mapped[str | None] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    lease_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]
    eml_version: Mapped[int | None]
    print_batch_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("print_batches.id"), index=True
    )


class PrintBatch(UUIDPrimaryKey, Base):
    """Letters approved for postal dispatch, printed together by the mailroom."""

    __tablename__ = "print_batches"

    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))
    letter_count: Mapped[int] = mapped_column(default=0)
    posted_at: Mapped[datetime | None]
    posted_by: Mapped[str | None] = mapped_column(String(200))
