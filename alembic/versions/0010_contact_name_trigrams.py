"""Contacts: a trigram index for the name search (PostgreSQL).

The name search matches anywhere in the name (`ILIKE '%meier%'`), which a B-tree index
cannot serve: with many contacts every search read the whole table. pg_trgm's GIN index
serves such patterns from three characters on. pg_trgm is a trusted extension (PostgreSQL
13 and later), so the database's owner may create it; where it is missing or may not be
created, the migration says so and leaves the search unindexed, as it was. SQLite keeps
its scan.

Revision ID: 0010_contact_name_trigrams
Revises: 0009_inbox_source_unique
Create Date: 2026-11-23 20:30:00.000000
"""

import logging
from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0010_contact_name_trigrams"
down_revision: str | None = "0009_inbox_source_unique"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")

INDEX = "ix_contacts_name_trgm"

CAN_CREATE = sa.text("""
SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm')
    OR (EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_trgm')
        AND has_database_privilege(current_database(), 'CREATE'))
""")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    if not bind.execute(CAN_CREATE).scalar_one():
        log.warning("pg_trgm is not available to this database user: the contact name "
                    "search stays unindexed. A superuser can add the index later: CREATE "
                    "EXTENSION pg_trgm; CREATE INDEX %s ON contacts USING gin "
                    "(name gin_trgm_ops)", INDEX)
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute(f"CREATE INDEX {INDEX} ON contacts USING gin (name gin_trgm_ops)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # The extension stays: other indexes or the administrator may use it.
        op.execute(f"DROP INDEX IF EXISTS {INDEX}")
