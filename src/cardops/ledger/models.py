"""Double-entry ledger: accounts, postings (journal entries) and their lines; receipts.

Sign convention: a posting line's ``amount`` is an integer number of minor units (fen) and is
**positive for a debit, negative for a credit**. Every posting sums to zero per currency, and an
account's balance is the sum of its lines — derived, never stored. For credit-normal accounts
(liabilities, equity, income) the everyday "natural" balance is that sum with its sign flipped.

Postings and their lines are immutable once written: a mistake is corrected by a reversing
posting (``reversal_of_id``), never by editing or deleting. The ORM refuses updates and deletes
(see the listeners at the bottom). A receipt records exactly one posting; voiding it posts the
reversal and keeps the receipt (and its number) for good.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    String,
    event,
    inspect,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cardops.auth.models import User
from cardops.core.clock import utcnow
from cardops.core.db import Base, BigId, TimestampMixin


class AccountType(StrEnum):
    ASSET = "asset"
    LIABILITY = "liability"
    EQUITY = "equity"
    INCOME = "income"
    EXPENSE = "expense"


# Accounts whose balance normally sits on the credit side (shown with the sign flipped).
CREDIT_NORMAL = frozenset({AccountType.LIABILITY, AccountType.EQUITY, AccountType.INCOME})


class PaymentMethod(StrEnum):
    CASH = "cash"
    CARD = "card"
    TRANSFER = "transfer"
    WECHAT = "wechat"
    ALIPAY = "alipay"


class Account(TimestampMixin, Base):
    """A ledger account, e.g. ``1001`` cash, or a sub-ledger such as ``wallet:card:123``."""

    __tablename__ = "ledger_accounts"
    __table_args__ = (
        CheckConstraint(
            "type IN ('asset', 'liability', 'equity', 'income', 'expense')", name="type"
        ),
        Index("ix_ledger_accounts_owner", "owner_type", "owner_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name_en: Mapped[str] = mapped_column(String(128))
    name_zh: Mapped[str] = mapped_column(String(128))
    type: Mapped[str] = mapped_column(String(16))
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    # A sub-ledger belongs to something: ("card", 123) for a card wallet, ("merchant", 7) …
    owner_type: Mapped[str | None] = mapped_column(String(32))
    owner_id: Mapped[int | None] = mapped_column(BigInteger)
    # A sub-ledger rolls up into its parent (e.g. every card wallet into 2202) in reports.
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_accounts.id"), index=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)

    parent: Mapped[Account | None] = relationship(remote_side="Account.id", lazy="joined")

    @property
    def credit_normal(self) -> bool:
        return self.type in CREDIT_NORMAL

    def natural(self, balance: int) -> int:
        """The balance as an accountant reads it: credit-normal accounts flip the sign."""
        return -balance if self.credit_normal else balance

    def name(self, locale: str) -> str:
        return self.name_zh if locale.startswith("zh") else self.name_en

    def __repr__(self) -> str:
        return f"<Account {self.code}>"


class Posting(Base):
    """A journal entry: two or more lines that sum to zero per currency."""

    __tablename__ = "ledger_postings"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    posted_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    business_date: Mapped[date] = mapped_column(Date, index=True)
    description: Mapped[str] = mapped_column(String(255))
    reference: Mapped[str | None] = mapped_column(String(128), index=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    reversal_of_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("ledger_postings.id"), unique=True
    )

    lines: Mapped[list[PostingLine]] = relationship(
        back_populates="posting",
        cascade="all",
        lazy="selectin",
        order_by="PostingLine.id",
    )
    created_by: Mapped[User] = relationship(lazy="joined")
    reversal_of: Mapped[Posting | None] = relationship(
        remote_side="Posting.id",
        foreign_keys="Posting.reversal_of_id",
        back_populates="reversed_by",
    )
    reversed_by: Mapped[Posting | None] = relationship(
        foreign_keys="Posting.reversal_of_id", back_populates="reversal_of", uselist=False
    )
    receipt: Mapped[Receipt | None] = relationship(
        "Receipt", foreign_keys="Receipt.posting_id", uselist=False, viewonly=True
    )

    def __repr__(self) -> str:
        return f"<Posting {self.number}>"


class PostingLine(Base):
    """One side of a posting. ``amount`` > 0 is a debit, < 0 a credit (never zero)."""

    __tablename__ = "ledger_posting_lines"
    __table_args__ = (
        CheckConstraint("amount <> 0", name="amount_not_zero"),
        # covering: an account's balance (SUM of its amounts, or of those after a line id:
        # ledger.service.current_balances) is read from the index alone, without the rows
        Index("ix_ledger_posting_lines_account_id_id", "account_id", "id", "amount"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    posting_id: Mapped[int] = mapped_column(BigId, ForeignKey("ledger_postings.id"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))

    posting: Mapped[Posting] = relationship(back_populates="lines")
    account: Mapped[Account] = relationship(lazy="joined")

    @property
    def debit(self) -> int:
        return self.amount if self.amount > 0 else 0

    @property
    def credit(self) -> int:
        return -self.amount if self.amount < 0 else 0


class Receipt(Base):
    """收据: a numbered proof of one payment; it records exactly one posting."""

    __tablename__ = "receipts"
    __table_args__ = (
        CheckConstraint(
            "method IN ('cash', 'card', 'transfer', 'wechat', 'alipay')", name="method"
        ),
        Index("ix_receipts_payer", "payer_type", "payer_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    issued_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    payer_name: Mapped[str] = mapped_column(String(128))
    payer_type: Mapped[str | None] = mapped_column(String(32))
    payer_id: Mapped[int | None] = mapped_column(BigInteger)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    # [{"item": "Card fee", "amount": 2000, "account": "6001"}, …]
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    method: Mapped[str] = mapped_column(String(16))
    # What the payment is for, in the calling domain's terms, e.g. "card:123".
    reference: Mapped[str | None] = mapped_column(String(128), index=True)
    posting_id: Mapped[int] = mapped_column(BigId, ForeignKey("ledger_postings.id"), unique=True)
    issued_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    voided_at: Mapped[datetime | None] = mapped_column()
    void_reason: Mapped[str | None] = mapped_column(String(255))
    voided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    void_posting_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("ledger_postings.id"))

    posting: Mapped[Posting] = relationship(foreign_keys=[posting_id])
    void_posting: Mapped[Posting | None] = relationship(foreign_keys=[void_posting_id])
    issued_by: Mapped[User] = relationship(foreign_keys=[issued_by_id], lazy="joined")
    voided_by: Mapped[User | None] = relationship(foreign_keys=[voided_by_id])

    @property
    def is_voided(self) -> bool:
        return self.voided_at is not None

    def __repr__(self) -> str:
        return f"<Receipt {self.number}>"


# --- immutability -------------------------------------------------------------------------


class ImmutableRecord(RuntimeError):
    """A bug: code tried to edit or delete a posting. Post a reversal instead."""


def _refuse_column_changes(_mapper: Any, _connection: Any, target: Any) -> None:
    state = inspect(target)
    for attr in state.mapper.column_attrs:
        if state.attrs[attr.key].history.has_changes():
            raise ImmutableRecord(
                f"{type(target).__name__} rows are immutable; post a reversal instead"
            )


def _refuse_delete(_mapper: Any, _connection: Any, target: Any) -> None:
    raise ImmutableRecord(f"{type(target).__name__} rows are never deleted; post a reversal")


_VOID_COLUMNS = frozenset({"voided_at", "void_reason", "voided_by_id", "void_posting_id"})


def _receipt_only_voids(_mapper: Any, _connection: Any, target: Receipt) -> None:
    state = inspect(target)
    for attr in state.mapper.column_attrs:
        if attr.key not in _VOID_COLUMNS and state.attrs[attr.key].history.has_changes():
            raise ImmutableRecord("a receipt only changes when it is voided")


for _model in (Posting, PostingLine):
    event.listen(_model, "before_update", _refuse_column_changes)
    event.listen(_model, "before_delete", _refuse_delete)
event.listen(Receipt, "before_update", _receipt_only_voids)
event.listen(Receipt, "before_delete", _refuse_delete)
