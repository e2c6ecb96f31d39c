"""API shapes of the ledger and receipts. Amounts are integers in fen (minor units)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from cardops.ledger.service import MAX_AMOUNT, MAX_ITEMS, MAX_LINES

AccountTypeName = Literal["asset", "liability", "equity", "income", "expense"]
MethodName = Literal["cash", "card", "transfer", "wechat", "alipay"]


class AccountIn(BaseModel):
    code: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9:._-]{0,63}$",
        examples=["1001", "wallet:card:123"],
    )
    name_en: str = Field(min_length=1, max_length=128)
    name_zh: str = Field(min_length=1, max_length=128)
    type: AccountTypeName
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    owner_type: str | None = Field(default=None, max_length=32)
    owner_id: int | None = Field(default=None, ge=0, le=2**63 - 1)
    parent: str | None = Field(default=None, max_length=64, description="parent account code")


class AccountPatch(BaseModel):
    name_en: str | None = Field(default=None, min_length=1, max_length=128)
    name_zh: str | None = Field(default=None, min_length=1, max_length=128)
    is_active: bool | None = None


class AccountOut(BaseModel):
    code: str
    name_en: str
    name_zh: str
    type: str
    currency: str
    owner_type: str | None
    owner_id: int | None
    parent: str | None
    is_active: bool
    created_at: datetime
    balance: int = Field(description="SUM of the lines in fen; debit positive, credit negative")
    natural_balance: int = Field(
        description="the balance as an accountant reads it (sign flipped for liability, equity, income)"
    )


class BalanceOut(BaseModel):
    account: str
    currency: str
    as_of: date | None
    balance: int
    natural_balance: int


class StatementLineOut(BaseModel):
    posting_id: int
    posting_number: str
    posted_at: datetime
    business_date: date
    description: str
    reference: str | None
    amount: int
    balance: int


class StatementOut(BaseModel):
    account: str
    currency: str
    since: date | None
    until: date | None
    opening_balance: int
    closing_balance: int
    truncated: bool
    lines: list[StatementLineOut]


class PostingLineIn(BaseModel):
    account: str = Field(min_length=1, max_length=64)
    amount: int = Field(
        ge=-MAX_AMOUNT, le=MAX_AMOUNT, description="fen; debit positive, credit negative"
    )


class PostingIn(BaseModel):
    description: str = Field(min_length=1, max_length=255)
    reference: str | None = Field(default=None, max_length=128)
    idempotency_key: str | None = Field(default=None, max_length=128)
    business_date: date | None = Field(default=None, description="local date; default today")
    lines: list[PostingLineIn] = Field(max_length=MAX_LINES)


class PostingLineOut(BaseModel):
    account: str
    account_name_en: str
    account_name_zh: str
    amount: int
    currency: str


class PostingOut(BaseModel):
    id: int
    number: str
    posted_at: datetime
    business_date: date
    description: str
    reference: str | None
    idempotency_key: str | None
    created_by: str
    reversal_of: str | None
    reversed_by: str | None
    receipt: str | None
    lines: list[PostingLineOut]


class ReasonIn(BaseModel):
    reason: str = Field(min_length=1, max_length=200)


class TrialRowOut(BaseModel):
    account: str
    name_en: str
    name_zh: str
    type: str
    currency: str
    debit: int
    credit: int


class TrialTotalOut(BaseModel):
    currency: str
    debit: int
    credit: int


class TrialBalanceOut(BaseModel):
    as_of: date | None
    balanced: bool
    rows: list[TrialRowOut]
    totals: list[TrialTotalOut]


class PaymentItemIn(BaseModel):
    item: str = Field(min_length=1, max_length=128)
    amount: int = Field(gt=0, le=MAX_AMOUNT, description="fen")
    account: str | None = Field(
        default=None, max_length=64, description="credit account; default credit_account"
    )


class PaymentIn(BaseModel):
    payer_name: str = Field(min_length=1, max_length=128)
    payer_type: str | None = Field(default=None, max_length=32)
    payer_id: int | None = Field(default=None, ge=0, le=2**63 - 1)
    items: list[PaymentItemIn] = Field(min_length=1, max_length=MAX_ITEMS)
    method: MethodName
    credit_account: str | None = Field(default=None, max_length=64)
    debit_account: str | None = Field(
        default=None, max_length=64, description="default: the payment method's account"
    )
    reference: str | None = Field(default=None, max_length=128)
    description: str | None = Field(default=None, max_length=100)
    idempotency_key: str | None = Field(default=None, max_length=128)


class ReceiptItemOut(BaseModel):
    item: str
    amount: int
    account: str | None = None


class ReceiptOut(BaseModel):
    number: str
    issued_at: datetime
    payer_name: str
    payer_type: str | None
    payer_id: int | None
    amount: int
    currency: str
    amount_in_words: str
    items: list[ReceiptItemOut]
    method: str
    reference: str | None
    posting: str
    issued_by: str
    voided_at: datetime | None
    void_reason: str | None
    void_posting: str | None
    pdf_url: str
