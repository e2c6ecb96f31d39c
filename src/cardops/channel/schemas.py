"""API shapes of the channel domain (every field bounded). Amounts are integers in fen."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

Place = Annotated[str, StringConstraints(min_length=1, max_length=32)]
Serial = Annotated[str, StringConstraints(min_length=1, max_length=40)]


class RateIn(BaseModel):
    rate_bp: int = Field(ge=0, le=1000, description="Rate in basis points (38 = 0.38 %)")
    cap: int | None = Field(default=None, ge=1, le=100_000_000, description="Cap in fen")


class RateCardIn(BaseModel):
    debit: RateIn | None = None
    credit: RateIn | None = None


class ProviderFieldsIn(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    parent_id: int | None = Field(default=None, ge=1, le=2_147_483_647)
    provinces: list[Place] = Field(default_factory=list, max_length=34)
    cities: list[Place] = Field(default_factory=list, max_length=200)
    contract_no: str = Field(default="", max_length=64)
    contract_start: date | None = None
    contract_end: date | None = None
    rate_card: RateCardIn = Field(default_factory=RateCardIn)
    activation_reward: int = Field(default=0, ge=0, le=10_000_000, description="fen")
    is_active: bool = True


class ProviderIn(ProviderFieldsIn):
    code: str = Field(min_length=1, max_length=32)
    level: Literal["hq", "city", "county"]


class ProviderOut(BaseModel):
    id: int
    code: str
    name: str
    level: str
    parent_id: int | None
    provinces: list[str]
    cities: list[str]
    contract_no: str
    contract_start: date | None
    contract_end: date | None
    rate_card: dict[str, dict[str, int]]
    activation_reward: int
    is_active: bool


class LinkUserIn(BaseModel):
    user_id: int = Field(ge=1, le=2_147_483_647)


class RegionIn(BaseModel):
    provinces: list[Place] = Field(max_length=34)
    reviewer_id: int | None = Field(default=None, ge=1, le=2_147_483_647)


class RegionOut(BaseModel):
    code: str
    name_zh: str
    name_en: str
    provinces: list[str]
    reviewer_id: int | None


class OrderLineIn(BaseModel):
    model_id: int = Field(ge=1, le=2_147_483_647)
    quantity: int = Field(ge=1, le=100_000)


class OrderIn(BaseModel):
    buyer_id: int | None = Field(default=None, ge=1, le=2_147_483_647)
    lines: list[OrderLineIn] = Field(min_length=1, max_length=50)
    note: str = Field(default="", max_length=500)


class SerialsIn(BaseModel):
    serials: list[Serial] = Field(min_length=1, max_length=10_000)


class DispatchIn(BaseModel):
    carrier: str = Field(min_length=1, max_length=64)
    tracking_no: str = Field(min_length=1, max_length=64)


class ReasonIn(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


class OrderLineOut(BaseModel):
    model: str
    quantity: int
    unit_price: int
    amount: int


class OrderSerialOut(BaseModel):
    serial: str
    model: str
    imei: str | None
    iccid: str | None
    state: str
    picked: bool
    checked: bool


class OrderEventOut(BaseModel):
    at: datetime
    kind: str
    actor: str | None
    data: dict[str, object]


class OrderOut(BaseModel):
    id: int
    number: str
    kind: Literal["to_hq", "county"]
    state: str
    seller: str
    buyer: str
    total: int
    paid_amount: int
    payment_reference: str
    payment_slip_document_id: int | None
    order_form_document_id: int | None
    approval_request_id: int | None
    carrier: str
    tracking_no: str
    created_at: datetime
    dispatched_at: datetime | None
    received_at: datetime | None
    filed_with_hq_at: datetime | None
    note: str
    lines: list[OrderLineOut]
    serials: list[OrderSerialOut]
    events: list[OrderEventOut]


class OrderSummaryOut(BaseModel):
    id: int
    number: str
    kind: Literal["to_hq", "county"]
    state: str
    seller: str
    buyer: str
    total: int
    created_at: datetime
    filed_with_hq_at: datetime | None


class CrossRegionOut(BaseModel):
    serial: str
    provider: str | None
    provider_provinces: list[str]
    install_province: str | None
    install_city: str | None
    install_address: str | None
    tid: str | None
    activated_at: datetime | None


class PurchaseRowOut(BaseModel):
    month: str
    provider: str
    provider_name: str
    orders: int
    quantity: int
    amount: int
