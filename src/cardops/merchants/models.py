"""Merchants (商户) and the activation cases (开通 / 变更 / 撤机) that bind a terminal to one.

Activation lifecycle (``CASE_TRANSITIONS``): submitted → in_review (user-management reviewer of
the install region) → returned (back to the applicant for correction → submitted again) |
with_platform (sent to the acquiring platform) → approved | declined (platform verdict) →
called_back (the user was told) → archived.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cardops.core.clock import utcnow
from cardops.core.db import Base, TimestampMixin
from cardops.core.errors import InvalidTransition
from cardops.core.i18n import N_

# What a merchant may have on file (SPEC §3, seed 001). Anything else is refused.
MERCHANT_DOC_TYPES: tuple[str, ...] = (
    "business_licence",
    "organisation_code_certificate",
    "tax_registration_certificate",
    "id_front",
    "id_back",
    "bank_account_permit",
    "bank_card",
    "signed_form",
    "photo",
    "other",
)
# Required documents per merchant kind; a tuple lists alternatives (any one of them will do).
REQUIRED_DOCS: dict[str, tuple[tuple[str, ...], ...]] = {
    "corporate": (
        ("business_licence",),
        ("organisation_code_certificate",),
        ("tax_registration_certificate",),
        ("id_front",),
        ("id_back",),
        ("bank_account_permit",),
    ),
    "individual": (
        ("business_licence",),
        ("id_front",),
        ("id_back",),
        ("bank_account_permit", "bank_card"),
    ),
}
# What an activation / change / cancellation case may carry, and what it must carry.
CASE_DOC_TYPES: tuple[str, ...] = (
    "application_form",
    "id_front",
    "id_back",
    "signed_form",
    "photo",
    "other",
)
CASE_REQUIRED_DOCS: tuple[tuple[str, ...], ...] = (
    ("application_form",),
    ("id_front",),
    ("id_back",),
)

MERCHANT_KINDS: dict[str, str] = {
    "corporate": N_("Corporate merchant"),
    "individual": N_("Individual merchant"),
}


class MerchantState(enum.StrEnum):
    DRAFT = "draft"
    KYC_REVIEW = "kyc_review"
    APPROVED = "approved"
    REJECTED = "rejected"
    SUSPENDED = "suspended"
    CLOSED = "closed"


_M = MerchantState
MERCHANT_TRANSITIONS: dict[MerchantState, set[MerchantState]] = {
    _M.DRAFT: {_M.KYC_REVIEW, _M.CLOSED},
    _M.KYC_REVIEW: {_M.APPROVED, _M.REJECTED},
    _M.REJECTED: {_M.DRAFT, _M.KYC_REVIEW, _M.CLOSED},
    _M.APPROVED: {_M.SUSPENDED, _M.CLOSED},
    _M.SUSPENDED: {_M.APPROVED, _M.CLOSED},
    _M.CLOSED: set(),
}


class Merchant(TimestampMixin, Base):
    __tablename__ = "merchants"

    id: Mapped[int] = mapped_column(primary_key=True)
    mid: Mapped[str | None] = mapped_column(String(15), unique=True)  # merchant ID (card acceptor)
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(12))  # corporate | individual
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    legal_person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    business_licence_no: Mapped[str | None] = mapped_column(String(18))  # USCC
    tax_registration_no: Mapped[str | None] = mapped_column(String(32))
    organisation_code: Mapped[str | None] = mapped_column(String(16))
    bank_name: Mapped[str] = mapped_column(String(128), default="")
    bank_account: Mapped[str] = mapped_column(String(32), default="")
    bank_account_name: Mapped[str] = mapped_column(String(128), default="")
    mcc: Mapped[str] = mapped_column(String(4), default="5411")
    province: Mapped[str] = mapped_column(String(16), default="")
    city: Mapped[str] = mapped_column(String(32), default="")
    address: Mapped[str] = mapped_column(String(255), default="")
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("providers.id"), index=True)
    # draft → kyc_review → approved | rejected (→ draft); approved → suspended ⇄ approved; closed
    state: Mapped[str] = mapped_column(String(16), default="draft", index=True)
    kyc_notes: Mapped[str] = mapped_column(Text, default="")
    risk_level: Mapped[str] = mapped_column(String(8), default="normal")  # normal | watch | high
    daily_limit: Mapped[int | None] = mapped_column()  # fen; None = no limit

    def transition(self, target: MerchantState) -> MerchantState:
        current = MerchantState(self.state)
        if target not in MERCHANT_TRANSITIONS[current]:
            raise InvalidTransition(
                "Merchant {name} is {state_from}; it cannot become {state_to}.",
                name=self.name,
                state_from=current.value,
                state_to=target.value,
            )
        self.state = target.value
        return current


class CaseKind(enum.StrEnum):
    ACTIVATION = "activation"  # 开通
    CHANGE = "change"  # 变更
    CANCELLATION = "cancellation"  # 撤机


class CaseState(enum.StrEnum):
    SUBMITTED = "submitted"
    IN_REVIEW = "in_review"
    RETURNED = "returned"
    WITH_PLATFORM = "with_platform"
    APPROVED = "approved"
    DECLINED = "declined"
    CALLED_BACK = "called_back"
    ARCHIVED = "archived"
    WITHDRAWN = "withdrawn"


_C = CaseState
CASE_TRANSITIONS: dict[CaseState, set[CaseState]] = {
    _C.SUBMITTED: {_C.IN_REVIEW, _C.WITHDRAWN},
    _C.IN_REVIEW: {_C.RETURNED, _C.WITH_PLATFORM},
    _C.RETURNED: {_C.SUBMITTED, _C.WITHDRAWN},
    _C.WITH_PLATFORM: {_C.APPROVED, _C.DECLINED},
    _C.APPROVED: {_C.CALLED_BACK},
    _C.DECLINED: {_C.CALLED_BACK},
    _C.CALLED_BACK: {_C.ARCHIVED},
    _C.ARCHIVED: set(),
    _C.WITHDRAWN: set(),
}


class ActivationCase(TimestampMixin, Base):
    __tablename__ = "activation_cases"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[str] = mapped_column(String(16), default=CaseKind.ACTIVATION.value)
    state: Mapped[str] = mapped_column(String(16), default=CaseState.SUBMITTED.value, index=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    applicant_person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    terminal_id: Mapped[int] = mapped_column(ForeignKey("terminals.id"), index=True)
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("providers.id"), index=True)
    install_province: Mapped[str] = mapped_column(String(16))
    install_city: Mapped[str] = mapped_column(String(32), default="")
    install_address: Mapped[str] = mapped_column(String(255), default="")
    region_code: Mapped[str | None] = mapped_column(ForeignKey("regions.code"))
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    platform: Mapped[str] = mapped_column(String(64), default="")  # acquiring platform name
    platform_reference: Mapped[str] = mapped_column(String(64), default="")
    verdict_note: Mapped[str] = mapped_column(String(500), default="")
    tid: Mapped[str | None] = mapped_column(String(8))
    mid: Mapped[str | None] = mapped_column(String(15))
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow)
    due_at: Mapped[datetime | None] = mapped_column()  # 1–2 working days target
    decided_at: Mapped[datetime | None] = mapped_column()
    called_back_at: Mapped[datetime | None] = mapped_column()
    archived_at: Mapped[datetime | None] = mapped_column()
    round: Mapped[int] = mapped_column(default=1)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

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


class CaseEvent(Base):
    __tablename__ = "activation_case_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(
        ForeignKey("activation_cases.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(24))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    comment: Mapped[str] = mapped_column(String(1000), default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
