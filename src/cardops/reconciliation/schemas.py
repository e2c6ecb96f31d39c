"""API shapes of reconciliation."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Figure(BaseModel):
    count: int
    amount: int  # fen


class RunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    business_date: date
    file_id: int
    current: bool
    started_at: datetime
    journal_rows: int
    bank_lines: int
    new_cases: int
    cleared_cases: int
    duration_ms: int
    figures: dict[str, Figure]


class DayOut(BaseModel):
    business_date: date
    counts: dict[str, int]
    run: RunOut


class FileOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    business_date: date
    acquirer: str
    filename: str
    sha256: str
    encoding: str
    lines: int
    success_count: int
    success_amount: int
    bank_fee_total: int
    state: str
    replaced_by_id: int | None
    replace_reason: str
    imported_at: datetime


class CaseOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    number: str
    business_date: date
    kind: str
    state: str
    present: bool
    tid: str
    mid: str
    stan: str
    rrn: str
    txn_type: str
    journal_id: int | None
    bank_line: int | None
    our_amount: int | None
    bank_amount: int | None
    our_status: str
    bank_status: str
    difference: int
    assignee_id: int | None
    resolution: str | None
    resolution_note: str
    claim_reference: str
    posting_id: int | None
    resolved_by_id: int | None
    resolved_at: datetime | None


class CaseEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    kind: str
    actor_id: int | None
    comment: str
    data: dict[str, object]


class CaseDetailOut(CaseOut):
    history: list[CaseEventOut] = []


class CaseList(BaseModel):
    total: int
    items: list[CaseOut]


class NoteIn(BaseModel):
    note: str = Field("", max_length=1000)


class ResolveIn(BaseModel):
    resolution: Literal["adjustment", "bank_claim", "write_off"]
    note: str = Field(..., max_length=1000)
    amount: str | None = Field(None, max_length=20, description="yuan, signed; adjustment only")
    claim_reference: str = Field("", max_length=64)
