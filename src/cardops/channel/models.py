"""The channel: HQ → prefecture-level (地市级) → county-level (县市级) service providers, regions,
rate cards, and the terminal orders that flow down the tree with their serials.

Order lifecycle (``ORDER_TRANSITIONS``): draft → submitted (order form + payment slip) →
approving (the ``distributor_order`` chain for orders to HQ) → approved → picking → checked →
dispatched → received; a rejection returns it to the submitter (rejected → submitted).
County orders to a city provider skip the HQ chain and are filed (报备) with HQ.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cardops.core.clock import utcnow
from cardops.core.db import Base, TimestampMixin
from cardops.core.errors import InvalidTransition

if TYPE_CHECKING:
    from cardops.auth.models import User
    from cardops.terminals.models import Terminal, TerminalModel


class Region(Base):
    """A service region (华北, 华东, 华南, 华中, 西南, 东北) and the provinces in it (editable)."""

    __tablename__ = "regions"

    code: Mapped[str] = mapped_column(String(16), primary_key=True)  # north, east, …
    name_zh: Mapped[str] = mapped_column(String(16))
    name_en: Mapped[str] = mapped_column(String(32))
    provinces: Mapped[list[str]] = mapped_column(JSON, default=list)  # e.g. ["北京", "天津"]
    reviewer_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id")
    )  # user-management reviewer


class ProviderLevel(enum.StrEnum):
    HQ = "hq"
    CITY = "city"  # 地市级
    COUNTY = "county"  # 县市级


class Provider(TimestampMixin, Base):
    __tablename__ = "providers"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    level: Mapped[str] = mapped_column(String(8))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("providers.id"), index=True)
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    # where it may sell: provinces and, optionally, cities within them
    provinces: Mapped[list[str]] = mapped_column(JSON, default=list)
    cities: Mapped[list[str]] = mapped_column(JSON, default=list)
    contract_no: Mapped[str] = mapped_column(String(64), default="")
    contract_start: Mapped[date | None] = mapped_column(Date)
    contract_end: Mapped[date | None] = mapped_column(Date)
    # rate card for profit sharing: {"debit": {"rate_bp": 38, "cap": 2000}, "credit": {"rate_bp": 55}}
    rate_card: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    activation_reward: Mapped[int] = mapped_column(default=0)  # fen per activated terminal
    # users of a provider see only their provider's records
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)

    parent: Mapped[Provider | None] = relationship(remote_side=[id])


class ProviderRateVersion(Base):
    """A provider's rate card as it was set at ``recorded_at``. Settlement prices a day with
    the version in force when the day's window closed, so a change never alters a day that
    was already closed (settling it again gives the same figures)."""

    __tablename__ = "provider_rate_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(
        ForeignKey("providers.id", ondelete="CASCADE"), index=True
    )
    rate_card: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class ProviderUser(Base):
    """A console user who works for a provider (sees only that provider and its subtree)."""

    __tablename__ = "provider_users"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    provider_id: Mapped[int] = mapped_column(ForeignKey("providers.id", ondelete="CASCADE"))


class OrderState(enum.StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    APPROVING = "approving"
    REJECTED = "rejected"
    APPROVED = "approved"
    PICKING = "picking"
    CHECKED = "checked"
    DISPATCHED = "dispatched"
    RECEIVED = "received"
    CANCELLED = "cancelled"


_O = OrderState
ORDER_TRANSITIONS: dict[OrderState, set[OrderState]] = {
    _O.DRAFT: {_O.SUBMITTED, _O.CANCELLED},
    _O.SUBMITTED: {_O.APPROVING, _O.APPROVED, _O.CANCELLED},  # county orders need no HQ chain
    _O.APPROVING: {_O.APPROVED, _O.REJECTED},
    _O.REJECTED: {_O.SUBMITTED, _O.CANCELLED},
    _O.APPROVED: {_O.PICKING, _O.CANCELLED},
    _O.PICKING: {_O.CHECKED, _O.APPROVED},
    _O.CHECKED: {_O.DISPATCHED, _O.PICKING},
    _O.DISPATCHED: {_O.RECEIVED},
    _O.RECEIVED: set(),
    _O.CANCELLED: set(),
}


class ProviderOrder(TimestampMixin, Base):
    """A provider's order to HQ, or a county provider's order to its city provider."""

    __tablename__ = "provider_orders"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    seller_id: Mapped[int] = mapped_column(ForeignKey("providers.id"), index=True)  # HQ or city
    buyer_id: Mapped[int] = mapped_column(ForeignKey("providers.id"), index=True)
    state: Mapped[str] = mapped_column(String(16), default=OrderState.DRAFT.value, index=True)
    total: Mapped[int] = mapped_column(default=0)  # fen
    paid_amount: Mapped[int] = mapped_column(default=0)
    payment_reference: Mapped[str] = mapped_column(String(64), default="")
    payment_slip_document_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id"))
    order_form_document_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id"))
    approval_request_id: Mapped[int | None] = mapped_column(ForeignKey("approval_requests.id"))
    carrier: Mapped[str] = mapped_column(String(64), default="")
    tracking_no: Mapped[str] = mapped_column(String(64), default="")
    dispatched_at: Mapped[datetime | None] = mapped_column()
    received_at: Mapped[datetime | None] = mapped_column()
    filed_with_hq_at: Mapped[datetime | None] = mapped_column()  # 报备, county orders
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str] = mapped_column(String(500), default="")

    seller: Mapped[Provider] = relationship(foreign_keys=[seller_id])
    buyer: Mapped[Provider] = relationship(foreign_keys=[buyer_id])
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
    lines: Mapped[list[OrderLine]] = relationship(
        order_by="OrderLine.id", cascade="all, delete-orphan"
    )
    serials: Mapped[list[OrderSerial]] = relationship(
        order_by="OrderSerial.id", cascade="all, delete-orphan"
    )
    events: Mapped[list[OrderEvent]] = relationship(
        order_by="OrderEvent.id", cascade="all, delete-orphan"
    )

    def transition(self, target: OrderState) -> OrderState:
        current = OrderState(self.state)
        if target not in ORDER_TRANSITIONS[current]:
            raise InvalidTransition(
                "Order {number} is {state_from}; it cannot become {state_to}.",
                number=self.number,
                state_from=current.value,
                state_to=target.value,
            )
        self.state = target.value
        return current


class OrderLine(Base):
    __tablename__ = "provider_order_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(
        ForeignKey("provider_orders.id", ondelete="CASCADE"), index=True
    )
    model_id: Mapped[int] = mapped_column(ForeignKey("terminal_models.id"))
    quantity: Mapped[int] = mapped_column()
    unit_price: Mapped[int] = mapped_column(default=0)  # fen

    model: Mapped[TerminalModel] = relationship()

    @property
    def amount(self) -> int:
        return self.quantity * self.unit_price


class OrderSerial(Base):
    """A serial picked for an order by the channel specialist, then picked and checked."""

    __tablename__ = "provider_order_serials"
    __table_args__ = (UniqueConstraint("order_id", "terminal_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(
        ForeignKey("provider_orders.id", ondelete="CASCADE"), index=True
    )
    terminal_id: Mapped[int] = mapped_column(ForeignKey("terminals.id"), index=True)
    selected_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    picked_at: Mapped[datetime | None] = mapped_column()
    picked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    checked_at: Mapped[datetime | None] = mapped_column()
    checked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    terminal: Mapped[Terminal] = relationship()


class OrderEvent(Base):
    __tablename__ = "provider_order_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(
        ForeignKey("provider_orders.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(24))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    actor: Mapped[User | None] = relationship()
