"""Use cases of the inbox: receive post, list and show items, file them, re-queue them.

Receiving stores the original bytes first (key `inbox/<item id>/original`) and only then
commits the row, so an item never exists without its bytes. Filing copies the searchable PDF
to the document's own key and records document, version and item state in one transaction,
with ids derived from the item id: a retried filing writes the same key and the same rows, so
an item ends up as exactly one document.
"""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

from sqlalchemy.orm import Session

from eakte.audit.service import record
from eakte.auth.principal import Permission, Principal, Role
from eakte.db import unit_of_work, utcnow
from eakte.documents import service as documents
from eakte.documents.models import Document, DocumentKind, DocumentSource
from eakte.documents.schemas import DocumentMeta
from eakte.errors import Conflict, NotFound, PayloadTooLarge
from eakte.files import service as files
from eakte.files.models import File
from eakte.guards import require
from inbox import repository
from inbox.models import InboundItem, InboundPart, ItemSource, ItemState
from inbox.text import storable
from storage import BlobStore, BlobTooLarge, copy_blob

log = logging.getLogger(__name__)

ITEM_NAMESPACE = uuid.UUID("6f1d8f7e-2b9c-4d52-9a51-0c3e4f5a6b7c")
PREVIEW_CHARS = 600
MAIL_TYPE = "message/rfc822"


@dataclass(frozen=True)
class StoredOriginal:
    """An item's original bytes in the blob store, before its row exists."""

    item_id: uuid.UUID
    key: str
    size: int
    sha256: str


def original_key(item_id: uuid.UUID) -> str:
    """Blob key of an item's original bytes."""
    return f"inbox/{item_id}/original"


def ocr_key(item_id: uuid.UUID) -> str:
    """Blob key of an item's searchable PDF."""
    return f"inbox/{item_id}/ocr.pdf"


def store_original(
    store: BlobStore, stream: BinaryIO | io.RawIOBase, *, max_size: int
) -> StoredOriginal:
    """Stream the original bytes into the store; only oversize is refused here.

    Empty or damaged content is accepted: the pipeline quarantines it with a reason a person
    can act on, and the bytes stay retrievable.
    """
    item_id = uuid.uuid4()
    key = original_key(item_id)
    buffered = io.BufferedReader(stream, 1024 * 1024) if isinstance(stream, io.RawIOBase) \
        else stream
    try:
        result = store.put(key, buffered, max_size=max_size, new_key=True)
    except BlobTooLarge:
        raise PayloadTooLarge(f"the upload exceeds the limit of {max_size} bytes") from None
    return StoredOriginal(item_id, key, result.size, result.sha256)


def record_item(
    session: Session,
    principal: Principal,
    stored: StoredOriginal,
    *,
    source: ItemSource,
    original_name: str | None,
    source_ref: str | None = None,
) -> InboundItem:
    """Create the item row for stored bytes; the pipeline takes it from here."""
    require(principal, Permission.INBOX_SUBMIT)
    item = InboundItem(
        id=stored.item_id,
        source=source.value,
        source_ref=source_ref,
        received_by=principal.subject,
        original_key=stored.key,
        original_sha256=stored.sha256,
        original_size=stored.size,
        original_name=documents.clean_filename(original_name),
        state=ItemState.RECEIVED.value,
        next_attempt_at=utcnow(),
    )
    session.add(item)
    session.flush()
    record(session, principal, "inbox.received", "inbound_item", item.id, source=source.value,
           sha256=stored.sha256, size=stored.size)
    return item


def quarantine_at_intake(
    session: Session, principal: Principal, item: InboundItem, reason: str
) -> None:
    """Quarantine an item as it is received: its source could not take it in as usual.

    The item keeps what the source has (the whole mail, or only its header), and the reason
    says what is missing and where the rest is, so a person can act on it.
    """
    item.state = ItemState.QUARANTINED.value
    item.quarantine_reason = storable(reason)
    item.lease_owner = item.lease_expires_at = None
    session.flush()
    record(session, principal, "inbox.quarantined", "inbound_item", item.id,
           step=ItemState.RECEIVED.value, reason=item.quarantine_reason)


