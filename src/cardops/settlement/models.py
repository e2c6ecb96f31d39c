"""Settlement tables: the settings (cut-off, bank rate card), merchant rate cards with their
versions, settlement windows with their lifecycle and history, the settled figures per
merchant / provider / card type, reward rules and the rewards paid.

A window is one business day's slice of the gateway journal: the journal ids after the previous
window's last id up to the last id stamped before the day's cut-off *at the moment the window
closed*. A row journaled after its window closed therefore falls into the next window, and a
closed window never changes: a void or reversal of one of its transactions is an adjustment in
the window where the void or reversal was journaled.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    ForeignKey,
    Index,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from cardops.core.clock import utcnow
from cardops.core.db import Base, TimestampMixin, UTCDateTime
from cardops.core.errors import InvalidTransition


class SettlementSettings(Base):
    """One row (id 1): the daily cut-off in the operator's time zone and the bank's rate card
    ({"debit": {"rate_bp": 30, "cap": 1800}, "credit": {"rate_bp": 45}})."""

    __tablename__ = "settlement_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    cutoff: Mapped[str] = mapped_column(String(5), default="23:00")  # HH:MM local time
    bank_rate_card: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # used for a merchant that has no rate card of its own
    default_merchant_rate: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class RateVersion(Base):
    """The bank's rate card (``scope`` "bank") or the default merchant rate ("default") as
    set at ``recorded_at``: a day is priced with the versions in force when its window
    closed (see :class:`cardops.channel.models.ProviderRateVersion`)."""

    __tablename__ = "settlement_rate_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(16), index=True)
    rate_card: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class MerchantRateCard(Base):
    """A version of a merchant's discount rate (MDR): debit basis points with a per-transaction
    cap, credit basis points, in force from ``effective_from`` until the next version's date.
    Versions are never edited: a change adds a version (the history is the list)."""

    __tablename__ = "settlement_merchant_rates"
    __table_args__ = (UniqueConstraint("merchant_id", "effective_from"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    debit_bp: Mapped[int] = mapped_column()
    debit_cap: Mapped[int | None] = mapped_column(BigInteger)  # fen per transaction
    credit_bp: Mapped[int] = mapped_column()
    effective_from: Mapped[date] = mapped_column(Date)
    note: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class WindowState(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    SETTLED = "settled"


_W = WindowState
WINDOW_TRANSITIONS: dict[WindowState, set[WindowState]] = {
    _W.OPEN: {_W.CLOSED},
    _W.CLOSED: {_W.SETTLED},
    _W.SETTLED: set(),
}


class SettlementWindow(TimestampMixin, Base):
    """One business day: open → closed (its journal range fixed) → settled (figures and
    postings written). ``first_id`` is exclusive, ``last_id`` inclusive."""

    __tablename__ = "settlement_windows"

    id: Mapped[int] = mapped_column(primary_key=True)
    business_date: Mapped[date] = mapped_column(Date, unique=True)
    state: Mapped[str] = mapped_column(String(8), default=WindowState.OPEN.value, index=True)
    start_at: Mapped[datetime] = mapped_column(UTCDateTime())
    end_at: Mapped[datetime] = mapped_column(UTCDateTime())
    cutoff: Mapped[str] = mapped_column(String(5))
    first_id: Mapped[int | None] = mapped_column(BigInteger)
    last_id: Mapped[int | None] = mapped_column(BigInteger)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # totals of the settled day (fen)
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    gross: Mapped[int] = mapped_column(BigInteger, default=0)
    fee: Mapped[int] = mapped_column(BigInteger, default=0)
    net: Mapped[int] = mapped_column(BigInteger, default=0)
    bank_fee: Mapped[int] = mapped_column(BigInteger, default=0)
    shares: Mapped[int] = mapped_column(BigInteger, default=0)
    hq_margin: Mapped[int] = mapped_column(BigInteger, default=0)
    adjustments: Mapped[int] = mapped_column(BigInteger, default=0)  # cancels of earlier days

    def transition(self, target: WindowState) -> None:
        current = WindowState(self.state)
        if target not in WINDOW_TRANSITIONS[current]:
            raise InvalidTransition(
                "The settlement window of {day} is {state} and cannot become {target}.",
                day=self.business_date.isoformat(),
                state=current.value,
                target=target.value,
            )
        self.state = target.value


class WindowEvent(Base):
    """History of a window: opened, closed, settled, re-settled (unchanged), payout file."""

    __tablename__ = "settlement_window_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    window_id: Mapped[int] = mapped_column(ForeignKey("settlement_windows.id"), index=True)
    event: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SettlementFact(Base):
    """Settled figures of one window per merchant, lowest provider and card type (signed: a
    refund or a cancelled transaction counts negative). ``count`` counts sales and refunds,
    ``cancels`` the voids and reversals applied."""

    __tablename__ = "settlement_facts"
    __table_args__ = (Index("ix_settlement_facts_window_merchant", "window_id", "merchant_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    window_id: Mapped[int] = mapped_column(ForeignKey("settlement_windows.id"))
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("providers.id"), index=True)
    card_type: Mapped[str] = mapped_column(String(6))
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    cancels: Mapped[int] = mapped_column(BigInteger, default=0)
    gross: Mapped[int] = mapped_column(BigInteger, default=0)
    fee: Mapped[int] = mapped_column(BigInteger, default=0)
    bank_fee: Mapped[int] = mapped_column(BigInteger, default=0)
    hq_margin: Mapped[int] = mapped_column(BigInteger, default=0)
    adjustment: Mapped[int] = mapped_column(
        BigInteger, default=0
    )  # part of gross from earlier days


class ShareLine(Base):
    """A provider's profit share of one window by card type, with the volume it was earned on
    (every transaction of a terminal in the provider's subtree)."""

    __tablename__ = "settlement_shares"
    __table_args__ = (UniqueConstraint("window_id", "provider_id", "card_type"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    window_id: Mapped[int] = mapped_column(ForeignKey("settlement_windows.id"), index=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"), index=True)
    card_type: Mapped[str] = mapped_column(String(6))
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    volume: Mapped[int] = mapped_column(BigInteger, default=0)
    share: Mapped[int] = mapped_column(BigInteger, default=0)


class Payout(Base):
    """What a merchant is paid for one window (T+1): the day's net plus what was carried from
    earlier days (a negative net is carried, not paid)."""

    __tablename__ = "settlement_payouts"
    __table_args__ = (UniqueConstraint("window_id", "merchant_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    window_id: Mapped[int] = mapped_column(ForeignKey("settlement_windows.id"), index=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    net: Mapped[int] = mapped_column(BigInteger)
    carried_in: Mapped[int] = mapped_column(BigInteger, default=0)
    amount: Mapped[int] = mapped_column(BigInteger, default=0)
    carried_out: Mapped[int] = mapped_column(BigInteger, default=0)
    payout_date: Mapped[date] = mapped_column(Date)


class RewardKind(enum.StrEnum):
    ACTIVATION = "activation"  # 激活返现: per terminal activated in the window
    VOLUME = "volume"  # 达标奖励: monthly subtree volume at or above a target


class RewardRule(TimestampMixin, Base):
    """A reward rule: for providers of one level (or one provider), an activation reward per
    activated terminal, or a volume target per month with its reward."""

    __tablename__ = "settlement_reward_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(12))
    level: Mapped[str | None] = mapped_column(String(8))  # city | county | None (any)
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("providers.id"))
    threshold: Mapped[int] = mapped_column(BigInteger, default=0)  # fen of monthly volume
    amount: Mapped[int] = mapped_column(BigInteger)  # fen
    active: Mapped[bool] = mapped_column(default=True)


class Reward(Base):
    """A reward earned: once per rule, provider and reference (a terminal, or a month)."""

    __tablename__ = "settlement_rewards"
    __table_args__ = (UniqueConstraint("rule_id", "provider_id", "reference"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("settlement_reward_rules.id"))
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(12))
    reference: Mapped[str] = mapped_column(String(40))  # terminal:<id> | month:YYYY-MM
    month: Mapped[str] = mapped_column(String(7), index=True)  # YYYY-MM it is reported in
    amount: Mapped[int] = mapped_column(BigInteger)
    posting_number: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
