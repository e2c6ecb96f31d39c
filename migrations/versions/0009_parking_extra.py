"""parking and wallets: who ended a permit and how the owner confirmed

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cardops.core.db  # noqa: F401

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("parking_permits", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ended_by_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "owner_confirmation", sa.String(length=255), nullable=False, server_default=""
            )
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_parking_permits_ended_by_id_users"), "users", ["ended_by_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("parking_permits", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_parking_permits_ended_by_id_users"), type_="foreignkey"
        )
        batch_op.drop_column("owner_confirmation")
        batch_op.drop_column("ended_by_id")
