"""API shapes of the gateway."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class StopIn(BaseModel):
    pan: str = Field(min_length=12, max_length=23)
    reason: str = Field(max_length=16)
    note: str = Field(min_length=1, max_length=500)


class StopRemoveIn(BaseModel):
    note: str = Field(min_length=1, max_length=500)


class StopOut(BaseModel):
    id: int
    pan_masked: str
    reason: str
    note: str
    added_at: datetime
    added_by_id: int | None
    active: bool
    removed_at: datetime | None
    removed_by_id: int | None
    removal_note: str


class PanIn(BaseModel):
    expiry: str | None = Field(default=None, min_length=4, max_length=4)
    replace: bool = False
    pin: str | None = Field(default=None, min_length=4, max_length=12)


class PanOut(BaseModel):
    card_number: str
    pan: str  # shown once
    pan_masked: str
    expiry: str


class PinIn(BaseModel):
    pin: str = Field(min_length=4, max_length=12)


class TransactionOut(BaseModel):
    id: int
    created_at: datetime
    mti: str
    kind: str
    tid: str
    mid: str
    stan: str
    pan_masked: str
    amount: int
    currency: str
    rrn: str | None
    auth_code: str
    response_code: str
    approved: bool
    route: str
    reversed: bool
    voided: bool


class TransactionPage(BaseModel):
    total: int
    items: list[TransactionOut]
