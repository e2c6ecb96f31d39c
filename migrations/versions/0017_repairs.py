"""faulty-terminal repair, loaners, RMA, field service records

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cardops.core.db

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "repair_checklist_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("label_en", sa.String(length=128), nullable=False),
        sa.Column("label_zh", sa.String(length=128), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_repair_checklist_items")),
        sa.UniqueConstraint("code", name=op.f("uq_repair_checklist_items_code")),
    )
    op.create_table(
        "repair_rma_batches",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("supplier_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("carrier", sa.String(length=64), nullable=False),
        sa.Column("tracking_number", sa.String(length=64), nullable=False),
        sa.Column("sent_at", cardops.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("received_at", cardops.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", cardops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", cardops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_repair_rma_batches_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["supplier_id"],
            ["suppliers.id"],
            name=op.f("fk_repair_rma_batches_supplier_id_suppliers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_repair_rma_batches")),
        sa.UniqueConstraint("number", name=op.f("uq_repair_rma_batches_number")),
    )
    with op.batch_alter_table("repair_rma_batches", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_repair_rma_batches_state"), ["state"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_repair_rma_batches_supplier_id"), ["supplier_id"], unique=False
        )
    op.create_table(
        "repair_cases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("terminal_id", sa.Integer(), nullable=False),
        sa.Column("serial", sa.String(length=40), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("origin_state", sa.String(length=24), nullable=False),
        sa.Column("origin_location_id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=True),
        sa.Column("merchant_id", sa.Integer(), nullable=True),
        sa.Column("brought_by_name", sa.String(length=64), nullable=False),
        sa.Column("brought_by_phone", sa.String(length=32), nullable=False),
        sa.Column("fault_code", sa.String(length=24), nullable=False),
        sa.Column("fault_description", sa.Text(), nullable=False),
        sa.Column("appearance", sa.String(length=500), nullable=False),
        sa.Column("accessories", sa.JSON(), nullable=False),
        sa.Column("accessories_note", sa.String(length=255), nullable=False),
        sa.Column("received_at", cardops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("received_by_id", sa.Integer(), nullable=True),
        sa.Column("findings", sa.Text(), nullable=False),
        sa.Column("inspected_fault_code", sa.String(length=24), nullable=True),
        sa.Column("under_warranty", sa.Boolean(), nullable=True),
        sa.Column("estimate", sa.Integer(), nullable=True),
        sa.Column("technician_id", sa.Integer(), nullable=True),
        sa.Column("inspected_at", cardops.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("route", sa.String(length=12), nullable=True),
        sa.Column("rma_batch_id", sa.Integer(), nullable=True),
        sa.Column("repair_notes", sa.Text(), nullable=False),
        sa.Column("repaired_at", cardops.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("replacement_terminal_id", sa.Integer(), nullable=True),
        sa.Column("loaner_terminal_id", sa.Integer(), nullable=True),
        sa.Column("loaner_out_at", cardops.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("loaner_back_at", cardops.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("return_to", sa.String(length=12), nullable=True),
        sa.Column("return_carrier", sa.String(length=64), nullable=False),
        sa.Column("return_tracking", sa.String(length=64), nullable=False),
        sa.Column("returned_at", cardops.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("closed_at", cardops.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", cardops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", cardops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["loaner_terminal_id"],
            ["terminals.id"],
            name=op.f("fk_repair_cases_loaner_terminal_id_terminals"),
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_repair_cases_merchant_id_merchants")
        ),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["terminal_models.id"],
            name=op.f("fk_repair_cases_model_id_terminal_models"),
        ),
        sa.ForeignKeyConstraint(
            ["origin_location_id"],
            ["stock_locations.id"],
            name=op.f("fk_repair_cases_origin_location_id_stock_locations"),
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"], ["providers.id"], name=op.f("fk_repair_cases_provider_id_providers")
        ),
        sa.ForeignKeyConstraint(
            ["received_by_id"], ["users.id"], name=op.f("fk_repair_cases_received_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["replacement_terminal_id"],
            ["terminals.id"],
            name=op.f("fk_repair_cases_replacement_terminal_id_terminals"),
        ),
        sa.ForeignKeyConstraint(
            ["rma_batch_id"],
            ["repair_rma_batches.id"],
            name=op.f("fk_repair_cases_rma_batch_id_repair_rma_batches"),
        ),
        sa.ForeignKeyConstraint(
            ["technician_id"], ["users.id"], name=op.f("fk_repair_cases_technician_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["terminal_id"], ["terminals.id"], name=op.f("fk_repair_cases_terminal_id_terminals")
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["servicedesk_tickets.id"],
            name=op.f("fk_repair_cases_ticket_id_servicedesk_tickets"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_repair_cases")),
        sa.UniqueConstraint("number", name=op.f("uq_repair_cases_number")),
    )
    with op.batch_alter_table("repair_cases", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_repair_cases_merchant_id"), ["merchant_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_repair_cases_model_id"), ["model_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_repair_cases_provider_id"), ["provider_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_repair_cases_rma_batch_id"), ["rma_batch_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_repair_cases_serial"), ["serial"], unique=False)
        batch_op.create_index(batch_op.f("ix_repair_cases_state"), ["state"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_repair_cases_terminal_id"), ["terminal_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_repair_cases_ticket_id"), ["ticket_id"], unique=False)
    op.create_table(
        "repair_visits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("mode", sa.String(length=12), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("registration_number", sa.String(length=32), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=True),
        sa.Column("customer_name", sa.String(length=128), nullable=False),
        sa.Column("address", sa.String(length=255), nullable=False),
        sa.Column("contact_name", sa.String(length=64), nullable=False),
        sa.Column("contact_phone", sa.String(length=32), nullable=False),
        sa.Column("service_type", sa.String(length=12), nullable=False),
        sa.Column("service_type_other", sa.String(length=64), nullable=False),
        sa.Column("warranty", sa.String(length=8), nullable=False),
        sa.Column("warranty_other", sa.String(length=64), nullable=False),
        sa.Column("serial", sa.String(length=40), nullable=False),
        sa.Column("scheduled_at", cardops.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("technician_id", sa.Integer(), nullable=True),
        sa.Column("arrived_at", cardops.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("departed_at", cardops.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("problem", sa.Text(), nullable=False),
        sa.Column("work_notes", sa.Text(), nullable=False),
        sa.Column("device_ok", sa.Boolean(), nullable=True),
        sa.Column("other_issues", sa.String(length=500), nullable=False),
        sa.Column("satisfaction", sa.String(length=20), nullable=True),
        sa.Column("satisfaction_note", sa.String(length=500), nullable=False),
        sa.Column("signed_name", sa.String(length=64), nullable=False),
        sa.Column("signature_document_id", sa.Integer(), nullable=True),
        sa.Column("signed_at", cardops.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", cardops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", cardops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_repair_visits_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"], ["merchants.id"], name=op.f("fk_repair_visits_merchant_id_merchants")
        ),
        sa.ForeignKeyConstraint(
            ["signature_document_id"],
            ["documents.id"],
            name=op.f("fk_repair_visits_signature_document_id_documents"),
        ),
        sa.ForeignKeyConstraint(
            ["technician_id"], ["users.id"], name=op.f("fk_repair_visits_technician_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["servicedesk_tickets.id"],
            name=op.f("fk_repair_visits_ticket_id_servicedesk_tickets"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_repair_visits")),
        sa.UniqueConstraint("number", name=op.f("uq_repair_visits_number")),
    )
    with op.batch_alter_table("repair_visits", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_repair_visits_merchant_id"), ["merchant_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_repair_visits_state"), ["state"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_repair_visits_technician_id"), ["technician_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_repair_visits_ticket_id"), ["ticket_id"], unique=False)
    op.create_table(
        "repair_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("visit_id", sa.Integer(), nullable=True),
        sa.Column("at", cardops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("from_state", sa.String(length=20), nullable=True),
        sa.Column("to_state", sa.String(length=20), nullable=True),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("comment", sa.String(length=1000), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_repair_events_actor_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["repair_cases.id"],
            name=op.f("fk_repair_events_case_id_repair_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"],
            ["repair_visits.id"],
            name=op.f("fk_repair_events_visit_id_repair_visits"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_repair_events")),
    )
    with op.batch_alter_table("repair_events", schema=None) as batch_op:
        batch_op.create_index("ix_repair_events_case_id_id", ["case_id", "id"], unique=False)
        batch_op.create_index("ix_repair_events_visit_id_id", ["visit_id", "id"], unique=False)
    op.create_table(
        "repair_replacements",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("visit_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("device_name", sa.String(length=128), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("old_serial", sa.String(length=40), nullable=False),
        sa.Column("new_serial", sa.String(length=40), nullable=False),
        sa.Column("new_terminal_id", sa.Integer(), nullable=True),
        sa.Column("at", cardops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["by_id"], ["users.id"], name=op.f("fk_repair_replacements_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["repair_cases.id"],
            name=op.f("fk_repair_replacements_case_id_repair_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["new_terminal_id"],
            ["terminals.id"],
            name=op.f("fk_repair_replacements_new_terminal_id_terminals"),
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"],
            ["repair_visits.id"],
            name=op.f("fk_repair_replacements_visit_id_repair_visits"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_repair_replacements")),
    )
    with op.batch_alter_table("repair_replacements", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_repair_replacements_case_id"), ["case_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_repair_replacements_visit_id"), ["visit_id"], unique=False
        )
    op.create_table(
        "repair_visit_checks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=False),
        sa.Column("item_code", sa.String(length=32), nullable=False),
        sa.Column("label", sa.String(length=128), nullable=False),
        sa.Column("checked", sa.Boolean(), nullable=False),
        sa.Column("note", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["visit_id"],
            ["repair_visits.id"],
            name=op.f("fk_repair_visit_checks_visit_id_repair_visits"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_repair_visit_checks")),
    )
    with op.batch_alter_table("repair_visit_checks", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_repair_visit_checks_visit_id"), ["visit_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("repair_visit_checks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_repair_visit_checks_visit_id"))
    op.drop_table("repair_visit_checks")
    with op.batch_alter_table("repair_replacements", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_repair_replacements_visit_id"))
        batch_op.drop_index(batch_op.f("ix_repair_replacements_case_id"))
    op.drop_table("repair_replacements")
    with op.batch_alter_table("repair_events", schema=None) as batch_op:
        batch_op.drop_index("ix_repair_events_visit_id_id")
        batch_op.drop_index("ix_repair_events_case_id_id")
    op.drop_table("repair_events")
    with op.batch_alter_table("repair_visits", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_repair_visits_ticket_id"))
        batch_op.drop_index(batch_op.f("ix_repair_visits_technician_id"))
        batch_op.drop_index(batch_op.f("ix_repair_visits_state"))
        batch_op.drop_index(batch_op.f("ix_repair_visits_merchant_id"))
    op.drop_table("repair_visits")
    with op.batch_alter_table("repair_cases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_repair_cases_ticket_id"))
        batch_op.drop_index(batch_op.f("ix_repair_cases_terminal_id"))
        batch_op.drop_index(batch_op.f("ix_repair_cases_state"))
        batch_op.drop_index(batch_op.f("ix_repair_cases_serial"))
        batch_op.drop_index(batch_op.f("ix_repair_cases_rma_batch_id"))
        batch_op.drop_index(batch_op.f("ix_repair_cases_provider_id"))
        batch_op.drop_index(batch_op.f("ix_repair_cases_model_id"))
        batch_op.drop_index(batch_op.f("ix_repair_cases_merchant_id"))
    op.drop_table("repair_cases")
    with op.batch_alter_table("repair_rma_batches", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_repair_rma_batches_supplier_id"))
        batch_op.drop_index(batch_op.f("ix_repair_rma_batches_state"))
    op.drop_table("repair_rma_batches")
    op.drop_table("repair_checklist_items")
