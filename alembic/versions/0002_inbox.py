"""Inbound items, and full-text search over document titles and OCR text.

PostgreSQL searches with the German text-search configuration through a stored tsvector
column of the OCR text and an expression index on titles, both GIN; SQLite (embedded mode) keeps an FTS5 table filled by triggers.

Revision ID: 0002_inbox
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op
from eakte.search.fts import create_sqlite_index, drop_sqlite_triggers

revision: str = "0002_inbox"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "inbound_items",
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("source_ref", sa.String(length=1000), nullable=True),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("received_by", sa.String(length=200), nullable=False),
        sa.Column("original_key", sa.String(length=300), nullable=False),
        sa.Column("original_sha256", sa.String(length=64), nullable=False),
        sa.Column("original_size", sa.BigInteger(), nullable=False),
        sa.Column("original_name", sa.String(length=500), nullable=True),
        sa.Column("mime_type", sa.String(length=200), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("lease_owner", sa.String(length=100), nullable=True),
        sa.Column("lease_expires_at", TS, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("quarantine_reason", sa.Text(), nullable=True),
        sa.Column("ocr_key", sa.String(length=300), nullable=True),
        sa.Column("ocr_sha256", sa.String(length=64), nullable=True),
        sa.Column("ocr_size", sa.BigInteger(), nullable=True),
        sa.Column("ocr_text", sa.Text(), nullable=True),
        sa.Column("page_count", sa.Integer(), nullable=True),
        sa.Column("classification", sa.JSON(), nullable=True),
        sa.Column("filed_document_id", sa.Uuid(), nullable=True),
        sa.Column("filed_at", TS, nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["filed_document_id"], ["documents.id"],
                                name=op.f("fk_inbound_items_filed_document_id_documents")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_items")),
    )
    with op.batch_alter_table("inbound_items") as batch_op:
        batch_op.create_index("ix_inbound_items_state_next", ["state", "next_attempt_at"])
        batch_op.create_index(batch_op.f("ix_inbound_items_original_sha256"),
                              ["original_sha256"])

    if op.get_bind().dialect.name == "postgresql":
        # A stored tsvector: ranking reads it instead of parsing every matching text again.
        op.execute(
            "ALTER TABLE document_versions ADD COLUMN ocr_tsv tsvector GENERATED ALWAYS AS "
            "(to_tsvector('german', coalesce(ocr_text, ''))) STORED"
        )
        op.execute(
            "CREATE INDEX ix_document_versions_ocr_tsv ON document_versions USING gin (ocr_tsv)"
        )
        op.execute(
            "CREATE INDEX ix_documents_title_fts ON documents "
            "USING gin (to_tsvector('german', title))"
        )
    else:
        create_sqlite_index(op.get_bind())


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_documents_title_fts")
        op.execute("DROP INDEX IF EXISTS ix_document_versions_ocr_tsv")
        op.execute("ALTER TABLE document_versions DROP COLUMN IF EXISTS ocr_tsv")
    else:
        drop_sqlite_triggers(op.get_bind())
        op.execute("DROP TABLE IF EXISTS document_search")
    op.drop_table("inbound_items")
