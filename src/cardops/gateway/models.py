"""Gateway tables: working keys, the transaction journal, on-us card numbers, the stop list,
store-and-forward queue, settled batches and node heartbeats."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from cardops.core.clock import utcnow
from cardops.core.db import Base, BigId, TimestampMixin


class SessionKey(Base):
    """The working keys a terminal got at its last sign-on (one row per terminal)."""

    __tablename__ = "gateway_session_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    tid: Mapped[str] = mapped_column(String(8), unique=True)
    terminal_id: Mapped[int] = mapped_column(ForeignKey("terminals.id"), index=True)
    business_date: Mapped[date] = mapped_column(Date)
    tpk_under_tmk: Mapped[str] = mapped_column(String(32))
    tpk_kcv: Mapped[str] = mapped_column(String(6))
    tak_under_tmk: Mapped[str] = mapped_column(String(32))
    tak_kcv: Mapped[str] = mapped_column(String(6))
    signed_on_at: Mapped[datetime] = mapped_column(default=utcnow)


class Kind(enum.StrEnum):
    SIGN_ON = "sign_on"
    SIGN_OFF = "sign_off"
    ECHO = "echo"
    PURCHASE = "purchase"
    REFUND = "refund"
    VOID = "void"
    BALANCE = "balance"
    PREAUTH = "preauth"
    COMPLETION = "completion"
    REVERSAL = "reversal"
    SETTLEMENT = "settlement"
    UNKNOWN = "unknown"


class Journal(Base):
    """Every request with its response, durable before the response leaves the gateway.

    ``dup_key`` (TID + local date + STAN) is set for authenticated requests and unique: a
    repeat is answered from ``response``. Card numbers appear only as ``pan_hash`` + ``pan_masked``.
    """

    __tablename__ = "gateway_journal"
    __table_args__ = (
        Index("ix_gateway_journal_tid_stan", "tid", "stan"),
        Index("ix_gateway_journal_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    node: Mapped[str] = mapped_column(String(32), default="")
    mti: Mapped[str] = mapped_column(String(4), default="")
    response_mti: Mapped[str] = mapped_column(String(4), default="")
    kind: Mapped[str] = mapped_column(String(16), default=Kind.UNKNOWN.value, index=True)
    tid: Mapped[str] = mapped_column(String(8), default="")
    mid: Mapped[str] = mapped_column(String(15), default="", index=True)
    terminal_id: Mapped[int | None] = mapped_column(ForeignKey("terminals.id"))
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey("merchants.id"), index=True)
    stan: Mapped[str] = mapped_column(String(6), default="")
    local_date: Mapped[str] = mapped_column(String(8), default="")  # YYYYMMDD of field 13
    dup_key: Mapped[str | None] = mapped_column(String(32), unique=True)
    processing_code: Mapped[str] = mapped_column(String(6), default="")
    amount: Mapped[int] = mapped_column(default=0)  # fen
    currency: Mapped[str] = mapped_column(String(3), default="")
    pan_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    pan_masked: Mapped[str] = mapped_column(String(19), default="", index=True)
    card_type: Mapped[str] = mapped_column(String(6), default="")  # debit | credit | "" (no card)
    rrn: Mapped[str | None] = mapped_column(String(12), index=True)
    auth_code: Mapped[str] = mapped_column(String(6), default="")
    response_code: Mapped[str] = mapped_column(String(2), default="", index=True)
    approved: Mapped[bool] = mapped_column(Boolean, default=False)
    route: Mapped[str] = mapped_column(String(8), default="")  # on-us | upstream | ""
    reversed: Mapped[bool] = mapped_column(Boolean, default=False)
    voided: Mapped[bool] = mapped_column(Boolean, default=False)
    completed: Mapped[bool] = mapped_column(Boolean, default=False)
    original_id: Mapped[int | None] = mapped_column(ForeignKey("gateway_journal.id"))
    batch_no: Mapped[str] = mapped_column(String(6), default="")
    settled_batch_id: Mapped[int | None] = mapped_column(ForeignKey("gateway_batches.id"))
    wallet_key: Mapped[str | None] = mapped_column(String(64))
    upstream_stan: Mapped[str] = mapped_column(String(6), default="")
    transmitted: Mapped[str] = mapped_column(String(10), default="")  # field 7
    latency_us: Mapped[int] = mapped_column(default=0)
    request: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # PAN masked, no PIN
    response: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # fields, no MAC


class OnusCard(TimestampMixin, Base):
    """The card number (PAN) of a one-card card on the operator's own BIN, and its PIN."""

    __tablename__ = "gateway_onus_cards"

    id: Mapped[int] = mapped_column(primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("cards.id"), unique=True)
    pan_hash: Mapped[str] = mapped_column(String(64), unique=True)
    pan_masked: Mapped[str] = mapped_column(String(19))
    expiry: Mapped[str] = mapped_column(String(4))  # YYMM
    pin_verification: Mapped[str | None] = mapped_column(String(200))
    pin_tries: Mapped[int] = mapped_column(default=0)
    pin_set_at: Mapped[datetime | None] = mapped_column()


class StopReason(enum.StrEnum):
    LOST = "lost"  # 41
    STOLEN = "stolen"  # 43
    COUNTERFEIT = "counterfeit"  # 59


class StopEntry(Base):
    """止付名单: a card that must not be honoured, with who added it and why."""

    __tablename__ = "gateway_stop_list"

    id: Mapped[int] = mapped_column(primary_key=True)
    pan_hash: Mapped[str] = mapped_column(String(64), index=True)
    pan_masked: Mapped[str] = mapped_column(String(19))
    reason: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(String(500), default="")
    added_at: Mapped[datetime] = mapped_column(default=utcnow)
    added_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True, index=True)
    removed_at: Mapped[datetime | None] = mapped_column()
    removed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    removal_note: Mapped[str] = mapped_column(String(500), default="")


class SafEntry(Base):
    """A reversal waiting to reach the upstream host (store and forward)."""

    __tablename__ = "gateway_saf"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    journal_id: Mapped[int | None] = mapped_column(ForeignKey("gateway_journal.id"))
    message: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    attempts: Mapped[int] = mapped_column(default=0)
    last_attempt_at: Mapped[datetime | None] = mapped_column()
    done_at: Mapped[datetime | None] = mapped_column(index=True)
    response_code: Mapped[str] = mapped_column(String(2), default="")


class Batch(Base):
    """A terminal's batch settlement (0500) and whether its totals agreed (对账平/不平)."""

    __tablename__ = "gateway_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    tid: Mapped[str] = mapped_column(String(8), index=True)
    mid: Mapped[str] = mapped_column(String(15), default="")
    batch_no: Mapped[str] = mapped_column(String(6))
    terminal_credits: Mapped[int] = mapped_column(default=0)
    terminal_credit_amount: Mapped[int] = mapped_column(default=0)
    terminal_debits: Mapped[int] = mapped_column(default=0)
    terminal_debit_amount: Mapped[int] = mapped_column(default=0)
    gateway_credits: Mapped[int] = mapped_column(default=0)
    gateway_credit_amount: Mapped[int] = mapped_column(default=0)
    gateway_debits: Mapped[int] = mapped_column(default=0)
    gateway_debit_amount: Mapped[int] = mapped_column(default=0)
    balanced: Mapped[bool] = mapped_column(Boolean, default=False)


class Node(Base):
    """A running gateway process: heartbeat and a snapshot of its metrics."""

    __tablename__ = "gateway_nodes"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(32), unique=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
