"""API shapes of the warranty domain (every field bounded). Amounts are integers in fen."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

Id = Field(ge=1, le=2_147_483_647)


class ProviderRef(BaseModel):
    id: int
    code: str
    name: str
    level: str


class LookupOut(BaseModel):
    """The answer to "is this card genuine?"; ``registration`` only for signed-in staff."""

    number: str
    genuine: bool
    reason: str | None = Field(
        default=None, description="Why not genuine: format | check | unknown"
    )
    branch: ProviderRef | None = None
    dealer: ProviderRef | None = None
    registered: bool = False
    state: str | None = None
    model: str | None = None
    sale_date: date | None = None
    warranty_end: date | None = None
    warranty_days_left: int | None = None
    in_warranty: bool = False
    registration: CardOut | None = None


class RangeIn(BaseModel):
    prefix: str = Field(min_length=1, max_length=6, examples=["JD"])
    width: int = Field(default=8, ge=4, le=12)
    start: int = Field(ge=0, le=999_999_999_999)
    count: int = Field(ge=1, le=1_000_000)
    note: str = Field(default="", max_length=200)


class AllocationOut(BaseModel):
    id: int
    range_id: int
    level: str
    provider: ProviderRef
    first: str
    last: str
    count: int
    issued_at: datetime
    note: str


class RangeOut(BaseModel):
    id: int
    prefix: str
    width: int
    first: str
    last: str
    count: int
    issued_to_branches: int
    registered: int
    note: str
    created_at: datetime
    allocations: list[AllocationOut] | None = None


class IssueIn(BaseModel):
    first: str = Field(min_length=1, max_length=40, description="First card number (with check)")
    last: str = Field(min_length=1, max_length=40, description="Last card number (with check)")
    provider_id: int = Id
    note: str = Field(default="", max_length=200)


class RegisterIn(BaseModel):
    number: str = Field(min_length=1, max_length=40)
    model_id: int = Id
    serial: str = Field(default="", max_length=64)
    buyer_name: str = Field(min_length=1, max_length=64)
    buyer_phone: str = Field(min_length=1, max_length=20)
    province: str = Field(min_length=1, max_length=16)
    city: str = Field(default="", max_length=32)
    address: str = Field(default="", max_length=200)
    price: int = Field(ge=0, le=10_000_000_000, description="Sale price in fen")
    installer_id: int | None = Field(default=None, ge=1, le=2_147_483_647)
    sale_date: date | None = None


class CardOut(BaseModel):
    id: int
    number: str
    state: str
    branch: ProviderRef
    dealer: ProviderRef | None
    model_id: int
    model: str
    serial: str
    buyer_name: str
    buyer_phone: str
    province: str
    city: str
    address: str
    price: int
    floor_price: int
    installer_id: int | None
    installer: str | None
    sale_date: date
    warranty_end: date
    points: int
    cross_region: bool
    below_floor: bool
    created_at: datetime


class ReasonIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


class NoteIn(BaseModel):
    note: str = Field(default="", max_length=500)


class SettingsIn(BaseModel):
    warranty_months: int = Field(ge=1, le=120)
    points_per_card: int = Field(ge=0, le=100_000)
    compensation_cap: int = Field(ge=0, le=100_000_000, description="fen")
    photo_hours: int = Field(ge=1, le=720)


class SettingsOut(SettingsIn):
    pass


class ModelTermsIn(BaseModel):
    floor_price: int = Field(ge=0, le=10_000_000_000, description="fen; 0 = no floor")
    warranty_months: int | None = Field(default=None, ge=1, le=120)
    points: int | None = Field(default=None, ge=0, le=100_000)


class ModelTermsOut(ModelTermsIn):
    model_id: int
    model: str


class PointEntryOut(BaseModel):
    at: datetime
    card: str
    points: int
    reason: str


class StatementOut(BaseModel):
    installer_id: int
    installer: str
    since: date
    until: date
    cards: int
    total: int
    entries: list[PointEntryOut]


class PointsRowOut(BaseModel):
    installer_id: int
    installer: str
    cards: int
    points: int


class PhotoIn(BaseModel):
    filename: str = Field(default="photo.jpg", max_length=255)
    content_base64: str = Field(min_length=1, max_length=14_000_000)
    content_type: str | None = Field(default=None, max_length=127)


class ReturnIn(BaseModel):
    card_number: str = Field(min_length=1, max_length=40)
    kind: Literal["return", "exchange"]
    reason: Literal["quality", "non_quality"]
    description: str = Field(default="", max_length=2000)
    requested_at: datetime | None = None
    shipping_paid_by: Literal["customer", "company"] | None = None
    shipping_cost: int = Field(default=0, ge=0, le=10_000_000, description="fen")
    refund_amount: int | None = Field(default=None, ge=0, le=10_000_000_000, description="fen")
    exchange_model_id: int | None = Field(default=None, ge=1, le=2_147_483_647)
    exchange_serial: str = Field(default="", max_length=64)
    price_difference: int = Field(
        default=0,
        ge=-10_000_000_000,
        le=10_000_000_000,
        description="fen; positive: the customer pays, negative: we refund",
    )
    compensation: int = Field(default=0, ge=0, le=100_000_000, description="fen")
    request_approval: bool = Field(
        default=False, description="Send a compensation above the cap for approval"
    )
    photos: list[PhotoIn] = Field(default_factory=list, max_length=10)


class CompensationIn(BaseModel):
    amount: int = Field(ge=0, le=100_000_000, description="fen")
    request_approval: bool = False


class CompleteIn(BaseModel):
    payment_method: Literal["cash", "card", "transfer", "wechat", "alipay"]


class EventOut(BaseModel):
    at: datetime
    kind: str
    actor: str | None
    data: dict[str, object]


class PhotoOut(BaseModel):
    id: int
    filename: str
    uploaded_at: datetime
    in_time: bool


class ReturnOut(BaseModel):
    id: int
    number: str
    card_number: str
    kind: str
    reason: str
    description: str
    state: str
    requested_at: datetime
    photo_deadline: datetime
    shipping_paid_by: str
    shipping_cost: int
    refund_amount: int
    exchange_model_id: int | None
    exchange_serial: str
    price_difference: int
    compensation: int
    compensation_state: str
    compensation_cap: int
    approval_request_id: int | None
    payment_method: str
    posting_id: int | None
    receipt_id: int | None
    photos: list[PhotoOut]
    events: list[EventOut]


LookupOut.model_rebuild()
