"""approval chains and requests

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import cardops.core.db

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "approval_chains",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("name_en", sa.String(length=128), nullable=False),
        sa.Column("name_zh", sa.String(length=128), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", cardops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", cardops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approval_chains")),
        sa.UniqueConstraint("kind", name=op.f("uq_approval_chains_kind")),
    )

    op.create_table(
        "approval_steps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("chain_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("role_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["chain_id"],
            ["approval_chains.id"],
            name=op.f("fk_approval_steps_chain_id_approval_chains"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["role_id"], ["roles.id"], name=op.f("fk_approval_steps_role_id_roles")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approval_steps")),
        sa.UniqueConstraint("chain_id", "position", name=op.f("uq_approval_steps_chain_id")),
    )

    with op.batch_alter_table("approval_steps", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_approval_steps_chain_id"), ["chain_id"], unique=False)

    op.create_table(
        "approval_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("chain_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("subject_type", sa.String(length=64), nullable=True),
        sa.Column("subject_id", sa.String(length=64), nullable=True),
        sa.Column("submitter_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("current_step", sa.Integer(), nullable=True),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("submitted_at", cardops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("decided_at", cardops.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", cardops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", cardops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["chain_id"],
            ["approval_chains.id"],
            name=op.f("fk_approval_requests_chain_id_approval_chains"),
        ),
        sa.ForeignKeyConstraint(
            ["submitter_id"], ["users.id"], name=op.f("fk_approval_requests_submitter_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approval_requests")),
        sa.UniqueConstraint("number", name=op.f("uq_approval_requests_number")),
    )

    with op.batch_alter_table("approval_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_approval_requests_chain_id"), ["chain_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_approval_requests_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_approval_requests_state"), ["state"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_approval_requests_submitter_id"), ["submitter_id"], unique=False
        )

    op.create_table(
        "approval_request_steps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("role_id", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["approval_requests.id"],
            name=op.f("fk_approval_request_steps_request_id_approval_requests"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["role_id"], ["roles.id"], name=op.f("fk_approval_request_steps_role_id_roles")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approval_request_steps")),
        sa.UniqueConstraint(
            "request_id", "position", name=op.f("uq_approval_request_steps_request_id")
        ),
    )

    with op.batch_alter_table("approval_request_steps", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_approval_request_steps_request_id"), ["request_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_approval_request_steps_role_id"), ["role_id"], unique=False
        )

    op.create_table(
        "approval_actions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=True),
        sa.Column("role_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("at", cardops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_approval_actions_actor_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["request_id"],
            ["approval_requests.id"],
            name=op.f("fk_approval_actions_request_id_approval_requests"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["role_id"], ["roles.id"], name=op.f("fk_approval_actions_role_id_roles")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_approval_actions")),
    )

    with op.batch_alter_table("approval_actions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_approval_actions_actor_id"), ["actor_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_approval_actions_request_id"), ["request_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("approval_actions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_approval_actions_request_id"))
        batch_op.drop_index(batch_op.f("ix_approval_actions_actor_id"))

    op.drop_table("approval_actions")

    with op.batch_alter_table("approval_request_steps", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_approval_request_steps_role_id"))
        batch_op.drop_index(batch_op.f("ix_approval_request_steps_request_id"))

    op.drop_table("approval_request_steps")

    with op.batch_alter_table("approval_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_approval_requests_submitter_id"))
        batch_op.drop_index(batch_op.f("ix_approval_requests_state"))
        batch_op.drop_index(batch_op.f("ix_approval_requests_kind"))
        batch_op.drop_index(batch_op.f("ix_approval_requests_chain_id"))

    op.drop_table("approval_requests")

    with op.batch_alter_table("approval_steps", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_approval_steps_chain_id"))

    op.drop_table("approval_steps")

    op.drop_table("approval_chains")
