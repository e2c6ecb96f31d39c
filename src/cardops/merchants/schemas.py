"""API models of the merchants domain (bounded so that bad input is a 422)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

MerchantKind = Literal["corporate", "individual"]


class MerchantIn(BaseModel):
    kind: MerchantKind
    name: str = Field(max_length=128)
    business_licence_no: str = Field(max_length=40, description="unified social credit code")
    legal_person_name: str = Field(max_length=128)
    legal_person_id_number: str = Field(max_length=40, description="resident ID")
    legal_person_mobile: str | None = Field(None, max_length=32)
    organisation_code: str | None = Field(None, max_length=20)
    tax_registration_no: str | None = Field(None, max_length=32)
    bank_name: str = Field(max_length=128)
    bank_account: str = Field(max_length=40, description="10–30 digits")
    bank_account_name: str = Field(max_length=128)
    mcc: str = Field(max_length=8, description="4 digits")
    province: str | None = Field(None, max_length=16)
    city: str | None = Field(None, max_length=32)
    address: str | None = Field(None, max_length=255)
    provider_id: int | None = Field(None, ge=1, le=2_147_483_647)


class MerchantOut(BaseModel):
    id: int
    mid: str | None
    name: str
    kind: str
    state: str
    business_licence_no: str | None
    organisation_code: str | None
    tax_registration_no: str | None
    legal_person_id: int | None
    organisation_id: int | None
    bank_name: str
    bank_account: str
    bank_account_name: str
    mcc: str
    province: str
    city: str
    address: str
    provider_id: int | None
    kyc_notes: str
    missing_documents: list[str]
    created_at: datetime


class ReasonIn(BaseModel):
    reason: str = Field(max_length=500)


class NoteIn(BaseModel):
    note: str = Field("", max_length=500)


class DocumentOut(BaseModel):
    id: int
    doc_type: str
    filename: str
    content_type: str
    size: int
    sha256: str
    uploaded_at: datetime


class ReviewPassIn(BaseModel):
    platform: str = Field(max_length=64, description="acquiring platform, e.g. 富友")
    platform_reference: str = Field("", max_length=64)
    note: str = Field("", max_length=500)


class VerdictIn(BaseModel):
    approved: bool
    note: str = Field("", max_length=500)
    platform_reference: str | None = Field(None, max_length=64)


class CallbackIn(BaseModel):
    note: str = Field(max_length=500, description="outcome of the call")
    reached: bool = True
    called_at: datetime | None = None


class CaseEventOut(BaseModel):
    at: datetime
    kind: str
    actor_id: int | None
    comment: str
    data: dict[str, Any]


class CaseOut(BaseModel):
    id: int
    number: str
    kind: str
    state: str
    merchant_id: int
    applicant_person_id: int
    serial: str
    provider_id: int | None
    install_province: str
    install_city: str
    install_address: str
    region_code: str | None
    reviewer_id: int | None
    platform: str
    platform_reference: str
    verdict_note: str
    tid: str | None
    mid: str | None
    submitted_at: datetime
    due_at: datetime | None
    overdue: bool
    decided_at: datetime | None
    called_back_at: datetime | None
    archived_at: datetime | None
    round: int
    cross_region: bool
    data: dict[str, Any]
    events: list[CaseEventOut] = []


class ReportRowOut(BaseModel):
    label: str
    counts: list[int]
    total: int


class ActivationReportOut(BaseModel):
    months: list[str]
    totals: list[int]
    by_provider: list[ReportRowOut]
    by_region: list[ReportRowOut]
    overdue: list[str]
