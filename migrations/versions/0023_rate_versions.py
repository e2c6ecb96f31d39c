"""rate card history: provider rate cards, the bank's rate card and the default merchant rate

Revision ID: 0023
Revises: 0022
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import cardops.core.db

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

# the cards in force before this revision: in force "since always" for the days closed so far
SINCE_ALWAYS = datetime(1970, 1, 1, tzinfo=UTC)


def upgrade() -> None:
    providers = op.create_table(
        "provider_rate_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("rate_card", sa.JSON(), nullable=False),
        sa.Column("recorded_at", cardops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_provider_rate_versions_actor_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name=op.f("fk_provider_rate_versions_provider_id_providers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_rate_versions")),
    )
    with op.batch_alter_table("provider_rate_versions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_provider_rate_versions_provider_id"), ["provider_id"], unique=False
        )
    settings = op.create_table(
        "settlement_rate_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("rate_card", sa.JSON(), nullable=False),
        sa.Column("recorded_at", cardops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_settlement_rate_versions_actor_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlement_rate_versions")),
    )
    with op.batch_alter_table("settlement_rate_versions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_settlement_rate_versions_scope"), ["scope"], unique=False
        )
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, rate_card FROM providers")).all()
    op.bulk_insert(
        providers,
        [
            {"provider_id": pid, "rate_card": _card(card), "recorded_at": SINCE_ALWAYS}
            for pid, card in rows
        ],
    )
    row = bind.execute(
        sa.text("SELECT bank_rate_card, default_merchant_rate FROM settlement_settings")
    ).first()
    if row is not None:
        op.bulk_insert(
            settings,
            [
                {"scope": "bank", "rate_card": _card(row[0]), "recorded_at": SINCE_ALWAYS},
                {"scope": "default", "rate_card": _card(row[1]), "recorded_at": SINCE_ALWAYS},
            ],
        )


def _card(value: object) -> object:
    """JSON columns read through plain SQL come back as text on SQLite."""
    import json

    return json.loads(value) if isinstance(value, str) else (value or {})


def downgrade() -> None:
    with op.batch_alter_table("settlement_rate_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_settlement_rate_versions_scope"))
    op.drop_table("settlement_rate_versions")
    with op.batch_alter_table("provider_rate_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_provider_rate_versions_provider_id"))
    op.drop_table("provider_rate_versions")
