"""Document and document version tables."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from eakte.db import Base, UUIDPrimaryKey, utcnow


class DocumentKind(StrEnum):
    """What a document is in the file."""

    INCOMING = "incoming"
    OUTGOING = "outgoing"
    NOTE = "note"
    INVOICE = "invoice"
    OTHER = "other"


class DocumentSource(StrEnum):
    """How a document reached the file."""

    UPLOAD = "upload"
    API = "api"
    SCAN = "scan"
    EMAIL = "email"
    PAPER = "paper"


class Document(UUIDPrimaryKey, Base):
    """A document in a file, optionally inside one of its processes."""

    __tablename__ = "documents"

    file_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("files.id"), index=True)
    process_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("processes.id"), index=True)
    title: Mapped[str] = mapped_column(String(500))
    kind: Mapped[str] = mapped_column(String(20), default=DocumentKind.INCOMING.value)
    source: Mapped[str] = mapped_column(String(20), default=DocumentSource.UPLOAD.value)
    received_at: Mapped[datetime | None]
    sender_contact_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("contacts.id"))
    current_version: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))
    # Paper part of a hybrid file: where the original lies and who has it. A paper-only
    # document has no version; a replacing scan (ersetzendes Scannen) adds one and sets
    # the date from which the paper original may be destroyed.
    paper_location: Mapped[str | None] = mapped_column(String(500))
    paper_box: Mapped[str | None] = mapped_column(String(100))
    paper_borrowed_by: Mapped[str | None] = mapped_column(String(200))
    paper_scanned_version: Mapped[int | None]
    paper_destroy_after: Mapped[datetime | None]
    # Set when the content must no longer change (an approved outgoing letter).
    frozen: Mapped[bool] = mapped_column(default=False)

    @property
    def medium(self) -> str:
        """`electronic`, `paper` (no scan yet) or `scanned` (scan plus a kept paper original)."""
        if self.paper_location is None:
            return "electronic"
        return "scanned" if self.paper_scanned_version else "paper"


class DocumentVersion(UUIDPrimaryKey, Base):
    """An immutable version of a document's content; the blob is never rewritten."""

    __tablename__ = "document_versions"
    __table_args__ = (UniqueConstraint("document_id", "number"),)

    document_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("documents.id"), index=True)
    number: Mapped[int]
    blob_key: Mapped[str] = mapped_column(String(300), unique=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    mime_type: Mapped[str] = mapped_column(String(200))
    original_name: Mapped[str | None] = mapped_column(String(500))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    ocr_text: Mapped[str | None] = mapped_column(Text)
    page_count: Mapped[int | None]
