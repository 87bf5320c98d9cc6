"""Use cases of documents and their immutable versions.

A large upload is two steps: the content goes to the blob store first (no database
transaction is open while gigabytes stream), then one transaction records the
document and version rows. A small one, received whole (`prepare_content`), is
written while its transaction records it, and the commit waits for the blob. If the
transaction fails before its commit the blob is deleted; anything a crash or a commit of
unknown outcome leaves behind is removed by the orphan sweeper.
"""

from __future__ import annotations

import hashlib
import io
import logging
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import PurePosixPath, PureWindowsPath
from typing import BinaryIO

import magic
from sqlalchemy.orm import Session

from eakte.audit.service import record
from eakte.auth.principal import Permission, Principal
from eakte.contacts.models import Contact
from eakte.db import first_lock
from eakte.documents import repository
from eakte.documents.models import Document, DocumentVersion
from eakte.documents.schemas import DocumentMeta, DocumentUpdate, PaperDocumentCreate, PaperUpdate
from eakte.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    RangeNotSatisfiable,
)
from eakte.files import service as files
from eakte.files.models import File, Process
from eakte.guards import require
from storage import BlobStore, BlobTooLarge, PutResult, StorageError

log = logging.getLogger(__name__)

MAGIC_HEAD = 8192


@dataclass(frozen=True)
class StoredContent:
    """Content written to the blob store, not yet recorded in the database."""

    document_id: uuid.UUID
    version_id: uuid.UUID
    key: str
    size: int
    sha256: str
    mime_type: str
    original_name: str | None
    ocr_text: str | None = None
    page_count: int | None = None


class _HeadCapture(io.RawIOBase):
    """Passes a stream through, keeping its first bytes for type detection."""

    def __init__(self, inner: BinaryIO | io.RawIOBase) -> None:
        self._inner = inner
        self.head = bytearray()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = _read_into(self._inner, buffer)
        if len(self.head) < MAGIC_HEAD:
            self.head += buffer[: min(n, MAGIC_HEAD - len(self.head))]
        return n


def _read_into(stream: BinaryIO | io.RawIOBase, buffer: memoryview) -> int:
    """Read into the caller's buffer: straight in where the stream can, else with a copy."""
    if isinstance(stream, io.RawIOBase | io.BufferedIOBase):
        return stream.readinto(buffer) or 0
    data = stream.read(len(buffer))
    buffer[: len(data)] = data
    return len(data)


def blob_key(document_id: uuid.UUID, version_id: uuid.UUID) -> str:
    """Blob key of a version; built from ids only, never from user input."""
    return f"docs/{document_id}/{version_id}"


def clean_filename(name: str | None) -> str | None:
    """The last path segment of a client's file name, without control characters."""
    if not name:
        return None
    base = PureWindowsPath(PurePosixPath(name).name).name
    base = "".join(ch for ch in base if ch.isprintable()).strip()
    return base[:255] or None


def store_content(
    store: BlobStore,
    stream: BinaryIO | io.RawIOBase,
    *,
    max_size: int,
    original_name: str | None,
    document_id: uuid.UUID | None = None,
) -> StoredContent:
    """Stream content into the blob store; refuses empty and oversized content."""
    document_id = document_id or uuid.uuid4()
    version_id = uuid.uuid4()
    key = blob_key(document_id, version_id)
    capture = _HeadCapture(stream)
    try:
        result: PutResult = store.put(
            key, io.BufferedReader(capture, 1024 * 1024), max_size=max_size, new_key=True
        )
    except BlobTooLarge:
        raise PayloadTooLarge(f"the upload exceeds the limit of {max_size} bytes") from None
    if result.size == 0:
        store.delete(key)
        raise InvalidInput("the uploaded file is empty")
    mime = magic.from_buffer(bytes(capture.head), mime=True) or "application/octet-stream"
    return StoredContent(
        document_id,
        version_id,
        key,
        result.size,
        result.sha256,
        mime,
        clean_filename(original_name),
    )


def prepare_content(
    data: bytes, *, max_size: int, original_name: str | None, document_id: uuid.UUID | None = None
) -> StoredContent:
    """Describe content received whole, before it is stored (see `store_prepared`)."""
    if not data:
        raise InvalidInput("the uploaded file is empty")
    if len(data) > max_size:
        raise PayloadTooLarge(f"the upload exceeds the limit of {max_size} bytes")
    document_id = document_id or uuid.uuid4()
    version_id = uuid.uuid4()
    return StoredContent(
        document_id,
        version_id,
        blob_key(document_id, version_id),
        len(data),
        hashlib.sha256(data).hexdigest(),
        magic.from_buffer(data[:MAGIC_HEAD], mime=True) or "application/octet-stream",
        clean_filename(original_name),
    )


