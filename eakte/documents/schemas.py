"""Request and response models of documents and versions."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from eakte.documents.models import DocumentKind, DocumentSource


class DocumentMeta(BaseModel):
    """Form fields sent with a new document's first version."""

    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, min_length=1, max_length=500)
    kind: DocumentKind = DocumentKind.INCOMING
    source: DocumentSource = DocumentSource.API
    process_id: uuid.UUID | None = None
    received_at: datetime | None = None
    sender_contact_id: uuid.UUID | None = None


class DocumentUpdate(BaseModel):
    """Changes to a document's metadata (its content changes by new versions only)."""

    title: str | None = Field(default=None, min_length=1, max_length=500)
    kind: DocumentKind | None = None
    process_id: uuid.UUID | None = None


class PaperDocumentCreate(BaseModel):
    """A paper-only document of a hybrid file: what it is and where the paper lies."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=500)
    kind: DocumentKind = DocumentKind.INCOMING
    process_id: uuid.UUID | None = None
    received_at: datetime | None = None
    paper_location: str = Field(min_length=1, max_length=500)
    paper_box: str | None = Field(default=None, max_length=100)


class PaperUpdate(BaseModel):
    """Where a paper original lies now and who has borrowed it (null: returned)."""

    model_config = ConfigDict(extra="forbid")

    paper_location: str | None = Field(default=None, min_length=1, max_length=500)
    paper_box: str | None = Field(default=None, max_length=100)
    paper_borrowed_by: str | None = Field(default=None, max_length=200)


class VersionOut(BaseModel):
    """A document version as returned by the API."""

    model_config = ConfigDict(from_attributes=True)

    number: int
    sha256: str
    size: int
    mime_type: str
    original_name: str | None
    created_by: str
    created_at: datetime
    page_count: int | None


class DocumentOut(BaseModel):
    """A document with its current version."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    file_id: uuid.UUID
    process_id: uuid.UUID | None
    title: str
    kind: DocumentKind
    source: DocumentSource
    received_at: datetime | None
    sender_contact_id: uuid.UUID | None
    current_version: int
    created_at: datetime
    created_by: str
    medium: str = Field(description="electronic, paper (not scanned) or scanned")
    paper_location: str | None = None
    paper_box: str | None = None
    paper_borrowed_by: str | None = None
    paper_scanned_version: int | None = None
    paper_destroy_after: datetime | None = None
    frozen: bool = False
    latest: VersionOut | None = None
