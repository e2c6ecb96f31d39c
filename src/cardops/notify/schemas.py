"""API shapes of the notify domain."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class MessageIn(BaseModel):
    channel: Literal["email", "sms"]
    recipient: str = Field(min_length=1, max_length=254)
    subject: str = Field(default="", max_length=200)
    body: str = Field(min_length=1, max_length=200_000)
    html: str | None = Field(default=None, max_length=200_000)
    ref: str | None = Field(default=None, max_length=64)
    dedupe_key: str | None = Field(default=None, max_length=128)
    send_after: datetime | None = None


class MessageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    channel: str
    recipient: str
    subject: str
    state: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None
    created_by_id: int | None
    ref: str | None
    dedupe_key: str | None


class MessageDetailOut(MessageOut):
    body: str
    html: str | None


class DispatchOut(BaseModel):
    sent: int
    failed: int
