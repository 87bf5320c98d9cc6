"""CTI bridge: the clearance of the clerk who answers an extension.

Revision ID: 0008_cti_clearance
Revises: 0007_backup
Create Date: 2026-11-30 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0008_cti_clearance"
down_revision: str | None = "0007_backup"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing mappings get the lowest level, so no pop-up shows more than it did before.
    # A literal server default lets SQLite add the NOT NULL column in place.
    with op.batch_alter_table("cti_extensions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "clearance", sa.String(length=20), nullable=False, server_default="normal"
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("cti_extensions", schema=None) as batch_op:
        batch_op.drop_column("clearance")
