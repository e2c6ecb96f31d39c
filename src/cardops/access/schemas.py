"""API shapes of access control."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

Code = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,31}$")
DoorKindName = Literal["lobby", "unit_door", "carpark_gate", "renovation", "other"]
HolidayMode = Literal["periods", "deny", "weekday"]


class DecisionIn(BaseModel):
    card: str = Field(
        min_length=1,
        max_length=64,
        description="printed number, chip UID (hex), Wiegand facility:number or a 26/34-bit frame",
        examples=["C000001", "04:A1:B2:C3", "12:34567"],
    )
    door: str = Field(min_length=1, max_length=32, examples=["LOBBY-1"])
    at: datetime | None = Field(
        default=None, description="when the card was presented (controllers replaying); now"
    )


class DecisionOut(BaseModel):
    allowed: bool
    reason: str
    card_id: int | None = None
    door_id: int | None = None


class OfflineEventIn(BaseModel):
    external_id: str = Field(min_length=1, max_length=64)
    at: datetime
    card: str = Field(min_length=1, max_length=64)
    door: str = Field(min_length=1, max_length=32)
    allowed: bool
    reason: str = Field(min_length=1, max_length=32)


class OfflineUploadIn(BaseModel):
    events: list[OfflineEventIn] = Field(max_length=1000)


class UploadOut(BaseModel):
    accepted: int
    duplicates: int


class CredentialDoorOut(BaseModel):
    door: str
    schedule: str | None


class ParkingOut(BaseModel):
    valid_from: date
    valid_until: date


class CredentialOut(BaseModel):
    card: str
    uid: str | None
    wiegand: str | None
    doors: list[CredentialDoorOut]
    valid_from: date | None
    valid_until: date | None
    active: bool
    parking: ParkingOut | None = None


class PeriodOut(BaseModel):
    weekday: int
    start: str
    end: str


class ScheduleRulesOut(BaseModel):
    holiday_mode: str
    periods: list[PeriodOut]


class CredentialsOut(BaseModel):
    controller: str
    version: int
    full: bool
    doors: list[str]
    credentials: list[CredentialOut]
    removed: list[str]
    schedules: dict[str, ScheduleRulesOut]
    holidays: list[date]


class PropertyIn(BaseModel):
    code: str = Code
    name: str = Field(min_length=1, max_length=128)
    address: str = Field(default="", max_length=255)


class UnitOut(BaseModel):
    id: int
    code: str
    floor: int | None
    is_shop: bool
    owner_person_id: int | None


class BuildingOut(BaseModel):
    id: int
    code: str
    name: str
    units: list[UnitOut] = []


class DoorOut(BaseModel):
    id: int
    code: str
    name: str
    kind: str
    building: str | None
    controller: str | None
    is_active: bool


class PropertyOut(BaseModel):
    id: int
    code: str
    name: str
    address: str
    is_active: bool
    replacement_warranty_days: int
    card_policy: dict[str, object]
    buildings: list[BuildingOut] = []
    doors: list[DoorOut] = []


class BuildingIn(BaseModel):
    code: str = Code
    name: str = Field(min_length=1, max_length=128)


class UnitIn(BaseModel):
    code: str = Code
    floor: int | None = Field(default=None, ge=-10, le=300)
    is_shop: bool = False
    owner_person_id: int | None = Field(default=None, ge=1, le=2_147_483_647)


class ControllerIn(BaseModel):
    code: str = Code
    name: str = Field(min_length=1, max_length=128)
    serial: str = Field(default="", max_length=64)


class ControllerOut(BaseModel):
    id: int
    code: str
    name: str
    serial: str
    last_seen_at: datetime | None
    last_pulled_version: int


class DoorIn(BaseModel):
    code: str = Code
    name: str = Field(min_length=1, max_length=128)
    kind: DoorKindName
    building: str | None = Field(default=None, max_length=32, description="building code")
    controller: str | None = Field(default=None, max_length=32, description="controller code")
    is_active: bool = True


class DoorPatch(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=128)
    kind: DoorKindName | None = None
    building: str | None = Field(default=None, max_length=32)
    controller: str | None = Field(default=None, max_length=32)
    is_active: bool | None = None


class GroupIn(BaseModel):
    code: str = Code
    name: str = Field(min_length=1, max_length=128)
    doors: list[str] = Field(default=[], max_length=10_000)


class GroupDoorsIn(BaseModel):
    doors: list[str] = Field(max_length=10_000)
    name: str | None = Field(default=None, min_length=1, max_length=128)


class GroupOut(BaseModel):
    id: int
    code: str
    name: str
    doors: list[str]


class PeriodIn(BaseModel):
    weekday: int = Field(ge=0, le=7, description="0 Monday … 6 Sunday, 7 holidays")
    start: str = Field(pattern=r"^\d{1,2}:\d{2}$", examples=["08:00"])
    end: str = Field(pattern=r"^\d{1,2}:\d{2}$", examples=["18:00"])


class ScheduleIn(BaseModel):
    code: str = Code
    name: str = Field(min_length=1, max_length=128)
    holiday_mode: HolidayMode = "periods"
    periods: list[PeriodIn] = Field(default=[], max_length=200)


class ScheduleOut(BaseModel):
    id: int
    code: str
    name: str
    holiday_mode: str
    periods: list[PeriodOut]


class HolidayIn(BaseModel):
    day: date
    name: str = Field(default="", max_length=64)


class HolidayOut(BaseModel):
    id: int
    day: date
    name: str


class GrantIn(BaseModel):
    group: str = Code
    schedule: str | None = Field(default=None, max_length=32)


class ExtraGrantIn(GrantIn):
    reason: str = Field(default="", max_length=2000)


class GrantOut(BaseModel):
    group: str
    schedule: str | None
    granted_at: datetime


class ApprovalRefOut(BaseModel):
    number: str
    state: str


class EventOut(BaseModel):
    id: int
    at: datetime
    presented: str
    card_id: int | None
    door: str
    allowed: bool
    reason: str
    source: str


class DoorCodeOut(BaseModel):
    id: int
    door: str
    valid_from: date
    valid_until: date
    current: bool
    notified_at: datetime | None


class RevealOut(BaseModel):
    door: str
    code: str
    valid_from: date
    valid_until: date


class RotateIn(BaseModel):
    quarter_start: date | None = Field(default=None, description="default: the next quarter")


class RotateOut(BaseModel):
    quarter_start: date
    created: int
    notified: int
