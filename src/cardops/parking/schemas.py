"""API shapes of parking permits (every field bounded)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

RequirementCode = Literal[
    "id_copy",
    "driving_licence",
    "vehicle_licence",
    "insurance_policy",
    "lease_contract",
    "agreement",
]
Method = Literal["cash", "card", "transfer", "wechat", "alipay"]
MAX_FEE = 10_000_000


class DocumentIn(BaseModel):
    requirement: RequirementCode = Field(description="Which required document this file is")
    filename: str = Field(min_length=1, max_length=255)
    content_base64: str = Field(
        min_length=4, max_length=28_000_000, description="The file, base64-encoded (≤ 20 MB)"
    )
    content_type: str | None = Field(default=None, max_length=127)


class PermitIn(BaseModel):
    card_number: str = Field(min_length=1, max_length=32)
    plate: str = Field(min_length=1, max_length=32, description="e.g. 川A12345 or 粤BD12345")
    monthly_fee: int = Field(ge=0, le=MAX_FEE, description="fen per month")
    person_id: int | None = Field(default=None, ge=1, le=2_147_483_647)
    space: str = Field(default="", max_length=32)
    kind: Literal["monthly", "lease", "owned"] = "monthly"
    months: int = Field(default=1, ge=1, le=24)
    payment_method: Method = "cash"
    start: date | None = Field(default=None, description="first day; default today")
    documents: list[DocumentIn] = Field(default_factory=list, max_length=12)
    note: str = Field(default="", max_length=255)
    idempotency_key: str | None = Field(default=None, max_length=100)


class TopUpIn(BaseModel):
    months: int = Field(ge=1, le=24)
    payment_method: Method = "cash"
    monthly_fee: int | None = Field(default=None, ge=0, le=MAX_FEE)
    idempotency_key: str | None = Field(default=None, max_length=100)


class EndIn(BaseModel):
    reason: str = Field(min_length=1, max_length=255)
    owner_confirmed: bool = Field(description="The owner has confirmed the end (seed 000 §3.4.4)")
    confirmation: str = Field(default="", max_length=255, description="How the owner confirmed")


class PeriodOut(BaseModel):
    period_from: date
    period_until: date
    months: int
    amount: int
    receipt: str | None
    at: datetime


class RequirementOut(BaseModel):
    code: str
    label: str
    satisfied: bool
    document_id: int | None
    where: str


class PermitOut(BaseModel):
    number: str
    card_number: str
    person_id: int
    plate: str
    space: str
    kind: str
    state: str
    valid_from: date
    valid_until: date
    current: bool
    monthly_fee: int
    ended_at: datetime | None
    end_reason: str
    owner_confirmation: str
    periods: list[PeriodOut]
    documents: list[RequirementOut]
