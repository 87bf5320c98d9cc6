"""SQL of the backup feature: checksum hints, the audit head, disposal rows to re-apply."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from eakte.audit.models import AuditEvent, AuditHead
from eakte.db import utcnow
from eakte.documents.models import Document, DocumentVersion
from eakte.files.models import File
from inbox.models import InboundItem
from retention.models import DisposalItem, DisposalRecord, DisposalRun, ItemState


def checksum_hints(session: Session) -> dict[str, str]:
    """Blob key -> sha256 as the database recorded it, so a backup need not read a blob to
    learn its content address (it still verifies the hash while copying)."""
    hints = {
        key: sha
        for key, sha in session.execute(select(DocumentVersion.blob_key, DocumentVersion.sha256))
    }
    for key, sha in session.execute(select(InboundItem.original_key, InboundItem.original_sha256)):
        hints[key] = sha
    return hints


def audit_head(session: Session) -> tuple[int, str]:
    """The sequence number and hash of the last audit event."""
    head = session.get(AuditHead, 1)
    return (head.seq, head.hash) if head is not None else (0, "0" * 64)


def audit_event_hash(session: Session, seq: int) -> str | None:
    """The stored hash of one audit event, or None if it does not exist."""
    return session.scalar(select(AuditEvent.hash).where(AuditEvent.seq == seq))


def disposal_records(session: Session) -> Sequence[DisposalRecord]:
    """Every disposal record, oldest first."""
    return session.scalars(select(DisposalRecord).order_by(DisposalRecord.disposed_at)).all()


def disposal_record_ids(session: Session) -> set[uuid.UUID]:
    """The ids of the disposal records the database holds."""
    return set(session.scalars(select(DisposalRecord.id)).all())


def existing_files(session: Session, file_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, File]:
    """The files among `file_ids` that exist, by id."""
    ids = list(file_ids)
    if not ids:
        return {}
    return {f.id: f for f in session.scalars(select(File).where(File.id.in_(ids))).all()}


def blob_keys_of_files(session: Session, file_ids: Iterable[uuid.UUID]) -> set[str]:
    """The blob keys of every version of every document of the files."""
    ids = list(file_ids)
    if not ids:
        return set()
    stmt = (
        select(DocumentVersion.blob_key)
        .join(Document, Document.id == DocumentVersion.document_id)
        .where(Document.file_id.in_(ids))
    )
    return set(session.scalars(stmt).all())


def clear_extracted_text(session: Session, file_id: uuid.UUID) -> None:
    """Drop the OCR text of the file's versions: it is content, like the blobs."""
    session.execute(
        update(DocumentVersion)
        .where(
            DocumentVersion.document_id.in_(
                select(Document.id).where(Document.file_id == file_id).scalar_subquery()
            )
        )
        .values(ocr_text=None)
    )


def run_exists(session: Session, run_id: uuid.UUID) -> bool:
    """True if the disposal run is in the database."""
    return session.get(DisposalRun, run_id) is not None


def row_counts(session: Session, models: Iterable[type]) -> dict[str, int]:
    """Rows per table, for the restore report."""
    counts: dict[str, int] = {}
    for model in models:
        table = model.__table__  # type: ignore[attr-defined]
        counts[table.name] = int(session.scalar(select(func.count()).select_from(table)) or 0)
    return counts


def mark_item_done(session: Session, run_id: uuid.UUID, file_id: uuid.UUID) -> None:
    """Mark a file's item of a disposal run done (a restored run may still show it open)."""
    session.execute(
        update(DisposalItem)
        .where(DisposalItem.run_id == run_id, DisposalItem.file_id == file_id)
        .values(state=ItemState.DONE.value, updated_at=utcnow())
    )
