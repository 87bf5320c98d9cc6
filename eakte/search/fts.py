"""SQLite's full-text index (FTS5) and the triggers that keep it current.

SQLite cannot alter most table properties, so Alembic's batch mode recreates a table to
change it (create a copy, drop the old one, rename). A trigger that names a table in its body
makes that rename fail, and a table's own triggers vanish with the dropped original. The
triggers are therefore taken down before migrations run and put back afterwards
(alembic/env.py), from the one definition here that migration 0002 also uses.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

TRIGGERS = {
    "document_search_version": (
        "CREATE TRIGGER IF NOT EXISTS document_search_version AFTER INSERT ON document_versions "
        "BEGIN INSERT INTO document_search (document_id, version_id, title, body) "
        "SELECT new.document_id, new.id, d.title, coalesce(new.ocr_text, '') "
        "FROM documents d WHERE d.id = new.document_id; END"
    ),
    "document_search_text": (
        "CREATE TRIGGER IF NOT EXISTS document_search_text AFTER UPDATE OF ocr_text "
        "ON document_versions BEGIN UPDATE document_search SET body = coalesce(new.ocr_text, '') "
        "WHERE version_id = new.id; END"
    ),
    "document_search_title": (
        "CREATE TRIGGER IF NOT EXISTS document_search_title AFTER UPDATE OF title ON documents "
        "BEGIN UPDATE document_search SET title = new.title WHERE document_id = new.id; END"
    ),
    "document_search_forget": (
        "CREATE TRIGGER IF NOT EXISTS document_search_forget AFTER DELETE ON document_versions "
        "BEGIN DELETE FROM document_search WHERE version_id = old.id; END"
    ),
}

CREATE_TABLE = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS document_search USING fts5("
    "document_id UNINDEXED, version_id UNINDEXED, title, body, "
    "tokenize = 'unicode61 remove_diacritics 2')"
)


def _has_index(connection: Connection) -> bool:
    found = connection.execute(
        text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'document_search'")
    ).first()
    return found is not None


def create_sqlite_index(connection: Connection) -> None:
    """Create the FTS5 table and its triggers (migration 0002)."""
    connection.execute(text(CREATE_TABLE))
    restore_sqlite_triggers(connection)


def drop_sqlite_triggers(connection: Connection) -> None:
    """Take the triggers down before migrations (see the module docstring)."""
    for name in TRIGGERS:
        connection.execute(text(f"DROP TRIGGER IF EXISTS {name}"))


def restore_sqlite_triggers(connection: Connection) -> None:
    """Put the triggers back after migrations, if the index exists at this revision."""
    if _has_index(connection):
        for ddl in TRIGGERS.values():
            connection.execute(text(ddl))
