"""Inbox: one item per source place and content (hot folder, import, IMAP).

Revision ID: 0009_inbox_source_unique
Revises: 0008_cti_clearance
Create Date: 2026-11-23 17:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0009_inbox_source_unique"
down_revision: str | None = "0008_cti_clearance"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Two hot-folder pollers may already have recorded one file twice. The later copies keep
# their rows (they may be filed) but get a source_ref of their own, marked as a duplicate
# and naming themselves, so the unique index can be built. Both databases accept `||` and
# substr; the cut leaves room in the 1000 characters for the mark.
MARK_DUPLICATES = sa.text("""
UPDATE inbound_items
SET source_ref = substr(source_ref, 1, 900) || ' (duplicate ' || id || ')'
WHERE source_ref IS NOT NULL AND EXISTS (
    SELECT 1 FROM inbound_items AS earlier
    WHERE earlier.source_ref = inbound_items.source_ref
      AND earlier.original_sha256 = inbound_items.original_sha256
      AND (earlier.received_at < inbound_items.received_at
           OR (earlier.received_at = inbound_items.received_at
               AND earlier.id < inbound_items.id))
)
""")


def upgrade() -> None:
    op.execute(MARK_DUPLICATES)
    # A plain CREATE UNIQUE INDEX: SQLite needs no table copy for it (a batch copy of
    # inbound_items would drop the table its parts and receipts refer to).
    op.create_index("ix_inbound_items_source_ref_sha256", "inbound_items",
                    ["source_ref", "original_sha256"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_inbound_items_source_ref_sha256", table_name="inbound_items")
