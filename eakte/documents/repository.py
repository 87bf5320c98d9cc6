"""SQL of documents and versions."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from eakte.documents.models import Document, DocumentVersion


def documents_of(
    session: Session, file_id: uuid.UUID, limit: int, offset: int
) -> Sequence[Document]:
    """Documents of a file, oldest first."""
    return session.scalars(
        select(Document)
        .where(Document.file_id == file_id)
        .order_by(Document.created_at, Document.id)
        .limit(limit)
        .offset(offset)
    ).all()


def versions_of(session: Session, document_id: uuid.UUID) -> Sequence[DocumentVersion]:
    """All versions of a document by number."""
    return session.scalars(
        select(DocumentVersion)
        .where(DocumentVersion.document_id == document_id)
        .order_by(DocumentVersion.number)
    ).all()


def version(session: Session, document_id: uuid.UUID, number: int) -> DocumentVersion | None:
    """One version of a document."""
    return session.scalar(
        select(DocumentVersion).where(
            DocumentVersion.document_id == document_id, DocumentVersion.number == number
        )
    )


def latest_versions(
    session: Session, documents: Sequence[Document]
) -> dict[uuid.UUID, DocumentVersion]:
    """The current version of each document, in one query."""
    pairs = [(d.id, d.current_version) for d in documents if d.current_version]
    if not pairs:
        return {}
    rows = session.scalars(
        select(DocumentVersion).where(DocumentVersion.document_id.in_([p[0] for p in pairs]))
    ).all()
    wanted = set(pairs)
    return {v.document_id: v for v in rows if (v.document_id, v.number) in wanted}


def all_blob_keys(session: Session, prefix: str) -> set[str]:
    """Every version blob key under a prefix (for the orphan sweeper)."""
    return set(
        session.scalars(
            select(DocumentVersion.blob_key).where(DocumentVersion.blob_key.startswith(prefix))
        )
    )
