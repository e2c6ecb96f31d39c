"""Properties, their buildings, units and doors; access groups, time schedules, card grants,
the door-decision log, versioned credential changes for controllers, and door codes.

Reason codes of a door decision (the API contract) are listed in ``Reason``.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cardops.core.clock import utcnow
from cardops.core.db import Base, TimestampMixin


class DoorKind(enum.StrEnum):
    LOBBY = "lobby"  # 大堂门
    UNIT_DOOR = "unit_door"  # 单元门
    CARPARK_GATE = "carpark_gate"  # 车场道闸
    RENOVATION = "renovation"  # 装修指定出入口
    OTHER = "other"


class Reason(enum.StrEnum):
    """Why a door decision came out the way it did (stable codes for integrators)."""

    OK = "ok"
    UNKNOWN_CARD = "unknown_card"
    UNKNOWN_DOOR = "unknown_door"
    DOOR_DISABLED = "door_disabled"
    NOT_ISSUED = "not_issued"  # a stock card that was never issued
    LOST = "lost"
    CANCELLED = "cancelled"
    RETURNED = "returned"
    REPLACED = "replaced"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    DOOR_NOT_IN_GROUP = "door_not_in_group"
    OUTSIDE_SCHEDULE = "outside_schedule"
    NO_PARKING = "no_parking"  # car-park gate without a valid parking permit
    PARKING_EXPIRED = "parking_expired"


class Property(TimestampMixin, Base):
    """A managed residential estate (小区) run by one property office (物服中心)."""

    __tablename__ = "properties"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    address: Mapped[str] = mapped_column(String(255), default="")
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    # card policy per holder kind, see cards.policy (validity months, fee, deposit, limits)
    card_policy: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    replacement_warranty_days: Mapped[int] = mapped_column(default=30)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)

    buildings: Mapped[list[Building]] = relationship(
        back_populates="property", order_by="Building.code"
    )


class Building(Base):
    __tablename__ = "buildings"
    __table_args__ = (UniqueConstraint("property_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    property_id: Mapped[int] = mapped_column(ForeignKey("properties.id"), index=True)
    code: Mapped[str] = mapped_column(String(32))  # e.g. "3" or "A"
    name: Mapped[str] = mapped_column(String(128))

    property: Mapped[Property] = relationship(back_populates="buildings")
    units: Mapped[list[Unit]] = relationship(back_populates="building", order_by="Unit.code")


class Unit(Base):
    """A flat or shop (房号)."""

    __tablename__ = "units"
    __table_args__ = (UniqueConstraint("building_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    building_id: Mapped[int] = mapped_column(ForeignKey("buildings.id"), index=True)
    code: Mapped[str] = mapped_column(String(32))  # e.g. "1-1203"
    floor: Mapped[int | None] = mapped_column()
    is_shop: Mapped[bool] = mapped_column(Boolean, default=False)
    owner_person_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"))

    building: Mapped[Building] = relationship(back_populates="units")


class Controller(TimestampMixin, Base):
    """A door controller; it pulls the credential list of its doors and uploads offline events."""

    __tablename__ = "door_controllers"

    id: Mapped[int] = mapped_column(primary_key=True)
    property_id: Mapped[int] = mapped_column(ForeignKey("properties.id"), index=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    serial: Mapped[str] = mapped_column(String(64), default="")
    last_seen_at: Mapped[datetime | None] = mapped_column()
    last_pulled_version: Mapped[int] = mapped_column(default=0)


class Door(TimestampMixin, Base):
    """An entrance: lobby door, unit door, car-park gate, designated renovation entrance."""

    __tablename__ = "doors"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)  # what controllers and the API use
    name: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16), default=DoorKind.OTHER.value)
    property_id: Mapped[int] = mapped_column(ForeignKey("properties.id"), index=True)
    building_id: Mapped[int | None] = mapped_column(ForeignKey("buildings.id"), index=True)
    controller_id: Mapped[int | None] = mapped_column(ForeignKey("door_controllers.id"), index=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


class AccessGroup(TimestampMixin, Base):
    """A named set of doors (e.g. "Building 3 residents", "Renovation entrances")."""

    __tablename__ = "access_groups"
    __table_args__ = (UniqueConstraint("property_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    property_id: Mapped[int] = mapped_column(ForeignKey("properties.id"), index=True)
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(128))

    doors: Mapped[list[AccessGroupDoor]] = relationship(
        cascade="all, delete-orphan", lazy="selectin"
    )


class AccessGroupDoor(Base):
    __tablename__ = "access_group_doors"

    group_id: Mapped[int] = mapped_column(
        ForeignKey("access_groups.id", ondelete="CASCADE"), primary_key=True
    )
    door_id: Mapped[int] = mapped_column(ForeignKey("doors.id"), primary_key=True)


class TimeSchedule(TimestampMixin, Base):
    """When a grant is usable: periods per weekday, and what happens on holidays."""

    __tablename__ = "time_schedules"
    __table_args__ = (UniqueConstraint("property_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    property_id: Mapped[int] = mapped_column(ForeignKey("properties.id"), index=True)
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(128))
    # "periods": on holidays use the periods with weekday 7; "deny": closed on holidays;
    # "weekday": holidays are ordinary days
    holiday_mode: Mapped[str] = mapped_column(String(8), default="periods")

    periods: Mapped[list[SchedulePeriod]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="SchedulePeriod.weekday"
    )


class SchedulePeriod(Base):
    __tablename__ = "schedule_periods"

    id: Mapped[int] = mapped_column(primary_key=True)
    schedule_id: Mapped[int] = mapped_column(
        ForeignKey("time_schedules.id", ondelete="CASCADE"), index=True
    )
    weekday: Mapped[int] = mapped_column()  # 0 = Monday … 6 = Sunday, 7 = holiday
    start_minute: Mapped[int] = mapped_column()  # minutes after local midnight, inclusive
    end_minute: Mapped[int] = mapped_column()  # exclusive, ≤ 1440


class Holiday(Base):
    __tablename__ = "holidays"
    __table_args__ = (UniqueConstraint("property_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    property_id: Mapped[int] = mapped_column(ForeignKey("properties.id"), index=True)
    day: Mapped[date] = mapped_column(Date)
    name: Mapped[str] = mapped_column(String(64), default="")


class CardGrant(Base):
    """Authorization (授权): a card may use the doors of a group, within a schedule."""

    __tablename__ = "card_grants"
    __table_args__ = (UniqueConstraint("card_id", "group_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    card_id: Mapped[int] = mapped_column(ForeignKey("cards.id", ondelete="CASCADE"), index=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("access_groups.id"), index=True)
    schedule_id: Mapped[int | None] = mapped_column(ForeignKey("time_schedules.id"))  # None: always
    granted_at: Mapped[datetime] = mapped_column(default=utcnow)
    granted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class CredentialChange(Base):
    """An append-only log: the id is the credential-list version a controller pulls ``since``.

    Every change that can alter a decision for a card (issue, loss, un-loss, grants, validity,
    parking, return, cancellation) appends a row for that card in the same transaction.
    """

    __tablename__ = "credential_changes"
    __table_args__ = (Index("ix_credential_changes_property_id_id", "property_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    property_id: Mapped[int] = mapped_column(ForeignKey("properties.id"))
    card_id: Mapped[int | None] = mapped_column(ForeignKey("cards.id", ondelete="SET NULL"))
    door_id: Mapped[int | None] = mapped_column(ForeignKey("doors.id"))  # door/group/schedule edits
    at: Mapped[datetime] = mapped_column(default=utcnow)
    reason: Mapped[str] = mapped_column(String(32))


class AccessEvent(Base):
    """Every door decision, online or uploaded by a controller after working offline."""

    __tablename__ = "access_events"
    __table_args__ = (
        Index("ix_access_events_card_id_at", "card_id", "at"),
        Index("ix_access_events_door_id_at", "door_id", "at"),
        # offline uploads are idempotent per controller (NULLs, online events, never collide)
        UniqueConstraint("controller_id", "external_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    presented: Mapped[str] = mapped_column(String(64))  # what was presented: number or UID
    card_id: Mapped[int | None] = mapped_column(ForeignKey("cards.id", ondelete="SET NULL"))
    door_code: Mapped[str] = mapped_column(String(32))
    door_id: Mapped[int | None] = mapped_column(ForeignKey("doors.id"))
    allowed: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(8), default="online")  # online | offline
    controller_id: Mapped[int | None] = mapped_column(ForeignKey("door_controllers.id"))
    # offline uploads: the controller's own event id, to make re-uploads idempotent
    external_id: Mapped[str | None] = mapped_column(String(64))


class DoorCode(Base):
    """A keypad code of a lobby/unit door, valid for one quarter. Stored encrypted."""

    __tablename__ = "door_codes"
    __table_args__ = (UniqueConstraint("door_id", "valid_from"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    door_id: Mapped[int] = mapped_column(ForeignKey("doors.id"), index=True)
    code_encrypted: Mapped[str] = mapped_column(Text)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)  # inclusive
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    notified_at: Mapped[datetime | None] = mapped_column()
