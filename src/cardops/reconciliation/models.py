"""Reconciliation with the acquiring bank (对账): imported clearing files, reconciliation runs
and the difference cases worked to closure.

A clearing file is ``active`` until a corrected file for the same business day replaces it
(``replaced``; kept with its runs for history). Each import runs one reconciliation; a run
stores the day's counts and amounts per class. Every difference is a case (one per business
day and ``case_key``, so re-running a day never doubles them).

Case lifecycle (``CASE_TRANSITIONS``): open → investigating → resolved (by an adjustment
posting, a bank claim or a write-off); investigating → open (handed back); open → cleared
when a later run (a corrected file) no longer finds the difference; cleared → open when it
comes back.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Date, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cardops.core.clock import utcnow
from cardops.core.db import Base, TimestampMixin
from cardops.core.errors import InvalidTransition
from cardops.core.i18n import N_


class DiffClass(enum.StrEnum):
    MISSING_AT_BANK = "missing_at_bank"
    MISSING_AT_OURS = "missing_at_ours"
    AMOUNT_MISMATCH = "amount_mismatch"
    STATUS_MISMATCH = "status_mismatch"
    DUPLICATE_AT_BANK = "duplicate_at_bank"
    DUPLICATE_AT_OURS = "duplicate_at_ours"


DIFF_CLASSES: tuple[str, ...] = tuple(c.value for c in DiffClass)
CLASS_LABELS: dict[str, str] = {
    "matched": N_("Matched"),
    "missing_at_bank": N_("Missing at the bank"),
    "missing_at_ours": N_("Missing at our side"),
    "amount_mismatch": N_("Amount mismatch"),
    "status_mismatch": N_("Status mismatch"),
    "duplicate_at_bank": N_("Duplicate at the bank"),
    "duplicate_at_ours": N_("Duplicate at our side"),
}


class FileState(enum.StrEnum):
    ACTIVE = "active"
    REPLACED = "replaced"


class CaseState(enum.StrEnum):
    OPEN = "open"
    INVESTIGATING = "investigating"
    RESOLVED = "resolved"
    CLEARED = "cleared"


_S = CaseState
CASE_TRANSITIONS: dict[CaseState, set[CaseState]] = {
    _S.OPEN: {_S.INVESTIGATING, _S.CLEARED},
    _S.INVESTIGATING: {_S.RESOLVED, _S.OPEN},
    _S.CLEARED: {_S.OPEN},
    _S.RESOLVED: set(),
}
CASE_STATE_LABELS: dict[str, str] = {
    "open": N_("Open"),
    "investigating": N_("Investigating"),
    "resolved": N_("Resolved"),
    "cleared": N_("Cleared by a later run"),
}


class Resolution(enum.StrEnum):
    ADJUSTMENT = "adjustment"  # 调账: a posting to the ledger
    BANK_CLAIM = "bank_claim"  # 向银行提出差错索赔 / 调单
    WRITE_OFF = "write_off"  # 核销


RESOLUTION_LABELS: dict[str, str] = {
    "adjustment": N_("Adjustment posting"),
    "bank_claim": N_("Bank claim"),
    "write_off": N_("Write-off"),
}


class ClearingFile(Base):
    """One imported clearing file (清算明细文件) of the bank for one business day."""

    __tablename__ = "reconciliation_files"

    id: Mapped[int] = mapped_column(primary_key=True)
    business_date: Mapped[date] = mapped_column(Date, index=True)
    acquirer: Mapped[str] = mapped_column(String(32), default="")
    filename: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    encoding: Mapped[str] = mapped_column(String(8))  # gbk | utf-8
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    lines: Mapped[int] = mapped_column(default=0)  # detail lines
    success_count: Mapped[int] = mapped_column(default=0)
    success_amount: Mapped[int] = mapped_column(BigInteger, default=0)  # fen
    bank_fee_total: Mapped[int] = mapped_column(BigInteger, default=0)  # fen, SUCCESS lines
    state: Mapped[str] = mapped_column(String(12), default=FileState.ACTIVE.value, index=True)
    replaced_by_id: Mapped[int | None] = mapped_column(ForeignKey("reconciliation_files.id"))
    replace_reason: Mapped[str] = mapped_column(String(500), default="")
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)
    imported_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class ReconRun(Base):
    """One reconciliation of a business day against one clearing file, with its figures."""

    __tablename__ = "reconciliation_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    business_date: Mapped[date] = mapped_column(Date, index=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("reconciliation_files.id"), index=True)
    current: Mapped[bool] = mapped_column(Boolean, default=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column()
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    journal_rows: Mapped[int] = mapped_column(default=0)
    bank_lines: Mapped[int] = mapped_column(default=0)
    # {"matched": {"count": n, "amount": fen}, "missing_at_bank": {...}, ...}
    figures: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    new_cases: Mapped[int] = mapped_column(default=0)
    cleared_cases: Mapped[int] = mapped_column(default=0)
    duration_ms: Mapped[int] = mapped_column(default=0)


class ReconCase(TimestampMixin, Base):
    """One difference between our journal and the bank's file, worked to closure."""

    __tablename__ = "reconciliation_cases"
    __table_args__ = (
        UniqueConstraint("business_date", "case_key", name="uq_reconciliation_cases_key"),
        Index("ix_reconciliation_cases_day_kind", "business_date", "kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(24), unique=True)
    business_date: Mapped[date] = mapped_column(Date)
    case_key: Mapped[str] = mapped_column(String(96))
    kind: Mapped[str] = mapped_column(String(24))  # DiffClass
    state: Mapped[str] = mapped_column(String(16), default=CaseState.OPEN.value, index=True)
    present: Mapped[bool] = mapped_column(Boolean, default=True)  # found by the latest run
    tid: Mapped[str] = mapped_column(String(8), default="")
    mid: Mapped[str] = mapped_column(String(15), default="")
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey("merchants.id"))
    stan: Mapped[str] = mapped_column(String(6), default="")
    rrn: Mapped[str] = mapped_column(String(12), default="")
    txn_type: Mapped[str] = mapped_column(String(12), default="")
    journal_id: Mapped[int | None] = mapped_column(BigInteger)
    bank_line: Mapped[int | None] = mapped_column()  # line number in the clearing file
    our_amount: Mapped[int | None] = mapped_column(BigInteger)  # fen
    bank_amount: Mapped[int | None] = mapped_column(BigInteger)  # fen
    our_status: Mapped[str] = mapped_column(String(8), default="")
    bank_status: Mapped[str] = mapped_column(String(8), default="")
    difference: Mapped[int] = mapped_column(BigInteger, default=0)  # bank minus ours, fen
    file_id: Mapped[int | None] = mapped_column(ForeignKey("reconciliation_files.id"))
    first_run_id: Mapped[int | None] = mapped_column(ForeignKey("reconciliation_runs.id"))
    last_run_id: Mapped[int | None] = mapped_column(ForeignKey("reconciliation_runs.id"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolution: Mapped[str | None] = mapped_column(String(16))
    resolution_note: Mapped[str] = mapped_column(String(1000), default="")
    claim_reference: Mapped[str] = mapped_column(String(64), default="")
    posting_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_postings.id"))
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolved_at: Mapped[datetime | None] = mapped_column()

    def transition(self, target: CaseState) -> CaseState:
        current = CaseState(self.state)
        if target not in CASE_TRANSITIONS[current]:
            raise InvalidTransition(
                "Case {number} is {state_from}; it cannot become {state_to}.",
                number=self.number,
                state_from=current.value,
                state_to=target.value,
            )
        self.state = target.value
        return current


class ReconCaseEvent(Base):
    """History of a case: opened, seen again, cleared, reopened, investigating, resolved."""

    __tablename__ = "reconciliation_case_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(
        ForeignKey("reconciliation_cases.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(24))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    comment: Mapped[str] = mapped_column(String(1000), default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
