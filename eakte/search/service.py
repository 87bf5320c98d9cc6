"""Full-text search over document titles and OCR text, limited to visible files."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from eakte.audit.service import record
from eakte.auth.principal import Permission, Principal
from eakte.errors import InvalidInput
from eakte.guards import require
from eakte.search import repository
from eakte.search.repository import Hit


def search(session: Session, principal: Principal, query: str, limit: int = 20) -> Sequence[Hit]:
    """Find documents; the snippets shown are a read, so the search is audited."""
    require(principal, Permission.DOCUMENT_READ)
    # Control characters find nothing and are not text the databases take (a NUL ends an
    # FTS5 string on SQLite; PostgreSQL refuses it in any text).
    query = "".join(ch if ch.isprintable() else " " for ch in query)
    if not query.strip():
        raise InvalidInput("the search query is empty")
    hits = repository.search(session, principal, query, limit)
    record(session, principal, "documents.searched", "search", "-",
           documents=[str(h.document_id) for h in hits])
    return hits
