"""Request and response models of the inbox."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from eakte.documents.models import DocumentKind
from inbox.models import InboundItem, ItemState
from inbox.service import preview


class ItemOut(BaseModel):
    """An inbound item: where it came from, where it is, what became of it."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    source: str
    received_at: datetime
    received_by: str
    original_name: str | None
    original_sha256: str
    original_size: int
    mime_type: str | None
    state: ItemState
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    quarantine_reason: str | None
    page_count: int | None
    classification: dict[str, Any] | None
    preview: str | None = None
    filed_document_id: uuid.UUID | None
    filed_at: datetime | None
    subject: str | None = None
    sender_address: str | None = None
    sender_name: str | None = None
    warnings: list[str] | None = None
    invoices: dict[str, Any] | None = None

    @classmethod
    def of(cls, item: InboundItem) -> ItemOut:
        """The item with its OCR text preview."""
        out = cls.model_validate(item)
        out.preview = preview(item)
        return out


class AssignIn(BaseModel):
    """Where the mailroom files an item from triage."""

    file_id: uuid.UUID
    process_id: uuid.UUID | None = None
    title: str | None = Field(default=None, min_length=1, max_length=500)
    kind: DocumentKind = DocumentKind.INCOMING
