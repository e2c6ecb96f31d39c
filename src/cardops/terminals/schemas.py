"""API shapes of the terminals domain (bounded so that a fuzzer never gets a 500)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

Serial = Field(min_length=1, max_length=40)


class LocationOut(BaseModel):
    kind: str | None
    name: str | None


class StatePlace(BaseModel):
    state: str | None
    location: LocationOut


class HistoryOut(BaseModel):
    at: datetime
    kind: str
    from_: StatePlace = Field(serialization_alias="from")
    to: StatePlace
    document: str | None
    by: str | None
    note: str


class TerminalOut(BaseModel):
    serial: str
    model: str
    supplier: str
    imei: str | None
    iccid: str | None
    state: str
    location: LocationOut
    provider: str | None
    merchant: str | None
    tid: str | None
    mid: str | None
    activated_at: datetime | None
    cross_region: bool
    next_inspection_due: date | None
    tmk_kcv: str | None
    history: list[HistoryOut]


class TerminalRow(BaseModel):
    serial: str
    model: str
    state: str
    location: LocationOut
    imei: str | None
    iccid: str | None
    tid: str | None
    mid: str | None


class TerminalPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[TerminalRow]


class StockRowOut(BaseModel):
    location_id: int
    location: str
    location_kind: str
    model: str
    state: str
    count: int


class KeyExportIn(BaseModel):
    serials: list[str] = Field(default_factory=list, max_length=10_000)
    batch: str | None = Field(default=None, max_length=32)
    purpose: str = Field(default="", max_length=200)


class KeyOut(BaseModel):
    serial: str
    tmk_hex: str
    kcv: str


class ImportErrorOut(BaseModel):
    row: int
    field: str
    message: str


class ImportOut(BaseModel):
    imported: bool
    count: int
    batch: str | None
    preview: list[dict[str, str | None]]


class SupplierIn(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    kind: Literal["manufacturer", "acquiring_platform", "sim_carrier"]
    contact_name: str = Field(default="", max_length=64)
    contact_mobile: str = Field(default="", max_length=32)


class SupplierOut(BaseModel):
    id: int
    name: str
    kind: str
    contact_name: str
    contact_mobile: str


class ModelIn(BaseModel):
    supplier_id: int = Field(ge=1, le=2_147_483_647)
    code: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=128)
    unit_price: int = Field(default=0, ge=0, le=100_000_000)
    has_sim: bool = True


class ModelOut(BaseModel):
    id: int
    code: str
    name: str
    supplier_id: int
    unit_price: int
    has_sim: bool


class PurchaseIn(BaseModel):
    supplier_id: int = Field(ge=1, le=2_147_483_647)
    model_id: int | None = Field(default=None, ge=1, le=2_147_483_647)
    quantity: int = Field(ge=1, le=1_000_000)
    unit_price: int = Field(default=0, ge=0, le=100_000_000)
    description: str = Field(default="", max_length=500)


class PurchaseOut(BaseModel):
    id: int
    number: str
    supplier_id: int
    model_id: int | None
    quantity: int
    unit_price: int
    description: str
    state: str
    approval_request_id: int | None


class QcIn(BaseModel):
    serials: list[str] = Field(default_factory=list, max_length=5000)
    batch_id: int | None = Field(default=None, ge=1, le=2_147_483_647)
    failed: list[str] = Field(default_factory=list, max_length=5000)
    reason: str = Field(default="", max_length=500)


class QcOut(BaseModel):
    passed: int
    factory_return: str | None


class FactoryReturnIn(BaseModel):
    serials: list[str] = Field(min_length=1, max_length=5000)
    reason: str = Field(min_length=1, max_length=500)


class FactoryReturnOut(BaseModel):
    id: int
    number: str
    state: str
    reason: str
    serials: list[str]


class InstallIn(BaseModel):
    test_reference: str = Field(min_length=1, max_length=64)
    notes: str = Field(default="", max_length=2000)
    merchant_id: int | None = Field(default=None, ge=1, le=2_147_483_647)


class InspectionIn(BaseModel):
    result: Literal["ok", "faulty"]
    notes: str = Field(default="", max_length=2000)


class RepairIn(BaseModel):
    notes: str = Field(min_length=1, max_length=2000)
    done: bool = False
    back_to: Literal["in_stock", "at_provider", "installed", "activated"] = "in_stock"


class ScrapIn(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class MaintenanceOut(BaseModel):
    id: int
    kind: str
    at: datetime
    result: str
    test_reference: str | None
    notes: str
    approval_request_id: int | None
