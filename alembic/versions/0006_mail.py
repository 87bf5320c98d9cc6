"""E-mail intake: parts of inbound items, IMAP receipts, sender and warnings of an item.

Revision ID: 0006_mail
Revises: 0005_outgoing
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0006_mail"
down_revision: str | None = "0005_outgoing"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("inbound_items") as batch_op:
        batch_op.add_column(sa.Column("subject", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("sender_address", sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column("sender_name", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("warnings", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("invoices", sa.JSON(), nullable=True))

    op.create_table(
        "inbound_parts",
        sa.Column("item_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=500), nullable=False),
        sa.Column("mime_type", sa.String(length=200), nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("page_count", sa.Integer(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["inbound_items.id"], ondelete="CASCADE",
                                name=op.f("fk_inbound_parts_item_id_inbound_items")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_parts")),
        sa.UniqueConstraint("item_id", "position", name=op.f("uq_inbound_parts_item_id")),
    )
    with op.batch_alter_table("inbound_parts") as batch_op:
        batch_op.create_index(batch_op.f("ix_inbound_parts_item_id"), ["item_id"])

    op.create_table(
        "mail_receipts",
        sa.Column("mailbox", sa.String(length=500), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("uid", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.String(length=1000), nullable=False),
        sa.Column("item_id", sa.Uuid(), nullable=True),
        sa.Column("received_at", TS, nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["inbound_items.id"], ondelete="SET NULL",
                                name=op.f("fk_mail_receipts_item_id_inbound_items")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_receipts")),
        sa.UniqueConstraint("mailbox", "uidvalidity", "uid",
                            name=op.f("uq_mail_receipts_mailbox")),
    )
    with op.batch_alter_table("mail_receipts") as batch_op:
        batch_op.create_index(batch_op.f("ix_mail_receipts_message_id"), ["message_id"])


def downgrade() -> None:
    op.drop_table("mail_receipts")
    op.drop_table("inbound_parts")
    with op.batch_alter_table("inbound_items") as batch_op:
        batch_op.drop_column("invoices")
        batch_op.drop_column("warnings")
        batch_op.drop_column("sender_name")
        batch_op.drop_column("sender_address")
        batch_op.drop_column("subject")
