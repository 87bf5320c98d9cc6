"""The Alembic migrations build the schema the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Engine

from eakte.models import Base


def test_migrated_schema_matches_the_models(engine: Engine) -> None:
    def include(name: str | None, type_: str, parent_names: object) -> bool:
        # Full-text search lives outside the models: SQLite's FTS5 table (and its shadow
        # tables) and PostgreSQL's tsvector column and GIN indexes, all made in migration 0002,
        # and the trigram index of contact names (0010).
        return not (name or "").startswith(("document_search", "ix_documents_title_fts",
                                              "ix_document_versions_ocr_tsv", "ocr_tsv",
                                              "ix_contacts_name_trgm"))

    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": include})
        diff = compare_metadata(context, Base.metadata)
    assert diff == [], f"models and migrations differ: {diff}"


def test_every_table_exists_after_upgrade(engine: Engine) -> None:
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert "alembic_version" in tables
