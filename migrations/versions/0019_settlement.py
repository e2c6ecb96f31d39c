"""business days, merchant settlement, profit sharing

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cardops.core.db

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "settlement_windows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("start_at", cardops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("end_at", cardops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("cutoff", sa.String(length=5), nullable=False),
        sa.Column("first_id", sa.BigInteger(), nullable=True),
        sa.Column("last_id", sa.BigInteger(), nullable=True),
        sa.Column("closed_at", cardops.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("settled_at", cardops.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("gross", sa.BigInteger(), nullable=False),
        sa.Column("fee", sa.BigInteger(), nullable=False),
        sa.Column("net", sa.BigInteger(), nullable=False),
        sa.Column("bank_fee", sa.BigInteger(), nullable=False),
        sa.Column("shares", sa.BigInteger(), nullable=False),
        sa.Column("hq_margin", sa.BigInteger(), nullable=False),
        sa.Column("adjustments", sa.BigInteger(), nullable=False),
        sa.Column("created_at", cardops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", cardops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlement_windows")),
        sa.UniqueConstraint("business_date", name=op.f("uq_settlement_windows_business_date")),
    )
    with op.batch_alter_table("settlement_windows", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_settlement_windows_state"), ["state"], unique=False)
    op.create_table(
        "settlement_settings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("cutoff", sa.String(length=5), nullable=False),
        sa.Column("bank_rate_card", sa.JSON(), nullable=False),
        sa.Column("default_merchant_rate", sa.JSON(), nullable=False),
        sa.Column("updated_at", cardops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["updated_by_id"], ["users.id"], name=op.f("fk_settlement_settings_updated_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlement_settings")),
    )
    op.create_table(
        "settlement_window_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("window_id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("at", cardops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_settlement_window_events_actor_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["window_id"],
            ["settlement_windows.id"],
            name=op.f("fk_settlement_window_events_window_id_settlement_windows"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlement_window_events")),
    )
    with op.batch_alter_table("settlement_window_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_settlement_window_events_window_id"), ["window_id"], unique=False
        )
    op.create_table(
        "settlement_reward_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("level", sa.String(length=8), nullable=True),
        sa.Column("provider_id", sa.Integer(), nullable=True),
        sa.Column("threshold", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", cardops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", cardops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_settlement_reward_rules_provider_id_providers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlement_reward_rules")),
    )
    op.create_table(
        "settlement_shares",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("window_id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("card_type", sa.String(length=6), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("volume", sa.BigInteger(), nullable=False),
        sa.Column("share", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_settlement_shares_provider_id_providers"),
        ),
        sa.ForeignKeyConstraint(
            ["window_id"],
            ["settlement_windows.id"],
            name=op.f("fk_settlement_shares_window_id_settlement_windows"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlement_shares")),
        sa.UniqueConstraint(
            "window_id", "provider_id", "card_type", name=op.f("uq_settlement_shares_window_id")
        ),
    )
    with op.batch_alter_table("settlement_shares", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_settlement_shares_provider_id"), ["provider_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_settlement_shares_window_id"), ["window_id"], unique=False
        )
    op.create_table(
        "settlement_facts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("window_id", sa.Integer(), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=True),
        sa.Column("card_type", sa.String(length=6), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("cancels", sa.BigInteger(), nullable=False),
        sa.Column("gross", sa.BigInteger(), nullable=False),
        sa.Column("fee", sa.BigInteger(), nullable=False),
        sa.Column("bank_fee", sa.BigInteger(), nullable=False),
        sa.Column("hq_margin", sa.BigInteger(), nullable=False),
        sa.Column("adjustment", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_settlement_facts_merchant_id_merchants"),
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_settlement_facts_provider_id_providers"),
        ),
        sa.ForeignKeyConstraint(
            ["window_id"],
            ["settlement_windows.id"],
            name=op.f("fk_settlement_facts_window_id_settlement_windows"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlement_facts")),
    )
    with op.batch_alter_table("settlement_facts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_settlement_facts_merchant_id"), ["merchant_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_settlement_facts_provider_id"), ["provider_id"], unique=False
        )
        batch_op.create_index(
            "ix_settlement_facts_window_merchant", ["window_id", "merchant_id"], unique=False
        )
    op.create_table(
        "settlement_merchant_rates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("debit_bp", sa.Integer(), nullable=False),
        sa.Column("debit_cap", sa.BigInteger(), nullable=True),
        sa.Column("credit_bp", sa.Integer(), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.Column("created_at", cardops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_settlement_merchant_rates_created_by_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_settlement_merchant_rates_merchant_id_merchants"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlement_merchant_rates")),
        sa.UniqueConstraint(
            "merchant_id", "effective_from", name=op.f("uq_settlement_merchant_rates_merchant_id")
        ),
    )
    with op.batch_alter_table("settlement_merchant_rates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_settlement_merchant_rates_merchant_id"), ["merchant_id"], unique=False
        )
    op.create_table(
        "settlement_payouts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("window_id", sa.Integer(), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column("net", sa.BigInteger(), nullable=False),
        sa.Column("carried_in", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("carried_out", sa.BigInteger(), nullable=False),
        sa.Column("payout_date", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_settlement_payouts_merchant_id_merchants"),
        ),
        sa.ForeignKeyConstraint(
            ["window_id"],
            ["settlement_windows.id"],
            name=op.f("fk_settlement_payouts_window_id_settlement_windows"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlement_payouts")),
        sa.UniqueConstraint(
            "window_id", "merchant_id", name=op.f("uq_settlement_payouts_window_id")
        ),
    )
    with op.batch_alter_table("settlement_payouts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_settlement_payouts_merchant_id"), ["merchant_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_settlement_payouts_window_id"), ["window_id"], unique=False
        )
    op.create_table(
        "settlement_rewards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("rule_id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("reference", sa.String(length=40), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("posting_number", sa.String(length=32), nullable=True),
        sa.Column("created_at", cardops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_settlement_rewards_provider_id_providers"),
        ),
        sa.ForeignKeyConstraint(
            ["rule_id"],
            ["settlement_reward_rules.id"],
            name=op.f("fk_settlement_rewards_rule_id_settlement_reward_rules"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlement_rewards")),
        sa.UniqueConstraint(
            "rule_id", "provider_id", "reference", name=op.f("uq_settlement_rewards_rule_id")
        ),
    )
    with op.batch_alter_table("settlement_rewards", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_settlement_rewards_month"), ["month"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_settlement_rewards_provider_id"), ["provider_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("settlement_rewards", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_settlement_rewards_provider_id"))
        batch_op.drop_index(batch_op.f("ix_settlement_rewards_month"))
    op.drop_table("settlement_rewards")
    with op.batch_alter_table("settlement_payouts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_settlement_payouts_window_id"))
        batch_op.drop_index(batch_op.f("ix_settlement_payouts_merchant_id"))
    op.drop_table("settlement_payouts")
    with op.batch_alter_table("settlement_merchant_rates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_settlement_merchant_rates_merchant_id"))
    op.drop_table("settlement_merchant_rates")
    with op.batch_alter_table("settlement_facts", schema=None) as batch_op:
        batch_op.drop_index("ix_settlement_facts_window_merchant")
        batch_op.drop_index(batch_op.f("ix_settlement_facts_provider_id"))
        batch_op.drop_index(batch_op.f("ix_settlement_facts_merchant_id"))
    op.drop_table("settlement_facts")
    with op.batch_alter_table("settlement_shares", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_settlement_shares_window_id"))
        batch_op.drop_index(batch_op.f("ix_settlement_shares_provider_id"))
    op.drop_table("settlement_shares")
    op.drop_table("settlement_reward_rules")
    with op.batch_alter_table("settlement_window_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_settlement_window_events_window_id"))
    op.drop_table("settlement_window_events")
    op.drop_table("settlement_settings")
    with op.batch_alter_table("settlement_windows", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_settlement_windows_state"))
    op.drop_table("settlement_windows")
