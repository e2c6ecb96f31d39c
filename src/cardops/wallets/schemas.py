"""API shapes of card wallets (every field bounded). Amounts in fen."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

Method = Literal["cash", "card", "transfer", "wechat", "alipay"]


class WalletOut(BaseModel):
    card_number: str
    card_state: str
    enabled: bool
    balance: int
    account: str | None
    max_topup: int


class TopUpIn(BaseModel):
    amount: int = Field(
        ge=-(10**12), le=10**12, description="fen; above zero and at most the top-up limit"
    )
    method: Method = "cash"
    payer_name: str | None = Field(default=None, max_length=128)
    idempotency_key: str | None = Field(default=None, max_length=100)


class TopUpOut(BaseModel):
    receipt: str
    amount: int
    balance: int
    pdf_url: str


class DebitIn(BaseModel):
    amount: int = Field(ge=1, le=10**10, description="fen")
    reference: str = Field(default="", max_length=100, description="e.g. terminal/STAN")
    idempotency_key: str = Field(min_length=1, max_length=100)
    merchant_account: str | None = Field(
        default=None, max_length=64, description="ledger account credited; default 2203"
    )


class ReverseIn(BaseModel):
    idempotency_key: str = Field(min_length=1, max_length=100)
    reason: str = Field(default="reversal", max_length=200)


class DebitOut(BaseModel):
    approved: bool
    reason: Literal[
        "ok",
        "unknown_card",
        "card_not_active",
        "wallet_disabled",
        "insufficient_funds",
        "duplicate",
        "not_found",
    ]
    balance_after: int | None
    posting: str | None
    idempotency_key: str


class StatementEntryOut(BaseModel):
    at: datetime
    business_date: date
    posting: str
    description: str
    reference: str | None
    amount: int
    balance: int
    receipt: str | None


class StatementOut(BaseModel):
    card_number: str
    opening: int
    closing: int
    truncated: bool
    entries: list[StatementEntryOut]
