"""Parking permits (停车卡/车场授权): a card may open car-park gates while a permit covers today.

A monthly permit runs from the issue or top-up day to the day before the same day next month
(9 June – 8 July; 31 January – 27/28 February); a top-up extends it from its current end.
"""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cardops.core.clock import utcnow
from cardops.core.db import Base, TimestampMixin


class PermitState(enum.StrEnum):
    ACTIVE = "active"
    ENDED = "ended"


# A permit is issued active and ended once (after the owner confirms); an ended permit stays.
TRANSITIONS: dict[PermitState, set[PermitState]] = {
    PermitState.ACTIVE: {PermitState.ENDED},
    PermitState.ENDED: set(),
}


class PermitKind(enum.StrEnum):
    MONTHLY = "monthly"  # 月卡: paid month by month
    LEASE = "lease"  # 车位租用: a leased space
    OWNED = "owned"  # 车位使用: the customer's own space


class ParkingPermit(TimestampMixin, Base):
    __tablename__ = "parking_permits"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    property_id: Mapped[int] = mapped_column(ForeignKey("properties.id"), index=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("cards.id"), index=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("persons.id"))
    plate: Mapped[str] = mapped_column(String(16))  # licence plate, e.g. 川A12345
    space: Mapped[str] = mapped_column(String(32), default="")  # parking space number
    kind: Mapped[str] = mapped_column(String(16), default="monthly")  # monthly | lease | owned
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)  # inclusive
    monthly_fee: Mapped[int] = mapped_column(default=0)  # fen
    state: Mapped[str] = mapped_column(String(16), default="active")  # active | ended
    ended_at: Mapped[datetime | None] = mapped_column()
    end_reason: Mapped[str] = mapped_column(String(255), default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # ending: who ended it and how the owner's confirmation was obtained (seed 000 §3.4.4)
    ended_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    owner_confirmation: Mapped[str] = mapped_column(String(255), default="")

    periods: Mapped[list[ParkingPeriod]] = relationship(
        order_by="ParkingPeriod.id", lazy="selectin", cascade="save-update, merge"
    )

    @property
    def is_active(self) -> bool:
        return self.state == PermitState.ACTIVE.value


class ParkingPeriod(Base):
    """Each paid period of a permit (issue and every top-up), with its receipt."""

    __tablename__ = "parking_periods"

    id: Mapped[int] = mapped_column(primary_key=True)
    permit_id: Mapped[int] = mapped_column(ForeignKey("parking_permits.id"), index=True)
    period_from: Mapped[date] = mapped_column(Date)
    period_until: Mapped[date] = mapped_column(Date)
    months: Mapped[int] = mapped_column(default=1)
    amount: Mapped[int] = mapped_column(default=0)  # fen
    receipt_no: Mapped[str | None] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
