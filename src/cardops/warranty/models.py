"""Numbered service / warranty cards (售后服务卡) and returns & exchanges (退换货).

Card numbers are ``<prefix><sequence><check>``: an upper-case letter prefix, a zero-padded
sequence of a fixed width and an ISO 7064 MOD 37,36 check character, so that a made-up or
mistyped number is detected. Numbers are generated in ranges, issued as sub-ranges
(allocations) to branches (city providers) and on to their dealers (county providers); a card
gets a row of its own only when it is registered against a sale.

Card lifecycle (``CARD_TRANSITIONS``): registered → returned (refunded return) | voided.

Return lifecycle (``RETURN_TRANSITIONS``): requested → accepted (evidence checked) | rejected
| cancelled; accepted → received (goods back and checked) | cancelled; received → completed
(refund, compensation and shipping posted to the ledger; the exchange unit sent) | cancelled.
A compensation above the configured cap waits for the ``compensation`` approval chain
(``compensation_state``) and the return cannot be completed until it is approved.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cardops.core.clock import utcnow
from cardops.core.db import Base, TimestampMixin
from cardops.core.errors import InvalidTransition
from cardops.core.i18n import N_

if TYPE_CHECKING:
    from cardops.auth.models import User
    from cardops.channel.models import Provider
    from cardops.parties.models import Person
    from cardops.terminals.models import TerminalModel


class WarrantySettings(Base):
    """One row (id 1): the defaults an operator configures."""

    __tablename__ = "warranty_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    warranty_months: Mapped[int] = mapped_column(default=12)
    points_per_card: Mapped[int] = mapped_column(default=10)
    compensation_cap: Mapped[int] = mapped_column(default=1000)  # fen
    photo_hours: Mapped[int] = mapped_column(default=24)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ModelTerms(Base):
    """Per terminal model: the floor price, the warranty period and the installer points."""

    __tablename__ = "warranty_model_terms"

    model_id: Mapped[int] = mapped_column(
        ForeignKey("terminal_models.id", ondelete="CASCADE"), primary_key=True
    )
    floor_price: Mapped[int] = mapped_column(default=0)  # fen; 0 = no floor
    warranty_months: Mapped[int | None] = mapped_column()  # None = the default
    points: Mapped[int | None] = mapped_column()  # None = the default

    model: Mapped[TerminalModel] = relationship()


class CardRange(TimestampMixin, Base):
    """A generated range of numbers ``prefix + [start, end] (width digits) + check``."""

    __tablename__ = "warranty_card_ranges"
    __table_args__ = (Index("ix_warranty_card_ranges_prefix", "prefix", "width"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    prefix: Mapped[str] = mapped_column(String(6))
    width: Mapped[int] = mapped_column()
    start: Mapped[int] = mapped_column()
    end: Mapped[int] = mapped_column()
    note: Mapped[str] = mapped_column(String(200), default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    created_by: Mapped[User | None] = relationship()

    @property
    def size(self) -> int:
        return self.end - self.start + 1


class AllocationLevel(enum.StrEnum):
    BRANCH = "branch"
    DEALER = "dealer"


class CardAllocation(Base):
    """A sub-range issued to a branch, or from a branch's holding on to one of its dealers."""

    __tablename__ = "warranty_allocations"
    __table_args__ = (Index("ix_warranty_allocations_range", "range_id", "level", "start"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    range_id: Mapped[int] = mapped_column(ForeignKey("warranty_card_ranges.id", ondelete="CASCADE"))
    level: Mapped[str] = mapped_column(String(8))
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id"), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("warranty_allocations.id"))
    start: Mapped[int] = mapped_column()
    end: Mapped[int] = mapped_column()
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    issued_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str] = mapped_column(String(200), default="")

    card_range: Mapped[CardRange] = relationship()
    provider: Mapped[Provider] = relationship()
    parent: Mapped[CardAllocation | None] = relationship(remote_side=[id])

    @property
    def size(self) -> int:
        return self.end - self.start + 1


class CardState(enum.StrEnum):
    REGISTERED = "registered"
    RETURNED = "returned"
    VOIDED = "voided"


CARD_STATE_LABELS: dict[str, str] = {
    CardState.REGISTERED: N_("Registered to a sale"),
    CardState.RETURNED: N_("Sale returned"),
    CardState.VOIDED: N_("Voided"),
}

CARD_TRANSITIONS: dict[CardState, set[CardState]] = {
    CardState.REGISTERED: {CardState.RETURNED, CardState.VOIDED},
    CardState.RETURNED: set(),
    CardState.VOIDED: set(),
}


class ServiceCard(TimestampMixin, Base):
    """A card registered against a sale."""

    __tablename__ = "warranty_cards"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(24), unique=True)
    range_id: Mapped[int] = mapped_column(ForeignKey("warranty_card_ranges.id"), index=True)
    seq: Mapped[int] = mapped_column()
    branch_id: Mapped[int] = mapped_column(ForeignKey("providers.id"), index=True)
    dealer_id: Mapped[int | None] = mapped_column(ForeignKey("providers.id"), index=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("terminal_models.id"), index=True)
    serial: Mapped[str] = mapped_column(String(64), default="")
    buyer_name: Mapped[str] = mapped_column(String(64))
    buyer_phone: Mapped[str] = mapped_column(String(20))
    province: Mapped[str] = mapped_column(String(16))
    city: Mapped[str] = mapped_column(String(32), default="")
    address: Mapped[str] = mapped_column(String(200), default="")
    price: Mapped[int] = mapped_column()  # fen
    floor_price: Mapped[int] = mapped_column(default=0)  # the model's floor at the sale
    installer_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"), index=True)
    sale_date: Mapped[date] = mapped_column(Date)
    warranty_end: Mapped[date] = mapped_column(Date)
    points: Mapped[int] = mapped_column(default=0)
    cross_region: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    below_floor: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    state: Mapped[str] = mapped_column(String(12), default=CardState.REGISTERED.value)
    registered_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    branch: Mapped[Provider] = relationship(foreign_keys=[branch_id])
    dealer: Mapped[Provider | None] = relationship(foreign_keys=[dealer_id])
    model: Mapped[TerminalModel] = relationship()
    installer: Mapped[Person | None] = relationship()
    events: Mapped[list[ServiceCardEvent]] = relationship(
        order_by="ServiceCardEvent.id", cascade="all, delete-orphan"
    )

    @property
    def flagged(self) -> bool:
        return self.cross_region or self.below_floor

    def transition(self, target: CardState) -> CardState:
        current = CardState(self.state)
        if target not in CARD_TRANSITIONS[current]:
            raise InvalidTransition(
                "Service card {number} is {state_from}; it cannot become {state_to}.",
                number=self.number,
                state_from=current.value,
                state_to=target.value,
            )
        self.state = target.value
        return current


