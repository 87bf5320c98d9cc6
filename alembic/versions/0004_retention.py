"""Retention: holds, disposal runs and items, disposal records, fixity reports.

Revision ID: 0004_retention
Revises: 0003_cti
Create Date: 2026-11-24 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0004_retention"
down_revision: str | None = "0003_cti"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "retention_holds",
        sa.Column("file_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_by", sa.String(length=200), nullable=True),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("release_note", sa.Text(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["file_id"], ["files.id"], name=op.f("fk_retention_holds_file_id_files")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retention_holds")),
    )
    with op.batch_alter_table("retention_holds", schema=None) as batch_op:
        batch_op.create_index(
            "ix_retention_holds_file_id_released_at", ["file_id", "released_at"], unique=False
        )

    op.create_table(
        "disposal_runs",
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("org_units", sa.JSON(), nullable=False),
        sa.Column("proposed_by", sa.String(length=200), nullable=False),
        sa.Column("proposed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("approved_by", sa.String(length=200), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("executed_by", sa.String(length=200), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_disposal_runs")),
    )

    op.create_table(
        "disposal_items",
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("file_id", sa.Uuid(), nullable=False),
        sa.Column("archive_value", sa.String(length=1), nullable=False),
        sa.Column("decision", sa.String(length=1), nullable=True),
        sa.Column("decided_by", sa.String(length=200), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("archive_reference", sa.String(length=200), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["disposal_runs.id"], name=op.f("fk_disposal_items_run_id_disposal_runs")
        ),
        sa.PrimaryKeyConstraint("run_id", "file_id", name=op.f("pk_disposal_items")),
    )
    with op.batch_alter_table("disposal_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_disposal_items_file_id"), ["file_id"], unique=False)

    op.create_table(
        "disposal_records",
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("file_id", sa.Uuid(), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("plan_code", sa.String(length=64), nullable=False),
        sa.Column("plan_title", sa.String(length=300), nullable=False),
        sa.Column("org_unit", sa.String(length=32), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("disposed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("proposed_by", sa.String(length=200), nullable=False),
        sa.Column("approved_by", sa.String(length=200), nullable=False),
        sa.Column("executed_by", sa.String(length=200), nullable=False),
        sa.Column("archive_reference", sa.String(length=200), nullable=True),
        sa.Column("versions", sa.JSON(), nullable=False),
        sa.Column("record_hash", sa.String(length=64), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["disposal_runs.id"],
            name=op.f("fk_disposal_records_run_id_disposal_runs"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_disposal_records")),
        sa.UniqueConstraint("run_id", "file_id", name=op.f("uq_disposal_records_run_id")),
    )
    with op.batch_alter_table("disposal_records", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_disposal_records_file_id"), ["file_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_disposal_records_org_unit"), ["org_unit"], unique=False
        )

    op.create_table(
        "fixity_reports",
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("started_by", sa.String(length=200), nullable=False),
        sa.Column("checked", sa.Integer(), nullable=False),
        sa.Column("bytes_read", sa.BigInteger(), nullable=False),
        sa.Column("mismatches", sa.Integer(), nullable=False),
        sa.Column("missing", sa.Integer(), nullable=False),
        sa.Column("problems", sa.JSON(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fixity_reports")),
    )
    with op.batch_alter_table("fixity_reports", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_fixity_reports_started_at"), ["started_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("fixity_reports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fixity_reports_started_at"))
    op.drop_table("fixity_reports")
    with op.batch_alter_table("disposal_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_disposal_records_org_unit"))
        batch_op.drop_index(batch_op.f("ix_disposal_records_file_id"))
    op.drop_table("disposal_records")
    with op.batch_alter_table("disposal_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_disposal_items_file_id"))
    op.drop_table("disposal_items")
    op.drop_table("disposal_runs")
    with op.batch_alter_table("retention_holds", schema=None) as batch_op:
        batch_op.drop_index("ix_retention_holds_file_id_released_at")
    op.drop_table("retention_holds")
