"""terminals: stock counts per location × model × state (kept by the movement service)

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cardops.core.db  # noqa: F401

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "terminal_stock_counts",
        sa.Column("location_id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["location_id"],
            ["stock_locations.id"],
            name=op.f("fk_terminal_stock_counts_location_id_stock_locations"),
        ),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["terminal_models.id"],
            name=op.f("fk_terminal_stock_counts_model_id_terminal_models"),
        ),
        sa.PrimaryKeyConstraint(
            "location_id", "model_id", "state", name=op.f("pk_terminal_stock_counts")
        ),
    )
    op.execute(
        "INSERT INTO terminal_stock_counts (location_id, model_id, state, count) "
        "SELECT location_id, model_id, state, COUNT(*) FROM terminals "
        "GROUP BY location_id, model_id, state"
    )


def downgrade() -> None:
    op.drop_table("terminal_stock_counts")
