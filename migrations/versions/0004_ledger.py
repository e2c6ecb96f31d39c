"""ledger and receipts

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import cardops.core.db

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# The standard chart of accounts (cardops.ledger.chart), frozen as of this revision.
STANDARD_CHART = [
    ("1001", "Cash on hand", "库存现金", "asset"),
    ("1002", "Bank deposits", "银行存款", "asset"),
    ("1003", "WeChat Pay / Alipay clearing", "第三方支付待清算", "asset"),
    ("1122", "Accounts receivable", "应收账款", "asset"),
    ("2201", "Customer deposits held", "代收押金", "liability"),
    ("2202", "Card wallet float", "卡内储值余额", "liability"),
    ("2203", "Merchant payables", "应付商户款", "liability"),
    ("2204", "Profit shares payable", "应付分润", "liability"),
    ("4001", "Paid-in capital", "实收资本", "equity"),
    ("6001", "Card fee income", "工本费收入", "income"),
    ("6002", "Merchant service fee income", "商户手续费收入", "income"),
    ("6003", "Parking fee income", "停车费收入", "income"),
    ("6051", "Other income", "其他收入", "income"),
    ("6601", "Profit share expense", "分润支出", "expense"),
    ("6602", "Bank charges", "银行手续费", "expense"),
]


def upgrade() -> None:
    accounts = op.create_table(
        "ledger_accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name_en", sa.String(length=128), nullable=False),
        sa.Column("name_zh", sa.String(length=128), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("owner_type", sa.String(length=32), nullable=True),
        sa.Column("owner_id", sa.BigInteger(), nullable=True),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", cardops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", cardops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "type IN ('asset', 'liability', 'equity', 'income', 'expense')",
            name=op.f("ck_ledger_accounts_type"),
        ),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_ledger_accounts_parent_id_ledger_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_accounts")),
        sa.UniqueConstraint("code", name=op.f("uq_ledger_accounts_code")),
    )
    with op.batch_alter_table("ledger_accounts", schema=None) as batch_op:
        batch_op.create_index("ix_ledger_accounts_owner", ["owner_type", "owner_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_ledger_accounts_parent_id"), ["parent_id"], unique=False
        )

    op.create_table(
        "ledger_postings",
        sa.Column("id", BigId, nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("posted_at", cardops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False),
        sa.Column("reference", sa.String(length=128), nullable=True),
        sa.Column("idempotency_key", sa.String(length=128), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("reversal_of_id", BigId, nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_ledger_postings_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["reversal_of_id"],
            ["ledger_postings.id"],
            name=op.f("fk_ledger_postings_reversal_of_id_ledger_postings"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_postings")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_ledger_postings_idempotency_key")),
        sa.UniqueConstraint("number", name=op.f("uq_ledger_postings_number")),
        sa.UniqueConstraint("reversal_of_id", name=op.f("uq_ledger_postings_reversal_of_id")),
    )
    with op.batch_alter_table("ledger_postings", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ledger_postings_business_date"), ["business_date"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_ledger_postings_posted_at"), ["posted_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_ledger_postings_reference"), ["reference"], unique=False
        )

    op.create_table(
        "ledger_posting_lines",
        sa.Column("id", BigId, nullable=False),
        sa.Column("posting_id", BigId, nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.CheckConstraint("amount <> 0", name=op.f("ck_ledger_posting_lines_amount_not_zero")),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_ledger_posting_lines_account_id_ledger_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["posting_id"],
            ["ledger_postings.id"],
            name=op.f("fk_ledger_posting_lines_posting_id_ledger_postings"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_posting_lines")),
    )
    with op.batch_alter_table("ledger_posting_lines", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ledger_posting_lines_account_id"), ["account_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_ledger_posting_lines_posting_id"), ["posting_id"], unique=False
        )

    op.create_table(
        "receipts",
        sa.Column("id", BigId, nullable=False),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("issued_at", cardops.core.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("payer_name", sa.String(length=128), nullable=False),
        sa.Column("payer_type", sa.String(length=32), nullable=True),
        sa.Column("payer_id", sa.BigInteger(), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("reference", sa.String(length=128), nullable=True),
        sa.Column("posting_id", BigId, nullable=False),
        sa.Column("issued_by_id", sa.Integer(), nullable=False),
        sa.Column("voided_at", cardops.core.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("void_reason", sa.String(length=255), nullable=True),
        sa.Column("voided_by_id", sa.Integer(), nullable=True),
        sa.Column("void_posting_id", BigId, nullable=True),
        sa.CheckConstraint(
            "method IN ('cash', 'card', 'transfer', 'wechat', 'alipay')",
            name=op.f("ck_receipts_method"),
        ),
        sa.ForeignKeyConstraint(
            ["issued_by_id"], ["users.id"], name=op.f("fk_receipts_issued_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["posting_id"],
            ["ledger_postings.id"],
            name=op.f("fk_receipts_posting_id_ledger_postings"),
        ),
        sa.ForeignKeyConstraint(
            ["void_posting_id"],
            ["ledger_postings.id"],
            name=op.f("fk_receipts_void_posting_id_ledger_postings"),
        ),
        sa.ForeignKeyConstraint(
            ["voided_by_id"], ["users.id"], name=op.f("fk_receipts_voided_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_receipts")),
        sa.UniqueConstraint("number", name=op.f("uq_receipts_number")),
        sa.UniqueConstraint("posting_id", name=op.f("uq_receipts_posting_id")),
    )
    with op.batch_alter_table("receipts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_receipts_issued_at"), ["issued_at"], unique=False)
        batch_op.create_index("ix_receipts_payer", ["payer_type", "payer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_receipts_reference"), ["reference"], unique=False)

    now = datetime.now(UTC)
    op.bulk_insert(
        accounts,
        [
            {
                "code": code,
                "name_en": name_en,
                "name_zh": name_zh,
                "type": kind,
                "currency": "CNY",
                "is_active": True,
                "created_at": now,
                "updated_at": now,
            }
            for code, name_en, name_zh, kind in STANDARD_CHART
        ],
    )


def downgrade() -> None:
    with op.batch_alter_table("receipts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_receipts_reference"))
        batch_op.drop_index("ix_receipts_payer")
        batch_op.drop_index(batch_op.f("ix_receipts_issued_at"))
    op.drop_table("receipts")
    with op.batch_alter_table("ledger_posting_lines", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_posting_lines_posting_id"))
        batch_op.drop_index(batch_op.f("ix_ledger_posting_lines_account_id"))
    op.drop_table("ledger_posting_lines")
    with op.batch_alter_table("ledger_postings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_postings_reference"))
        batch_op.drop_index(batch_op.f("ix_ledger_postings_posted_at"))
        batch_op.drop_index(batch_op.f("ix_ledger_postings_business_date"))
    op.drop_table("ledger_postings")
    with op.batch_alter_table("ledger_accounts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ledger_accounts_parent_id"))
        batch_op.drop_index("ix_ledger_accounts_owner")
    op.drop_table("ledger_accounts")