def store_prepared(store: BlobStore, content: StoredContent, data: bytes) -> None:
    """Write content described by `prepare_content` to the blob store."""
    result = store.put_bytes(content.key, data, content.sha256, new_key=True)
    if (result.size, result.sha256) != (content.size, content.sha256):
        store.delete(content.key)
        raise StorageError(f"the store returned other bytes for {content.key}")


def discard_content(store: BlobStore, content: StoredContent) -> None:
    """Remove content whose database rows were not written."""
    try:
        store.delete(content.key)
    except Exception:
        # Not lost: the orphan sweeper removes it after the grace period.
        log.warning(
            "could not delete unrecorded blob %s; the sweeper will", content.key, exc_info=True
        )


def _new_version(
    session: Session, principal: Principal, document: Document, content: StoredContent
) -> DocumentVersion:
    version = DocumentVersion(
        id=content.version_id,
        document_id=document.id,
        number=document.current_version + 1,
        blob_key=content.key,
        sha256=content.sha256,
        size=content.size,
        mime_type=content.mime_type,
        original_name=content.original_name,
        created_by=principal.subject,
        ocr_text=content.ocr_text,
        page_count=content.page_count,
    )
    document.current_version = version.number
    session.add(version)
    session.flush()
    record(
        session,
        principal,
        "version.created",
        "document",
        document.id,
        version=version.number,
        sha256=version.sha256,
        size=version.size,
    )
    return version


def _check_process(session: Session, file: File, process_id: uuid.UUID | None) -> None:
    """A document's process, if it names one, must belong to the document's file."""
    if process_id is None:
        return
    process = session.get(Process, process_id)
    if process is None or process.file_id != file.id:
        raise InvalidInput(f"process {process_id} is not part of file {file.reference}")


def check_can_add(
    session: Session, principal: Principal, file_id: uuid.UUID, *, lock: bool = False
) -> File:
    """Authorise adding documents to a file before any content is accepted."""
    return files.get_writable_file(
        session, principal, file_id, Permission.DOCUMENT_WRITE, lock=lock
    )


def add_document(
    session: Session,
    principal: Principal,
    file_id: uuid.UUID,
    meta: DocumentMeta,
    content: StoredContent,
) -> tuple[Document, DocumentVersion]:
    """Record a new document with its first version in a file."""
    # Locked so that closing the file cannot miss this version's Object Lock.
    file = check_can_add(session, principal, file_id, lock=True)
    _check_process(session, file, meta.process_id)
    if meta.sender_contact_id is not None and session.get(Contact, meta.sender_contact_id) is None:
        raise InvalidInput(f"contact {meta.sender_contact_id} does not exist")
    document = Document(
        id=content.document_id,
        file_id=file.id,
        process_id=meta.process_id,
        title=meta.title or content.original_name or "Dokument",
        kind=meta.kind.value,
        source=meta.source.value,
        received_at=meta.received_at,
        sender_contact_id=meta.sender_contact_id,
        created_by=principal.subject,
        current_version=0,  # the first version below makes it 1
    )
    # Flushed together with the version (ids are made here, not by the database): one
    # INSERT of the document carries the current_version the version sets.
    session.add(document)
    files.touch(file)
    record(
        session,
        principal,
        "document.created",
        "document",
        document.id,
        file_id=str(file.id),
        title=document.title,
    )
    version = _new_version(session, principal, document, content)
    return document, version


def get_document(
    session: Session,
    principal: Principal,
    document_id: uuid.UUID,
    permission: Permission = Permission.DOCUMENT_READ,
) -> Document:
    """A document of a visible file."""
    require(principal, permission)
    document = session.get(Document, document_id)
    if document is None:
        raise NotFound(f"document {document_id} does not exist")
    try:
        files.get_file(session, principal, document.file_id)
    except NotFound:
        raise NotFound(f"document {document_id} does not exist") from None
    return document


def read_document(
    session: Session, principal: Principal, document_id: uuid.UUID
) -> tuple[Document, DocumentVersion | None]:
    """A document's metadata and current version; the read is audited."""
    document = get_document(session, principal, document_id)
    record(session, principal, "document.read", "document", document.id)
    return document, repository.version(session, document.id, document.current_version)


