"""bank clearing files and reconciliation cases

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cardops.core.db

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reconciliation_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("acquirer", sa.String(length=32), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("encoding", sa.String(length=8), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("success_count", sa.Integer(), nullable=False),
        sa.Column("success_amount", sa.BigInteger(), nullable=False),
        sa.Column("bank_fee_total", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("replaced_by_id", sa.Integer(), nullable=True),
        sa.Column("replace_reason", sa.String(length=500), nullable=False),
        sa.Column("imported_at", cardops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("imported_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["imported_by_id"],
            ["users.id"],
            name=op.f("fk_reconciliation_files_imported_by_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["replaced_by_id"],
            ["reconciliation_files.id"],
            name=op.f("fk_reconciliation_files_replaced_by_id_reconciliation_files"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliation_files")),
    )
    with op.batch_alter_table("reconciliation_files", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reconciliation_files_business_date"), ["business_date"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_reconciliation_files_sha256"), ["sha256"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_reconciliation_files_state"), ["state"], unique=False)
    op.create_table(
        "reconciliation_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("file_id", sa.Integer(), nullable=False),
        sa.Column("current", sa.Boolean(), nullable=False),
        sa.Column("started_at", cardops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", cardops.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("journal_rows", sa.Integer(), nullable=False),
        sa.Column("bank_lines", sa.Integer(), nullable=False),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.Column("new_cases", sa.Integer(), nullable=False),
        sa.Column("cleared_cases", sa.Integer(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_reconciliation_runs_actor_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["file_id"],
            ["reconciliation_files.id"],
            name=op.f("fk_reconciliation_runs_file_id_reconciliation_files"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliation_runs")),
    )
    with op.batch_alter_table("reconciliation_runs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reconciliation_runs_business_date"), ["business_date"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_reconciliation_runs_file_id"), ["file_id"], unique=False
        )
    op.create_table(
        "reconciliation_cases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=24), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("case_key", sa.String(length=96), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("present", sa.Boolean(), nullable=False),
        sa.Column("tid", sa.String(length=8), nullable=False),
        sa.Column("mid", sa.String(length=15), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=True),
        sa.Column("stan", sa.String(length=6), nullable=False),
        sa.Column("rrn", sa.String(length=12), nullable=False),
        sa.Column("txn_type", sa.String(length=12), nullable=False),
        sa.Column("journal_id", sa.BigInteger(), nullable=True),
        sa.Column("bank_line", sa.Integer(), nullable=True),
        sa.Column("our_amount", sa.BigInteger(), nullable=True),
        sa.Column("bank_amount", sa.BigInteger(), nullable=True),
        sa.Column("our_status", sa.String(length=8), nullable=False),
        sa.Column("bank_status", sa.String(length=8), nullable=False),
        sa.Column("difference", sa.BigInteger(), nullable=False),
        sa.Column("file_id", sa.Integer(), nullable=True),
        sa.Column("first_run_id", sa.Integer(), nullable=True),
        sa.Column("last_run_id", sa.Integer(), nullable=True),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column("resolution", sa.String(length=16), nullable=True),
        sa.Column("resolution_note", sa.String(length=1000), nullable=False),
        sa.Column("claim_reference", sa.String(length=64), nullable=False),
        sa.Column(
            "posting_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("resolved_by_id", sa.Integer(), nullable=True),
        sa.Column("resolved_at", cardops.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", cardops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", cardops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["assignee_id"], ["users.id"], name=op.f("fk_reconciliation_cases_assignee_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["file_id"],
            ["reconciliation_files.id"],
            name=op.f("fk_reconciliation_cases_file_id_reconciliation_files"),
        ),
        sa.ForeignKeyConstraint(
            ["first_run_id"],
            ["reconciliation_runs.id"],
            name=op.f("fk_reconciliation_cases_first_run_id_reconciliation_runs"),
        ),
        sa.ForeignKeyConstraint(
            ["last_run_id"],
            ["reconciliation_runs.id"],
            name=op.f("fk_reconciliation_cases_last_run_id_reconciliation_runs"),
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_reconciliation_cases_merchant_id_merchants"),
        ),
        sa.ForeignKeyConstraint(
            ["posting_id"],
            ["ledger_postings.id"],
            name=op.f("fk_reconciliation_cases_posting_id_ledger_postings"),
        ),
        sa.ForeignKeyConstraint(
            ["resolved_by_id"],
            ["users.id"],
            name=op.f("fk_reconciliation_cases_resolved_by_id_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliation_cases")),
        sa.UniqueConstraint("business_date", "case_key", name="uq_reconciliation_cases_key"),
        sa.UniqueConstraint("number", name=op.f("uq_reconciliation_cases_number")),
    )
    with op.batch_alter_table("reconciliation_cases", schema=None) as batch_op:
        batch_op.create_index(
            "ix_reconciliation_cases_day_kind", ["business_date", "kind"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_reconciliation_cases_state"), ["state"], unique=False)
    op.create_table(
        "reconciliation_case_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("at", cardops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("comment", sa.String(length=1000), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_reconciliation_case_events_actor_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["reconciliation_cases.id"],
            name=op.f("fk_reconciliation_case_events_case_id_reconciliation_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliation_case_events")),
    )
    with op.batch_alter_table("reconciliation_case_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_reconciliation_case_events_case_id"), ["case_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("reconciliation_case_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reconciliation_case_events_case_id"))
    op.drop_table("reconciliation_case_events")
    with op.batch_alter_table("reconciliation_cases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reconciliation_cases_state"))
        batch_op.drop_index("ix_reconciliation_cases_day_kind")
    op.drop_table("reconciliation_cases")
    with op.batch_alter_table("reconciliation_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reconciliation_runs_file_id"))
        batch_op.drop_index(batch_op.f("ix_reconciliation_runs_business_date"))
    op.drop_table("reconciliation_runs")
    with op.batch_alter_table("reconciliation_files", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reconciliation_files_state"))
        batch_op.drop_index(batch_op.f("ix_reconciliation_files_sha256"))
        batch_op.drop_index(batch_op.f("ix_reconciliation_files_business_date"))
    op.drop_table("reconciliation_files")
