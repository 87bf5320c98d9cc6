"""SQL of the inbound pipeline: claiming items with leases, listing them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Row, delete, func, or_, select
from sqlalchemy.orm import Session

from eakte.contacts.models import Contact, ContactEmail, ContactPhone
from eakte.documents.models import Document, DocumentVersion
from eakte.files.models import File, FileContact
from eakte.plan.models import FilePlanItem
from inbox.models import ACTIVE_STATES, InboundItem, InboundPart, MailReceipt


def claimable(session: Session, now: datetime) -> InboundItem | None:
    """The next item a worker may take, locked for this transaction.

    On PostgreSQL `FOR UPDATE SKIP LOCKED` lets many workers claim side by side without
    waiting for each other; SQLite has one writer at a time, so the plain select is safe there.
    """
    stmt = (
        select(InboundItem)
        .where(
            InboundItem.state.in_([s.value for s in ACTIVE_STATES]),
            InboundItem.next_attempt_at <= now,
            or_(InboundItem.lease_expires_at.is_(None), InboundItem.lease_expires_at < now),
        )
        .order_by(InboundItem.next_attempt_at, InboundItem.received_at)
        .limit(1)
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return session.scalar(stmt)


def locked(session: Session, item_id: uuid.UUID) -> InboundItem | None:
    """The item, locked against concurrent changes until the transaction ends."""
    return session.scalar(
        select(InboundItem).where(InboundItem.id == item_id).with_for_update()
    )


def by_state(
    session: Session, state: str | None, limit: int, offset: int
) -> Sequence[InboundItem]:
    """Items, newest first, optionally in one state."""
    stmt = select(InboundItem)
    if state is not None:
        stmt = stmt.where(InboundItem.state == state)
    stmt = stmt.order_by(InboundItem.received_at.desc(), InboundItem.id)
    return session.scalars(stmt.limit(limit).offset(offset)).all()


def by_source(session: Session, source_ref: str, sha256: str) -> InboundItem | None:
    """An item already received from this place with these bytes."""
    return session.scalar(
        select(InboundItem).where(
            InboundItem.source_ref == source_ref, InboundItem.original_sha256 == sha256
        )
    )


def files_by_reference(session: Session, references: Sequence[str]) -> Sequence[File]:
    """Files carrying any of the references."""
    if not references:
        return []
    return session.scalars(select(File).where(File.reference.in_(list(references)))).all()


def blob_keys_in_use(session: Session) -> set[str]:
    """Inbox blob keys of items not filed yet (filed items' blobs may be swept)."""
    rows = session.execute(
        select(InboundItem.original_key, InboundItem.ocr_key).where(
            InboundItem.state != "filed"
        )
    ).all()
    parts = session.scalars(
        select(InboundPart.key).join(InboundItem, InboundItem.id == InboundPart.item_id)
        .where(InboundItem.state != "filed")
    ).all()
    return {key for row in rows for key in row if key} | set(parts)


def parts_of(session: Session, item_id: uuid.UUID) -> Sequence[InboundPart]:
    """An e-mail item's parts in order."""
    return session.scalars(
        select(InboundPart).where(InboundPart.item_id == item_id).order_by(InboundPart.position)
    ).all()


def delete_parts(session: Session, item_id: uuid.UUID) -> None:
    """Forget an item's parts (before a repeated unpacking writes them again)."""
    session.execute(delete(InboundPart).where(InboundPart.item_id == item_id))


def open_files_of_contacts(
    session: Session, contact_ids: Sequence[uuid.UUID]
) -> Sequence[File]:
    """Open files that any of the contacts is linked to."""
    if not contact_ids:
        return []
    return session.scalars(
        select(File).join(FileContact, FileContact.file_id == File.id)
        .where(FileContact.contact_id.in_(list(contact_ids)), File.status == "open")
        .distinct().order_by(File.reference)
    ).all()


def contacts_by_email(session: Session, address: str) -> Sequence[uuid.UUID]:
    """Contacts with this e-mail address (stored lower-cased)."""
    return session.scalars(
        select(ContactEmail.contact_id).where(ContactEmail.address == address.lower()).distinct()
    ).all()


def contacts_by_phone(session: Session, numbers: Sequence[str]) -> Sequence[uuid.UUID]:
    """Contacts with any of these E.164 numbers."""
    if not numbers:
        return []
    return session.scalars(
        select(ContactPhone.contact_id).where(ContactPhone.e164.in_(list(numbers))).distinct()
    ).all()


def contacts_by_name(session: Session, name: str) -> Sequence[uuid.UUID]:
    """Contacts whose name is exactly this one, ignoring case."""
    return session.scalars(
        select(Contact.id).where(func.lower(Contact.name) == name.strip().lower())
    ).all()


def receipt(session: Session, mailbox: str, uidvalidity: int, uid: int) -> MailReceipt | None:
    """The receipt of a mail at this place in this mailbox, if it was taken."""
    return session.scalar(select(MailReceipt).where(
        MailReceipt.mailbox == mailbox, MailReceipt.uidvalidity == uidvalidity,
        MailReceipt.uid == uid))


def receipt_by_message_id(session: Session, message_id: str) -> MailReceipt | None:
    """The first receipt of a mail with this Message-ID."""
    return session.scalar(select(MailReceipt).where(MailReceipt.message_id == message_id)
                          .order_by(MailReceipt.received_at).limit(1))


TrainingRow = Row[str, str, uuid.UUID, str, str, str | None, str | None, str | None]


def training_rows(session: Session, limit: int) -> Sequence[TrainingRow]:
    """Text, subject, sender, file and kind of filed documents in open files, newest first.

    The inbox item (if the document came through it) adds the mail's subject and sender.
    Original .eml documents are left out: their text is the body again, with headers.
    """
    stmt = (
        select(Document.title, Document.kind, Document.file_id, File.reference,
               FilePlanItem.code.label("plan_code"), DocumentVersion.ocr_text.label("text"),
               InboundItem.subject, InboundItem.sender_address)
        .join(File, File.id == Document.file_id)
        .join(FilePlanItem, FilePlanItem.id == File.plan_item_id)
        .join(DocumentVersion, (DocumentVersion.document_id == Document.id)
              & (DocumentVersion.number == Document.current_version))
        .outerjoin(InboundItem, InboundItem.filed_document_id == Document.id)
        .where(File.status == "open", DocumentVersion.mime_type != "message/rfc822",
               DocumentVersion.ocr_text.is_not(None))
        .order_by(Document.created_at.desc())
        .limit(limit)
    )
    return session.execute(stmt).all()
