"""API shapes of the cards domain. Amounts in fen; dates ISO; every field bounded."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

Id = Field(ge=1, le=2_147_483_647)
Fen = Field(ge=0, le=1_000_000)
Method = Literal["cash", "card", "transfer", "wechat", "alipay"]
Kind = Literal[
    "owner",
    "family",
    "relative",
    "tenant",
    "nanny",
    "renovation",
    "merchant",
    "staff",
    "cleaner",
    "lift_maintainer",
]


class CardSpecIn(BaseModel):
    number: str = Field(min_length=1, max_length=32)
    uid: str | None = Field(default=None, max_length=64)
    wiegand: str | None = Field(
        default=None, max_length=32, description="facility:card or 26:facility:card"
    )


class BatchIn(BaseModel):
    number: str = Field(min_length=1, max_length=32)
    supplier: str = Field(default="", max_length=128)
    quantity: int | None = Field(default=None, ge=1, le=100_000)
    first_number: str | None = Field(default=None, max_length=32)
    cards: list[CardSpecIn] | None = Field(default=None, max_length=100_000)
    csv: str | None = Field(
        default=None, max_length=5_000_000, description="number,uid[,wiegand] rows"
    )
    unit_cost: int = Fen
    note: str = Field(default="", max_length=500)


class BatchOut(BaseModel):
    id: int
    number: str
    supplier: str
    quantity: int
    unit_cost: int
    received_at: datetime


class RequisitionIn(BaseModel):
    property_id: int = Id
    quantity: int = Field(ge=1, le=10_000)
    note: str = Field(default="", max_length=500)


class FulfilIn(BaseModel):
    card_numbers: list[str] | None = Field(default=None, max_length=10_000)


class RequisitionOut(BaseModel):
    id: int
    number: str
    property_id: int
    quantity: int
    state: str
    requested_at: datetime
    fulfilled_at: datetime | None


class OwnerConfirmationIn(BaseModel):
    phoned_at: datetime
    owner_person_id: int | None = Field(default=None, ge=1, le=2_147_483_647)
    note: str = Field(default="", max_length=500)


class ApprovalIn(BaseModel):
    holder_kind: Literal["staff", "merchant"]
    person_id: int = Id
    property_id: int = Id
    organisation_id: int | None = Field(default=None, ge=1, le=2_147_483_647)
    unit_id: int | None = Field(default=None, ge=1, le=2_147_483_647)
    reason: str = Field(default="", max_length=2000)


class ApprovalOut(BaseModel):
    id: int
    number: str
    kind: str
    state: str


class IssueIn(BaseModel):
    card_number: str = Field(min_length=1, max_length=64)
    holder_kind: Kind
    person_id: int = Id
    unit_id: int | None = Field(default=None, ge=1, le=2_147_483_647)
    organisation_id: int | None = Field(default=None, ge=1, le=2_147_483_647)
    owner_confirmation: OwnerConfirmationIn | None = None
    approval_request_id: int | None = Field(default=None, ge=1, le=2_147_483_647)
    valid_months: int | None = Field(default=None, ge=1, le=60)
    is_gift: bool = False
    payment_method: Method = "cash"
    acknowledged: bool = False
    note: str = Field(default="", max_length=2000)


class LostIn(BaseModel):
    channel: Literal["desk", "phone"] = "desk"
    note: str = Field(default="", max_length=500)


class CancelLossIn(BaseModel):
    id_checked: bool = False
    note: str = Field(default="", max_length=500)


class ReissueIn(BaseModel):
    new_card_number: str = Field(min_length=1, max_length=64)
    payment_method: Method = "cash"


class ReplaceIn(BaseModel):
    new_card_number: str = Field(min_length=1, max_length=64)
    damage: Literal["natural", "man_made"]
    note: str = Field(default="", max_length=500)
    payment_method: Method = "cash"


class ReturnIn(BaseModel):
    receipt_number: str | None = Field(default=None, max_length=32)
    damaged: bool = False
    damage_note: str = Field(default="", max_length=500)
    refund_method: Method = "cash"


class ReturnOut(BaseModel):
    card: CardOut
    refunded: int
    forfeited: int
    refund_number: str | None


class ExtendIn(BaseModel):
    months: int = Field(ge=1, le=60)
    payment_method: Method = "cash"


class CancelIn(BaseModel):
    reason: Literal["left", "lost", "misuse"]
    note: str = Field(default="", max_length=500)


class OwnershipChangeIn(BaseModel):
    unit_id: int = Id
    reason: str = Field(min_length=1, max_length=200)
    new_owner_person_id: int | None = Field(default=None, ge=1, le=2_147_483_647)


class PolicyIn(BaseModel):
    policy: dict[str, dict[str, int]] = Field(max_length=20)
    replacement_warranty_days: int | None = Field(default=None, ge=0, le=3650)


class PolicyOut(BaseModel):
    property_id: int
    property_code: str
    policy: dict[str, dict[str, int]]
    replacement_warranty_days: int


class GrantOut(BaseModel):
    group: str
    schedule: str | None


class EventOut(BaseModel):
    at: datetime
    kind: str
    actor_id: int | None
    data: dict[str, Any]


class CardOut(BaseModel):
    number: str
    uid: str | None
    wiegand: str | None
    state: str
    state_reason: str
    property: str | None
    holder_kind: str | None
    card_class: str | None
    person_id: int | None
    person: str | None
    unit: str | None
    organisation_id: int | None
    valid_from: date | None
    valid_until: date | None
    expired: bool
    issued_at: datetime | None
    acknowledged_at: datetime | None
    is_gift: bool
    is_free: bool
    fee: int
    deposit: int
    fee_receipt_no: str | None
    deposit_receipt_no: str | None
    deposit_refund_receipt_no: str | None
    replaces: str | None
    grants: list[GrantOut] = []
    history: list[EventOut] = []


ReturnOut.model_rebuild()
