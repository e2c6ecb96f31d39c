"""numbered service cards, returns and exchanges

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cardops.core.db

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "warranty_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("warranty_months", sa.Integer(), nullable=False),
        sa.Column("points_per_card", sa.Integer(), nullable=False),
        sa.Column("compensation_cap", sa.Integer(), nullable=False),
        sa.Column("photo_hours", sa.Integer(), nullable=False),
        sa.Column("updated_at", cardops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_warranty_settings")),
    )
    op.create_table(
        "warranty_card_ranges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("prefix", sa.String(length=6), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("start", sa.Integer(), nullable=False),
        sa.Column("end", sa.Integer(), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", cardops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", cardops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_warranty_card_ranges_created_by_id_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_warranty_card_ranges")),
    )
    with op.batch_alter_table("warranty_card_ranges", schema=None) as batch_op:
        batch_op.create_index("ix_warranty_card_ranges_prefix", ["prefix", "width"], unique=False)
    op.create_table(
        "warranty_allocations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("range_id", sa.Integer(), nullable=False),
        sa.Column("level", sa.String(length=8), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("start", sa.Integer(), nullable=False),
        sa.Column("end", sa.Integer(), nullable=False),
        sa.Column("issued_at", cardops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("issued_by_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["issued_by_id"], ["users.id"], name=op.f("fk_warranty_allocations_issued_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["warranty_allocations.id"],
            name=op.f("fk_warranty_allocations_parent_id_warranty_allocations"),
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_warranty_allocations_provider_id_providers"),
        ),
        sa.ForeignKeyConstraint(
            ["range_id"],
            ["warranty_card_ranges.id"],
            name=op.f("fk_warranty_allocations_range_id_warranty_card_ranges"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_warranty_allocations")),
    )
    with op.batch_alter_table("warranty_allocations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_warranty_allocations_provider_id"), ["provider_id"], unique=False
        )
        batch_op.create_index(
            "ix_warranty_allocations_range", ["range_id", "level", "start"], unique=False
        )
    op.create_table(
        "warranty_cards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=24), nullable=False),
        sa.Column("range_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("branch_id", sa.Integer(), nullable=False),
        sa.Column("dealer_id", sa.Integer(), nullable=True),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("serial", sa.String(length=64), nullable=False),
        sa.Column("buyer_name", sa.String(length=64), nullable=False),
        sa.Column("buyer_phone", sa.String(length=20), nullable=False),
        sa.Column("province", sa.String(length=16), nullable=False),
        sa.Column("city", sa.String(length=32), nullable=False),
        sa.Column("address", sa.String(length=200), nullable=False),
        sa.Column("price", sa.Integer(), nullable=False),
        sa.Column("floor_price", sa.Integer(), nullable=False),
        sa.Column("installer_id", sa.Integer(), nullable=True),
        sa.Column("sale_date", sa.Date(), nullable=False),
        sa.Column("warranty_end", sa.Date(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("cross_region", sa.Boolean(), nullable=False),
        sa.Column("below_floor", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("registered_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", cardops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", cardops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["branch_id"], ["providers.id"], name=op.f("fk_warranty_cards_branch_id_providers")
        ),
        sa.ForeignKeyConstraint(
            ["dealer_id"], ["providers.id"], name=op.f("fk_warranty_cards_dealer_id_providers")
        ),
        sa.ForeignKeyConstraint(
            ["installer_id"], ["persons.id"], name=op.f("fk_warranty_cards_installer_id_persons")
        ),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["terminal_models.id"],
            name=op.f("fk_warranty_cards_model_id_terminal_models"),
        ),
        sa.ForeignKeyConstraint(
            ["range_id"],
            ["warranty_card_ranges.id"],
            name=op.f("fk_warranty_cards_range_id_warranty_card_ranges"),
        ),
        sa.ForeignKeyConstraint(
            ["registered_by_id"],
            ["users.id"],
            name=op.f("fk_warranty_cards_registered_by_id_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_warranty_cards")),
        sa.UniqueConstraint("number", name=op.f("uq_warranty_cards_number")),
    )
    with op.batch_alter_table("warranty_cards", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_warranty_cards_below_floor"), ["below_floor"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_warranty_cards_branch_id"), ["branch_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_warranty_cards_cross_region"), ["cross_region"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_warranty_cards_dealer_id"), ["dealer_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_warranty_cards_installer_id"), ["installer_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_warranty_cards_model_id"), ["model_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_warranty_cards_range_id"), ["range_id"], unique=False)
    op.create_table(
        "warranty_model_terms",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("floor_price", sa.Integer(), nullable=False),
        sa.Column("warranty_months", sa.Integer(), nullable=True),
        sa.Column("points", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["terminal_models.id"],
            name=op.f("fk_warranty_model_terms_model_id_terminal_models"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("model_id", name=op.f("pk_warranty_model_terms")),
    )
    op.create_table(
        "warranty_card_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("card_id", sa.Integer(), nullable=False),
        sa.Column("at", cardops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_warranty_card_events_actor_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["card_id"],
            ["warranty_cards.id"],
            name=op.f("fk_warranty_card_events_card_id_warranty_cards"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_warranty_card_events")),
    )
    with op.batch_alter_table("warranty_card_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_warranty_card_events_card_id"), ["card_id"], unique=False
        )
    op.create_table(
        "warranty_points",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("installer_id", sa.Integer(), nullable=False),
        sa.Column("card_id", sa.Integer(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("at", cardops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["card_id"],
            ["warranty_cards.id"],
            name=op.f("fk_warranty_points_card_id_warranty_cards"),
        ),
        sa.ForeignKeyConstraint(
            ["installer_id"], ["persons.id"], name=op.f("fk_warranty_points_installer_id_persons")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_warranty_points")),
    )
    with op.batch_alter_table("warranty_points", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_warranty_points_at"), ["at"], unique=False)
        batch_op.create_index(batch_op.f("ix_warranty_points_card_id"), ["card_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_warranty_points_installer_id"), ["installer_id"], unique=False
        )
    op.create_table(
        "warranty_returns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("card_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.String(length=12), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("requested_at", cardops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("shipping_paid_by", sa.String(length=10), nullable=False),
        sa.Column("shipping_cost", sa.Integer(), nullable=False),
        sa.Column("refund_amount", sa.Integer(), nullable=False),
        sa.Column("exchange_model_id", sa.Integer(), nullable=True),
        sa.Column("exchange_serial", sa.String(length=64), nullable=False),
        sa.Column("price_difference", sa.Integer(), nullable=False),
        sa.Column("compensation", sa.Integer(), nullable=False),
        sa.Column("compensation_state", sa.String(length=12), nullable=False),
        sa.Column("compensation_cap", sa.Integer(), nullable=False),
        sa.Column("approval_request_id", sa.Integer(), nullable=True),
        sa.Column("payment_method", sa.String(length=10), nullable=False),
        sa.Column(
            "posting_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column(
            "receipt_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", cardops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", cardops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["approval_request_id"],
            ["approval_requests.id"],
            name=op.f("fk_warranty_returns_approval_request_id_approval_requests"),
        ),
        sa.ForeignKeyConstraint(
            ["card_id"],
            ["warranty_cards.id"],
            name=op.f("fk_warranty_returns_card_id_warranty_cards"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_warranty_returns_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["exchange_model_id"],
            ["terminal_models.id"],
            name=op.f("fk_warranty_returns_exchange_model_id_terminal_models"),
        ),
        sa.ForeignKeyConstraint(
            ["posting_id"],
            ["ledger_postings.id"],
            name=op.f("fk_warranty_returns_posting_id_ledger_postings"),
        ),
        sa.ForeignKeyConstraint(
            ["receipt_id"], ["receipts.id"], name=op.f("fk_warranty_returns_receipt_id_receipts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_warranty_returns")),
        sa.UniqueConstraint("number", name=op.f("uq_warranty_returns_number")),
    )
    with op.batch_alter_table("warranty_returns", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_warranty_returns_card_id"), ["card_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_warranty_returns_state"), ["state"], unique=False)
    op.create_table(
        "warranty_return_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("return_id", sa.Integer(), nullable=False),
        sa.Column("at", cardops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_warranty_return_events_actor_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["return_id"],
            ["warranty_returns.id"],
            name=op.f("fk_warranty_return_events_return_id_warranty_returns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_warranty_return_events")),
    )
    with op.batch_alter_table("warranty_return_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_warranty_return_events_return_id"), ["return_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("warranty_return_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_warranty_return_events_return_id"))
    op.drop_table("warranty_return_events")
    with op.batch_alter_table("warranty_returns", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_warranty_returns_state"))
        batch_op.drop_index(batch_op.f("ix_warranty_returns_card_id"))
    op.drop_table("warranty_returns")
    with op.batch_alter_table("warranty_points", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_warranty_points_installer_id"))
        batch_op.drop_index(batch_op.f("ix_warranty_points_card_id"))
        batch_op.drop_index(batch_op.f("ix_warranty_points_at"))
    op.drop_table("warranty_points")
    with op.batch_alter_table("warranty_card_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_warranty_card_events_card_id"))
    op.drop_table("warranty_card_events")
    op.drop_table("warranty_model_terms")
    with op.batch_alter_table("warranty_cards", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_warranty_cards_range_id"))
        batch_op.drop_index(batch_op.f("ix_warranty_cards_model_id"))
        batch_op.drop_index(batch_op.f("ix_warranty_cards_installer_id"))
        batch_op.drop_index(batch_op.f("ix_warranty_cards_dealer_id"))
        batch_op.drop_index(batch_op.f("ix_warranty_cards_cross_region"))
        batch_op.drop_index(batch_op.f("ix_warranty_cards_branch_id"))
        batch_op.drop_index(batch_op.f("ix_warranty_cards_below_floor"))
    op.drop_table("warranty_cards")
    with op.batch_alter_table("warranty_allocations", schema=None) as batch_op:
        batch_op.drop_index("ix_warranty_allocations_range")
        batch_op.drop_index(batch_op.f("ix_warranty_allocations_provider_id"))
    op.drop_table("warranty_allocations")
    with op.batch_alter_table("warranty_card_ranges", schema=None) as batch_op:
        batch_op.drop_index("ix_warranty_card_ranges_prefix")
    op.drop_table("warranty_card_ranges")
    op.drop_table("warranty_settings")