def get_item(session: Session, principal: Principal, item_id: uuid.UUID) -> InboundItem:
    """One inbound item (mailroom and admins)."""
    require(principal, Permission.INBOX_READ)
    item = session.get(InboundItem, item_id)
    if item is None:
        raise NotFound(f"inbound item {item_id} does not exist")
    return item


def list_items(
    session: Session, principal: Principal, state: ItemState | None, limit: int, offset: int
) -> Sequence[InboundItem]:
    """Inbound items, newest first."""
    require(principal, Permission.INBOX_READ)
    return repository.by_state(session, state.value if state else None, limit, offset)


def read_original(session: Session, principal: Principal, item_id: uuid.UUID) -> InboundItem:
    """Authorise and audit a read of an item's original bytes."""
    item = get_item(session, principal, item_id)
    if item.state == ItemState.FILED.value:
        raise Conflict(f"item {item_id} is filed; read its document instead")
    record(session, principal, "inbox.original_read", "inbound_item", item.id)
    return item


def requeue(session: Session, principal: Principal, item_id: uuid.UUID) -> InboundItem:
    """Send a quarantined item through the pipeline again, from the start (admin)."""
    require(principal, Permission.INBOX_REQUEUE)
    item = repository.locked(session, item_id)
    if item is None:
        raise NotFound(f"inbound item {item_id} does not exist")
    if item.state != ItemState.QUARANTINED.value:
        raise Conflict(f"item {item_id} is {item.state}; only quarantined items can be re-queued")
    reason = item.quarantine_reason
    item.state = ItemState.RECEIVED.value
    item.attempts = 0
    item.next_attempt_at = utcnow()
    item.lease_owner = item.lease_expires_at = None
    item.quarantine_reason = item.last_error = None
    session.flush()
    record(session, principal, "inbox.requeued", "inbound_item", item.id, reason=reason)
    return item


def filing_ids(item_id: uuid.UUID) -> tuple[uuid.UUID, uuid.UUID]:
    """The document and version ids an item becomes; fixed, so filing twice is impossible."""
    return (uuid.uuid5(ITEM_NAMESPACE, f"{item_id}/document"),
            uuid.uuid5(ITEM_NAMESPACE, f"{item_id}/version/1"))


def prepare_content(store: BlobStore, item: InboundItem) -> documents.StoredContent:
    """Copy the item's searchable PDF (or its original) to the document's blob key."""
    document_id, version_id = filing_ids(item.id)
    key = documents.blob_key(document_id, version_id)
    source = item.ocr_key or item.original_key
    result = copy_blob(store, source, store, key)
    pdf_name = item.original_name
    if item.ocr_key and pdf_name and not pdf_name.lower().endswith(".pdf"):
        pdf_name = pdf_name.rsplit(".", 1)[0] + ".pdf"
    return documents.StoredContent(
        document_id=document_id,
        version_id=version_id,
        key=key,
        size=result.size,
        sha256=result.sha256,
        mime_type="application/pdf" if item.ocr_key else (item.mime_type or
                                                         "application/octet-stream"),
        original_name=pdf_name,
        ocr_text=item.ocr_text,
        page_count=item.page_count,
    )


@dataclass(frozen=True)
class PreparedDocument:
    """Content copied to its document key, with what the document will be called."""

    content: documents.StoredContent
    title: str | None = None
    kind: DocumentKind | None = None  # None: the kind chosen for the whole item


def is_mail(item: InboundItem) -> bool:
    """Whether the item is an e-mail (its parts become the documents)."""
    return item.mime_type == MAIL_TYPE


def part_key(item_id: uuid.UUID, position: int) -> str:
    """Blob key of an e-mail part while it waits in the inbox."""
    return f"inbox/{item_id}/parts/{position}"


