"""API models of the service desk (bounded so that bad input is a 422)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Kind = Literal["inquiry", "complaint", "fault", "change"]
Priority = Literal["low", "normal", "high", "urgent"]


class ContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=128)
    phone: str | None = Field(None, max_length=32)
    email: str | None = Field(None, max_length=254)
    party_id: int | None = Field(None, ge=1, le=2_147_483_647)


class TicketIn(BaseModel):
    kind: Kind
    priority: Priority = "normal"
    subject: str = Field(max_length=200)
    description: str = Field("", max_length=20000)
    contact: ContactIn | None = None
    serial: str | None = Field(None, max_length=40)
    card_number: str | None = Field(None, max_length=32)
    fault_type: str = Field("", max_length=64)
    channel: Literal["phone", "email", "web", "api"] = "api"
    team_id: int | None = Field(None, ge=1, le=2_147_483_647)
    assignee_id: int | None = Field(None, ge=1, le=2_147_483_647)


class ContactOut(BaseModel):
    name: str
    phone: str
    email: str
    party_id: int | None


class TicketOut(BaseModel):
    id: int
    number: str
    kind: str
    priority: str
    state: str
    channel: str
    subject: str
    description: str
    contact: ContactOut
    serial: str | None
    card_number: str | None
    terminal_id: int | None
    fault_type: str
    team_id: int | None
    assignee_id: int | None
    merged_into_id: int | None
    created_at: datetime
    first_response_due: datetime | None
    first_response_breached: bool
    first_responded_at: datetime | None
    update_due: datetime | None
    update_breached: bool
    solution_due: datetime | None
    solution_breached: bool
    sla_paused: bool
    nearest_due: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    complaint_stage: str | None
    investigation: str
    result: str
    close_reason: str
    first_contact_resolution: bool


class EventOut(BaseModel):
    id: int
    at: datetime
    kind: str
    actor_id: int | None
    public: bool
    text: str
    data: dict[str, Any]


class TextIn(BaseModel):
    text: str = Field(max_length=20000)


class ReplyIn(TextIn):
    pending: bool = Field(False, description="wait for the customer (pauses the SLA clock)")


class AssignIn(BaseModel):
    team_id: int | None = Field(None, ge=1, le=2_147_483_647)
    assignee_id: int | None = Field(None, ge=1, le=2_147_483_647)


class TransitionIn(BaseModel):
    state: Literal["open", "pending_customer", "resolved", "closed"]
    reason: str = Field("", max_length=500)


class MergeIn(BaseModel):
    into_id: int = Field(ge=1, le=2_147_483_647)


class CallbackIn(BaseModel):
    outcome: Literal["satisfied", "partly_satisfied", "unsatisfied", "unreachable"]
    note: str = Field("", max_length=1000)


class CallbackOut(BaseModel):
    id: int
    at: datetime
    actor_id: int | None
    outcome: str
    note: str


class ComplaintStepIn(BaseModel):
    stage: Literal["investigating", "result"]
    text: str = Field(max_length=5000)


class SurveyOut(BaseModel):
    ticket_id: int
    sent_at: datetime
    sent_via: str
    answered_at: datetime | None
    score: int | None
    comment: str
    url: str | None = None


class SurveyAnswerIn(BaseModel):
    score: int = Field(ge=1, le=5)
    comment: str = Field("", max_length=1000)


class DocumentOut(BaseModel):
    id: int
    filename: str
    content_type: str
    size: int
    sha256: str


class BreachOut(BaseModel):
    ticket_id: int
    number: str
    target: str
    due_at: datetime
    detected_at: datetime
