"""Outgoing letters, print batches, work items, access grants, principals; paper documents.

Revision ID: 0005_outgoing
Revises: 0004_retention
Create Date: 2026-11-23 09:16:53.478753
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0005_outgoing"
down_revision: str | None = "0004_retention"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "letter_templates",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("body_html", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_letter_templates")),
        sa.UniqueConstraint("name", name=op.f("uq_letter_templates_name")),
    )
    op.create_table(
        "principals",
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("display_name", sa.String(length=300), nullable=True),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("units", sa.JSON(), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("subject", name=op.f("pk_principals")),
    )
    op.create_table(
        "print_batches",
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("letter_count", sa.Integer(), nullable=False),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("posted_by", sa.String(length=200), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_print_batches")),
    )
    op.create_table(
        "letters",
        sa.Column("document_id", sa.Uuid(), nullable=False),
        sa.Column("file_id", sa.Uuid(), nullable=False),
        sa.Column("template_id", sa.Uuid(), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("subject", sa.String(length=500), nullable=False),
        sa.Column("recipient_name", sa.String(length=300), nullable=False),
        sa.Column("recipient_address", sa.Text(), nullable=True),
        sa.Column("recipient_email", sa.String(length=320), nullable=True),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("letter_date", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("approved_by", sa.String(length=200), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("approved_version", sa.Integer(), nullable=True),
        sa.Column("cosigner", sa.String(length=200), nullable=True),
        sa.Column("cosigned_by", sa.String(length=200), nullable=True),
        sa.Column("cosigned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("message_id", sa.String(length=300), nullable=True),
        sa.Column("send_requested_by", sa.String(length=200), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("eml_version", sa.Integer(), nullable=True),
        sa.Column("print_batch_id", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"], ["documents.id"], name=op.f("fk_letters_document_id_documents")
        ),
        sa.ForeignKeyConstraint(["file_id"], ["files.id"], name=op.f("fk_letters_file_id_files")),
        sa.ForeignKeyConstraint(
            ["print_batch_id"],
            ["print_batches.id"],
            name=op.f("fk_letters_print_batch_id_print_batches"),
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["letter_templates.id"],
            name=op.f("fk_letters_template_id_letter_templates"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_letters")),
        sa.UniqueConstraint("document_id", name=op.f("uq_letters_document_id")),
        sa.UniqueConstraint("message_id", name=op.f("uq_letters_message_id")),
    )
    with op.batch_alter_table("letters", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_letters_file_id"), ["file_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_letters_print_batch_id"), ["print_batch_id"], unique=False
        )
        batch_op.create_index(
            "ix_letters_state_next_attempt_at", ["state", "next_attempt_at"], unique=False
        )

    op.create_table(
        "work_items",
        sa.Column("purpose", sa.String(length=20), nullable=False),
        sa.Column("object_type", sa.String(length=30), nullable=False),
        sa.Column("object_id", sa.String(length=64), nullable=False),
        sa.Column("file_id", sa.Uuid(), nullable=True),
        sa.Column("document_id", sa.Uuid(), nullable=True),
        sa.Column("assignee_subject", sa.String(length=200), nullable=True),
        sa.Column("assignee_unit_id", sa.Uuid(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("done_by", sa.String(length=200), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["assignee_unit_id"],
            ["org_units.id"],
            name=op.f("fk_work_items_assignee_unit_id_org_units"),
        ),
        sa.ForeignKeyConstraint(
            ["document_id"], ["documents.id"], name=op.f("fk_work_items_document_id_documents")
        ),
        sa.ForeignKeyConstraint(
            ["file_id"], ["files.id"], name=op.f("fk_work_items_file_id_files")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_items")),
    )
    with op.batch_alter_table("work_items", schema=None) as batch_op:
        batch_op.create_index(
            "ix_work_items_assignee_subject_done_at", ["assignee_subject", "done_at"], unique=False
        )
        batch_op.create_index(
            "ix_work_items_assignee_unit_id_done_at", ["assignee_unit_id", "done_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_work_items_file_id"), ["file_id"], unique=False)

    op.create_table(
        "access_grants",
        sa.Column("file_id", sa.Uuid(), nullable=False),
        sa.Column("unit_code", sa.String(length=32), nullable=True),
        sa.Column("subject", sa.String(length=200), nullable=True),
        sa.Column("work_item_id", sa.Uuid(), nullable=True),
        sa.Column("granted_by", sa.String(length=200), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["file_id"], ["files.id"], name=op.f("fk_access_grants_file_id_files")
        ),
        sa.ForeignKeyConstraint(
            ["work_item_id"],
            ["work_items.id"],
            name=op.f("fk_access_grants_work_item_id_work_items"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_grants")),
    )
    with op.batch_alter_table("access_grants", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_access_grants_file_id"), ["file_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_access_grants_subject"), ["subject"], unique=False)
        batch_op.create_index(batch_op.f("ix_access_grants_unit_code"), ["unit_code"], unique=False)

    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("paper_location", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("paper_box", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("paper_borrowed_by", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("paper_scanned_version", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("paper_destroy_after", sa.DateTime(timezone=True), nullable=True)
        )
        # A literal default ('0' reads as false on both databases): an expression default
        # would make SQLite's batch mode copy the table, which fails once migration 0002's
        # search triggers name `documents`.
        batch_op.add_column(
            sa.Column("frozen", sa.Boolean(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("documents", schema=None) as batch_op:
        batch_op.drop_column("frozen")
        batch_op.drop_column("paper_destroy_after")
        batch_op.drop_column("paper_scanned_version")
        batch_op.drop_column("paper_borrowed_by")
        batch_op.drop_column("paper_box")
        batch_op.drop_column("paper_location")

    with op.batch_alter_table("access_grants", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_access_grants_unit_code"))
        batch_op.drop_index(batch_op.f("ix_access_grants_subject"))
        batch_op.drop_index(batch_op.f("ix_access_grants_file_id"))

    op.drop_table("access_grants")
    with op.batch_alter_table("work_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_work_items_file_id"))
        batch_op.drop_index("ix_work_items_assignee_unit_id_done_at")
        batch_op.drop_index("ix_work_items_assignee_subject_done_at")

    op.drop_table("work_items")
    with op.batch_alter_table("letters", schema=None) as batch_op:
        batch_op.drop_index("ix_letters_state_next_attempt_at")
        batch_op.drop_index(batch_op.f("ix_letters_print_batch_id"))
        batch_op.drop_index(batch_op.f("ix_letters_file_id"))

    op.drop_table("letters")
    op.drop_table("print_batches")
    op.drop_table("principals")
    op.drop_table("letter_templates")
