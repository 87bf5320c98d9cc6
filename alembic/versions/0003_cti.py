"""CTI bridge: phone extensions and the clerks who answer them.

Revision ID: 0003_cti
Revises: 0002_inbox
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0003_cti"
down_revision: str | None = "0002_inbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cti_extensions",
        sa.Column("extension", sa.String(length=40), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("units", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cti_extensions")),
        sa.UniqueConstraint("extension", name=op.f("uq_cti_extensions_extension")),
    )
    with op.batch_alter_table("cti_extensions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cti_extensions_subject"), ["subject"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("cti_extensions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cti_extensions_subject"))
    op.drop_table("cti_extensions")
