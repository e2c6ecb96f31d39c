"""access: offline uploads idempotent per controller; access log by door

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("access_events") as batch:
        batch.create_unique_constraint(
            "uq_access_events_controller_id", ["controller_id", "external_id"]
        )
        batch.create_index("ix_access_events_door_id_at", ["door_id", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("access_events") as batch:
        batch.drop_index("ix_access_events_door_id_at")
        batch.drop_constraint("uq_access_events_controller_id", type_="unique")
