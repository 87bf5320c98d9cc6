"""The inbound item table: one row per piece of post, from arrival to filing."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from eakte.db import Base, UUIDPrimaryKey, utcnow


class ItemState(StrEnum):
    """Where an item is in the pipeline (DESIGN section 4)."""

    RECEIVED = "received"
    TYPED = "typed"
    OCRED = "ocred"
    CLASSIFIED = "classified"
    FILED = "filed"
    TRIAGE = "triage"
    QUARANTINED = "quarantined"


# States a worker still has to move on; the others wait for a person or are final.
ACTIVE_STATES = (ItemState.RECEIVED, ItemState.TYPED, ItemState.OCRED, ItemState.CLASSIFIED)


class ItemSource(StrEnum):
    """How an item came in."""

    API = "api"
    HOTFOLDER = "hotfolder"
    IMPORT = "import"
    EMAIL = "email"


class InboundItem(UUIDPrimaryKey, Base):
    """A piece of incoming post: its original bytes, its state, and what became of it."""

    __tablename__ = "inbound_items"
    __table_args__ = (
        Index("ix_inbound_items_state_next", "state", "next_attempt_at"),
        # Two sources polling one hot folder (`serve` and `worker` both run it) may read the
        # same file at once; the database, not a check before the insert, lets only one of
        # them record it. Items without a source_ref (API uploads) are not affected: NULLs
        # never collide in a unique index, on PostgreSQL or SQLite.
        Index("ix_inbound_items_source_ref_sha256", "source_ref", "original_sha256",
              unique=True),
    )

    source: Mapped[str] = mapped_column(String(20))
    # Where it came from (hot-folder path, import path); with the sha256 it keeps a
    # re-delivered file from becoming a second item.
    source_ref: Mapped[str | None] = mapped_column(String(1000))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    received_by: Mapped[str] = mapped_column(String(200))
    original_key: Mapped[str] = mapped_column(String(300))
    original_sha256: Mapped[str] = mapped_column(String(64), index=True)
    original_size: Mapped[int] = mapped_column(BigInteger)
    original_name: Mapped[str | None] = mapped_column(String(500))
    mime_type: Mapped[str | None] = mapped_column(String(200))

    state: Mapped[str] = mapped_column(String(20), default=ItemState.RECEIVED.value)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_expires_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    quarantine_reason: Mapped[str | None] = mapped_column(Text)

    ocr_key: Mapped[str | None] = mapped_column(String(300))
    ocr_sha256: Mapped[str | None] = mapped_column(String(64))
    ocr_size: Mapped[int | None] = mapped_column(BigInteger)
    ocr_text: Mapped[str | None] = mapped_column(Text)
    page_count: Mapped[int | None]
    classification: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    filed_document_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("documents.id"))
    filed_at: Mapped[datetime | None]
    # E-mail: who sent it and about what, and what was odd about its MIME structure.
    subject: Mapped[str | None] = mapped_column(String(500))
    sender_address: Mapped[str | None] = mapped_column(String(320))
    sender_name: Mapped[str | None] = mapped_column(String(300))
    warnings: Mapped[list[str] | None] = mapped_column(JSON)
    # E-invoices found, by part position ("0" for a single document): seller, number, ...
    invoices: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class InboundPart(UUIDPrimaryKey, Base):
    """One document-to-be of an e-mail item: its body, an attachment or an inline image.

    The content waits at `key` (under the item's inbox keys) until the item is filed; the
    part's position fixes the ids of the document it becomes, so filing is exactly once.
    """

    __tablename__ = "inbound_parts"
    __table_args__ = (UniqueConstraint("item_id", "position"),)

    item_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("inbound_items.id", ondelete="CASCADE"),
                                               index=True)
    position: Mapped[int]
    role: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(500))
    mime_type: Mapped[str] = mapped_column(String(200))
    key: Mapped[str] = mapped_column(String(300))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    text: Mapped[str | None] = mapped_column(Text)
    page_count: Mapped[int | None]


class MailReceipt(UUIDPrimaryKey, Base):
    """A mail taken from an IMAP mailbox: its place there and its Message-ID.

    Written in the same transaction as the item, before the mail is flagged, so a mail whose
    flag was lost in a crash is recognised and flagged, not imported again.
    """

    __tablename__ = "mail_receipts"
    __table_args__ = (UniqueConstraint("mailbox", "uidvalidity", "uid"),)

    mailbox: Mapped[str] = mapped_column(String(500))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    uid: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[str] = mapped_column(String(1000), index=True)
    item_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("inbound_items.id", ondelete="SET NULL"))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