def part_filing_ids(item_id: uuid.UUID, position: int) -> tuple[uuid.UUID, uuid.UUID]:
    """The document and version ids part `position` of an e-mail becomes."""
    return (uuid.uuid5(ITEM_NAMESPACE, f"{item_id}/part/{position}/document"),
            uuid.uuid5(ITEM_NAMESPACE, f"{item_id}/part/{position}/version/1"))


def item_parts(session: Session, item_id: uuid.UUID) -> list[InboundPart]:
    """An e-mail item's parts in order, detached so they can be used outside the session."""
    parts = list(repository.parts_of(session, item_id))
    for part in parts:
        session.expunge(part)
    return parts


def prepare_documents(
    store: BlobStore, item: InboundItem, parts: Sequence[InboundPart]
) -> list[PreparedDocument]:
    """Copy what an item becomes to its documents' keys: one scan, or every part of a mail.

    A mail's original .eml is filed as its last document, so the message as it arrived (with
    its headers and signatures) stays in the file after the inbox copies are dropped.
    """
    if not is_mail(item):
        invoice = invoice_of(item)
        return [PreparedDocument(prepare_content(store, item),
                                 title=invoice_title(invoice) if invoice else None,
                                 kind=DocumentKind.INVOICE if invoice else None)]
    prepared: list[PreparedDocument] = []
    for part in parts:
        prepared.append(PreparedDocument(
            _copy(store, item.id, part.position, part.key, part.mime_type, part.name,
                  part.text, part.page_count),
            title=_part_title(item, part),
            kind=DocumentKind(part_kind) if (part_kind := _part_kind(item, part)) else None,
        ))
    position = max((p.position for p in parts), default=-1) + 1
    prepared.append(PreparedDocument(
        _copy(store, item.id, position, item.original_key, MAIL_TYPE,
              item.original_name or "nachricht.eml", None, None),
        title=f"E-Mail (Original): {item.subject or item.original_name or 'ohne Betreff'}"[:500],
    ))
    return prepared


def _copy(store: BlobStore, item_id: uuid.UUID, position: int, source: str, mime: str,
          name: str, text: str | None, pages: int | None) -> documents.StoredContent:
    document_id, version_id = part_filing_ids(item_id, position)
    key = documents.blob_key(document_id, version_id)
    result = copy_blob(store, source, store, key)
    return documents.StoredContent(
        document_id=document_id, version_id=version_id, key=key, size=result.size,
        sha256=result.sha256, mime_type=mime,
        original_name=documents.clean_filename(name.rsplit(" / ", 1)[-1]),
        ocr_text=text, page_count=pages,
    )


def invoice_of(item: InboundItem, position: int = 0) -> dict[str, Any] | None:
    """The e-invoice found in a part (or in a single-document item at 0), if any."""
    found = (item.invoices or {}).get(str(position))
    return found if isinstance(found, dict) else None


def _part_title(item: InboundItem, part: InboundPart) -> str:
    invoice = invoice_of(item, part.position)
    if invoice is not None:
        return invoice_title(invoice)
    if part.role == "body" and " / " not in part.name:
        return (item.subject or "E-Mail ohne Betreff")[:500]
    return part.name.rsplit(".", 1)[0][:500] or "Anhang"


def _part_kind(item: InboundItem, part: InboundPart) -> str | None:
    return DocumentKind.INVOICE.value if invoice_of(item, part.position) else None


def invoice_title(invoice: dict[str, Any]) -> str:
    """`Rechnung <number> von <seller>` from an invoice's stored fields."""
    title = f"Rechnung {invoice.get('number') or 'ohne Nummer'}"
    return (f"{title} von {invoice['seller']}" if invoice.get("seller") else title)[:500]


def worker_principal(file: File) -> Principal:
    """The pipeline's identity when it files into `file`: the mailroom of that file's unit."""
    return Principal(subject="inbox-worker", roles=frozenset({Role.MAILROOM}),
                     units=frozenset({file.unit_code}), kind="system")


