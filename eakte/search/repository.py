"""SQL of full-text search: PostgreSQL's German configuration, or SQLite FTS5."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Uuid,
    and_,
    any_,
    cast,
    column,
    func,
    literal_column,
    select,
    table,
    text,
    union,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session, aliased
from sqlalchemy.sql.expression import ColumnClause

from eakte.auth.principal import Principal
from eakte.documents.models import Document, DocumentVersion
from eakte.files.models import File
from eakte.files.repository import visible_to

STATEMENT_TIMEOUT_MS = 10_000
# How many matching documents PostgreSQL ranks at most: the newest ones. Ranking reads each
# match's text vector, so a word found in nearly every letter ("Antrag", "Bescheid") would
# otherwise be ranked over the whole archive on every search. Bounding the set is the
# trade-off search engines make (early termination): for such a word the results are the
# best-ranked among the newest matches, which is what a clerk searching for it wants; a
# query with fewer matches (a rare word, a reference token) has every match ranked. Each
# candidate costs a text vector read to find and another to rank (about 10-20 us each on
# bench/search.py's 2 cores). With 500, a phrase of two common words (each candidate's text
# read again for word positions) brought the p95 over 100 ms at 100,000 documents; with
# 250 every query shape stays below it (bench/search.py: p95 76 ms over all shapes).
RANKED_CANDIDATES = 250
# From this estimated share of matching versions on, the newest documents are tested one by
# one until RANKED_CANDIDATES match (about RANKED_CANDIDATES / share tests after sorting the
# visible documents by date); below it, reading every match from the index is cheaper.
WALK_FROM_SHARE = 0.1
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


# The planner's estimate of the versions whose OCR text matches, and of all versions: the
# tsvector statistics ANALYZE keeps say how common each word is (read from EXPLAIN, as
# PostgreSQL's count estimates are), at the cost of planning one scan.
ESTIMATE_MATCHES = text("EXPLAIN (FORMAT JSON) SELECT 1 FROM document_versions "
                        "WHERE ocr_tsv @@ websearch_to_tsquery('german', :query)")
ESTIMATE_VERSIONS = text("SELECT reltuples FROM pg_class "
                         "WHERE oid = 'document_versions'::regclass")


def walks_newest(explained: Any, versions: float) -> bool:
    """True if so many versions match (ESTIMATE_MATCHES' plan) that the search should test
    the newest documents one by one rather than read every match from the index."""
    rows = float(explained[0]["Plan"]["Plan Rows"])
    # Never analysed (no row count yet): nothing to go by, so the share counts as none.
    return (rows / versions if versions > 0 else 0.0) >= WALK_FROM_SHARE


def postgresql_query(principal: Principal, query: str, limit: int, candidates: int,
                     walk: bool) -> Any:
    """The PostgreSQL search statement; `walk` from walks_newest."""
    tsquery = func.websearch_to_tsquery(GERMAN, query)
    # The stored tsvector column and the title expression index of migration 0002.
    title = func.to_tsvector(GERMAN, Document.title)
    columns = (Document.id, Document.created_at, Document.file_id, Document.title,
               Document.current_version)
    # Which documents to rank: the `candidates` newest visible ones whose title or the OCR
    # text of any version matches. Title and text are separate branches (not an OR, which
    # would make PostgreSQL test every document), each with the visibility check inside, so
    # that the bound counts only what the principal may see.
    matched = aliased(DocumentVersion, name="matched")
    matched_tsv: ColumnClause[Any] = literal_column("matched.ocr_tsv")
    if walk:
        # Most documents match: sort the visible documents newest first and test them one
        # by one, stopping after `candidates` matches. OFFSET 0 keeps the test out of the
        # sorted subquery, and a scalar subquery (unlike EXISTS) is never turned into a join,
        # which could read every version's text vector.
        newest = (
            select(*columns)
            .join(File, File.id == Document.file_id)
            .where(visible_to(principal))
            .order_by(Document.created_at.desc(), Document.id)
            .offset(0)
            .subquery("newest")
        )
        found = (
            select(literal_column("1"))
            .select_from(matched)
            .where(matched.document_id == newest.c.id, matched_tsv.op("@@")(tsquery))
            .limit(1)
            .scalar_subquery()
        )
        by_text = (
            select(newest)
            .where(found.is_not(None))
            .order_by(newest.c.created_at.desc(), newest.c.id)
            .limit(candidates)
        )
    else:
        # Few documents match: their ids come from the GIN index, gathered into one array
        # first, so that each is looked up by primary key. As a join, PostgreSQL (assuming
        # hundreds of matches for any word it has no statistics on) would read every
        # document to hash them, even for the one that a reference token names.
        ids = cast(
            select(func.array_agg(matched.document_id))
            .where(matched_tsv.op("@@")(tsquery))
            .scalar_subquery(),
            ARRAY(Uuid),
        )
        by_text = (
            select(*columns)
            .join(File, File.id == Document.file_id)
            .where(Document.id == any_(ids), visible_to(principal))
            .order_by(Document.created_at.desc(), Document.id)
            .limit(candidates)
        )
    by_title = (
        select(*columns)
        .join(File, File.id == Document.file_id)
        .where(title.op("@@")(tsquery), visible_to(principal))
        .order_by(Document.created_at.desc(), Document.id)
        .limit(candidates)
    )
    both = union(by_text, by_title).subquery("matching")
    chosen = (
        select(both)
        .order_by(both.c.created_at.desc(), both.c.id)
        .limit(candidates)
        .subquery("candidates")
    )
    # Ranking reads the stored vectors of the current versions; the costly headline is made
    # only for the rows returned.
    ocr_tsv: ColumnClause[Any] = literal_column("document_versions.ocr_tsv")
    rank = (func.ts_rank(func.coalesce(ocr_tsv, func.to_tsvector(GERMAN, "")), tsquery)
            + 2 * func.ts_rank(func.to_tsvector(GERMAN, chosen.c.title), tsquery)
            ).label("rank")
    best = (
        select(chosen.c.id, chosen.c.file_id, chosen.c.title, chosen.c.created_at,
               DocumentVersion.id.label("version_id"), rank)
        .outerjoin(DocumentVersion,
                   and_(DocumentVersion.document_id == chosen.c.id,
                        DocumentVersion.number == chosen.c.current_version))
        .order_by(rank.desc(), chosen.c.created_at.desc())
        .limit(limit)
        .subquery("best")
    )
    shown = aliased(DocumentVersion)
    snippet = func.ts_headline(GERMAN, func.coalesce(shown.ocr_text, best.c.title), tsquery,
                               "MaxFragments=2, MaxWords=20, MinWords=5")
    return (
        select(best.c.id, best.c.file_id, File.reference, best.c.title, snippet, best.c.rank)
        .join(File, File.id == best.c.file_id)
        .outerjoin(shown, shown.id == best.c.version_id)
        .order_by(best.c.rank.desc(), best.c.created_at.desc())
    )


def _sqlite(principal: Principal, query: str, limit: int) -> Any:
    fts_table: ColumnClause[Any] = literal_column("document_search")
    rank = -func.bm25(fts_table, 0, 0, 2.0, 1.0)
    matches = (
        select(Document.id.label("id"), Document.file_id.label("file_id"),
               File.reference.label("reference"), Document.title.label("title"),
               func.snippet(fts_table, 3, "[", "]", " … ", 12).label("snippet"),
               rank.label("rank"))
        .select_from(FTS)
        .join(Document, Document.id == FTS.c.document_id)
        .join(File, File.id == Document.file_id)
        .where(text("document_search MATCH :fts").bindparams(fts=_fts5_query(query)),
               visible_to(principal))
        # OFFSET keeps SQLite from merging this into the ranking below: FTS5's functions
        # (bm25, snippet) work only in the query that holds the MATCH.
        .offset(0)
        .subquery("matches")
    )
    # Every version is indexed, so a document with many matching versions has many rows;
    # only its best one counts, or it would crowd the other documents out of the limit.
    best = select(
        matches,
        func.row_number().over(partition_by=matches.c.id, order_by=matches.c.rank.desc())
        .label("place"),
    ).subquery("best")
    return (
        select(best.c.id, best.c.file_id, best.c.reference, best.c.title, best.c.snippet,
               best.c.rank)
        .where(best.c.place == 1)
        .order_by(best.c.rank.desc(), best.c.id)
        .limit(limit)
    )


def search(session: Session, principal: Principal, query: str, limit: int,
           candidates: int = RANKED_CANDIDATES) -> Sequence[Hit]:
    """Documents of visible files whose title or OCR text matches, best first.

    On PostgreSQL only the `candidates` newest matching documents are ranked (see
    RANKED_CANDIDATES); SQLite's FTS5 ranks every match.
    """
    if session.get_bind().dialect.name == "postgresql":
        # A search must never tie up the database: a pathological query is cut off.
        session.execute(text(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}"))
        walk = walks_newest(session.execute(ESTIMATE_MATCHES, {"query": query}).scalar_one(),
                            float(session.execute(ESTIMATE_VERSIONS).scalar_one()))
        stmt = postgresql_query(principal, query, limit, candidates, walk)
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
