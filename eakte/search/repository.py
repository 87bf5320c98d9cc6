"""SQL of full-text search: PostgreSQL's German configuration, or SQLite FTS5."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, column, func, literal_column, select, table, text, union
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.expression import ColumnClause

from eakte.auth.principal import Principal
from eakte.documents.models import Document, DocumentVersion
from eakte.files.models import File
from eakte.files.repository import visible_to

STATEMENT_TIMEOUT_MS = 10_000
GERMAN: ColumnClause[Any] = literal_column("'german'")
# The FTS5 table made by migration 0002 on SQLite; not a model, so described here.
FTS = table("document_search", column("document_id"), column("version_id"), column("title"),
            column("body"))


@dataclass(frozen=True)
class Hit:
    """One document found by a search."""

    document_id: uuid.UUID
    file_id: uuid.UUID
    reference: str
    title: str
    snippet: str
    rank: float


def _fts5_query(query: str) -> str:
    # Every word as a quoted phrase, so user input can never be FTS5 syntax.
    words = [w.replace('"', '""') for w in query.split()]
    return " ".join(f'"{w}"' for w in words if w)


def _postgresql(principal: Principal, query: str, limit: int) -> Any:
    tsquery = func.websearch_to_tsquery(GERMAN, query)
    # The stored tsvector column and the title expression index of migration 0002. Each
    # condition is its own index scan (a UNION, not an OR across the join, which would make
    # PostgreSQL parse every document's text again), ranking reads the stored vectors, and
    # the costly headline is made only for the rows returned.
    ocr_tsv: ColumnClause[Any] = literal_column("document_versions.ocr_tsv")
    title = func.to_tsvector(GERMAN, Document.title)
    matching = union(
        select(DocumentVersion.document_id.label("document_id")).where(
            ocr_tsv.op("@@")(tsquery)
        ),
        select(Document.id.label("document_id")).where(title.op("@@")(tsquery)),
    ).subquery("matching")
    rank = (func.ts_rank(func.coalesce(ocr_tsv, func.to_tsvector(GERMAN, "")), tsquery)
            + 2 * func.ts_rank(title, tsquery)).label("rank")
    best = (
        select(Document.id, Document.file_id, File.reference, Document.title,
               DocumentVersion.id.label("version_id"), rank)
        .join(matching, matching.c.document_id == Document.id)
        .join(File, File.id == Document.file_id)
        .outerjoin(DocumentVersion, and_(DocumentVersion.document_id == Document.id,
                                         DocumentVersion.number == Document.current_version))
        .where(visible_to(principal))
        .order_by(rank.desc(), Document.created_at.desc())
        .limit(limit)
        .subquery("best")
    )
    shown = aliased(DocumentVersion)
    snippet = func.ts_headline(GERMAN, func.coalesce(shown.ocr_text, best.c.title), tsquery,
                               "MaxFragments=2, MaxWords=20, MinWords=5")
    return (
        select(best.c.id, best.c.file_id, best.c.reference, best.c.title, snippet, best.c.rank)
        .outerjoin(shown, shown.id == best.c.version_id)
        .order_by(best.c.rank.desc())
    )


def _sqlite(principal: Principal, query: str, limit: int) -> Any:
    fts_table: ColumnClause[Any] = literal_column("document_search")
    rank = -func.bm25(fts_table, 0, 0, 2.0, 1.0)
    return (
        select(Document.id, Document.file_id, File.reference, Document.title,
               func.snippet(fts_table, 3, "[", "]", " … ", 12), rank)
        .select_from(FTS)
        .join(Document, Document.id == FTS.c.document_id)
        .join(File, File.id == Document.file_id)
        .where(text("document_search MATCH :fts").bindparams(fts=_fts5_query(query)),
               visible_to(principal))
        .order_by(rank.desc())
        # Every version is indexed; fetch extra rows and keep the best one per document.
        .limit(limit * 3)
    )


def search(session: Session, principal: Principal, query: str, limit: int) -> Sequence[Hit]:
    """Documents of visible files whose title or OCR text matches, best first."""
    if session.get_bind().dialect.name == "postgresql":
        # A search must never tie up the database: a pathological query is cut off.
        session.execute(text(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}"))
        stmt = _postgresql(principal, query, limit)
    else:
        if not _fts5_query(query):
            return []
        stmt = _sqlite(principal, query, limit)
    hits: dict[uuid.UUID, Hit] = {}
    for doc_id, file_id, reference, title, snippet, rank in session.execute(stmt):
        doc_id = doc_id if isinstance(doc_id, uuid.UUID) else uuid.UUID(str(doc_id))
        if doc_id not in hits:
            file_id = file_id if isinstance(file_id, uuid.UUID) else uuid.UUID(str(file_id))
            hits[doc_id] = Hit(doc_id, file_id, reference, title, snippet or "", float(rank))
    return list(hits.values())[:limit]