def file_item(
    session: Session,
    principal: Principal,
    item_id: uuid.UUID,
    file_id: uuid.UUID,
    prepared: Sequence[PreparedDocument],
    *,
    process_id: uuid.UUID | None = None,
    title: str | None = None,
    kind: DocumentKind = DocumentKind.INCOMING,
    method: str,
) -> Document:
    """File an item into a file as one or more documents; the item ends `filed`.

    Everything an item becomes is recorded in this one transaction, so a mail is never
    half filed. Returns the first document (the scan, or the body of a mail).
    """
    item = repository.locked(session, item_id)
    if item is None:
        raise NotFound(f"inbound item {item_id} does not exist")
    if item.state == ItemState.FILED.value:
        raise Conflict(f"item {item_id} is filed already")
    if item.state not in (ItemState.CLASSIFIED.value, ItemState.TRIAGE.value):
        raise Conflict(f"item {item_id} is {item.state}; it cannot be filed yet")
    if not prepared:
        raise Conflict(f"item {item_id} has nothing to file")
    mail = is_mail(item)
    filed: list[Document] = []
    for index, document_in in enumerate(prepared):
        meta = DocumentMeta(
            title=(title if index == 0 and title else document_in.title) or _title(item),
            kind=document_in.kind or kind,
            source=DocumentSource.EMAIL if mail or item.source == ItemSource.EMAIL.value
            else DocumentSource.SCAN,
            process_id=process_id,
            received_at=item.received_at,
            sender_contact_id=_sender_contact(item),
        )
        document, _ = documents.add_document(session, principal, file_id, meta,
                                             document_in.content)
        filed.append(document)
    item.state = ItemState.FILED.value
    item.filed_document_id = filed[0].id
    item.filed_at = utcnow()
    item.lease_owner = item.lease_expires_at = None
    session.flush()
    record(session, principal, "inbox.filed", "inbound_item", item.id,
           document_id=str(filed[0].id), documents=[str(d.id) for d in filed],
           file_id=str(file_id), method=method)
    return filed[0]


def _sender_contact(item: InboundItem) -> uuid.UUID | None:
    contact = (item.classification or {}).get("sender_contact_id")
    return uuid.UUID(str(contact)) if contact else None


def check_assignable(
    session: Session, principal: Principal, item_id: uuid.UUID, file_id: uuid.UUID
) -> InboundItem:
    """Authorise a triage assignment before any content is copied."""
    require(principal, Permission.INBOX_ASSIGN)
    item = get_item(session, principal, item_id)
    if item.state != ItemState.TRIAGE.value:
        raise Conflict(f"item {item_id} is {item.state}; only items in triage can be assigned")
    files.get_writable_file(session, principal, file_id, Permission.DOCUMENT_WRITE)
    return item


def drop_inbox_copies(factory: Callable[[], Session], store: BlobStore, item_id: uuid.UUID) -> None:
    """Delete a filed item's inbox blobs; its document holds the content now (best effort)."""
    with unit_of_work(factory) as session:
        item = session.get(InboundItem, item_id)
        if item is None or item.state != ItemState.FILED.value:
            return
        keys = [k for k in (item.original_key, item.ocr_key) if k]
        keys += [part.key for part in repository.parts_of(session, item_id)]
    for key in keys:
        try:
            store.delete(key)
        except Exception:
            log.warning("could not delete %s of filed item %s", key, item_id, exc_info=True)


def _title(item: InboundItem) -> str:
    if item.original_name:
        return item.original_name.rsplit(".", 1)[0][:500] or "Posteingang"
    return f"Posteingang vom {item.received_at:%d.%m.%Y}"


def preview(item: InboundItem) -> str | None:
    """The start of the OCR text, for the triage list."""
    if not item.ocr_text:
        return None
    text = " ".join(item.ocr_text.split())
    return text[:PREVIEW_CHARS] + ("…" if len(text) > PREVIEW_CHARS else "")
