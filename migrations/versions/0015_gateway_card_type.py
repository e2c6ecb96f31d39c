"""gateway journal: card type (debit / credit) for settlement and profit sharing

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("gateway_journal") as batch_op:
        batch_op.add_column(
            sa.Column("card_type", sa.String(length=6), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("gateway_journal") as batch_op:
        batch_op.drop_column("card_type")
