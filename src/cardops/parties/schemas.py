"""API shapes of the parties domain."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field


class PersonIn(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    id_number: str | None = Field(default=None, max_length=32, description="居民身份证号码")
    mobile: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=254)
    address: str | None = Field(default=None, max_length=255)
    notes: str | None = Field(default=None, max_length=2000)


class PersonPatch(BaseModel):
    """Fields left out stay as they are; an empty string clears an optional field."""

    name: str | None = Field(default=None, max_length=128)
    id_number: str | None = Field(default=None, max_length=32)
    mobile: str | None = Field(default=None, max_length=32)
    email: str | None = Field(default=None, max_length=254)
    address: str | None = Field(default=None, max_length=255)
    notes: str | None = Field(default=None, max_length=2000)


class PersonOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    id_number: str | None
    mobile: str | None
    email: str | None
    address: str | None
    birth_date: date | None
    gender: str | None
    notes: str
    created_at: datetime
    updated_at: datetime


class OrganisationIn(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    kind: str = Field(
        max_length=32,
        description="merchant, service_provider, supplier, property, bank or other",
    )
    uscc: str | None = Field(default=None, max_length=32, description="统一社会信用代码")
    legal_person: str | None = Field(default=None, max_length=128)
    contact_name: str | None = Field(default=None, max_length=128)
    contact_mobile: str | None = Field(default=None, max_length=32)
    address: str | None = Field(default=None, max_length=255)
    notes: str | None = Field(default=None, max_length=2000)


class OrganisationPatch(BaseModel):
    name: str | None = Field(default=None, max_length=200)
    kind: str | None = Field(default=None, max_length=32)
    uscc: str | None = Field(default=None, max_length=32)
    legal_person: str | None = Field(default=None, max_length=128)
    contact_name: str | None = Field(default=None, max_length=128)
    contact_mobile: str | None = Field(default=None, max_length=32)
    address: str | None = Field(default=None, max_length=255)
    notes: str | None = Field(default=None, max_length=2000)


class OrganisationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    kind: str
    uscc: str | None
    legal_person: str | None
    contact_name: str | None
    contact_mobile: str | None
    address: str | None
    notes: str
    created_at: datetime
    updated_at: datetime


class DocumentOut(BaseModel):
    id: int
    sha256: str
    filename: str
    content_type: str
    size: int
    doc_type: str
    doc_type_label: str
    owner_type: str
    owner_id: int
    uploaded_by: str
    uploaded_at: datetime
    note: str
    supersedes_id: int | None


class DocumentCheckOut(BaseModel):
    document_id: int
    status: str
    ok: bool
    expected_sha256: str
    actual_sha256: str | None


class ChoiceOut(BaseModel):
    code: str
    label: str
