"""API models of the repair workshop and field service (bounded so that bad input is a 422)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

Id = Field(ge=1, le=2_147_483_647)


class IntakeIn(BaseModel):
    serial: str = Field(max_length=40)
    fault_code: str = Field(max_length=24, description="see FAULT_TYPES, e.g. printer")
    fault_description: str = Field(max_length=2000)
    brought_by_name: str = Field(max_length=64)
    brought_by_phone: str = Field("", max_length=32)
    appearance: str = Field("", max_length=500)
    accessories: list[str] = Field(default_factory=list, max_length=20)
    accessories_note: str = Field("", max_length=255)
    ticket_id: int | None = Field(None, ge=1, le=2_147_483_647)
    provider_id: int | None = Field(None, ge=1, le=2_147_483_647)
    merchant_id: int | None = Field(None, ge=1, le=2_147_483_647)


class InspectIn(BaseModel):
    findings: str = Field(max_length=4000)
    fault_code: str = Field(max_length=24)
    under_warranty: bool
    estimate: int | None = Field(None, ge=0, le=100_000_000, description="fen")


class DecideIn(BaseModel):
    route: Literal["in_house", "factory", "none"]
    note: str = Field("", max_length=500)


class FinishIn(BaseModel):
    notes: str = Field(max_length=4000)


class LoanerIn(BaseModel):
    serial: str = Field(max_length=40)


class ReplacementCaseIn(BaseModel):
    kind: Literal["part", "whole"]
    new_serial: str = Field("", max_length=40)
    old_serial: str = Field("", max_length=40)
    device_name: str = Field("", max_length=128)


class ReturnIn(BaseModel):
    return_to: Literal["provider", "user"]
    carrier: str = Field("", max_length=64)
    tracking_number: str = Field("", max_length=64)
    loaner_returned: bool = False


class NoteIn(BaseModel):
    note: str = Field("", max_length=500)


class EventOut(BaseModel):
    at: datetime
    kind: str
    from_state: str | None
    to_state: str | None
    actor_id: int | None
    comment: str
    data: dict[str, Any]


class ReplacementOut(BaseModel):
    kind: str
    device_name: str
    quantity: int
    old_serial: str
    new_serial: str
    at: datetime


class CaseOut(BaseModel):
    id: int
    number: str
    state: str
    ticket_id: int | None
    serial: str
    model_id: int
    provider_id: int | None
    merchant_id: int | None
    fault_code: str
    fault_description: str
    appearance: str
    accessories: list[str]
    brought_by_name: str
    received_at: datetime
    findings: str
    inspected_fault_code: str | None
    under_warranty: bool | None
    estimate: int | None
    route: str | None
    rma_batch_id: int | None
    repaired_at: datetime | None
    loaner_serial: str | None
    loaner_out: bool
    replacement_serial: str | None
    return_to: str | None
    returned_at: datetime | None
    closed_at: datetime | None
    events: list[EventOut] = []
    replacements: list[ReplacementOut] = []


class BatchOut(BaseModel):
    id: int
    number: str
    supplier_id: int
    state: str
    carrier: str
    tracking_number: str
    sent_at: datetime | None
    received_at: datetime | None
    cases: list[str] = []


class SendIn(BaseModel):
    carrier: str = Field(max_length=64)
    tracking_number: str = Field(max_length=64)
    sent_at: datetime | None = None
    note: str = Field("", max_length=500)


class ReceiveIn(BaseModel):
    serials: list[str] = Field(default_factory=list, max_length=500)


class VisitIn(BaseModel):
    mode: Literal["scheduled", "on_call"] = "scheduled"
    customer_name: str = Field("", max_length=128)
    merchant_id: int | None = Field(None, ge=1, le=2_147_483_647)
    address: str = Field("", max_length=255)
    contact_name: str = Field("", max_length=64)
    contact_phone: str = Field("", max_length=32)
    service_type: Literal["inspection", "repair", "other"] = "repair"
    service_type_other: str = Field("", max_length=64)
    warranty: Literal["in", "out", "other"] = "in"
    warranty_other: str = Field("", max_length=64)
    serial: str = Field("", max_length=40)
    scheduled_at: datetime | None = None
    technician_id: int | None = Field(None, ge=1, le=2_147_483_647)
    ticket_id: int | None = Field(None, ge=1, le=2_147_483_647)
    registration_number: str = Field("", max_length=32)
    problem: str = Field("", max_length=4000)


class ArriveIn(BaseModel):
    at: datetime | None = None


class CheckAnswer(BaseModel):
    code: str = Field(max_length=32)
    checked: bool
    note: str = Field("", max_length=255)


class VisitReplacementIn(BaseModel):
    kind: Literal["part", "repair", "whole"]
    device_name: str = Field("", max_length=128)
    quantity: int = Field(1, ge=1, le=999)
    old_serial: str = Field("", max_length=40)
    new_serial: str = Field("", max_length=40)


class CompleteIn(BaseModel):
    work_notes: str = Field(max_length=4000)
    problem: str | None = Field(None, max_length=4000)
    departed_at: datetime | None = None
    checks: list[CheckAnswer] = Field(default_factory=list, max_length=100)
    replacements: list[VisitReplacementIn] = Field(default_factory=list, max_length=20)
    device_ok: bool | None = None
    other_issues: str = Field("", max_length=500)


class SignIn(BaseModel):
    signed_name: str = Field(max_length=64)
    signature: str = Field(max_length=400_200, description="data:image/png;base64,…")
    satisfaction: Literal[
        "very_satisfied", "satisfied", "neutral", "dissatisfied", "very_dissatisfied"
    ]
    satisfaction_note: str = Field("", max_length=500)


class ReasonIn(BaseModel):
    reason: str = Field(max_length=500)


class CheckOut(BaseModel):
    item_code: str
    label: str
    checked: bool
    note: str


class VisitOut(BaseModel):
    id: int
    number: str
    state: str
    mode: str
    ticket_id: int | None
    registration_number: str
    merchant_id: int | None
    customer_name: str
    address: str
    contact_name: str
    contact_phone: str
    service_type: str
    warranty: str
    serial: str
    scheduled_at: datetime | None
    technician_id: int | None
    arrived_at: datetime | None
    departed_at: datetime | None
    problem: str
    work_notes: str
    device_ok: bool | None
    satisfaction: str | None
    signed_name: str
    signature_document_id: int | None
    signed_at: datetime | None
    checks: list[CheckOut] = []
    replacements: list[ReplacementOut] = []
    events: list[EventOut] = []
