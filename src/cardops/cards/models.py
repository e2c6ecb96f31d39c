"""IC cards of a property's one-card system: stock batches, requisitions, the card with its
holder and lifecycle, and its history.

Lifecycle (``TRANSITIONS``): a blank card is received by finance (``stock``), requisitioned by
the property office (``office``), issued to a holder (``active``); it may be reported lost and
found again, returned (deposit refunded, number cancelled), cancelled (ownership change, staff
leaving, a lost card reissued), replaced (damage) or scrapped. Expiry is not a state: it is
``valid_until`` compared with today.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cardops.core.clock import utcnow
from cardops.core.db import Base, TimestampMixin
from cardops.core.errors import InvalidTransition


class CardState(enum.StrEnum):
    STOCK = "stock"  # received by finance, blank
    OFFICE = "office"  # requisitioned by the property office, blank
    ACTIVE = "active"  # issued to a holder
    LOST = "lost"  # 挂失
    RETURNED = "returned"  # 退卡
    CANCELLED = "cancelled"  # 注销
    REPLACED = "replaced"  # 换卡: the old card after a replacement
    SCRAPPED = "scrapped"  # blank card damaged or defective


TRANSITIONS: dict[CardState, set[CardState]] = {
    CardState.STOCK: {CardState.OFFICE, CardState.SCRAPPED},
    CardState.OFFICE: {CardState.ACTIVE, CardState.STOCK, CardState.SCRAPPED},
    CardState.ACTIVE: {
        CardState.LOST,
        CardState.RETURNED,
        CardState.CANCELLED,
        CardState.REPLACED,
    },
    CardState.LOST: {CardState.ACTIVE, CardState.CANCELLED},
    CardState.RETURNED: set(),
    CardState.CANCELLED: set(),
    CardState.REPLACED: set(),
    CardState.SCRAPPED: set(),
}


class HolderKind(enum.StrEnum):
    OWNER = "owner"  # 业主
    FAMILY = "family"  # 直系亲属
    RELATIVE = "relative"  # 亲朋好友
    TENANT = "tenant"  # 租户
    NANNY = "nanny"  # 保姆
    RENOVATION = "renovation"  # 装修人员
    MERCHANT = "merchant"  # 商户
    STAFF = "staff"  # 物业员工
    CLEANER = "cleaner"  # 清洁人员
    LIFT_MAINTAINER = "lift_maintainer"  # 电梯保养


WHITE_KINDS = frozenset({HolderKind.OWNER, HolderKind.FAMILY})


def card_class(kind: HolderKind | str) -> str:
    """白卡 for owners and their immediate family, 灰卡 for everybody else."""
    return "white" if HolderKind(kind) in WHITE_KINDS else "grey"


class CardBatch(Base):
    """Blank cards received by finance (进出台帐)."""

    __tablename__ = "card_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    received_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    supplier: Mapped[str] = mapped_column(String(128), default="")
    quantity: Mapped[int] = mapped_column()
    unit_cost: Mapped[int] = mapped_column(default=0)  # fen
    note: Mapped[str] = mapped_column(String(500), default="")


class CardRequisition(Base):
    """The property office asks finance for blank cards (物业部根据实际用量申请领取)."""

    __tablename__ = "card_requisitions"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    property_id: Mapped[int] = mapped_column(ForeignKey("properties.id"), index=True)
    quantity: Mapped[int] = mapped_column()
    state: Mapped[str] = mapped_column(
        String(16), default="requested"
    )  # requested|fulfilled|rejected
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    fulfilled_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    fulfilled_at: Mapped[datetime | None] = mapped_column()
    note: Mapped[str] = mapped_column(String(500), default="")


class Card(TimestampMixin, Base):
    __tablename__ = "cards"
    __table_args__ = (
        UniqueConstraint("wiegand_facility", "wiegand_number"),
        Index("ix_cards_person_id_state", "person_id", "state"),
        Index("ix_cards_unit_id_state", "unit_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)  # printed card number
    uid: Mapped[str | None] = mapped_column(String(32), unique=True)  # chip UID, upper-case hex
    wiegand_format: Mapped[int | None] = mapped_column()  # 26 or 34
    wiegand_facility: Mapped[int | None] = mapped_column()
    wiegand_number: Mapped[int | None] = mapped_column()
    batch_id: Mapped[int | None] = mapped_column(ForeignKey("card_batches.id"), index=True)
    requisition_id: Mapped[int | None] = mapped_column(ForeignKey("card_requisitions.id"))
    property_id: Mapped[int | None] = mapped_column(ForeignKey("properties.id"), index=True)
    state: Mapped[str] = mapped_column(String(16), default=CardState.STOCK.value, index=True)

    # holder, set at issue
    holder_kind: Mapped[str | None] = mapped_column(String(16))
    card_class: Mapped[str | None] = mapped_column(String(8))  # white | grey
    person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))  # merchant
    issued_at: Mapped[datetime | None] = mapped_column()
    issued_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date)  # inclusive
    is_gift: Mapped[bool] = mapped_column(Boolean, default=False)  # 赠送: not refundable
    is_free: Mapped[bool] = mapped_column(Boolean, default=False)  # staff cards
    fee: Mapped[int] = mapped_column(default=0)  # fen, 工本费 paid
    deposit: Mapped[int] = mapped_column(default=0)  # fen, 押金 held
    fee_receipt_no: Mapped[str | None] = mapped_column(String(32))
    deposit_receipt_no: Mapped[str | None] = mapped_column(String(32))
    deposit_refund_receipt_no: Mapped[str | None] = mapped_column(String(32))
    acknowledged_at: Mapped[datetime | None] = mapped_column()  # holder signed the register
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # phone confirmation, …
    approval_request_id: Mapped[int | None] = mapped_column(ForeignKey("approval_requests.id"))
    replaces_id: Mapped[int | None] = mapped_column(ForeignKey("cards.id"))  # reissue/replacement
    wallet_enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    state_reason: Mapped[str] = mapped_column(String(255), default="")
    note: Mapped[str] = mapped_column(Text, default="")

    events: Mapped[list[CardEvent]] = relationship(
        back_populates="card", order_by="CardEvent.id", cascade="all, delete-orphan"
    )

    def transition(self, target: CardState, reason: str = "") -> CardState:
        """Move to ``target`` or refuse; returns the previous state."""
        current = CardState(self.state)
        if target not in TRANSITIONS[current]:
            raise InvalidTransition(
                "Card {number} is {state_from}; it cannot become {state_to}.",
                number=self.number,
                state_from=current.value,
                state_to=target.value,
            )
        self.state = target.value
        self.state_reason = reason[:255]
        return current


class CardEvent(Base):
    """A card's history: typed event, what changed, who, when."""

    __tablename__ = "card_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("cards.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))  # issued, lost, found, extended, returned, …
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    card: Mapped[Card] = relationship(back_populates="events")