def check_can_add_version(
    session: Session, principal: Principal, document_id: uuid.UUID, *, lock: bool = False
) -> Document:
    """Authorise a new version before any content is accepted.

    With `lock`, the file's row and then the document's are locked (a file's row always
    before its documents'), and the document is read again under its lock: a letter's
    approval (which freezes it) or a scan committed meanwhile is seen, and concurrent
    versions get distinct numbers (the unique (document_id, number) constraint backs this).
    """
    document = get_document(session, principal, document_id, Permission.DOCUMENT_WRITE)
    files.get_writable_file(
        session, principal, document.file_id, Permission.DOCUMENT_WRITE, lock=lock
    )
    if lock and first_lock(session, "documents", document.id):
        session.refresh(document, with_for_update=True)
    if document.frozen:
        raise Conflict(f"document {document.id} is frozen (an approved letter); it cannot change")
    return document


def add_version(
    session: Session, principal: Principal, document_id: uuid.UUID, content: StoredContent
) -> tuple[Document, DocumentVersion]:
    """Record a new version of a document."""
    # Locked: closing the file and this version serialise, as do concurrent versions.
    document = check_can_add_version(session, principal, document_id, lock=True)
    version = _new_version(session, principal, document, content)
    files.touch(session.get_one(File, document.file_id))
    return document, version


def update_document(
    session: Session, principal: Principal, document_id: uuid.UUID, data: DocumentUpdate
) -> Document:
    """Change a document's title, kind or process."""
    document = get_document(session, principal, document_id, Permission.DOCUMENT_WRITE)
    file = files.get_writable_file(session, principal, document.file_id, Permission.DOCUMENT_WRITE)
    changes = data.model_dump(exclude_unset=True)
    _check_process(session, file, changes.get("process_id"))
    for name, value in changes.items():
        setattr(document, name, value.value if hasattr(value, "value") else value)
    files.touch(file)
    session.flush()
    record(
        session,
        principal,
        "document.updated",
        "document",
        document.id,
        changes={k: str(v) for k, v in changes.items()},
    )
    return document


def list_documents(
    session: Session, principal: Principal, file_id: uuid.UUID, limit: int = 200, offset: int = 0
) -> list[tuple[Document, DocumentVersion | None]]:
    """Documents of a visible file with their current versions; the listing is audited."""
    require(principal, Permission.DOCUMENT_READ)
    files.get_file(session, principal, file_id)
    documents = repository.documents_of(session, file_id, limit, offset)
    latest = repository.latest_versions(session, documents)
    record(session, principal, "file.documents_listed", "file", file_id, count=len(documents))
    return [(d, latest.get(d.id)) for d in documents]


def list_versions(
    session: Session, principal: Principal, document_id: uuid.UUID
) -> Sequence[DocumentVersion]:
    """All versions of a document."""
    document = get_document(session, principal, document_id)
    record(session, principal, "document.versions_listed", "document", document.id)
    return repository.versions_of(session, document.id)


def get_version(
    session: Session, principal: Principal, document_id: uuid.UUID, number: int
) -> DocumentVersion:
    """One version's metadata."""
    document = get_document(session, principal, document_id)
    version = repository.version(session, document.id, number)
    if version is None:
        raise NotFound(f"document {document_id} has no version {number}")
    return version


@dataclass(frozen=True)
class ByteRange:
    """An inclusive byte range of a version's content."""

    start: int
    end: int

    @property
    def length(self) -> int:
        """Number of bytes in the range."""
        return self.end - self.start + 1


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """Parse a single-range `Range: bytes=...` header (RFC 9110 section 14.1.2).

    Returns None for no range (or a multi-range request, which we answer in
    full as the RFC allows); raises RangeNotSatisfiable for a range outside.
    """
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        raise RangeNotSatisfiable(f"malformed range {header!r}", size)
    try:
        if first == "":
            suffix = int(last)
            if suffix <= 0:
                raise RangeNotSatisfiable(f"empty suffix range {header!r}", size)
            return ByteRange(max(0, size - suffix), size - 1)
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        raise RangeNotSatisfiable(f"malformed range {header!r}", size) from None
    if start < 0 or start >= size or end < start:
        raise RangeNotSatisfiable(
            f"range {header!r} lies outside the content of {size} bytes", size
        )
    return ByteRange(start, min(end, size - 1))


