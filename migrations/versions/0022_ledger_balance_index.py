"""ledger: covering index (account_id, id, amount) on posting lines for derived balances

Revision ID: 0022
Revises: 0021
"""

from __future__ import annotations

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ledger_posting_lines", schema=None) as batch_op:
        batch_op.create_index(
            "ix_ledger_posting_lines_account_id_id", ["account_id", "id", "amount"], unique=False
        )
        batch_op.drop_index(batch_op.f("ix_ledger_posting_lines_account_id"))


def downgrade() -> None:
    with op.batch_alter_table("ledger_posting_lines", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ledger_posting_lines_account_id"), ["account_id"], unique=False
        )
        batch_op.drop_index("ix_ledger_posting_lines_account_id_id")