class ServiceCardEvent(Base):
    __tablename__ = "warranty_card_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    card_id: Mapped[int] = mapped_column(
        ForeignKey("warranty_cards.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(24))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    actor: Mapped[User | None] = relationship()


class InstallerPoints(Base):
    """Installer points: + for a registered card, − when its sale is returned."""

    __tablename__ = "warranty_points"

    id: Mapped[int] = mapped_column(primary_key=True)
    installer_id: Mapped[int] = mapped_column(ForeignKey("persons.id"), index=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("warranty_cards.id"), index=True)
    points: Mapped[int] = mapped_column()
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    reason: Mapped[str] = mapped_column(String(16))  # registered | returned

    card: Mapped[ServiceCard] = relationship()


class ReturnKind(enum.StrEnum):
    RETURN = "return"
    EXCHANGE = "exchange"


class ReturnReason(enum.StrEnum):
    QUALITY = "quality"
    NON_QUALITY = "non_quality"


class ShippingPayer(enum.StrEnum):
    CUSTOMER = "customer"
    COMPANY = "company"


class ReturnState(enum.StrEnum):
    REQUESTED = "requested"
    ACCEPTED = "accepted"
    RECEIVED = "received"
    COMPLETED = "completed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


class CompensationState(enum.StrEnum):
    NONE = "none"  # no compensation
    WITHIN_CAP = "within_cap"
    PENDING = "pending"  # waiting for the supervisor
    APPROVED = "approved"
    REJECTED = "rejected"


RETURN_KIND_LABELS: dict[str, str] = {
    ReturnKind.RETURN: N_("Return (refund)"),
    ReturnKind.EXCHANGE: N_("Exchange"),
}
REASON_LABELS: dict[str, str] = {
    ReturnReason.QUALITY: N_("Quality problem"),
    ReturnReason.NON_QUALITY: N_("Not a quality problem"),
}
PAYER_LABELS: dict[str, str] = {
    ShippingPayer.CUSTOMER: N_("Customer pays shipping"),
    ShippingPayer.COMPANY: N_("We pay shipping"),
}
RETURN_STATE_LABELS: dict[str, str] = {
    ReturnState.REQUESTED: N_("Awaiting acceptance"),
    ReturnState.ACCEPTED: N_("Accepted"),
    ReturnState.RECEIVED: N_("Goods received"),
    ReturnState.COMPLETED: N_("Completed"),
    ReturnState.REJECTED: N_("Rejected"),
    ReturnState.CANCELLED: N_("Request cancelled"),
}
COMPENSATION_LABELS: dict[str, str] = {
    CompensationState.NONE: N_("None"),
    CompensationState.WITHIN_CAP: N_("Within the cap"),
    CompensationState.PENDING: N_("Waiting for approval"),
    CompensationState.APPROVED: N_("Approved"),
    CompensationState.REJECTED: N_("Refused"),
}

_R = ReturnState
RETURN_TRANSITIONS: dict[ReturnState, set[ReturnState]] = {
    _R.REQUESTED: {_R.ACCEPTED, _R.REJECTED, _R.CANCELLED},
    _R.ACCEPTED: {_R.RECEIVED, _R.CANCELLED},
    _R.RECEIVED: {_R.COMPLETED, _R.CANCELLED},
    _R.COMPLETED: set(),
    _R.REJECTED: set(),
    _R.CANCELLED: set(),
}


class WarrantyReturn(TimestampMixin, Base):
    __tablename__ = "warranty_returns"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("warranty_cards.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str] = mapped_column(String(12))
    description: Mapped[str] = mapped_column(Text, default="")
    requested_at: Mapped[datetime] = mapped_column()
    shipping_paid_by: Mapped[str] = mapped_column(String(10))
    shipping_cost: Mapped[int] = mapped_column(default=0)  # fen the customer advanced
    refund_amount: Mapped[int] = mapped_column(default=0)  # fen, returns
    exchange_model_id: Mapped[int | None] = mapped_column(ForeignKey("terminal_models.id"))
    exchange_serial: Mapped[str] = mapped_column(String(64), default="")
    price_difference: Mapped[int] = mapped_column(default=0)  # fen; + customer pays, − we pay
    compensation: Mapped[int] = mapped_column(default=0)  # fen
    compensation_state: Mapped[str] = mapped_column(
        String(12), default=CompensationState.NONE.value
    )
    compensation_cap: Mapped[int] = mapped_column(default=0)  # the cap when it was asked for
    approval_request_id: Mapped[int | None] = mapped_column(ForeignKey("approval_requests.id"))
    payment_method: Mapped[str] = mapped_column(String(10), default="")
    posting_id: Mapped[int | None] = mapped_column(ForeignKey("ledger_postings.id"))
    receipt_id: Mapped[int | None] = mapped_column(ForeignKey("receipts.id"))
    state: Mapped[str] = mapped_column(String(12), default=ReturnState.REQUESTED.value, index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    card: Mapped[ServiceCard] = relationship()
    exchange_model: Mapped[TerminalModel | None] = relationship()
    events: Mapped[list[WarrantyReturnEvent]] = relationship(
        order_by="WarrantyReturnEvent.id", cascade="all, delete-orphan"
    )

    @property
    def is_open(self) -> bool:
        return bool(RETURN_TRANSITIONS[ReturnState(self.state)])

    def can_become(self, target: ReturnState) -> bool:
        return target in RETURN_TRANSITIONS[ReturnState(self.state)]

    def transition(self, target: ReturnState) -> ReturnState:
        current = ReturnState(self.state)
        if target not in RETURN_TRANSITIONS[current]:
            raise InvalidTransition(
                "Return {number} is {state_from}; it cannot become {state_to}.",
                number=self.number,
                state_from=current.value,
                state_to=target.value,
            )
        self.state = target.value
        return current


class WarrantyReturnEvent(Base):
    __tablename__ = "warranty_return_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    return_id: Mapped[int] = mapped_column(
        ForeignKey("warranty_returns.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(24))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    actor: Mapped[User | None] = relationship()


EVENT_LABELS: dict[str, str] = {
    "registered": N_("Registered to a sale"),
    "voided": N_("Voided"),
    "returned": N_("Sale returned"),
    "exchanged": N_("Exchanged"),
    "return_requested": N_("Return or exchange requested"),
    "requested": N_("Awaiting acceptance"),
    "accepted": N_("Accepted"),
    "rejected": N_("Rejected"),
    "cancelled": N_("Request cancelled"),
    "received": N_("Goods received"),
    "completed": N_("Completed"),
    "photos_added": N_("Photos added"),
    "compensation_set": N_("Compensation set"),
    "compensation_submitted": N_("Compensation sent for approval"),
    "compensation_approved": N_("Compensation approved"),
    "compensation_rejected": N_("Compensation refused"),
}