def open_content(
    session: Session,
    principal: Principal,
    document_id: uuid.UUID,
    number: int,
    byte_range: ByteRange | None,
) -> DocumentVersion:
    """Authorise and audit a content read; the caller then streams the blob."""
    version = get_version(session, principal, document_id, number)
    # Retention: a disposed file's content is destroyed, a transferred one's belongs to the
    # archive now (kept here only until its receipt).
    file = session.get_one(File, session.get_one(Document, document_id).file_id)
    if file.status in ("disposed", "transferred"):
        raise Conflict(f"file {file.reference} was {file.status}; its content is not available")
    details: dict[str, object] = {"version": number}
    if byte_range is not None:
        details["range"] = f"{byte_range.start}-{byte_range.end}"
    record(session, principal, "version.content_read", "document", document_id, **details)
    return version


def stream_content(
    store: BlobStore, version: DocumentVersion, byte_range: ByteRange | None
) -> Iterator[bytes]:
    """The version's bytes (or a range of them), in chunks, from the blob store.

    The blob is opened here, before the response starts, so a missing blob or an
    unreachable store becomes a proper error response instead of a cut-off body.
    """
    start, end = (byte_range.start, byte_range.end) if byte_range else (0, version.size - 1)
    reader = store.open(version.blob_key, start, end)

    def generate() -> Iterator[bytes]:
        with reader:
            yield from reader

    return generate()


def attach_version(
    session: Session, actor: Principal, document: Document, content: StoredContent
) -> DocumentVersion:
    """Record a version the system itself produced (a sent letter's .eml), bypassing the freeze.

    The caller has authorised the use case; the version is audited like any other.
    """
    session.refresh(document, with_for_update=True)
    return _new_version(session, actor, document, content)


def add_paper_document(
    session: Session, principal: Principal, file_id: uuid.UUID, data: PaperDocumentCreate
) -> Document:
    """Record a paper-only document of a hybrid file: what it is and where the paper lies."""
    file = check_can_add(session, principal, file_id)
    _check_process(session, file, data.process_id)
    document = Document(
        file_id=file.id,
        process_id=data.process_id,
        title=data.title,
        kind=data.kind.value,
        source="paper",
        received_at=data.received_at,
        paper_location=data.paper_location,
        paper_box=data.paper_box,
        created_by=principal.subject,
    )
    session.add(document)
    session.flush()
    record(
        session,
        principal,
        "document.created",
        "document",
        document.id,
        file_id=str(file.id),
        title=document.title,
        paper_location=data.paper_location,
        paper_box=data.paper_box,
    )
    files.touch(file)
    return document


def update_paper(
    session: Session, principal: Principal, document_id: uuid.UUID, data: PaperUpdate
) -> Document:
    """Move a paper original or note who has borrowed it."""
    document = get_document(session, principal, document_id, Permission.DOCUMENT_WRITE)
    files.get_writable_file(session, principal, document.file_id, Permission.DOCUMENT_WRITE)
    if document.paper_location is None:
        raise Conflict(f"document {document.id} has no paper original")
    changes = data.model_dump(exclude_unset=True)
    if changes.get("paper_location", "") is None:
        raise InvalidInput("paper_location cannot be removed; the paper lies somewhere")
    for name, value in changes.items():
        setattr(document, name, value)
    session.flush()
    record(session, principal, "document.paper_updated", "document", document.id, **changes)
    return document


def check_can_scan(
    session: Session, principal: Principal, document_id: uuid.UUID, *, lock: bool = False
) -> Document:
    """Authorise attaching a scan to a paper document before any content is accepted."""
    document = check_can_add_version(session, principal, document_id, lock=lock)
    if document.paper_location is None:
        raise Conflict(f"document {document.id} is not a paper document")
    if document.paper_scanned_version is not None:
        raise Conflict(
            f"document {document.id} was scanned already (version {document.paper_scanned_version})"
        )
    return document


def add_scan(
    session: Session,
    principal: Principal,
    document_id: uuid.UUID,
    content: StoredContent,
    keep_paper_days: int,
) -> tuple[Document, DocumentVersion]:
    """Attach a replacing scan (ersetzendes Scannen) as a new version, with its provenance.

    The version keeps who scanned, when and the sha256; the paper original may be
    destroyed from `paper_destroy_after` on.
    """
    document = check_can_scan(session, principal, document_id, lock=True)
    version = _new_version(session, principal, document, content)
    document.paper_scanned_version = version.number
    document.paper_destroy_after = version.created_at + timedelta(days=keep_paper_days)
    session.flush()
    record(
        session,
        principal,
        "document.scanned",
        "document",
        document.id,
        version=version.number,
        sha256=version.sha256,
        scanned_by=principal.subject,
        paper_destroy_after=document.paper_destroy_after.isoformat(),
    )
    files.touch(session.get_one(File, document.file_id))
    return document, version
