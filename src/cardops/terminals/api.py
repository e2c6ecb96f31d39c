"""REST API of the terminals domain. TMKs leave only through POST /terminals/keys/export."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Query, UploadFile
from sqlalchemy.orm import Session

from cardops.auth.service import require
from cardops.core.errors import ValidationFailed
from cardops.terminals import importer, keys, service
from cardops.terminals.models import Location, MaintenanceRecord, Terminal
from cardops.terminals.permissions import (
    TERMINALS_PURCHASE,
    TERMINALS_VIEW,
)
from cardops.terminals.schemas import (
    FactoryReturnIn,
    FactoryReturnOut,
    HistoryOut,
    ImportOut,
    InspectionIn,
    InstallIn,
    KeyExportIn,
    KeyOut,
    LocationOut,
    MaintenanceOut,
    ModelIn,
    ModelOut,
    PurchaseIn,
    PurchaseOut,
    QcIn,
    QcOut,
    RepairIn,
    ScrapIn,
    StatePlace,
    StockRowOut,
    SupplierIn,
    SupplierOut,
    TerminalOut,
    TerminalPage,
    TerminalRow,
)
from cardops.web.deps import DB, ApiUser, RecordId

router = APIRouter(tags=["terminals"])


def _names(session: Session, unit: Terminal) -> tuple[Location | None, str | None, str | None]:
    from cardops.channel.models import Provider
    from cardops.merchants.models import Merchant

    location = session.get(Location, unit.location_id)
    provider = session.get(Provider, unit.provider_id) if unit.provider_id else None
    merchant = session.get(Merchant, unit.merchant_id) if unit.merchant_id else None
    return (
        location,
        provider.name if provider else None,
        merchant.name if merchant else None,
    )


def terminal_out(session: Session, unit: Terminal) -> TerminalOut:
    location, provider, merchant = _names(session, unit)
    model = unit_model(session, unit)
    from cardops.terminals.models import Supplier

    supplier = session.get(Supplier, unit.supplier_id)
    return TerminalOut(
        serial=unit.serial,
        model=model,
        supplier=supplier.name if supplier else "",
        imei=unit.imei,
        iccid=unit.iccid,
        state=unit.state,
        location=LocationOut(
            kind=location.kind if location else None, name=location.name if location else None
        ),
        provider=provider,
        merchant=merchant,
        tid=unit.tid,
        mid=unit.mid,
        activated_at=unit.activated_at,
        cross_region=unit.cross_region,
        next_inspection_due=unit.next_inspection_due,
        tmk_kcv=unit.tmk_kcv,
        history=[
            HistoryOut(
                at=e.at,
                kind=e.kind,
                from_=StatePlace(
                    state=e.from_state,
                    location=LocationOut(kind=e.from_location_kind, name=e.from_location),
                ),
                to=StatePlace(
                    state=e.to_state,
                    location=LocationOut(kind=e.to_location_kind, name=e.to_location),
                ),
                document=e.document,
                by=e.by,
                note=e.note,
            )
            for e in service.history_events(session, unit)
        ],
    )


def unit_model(session: Session, unit: Terminal) -> str:
    from cardops.terminals.models import TerminalModel

    model = session.get(TerminalModel, unit.model_id)
    return model.code if model else ""


@router.get("/terminals", response_model=TerminalPage)
def list_terminals(
    db: DB,
    user: ApiUser,
    q: Annotated[str, Query(max_length=40)] = "",
    state: Annotated[str, Query(max_length=24)] = "",
    location: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> TerminalPage:
    """Units matching a serial prefix or exact IMEI / ICCID / TID, a state, a location."""
    require(user, TERMINALS_VIEW)
    units, total = service.list_terminals(
        db,
        q=q,
        state=state or None,
        location_id=location,
        provider_ids=service.visible_provider_ids(db, user),
        limit=limit,
        offset=offset,
    )
    locations = {loc.id: loc for loc in service.list_locations(db)}
    models = {m.id: m.code for m in service.list_models(db)}
    return TerminalPage(
        total=total,
        limit=limit,
        offset=offset,
        items=[
            TerminalRow(
                serial=u.serial,
                model=models.get(u.model_id, ""),
                state=u.state,
                location=LocationOut(
                    kind=locations[u.location_id].kind if u.location_id in locations else None,
                    name=locations[u.location_id].name if u.location_id in locations else None,
                ),
                imei=u.imei,
                iccid=u.iccid,
                tid=u.tid,
                mid=u.mid,
            )
            for u in units
        ],
    )


@router.get("/terminals/stock/summary", response_model=list[StockRowOut])
def stock_summary(
    db: DB,
    user: ApiUser,
    location: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
    state: Annotated[str, Query(max_length=24)] = "",
) -> list[StockRowOut]:
    """Unit counts by location × model × state."""
    require(user, TERMINALS_VIEW)
    rows = service.stock_summary(
        db,
        location_id=location,
        state=state or None,
        provider_ids=service.visible_provider_ids(db, user),
    )
    return [
        StockRowOut(
            location_id=r.location_id,
            location=r.location,
            location_kind=r.location_kind,
            model=r.model,
            state=r.state,
            count=r.count,
        )
        for r in rows
    ]


@router.post("/terminals/keys/export", response_model=list[KeyOut])
def export_keys(body: KeyExportIn, db: DB, user: ApiUser) -> list[KeyOut]:
    """Terminal master keys for key injection: key custodians only; audited."""
    exported = keys.export_tmks(
        session=db, actor=user, serials=body.serials, batch=body.batch, purpose=body.purpose
    )
    db.commit()
    return [KeyOut(serial=k.serial, tmk_hex=k.tmk_hex, kcv=k.kcv) for k in exported]


@router.post("/terminals/imports", response_model=ImportOut, status_code=201)
async def import_serials(
    db: DB,
    user: ApiUser,
    file: Annotated[UploadFile, File()],
    supplier: Annotated[str, Form(min_length=1, max_length=128)],
    dry_run: Annotated[bool, Form()] = False,
) -> ImportOut:
    """Import a serial list (CSV or .xlsx); 422 with every bad row, nothing imported."""
    data = await file.read()
    outcome = importer.import_file(
        session=db,
        actor=user,
        supplier=supplier,
        filename=file.filename or "",
        data=data,
        dry_run=dry_run,
    )
    db.commit()
    return ImportOut(
        imported=outcome.batch is not None,
        count=outcome.count,
        batch=outcome.batch.number if outcome.batch else None,
        preview=[
            {"serial": r["serial"], "model": r["model"], "imei": r["imei"], "iccid": r["iccid"]}
            for r in outcome.parsed.rows[: importer.PREVIEW_ROWS]
        ],
    )


@router.post("/terminals/quality-check", response_model=QcOut)
def quality_check(body: QcIn, db: DB, user: ApiUser) -> QcOut:
    """Pass received units into stock; listed failures go to a return-to-factory batch."""
    passed, returns = service.quality_check(
        session=db,
        actor=user,
        serials=body.serials,
        batch_id=body.batch_id,
        failed=body.failed,
        reason=body.reason,
    )
    db.commit()
    return QcOut(passed=passed, factory_return=returns.number if returns else None)


def _return_out(db: Session, returns_id: int) -> FactoryReturnOut:
    found = service.get_factory_return(db, returns_id)
    return FactoryReturnOut(
        id=found.id,
        number=found.number,
        state=found.state,
        reason=found.reason,
        serials=[u.serial for u in service.return_units(db, found)],
    )


@router.post("/terminals/factory-returns", response_model=FactoryReturnOut, status_code=201)
def create_factory_return(body: FactoryReturnIn, db: DB, user: ApiUser) -> FactoryReturnOut:
    found = service.create_factory_return(
        session=db, actor=user, serials=body.serials, reason=body.reason
    )
    db.commit()
    return _return_out(db, found.id)


@router.post("/terminals/factory-returns/{return_id}/ship", response_model=FactoryReturnOut)
def ship_factory_return(return_id: RecordId, db: DB, user: ApiUser) -> FactoryReturnOut:
    service.ship_factory_return(session=db, actor=user, return_id=return_id)
    db.commit()
    return _return_out(db, return_id)


@router.post("/terminals/factory-returns/{return_id}/receive", response_model=FactoryReturnOut)
def receive_factory_return(return_id: RecordId, db: DB, user: ApiUser) -> FactoryReturnOut:
    service.receive_factory_return(session=db, actor=user, return_id=return_id)
    db.commit()
    return _return_out(db, return_id)


def _maintenance_out(entry: MaintenanceRecord) -> MaintenanceOut:
    return MaintenanceOut(
        id=entry.id,
        kind=entry.kind,
        at=entry.at,
        result=entry.result,
        test_reference=entry.test_reference,
        notes=entry.notes,
        approval_request_id=entry.approval_request_id,
    )


def _serial(serial: str) -> str:
    if not 1 <= len(serial) <= 40:
        raise ValidationFailed(
            "No terminal with serial {serial}.", field="serial", serial=serial[:40]
        )
    return serial


@router.post("/terminals/{serial}/install", response_model=MaintenanceOut, status_code=201)
def install(serial: str, body: InstallIn, db: DB, user: ApiUser) -> MaintenanceOut:
    entry = service.record_install(
        session=db,
        actor=user,
        serial=_serial(serial),
        test_reference=body.test_reference,
        notes=body.notes,
        merchant_id=body.merchant_id,
    )
    db.commit()
    return _maintenance_out(entry)


@router.post("/terminals/{serial}/inspections", response_model=MaintenanceOut, status_code=201)
def inspection(serial: str, body: InspectionIn, db: DB, user: ApiUser) -> MaintenanceOut:
    entry = service.record_inspection(
        session=db, actor=user, serial=_serial(serial), result=body.result, notes=body.notes
    )
    db.commit()
    return _maintenance_out(entry)


@router.post("/terminals/{serial}/repairs", response_model=MaintenanceOut, status_code=201)
def repair(serial: str, body: RepairIn, db: DB, user: ApiUser) -> MaintenanceOut:
    entry = service.record_repair(
        session=db,
        actor=user,
        serial=_serial(serial),
        notes=body.notes,
        done=body.done,
        back_to=body.back_to,
    )
    db.commit()
    return _maintenance_out(entry)


@router.post("/terminals/{serial}/scrap", response_model=MaintenanceOut, status_code=201)
def scrap(serial: str, body: ScrapIn, db: DB, user: ApiUser) -> MaintenanceOut:
    """Ask for scrapping; the unit is scrapped when the ``scrapping`` chain approves."""
    entry = service.request_scrap(
        session=db, actor=user, serial=_serial(serial), reason=body.reason
    )
    db.commit()
    return _maintenance_out(entry)


@router.get("/terminals/{serial}/maintenance", response_model=list[MaintenanceOut])
def maintenance(serial: str, db: DB, user: ApiUser) -> list[MaintenanceOut]:
    unit = service.get_visible(db, user, _serial(serial))
    return [_maintenance_out(e) for e in service.maintenance_file(db, unit)]


@router.get(
    "/terminals/{serial}",
    response_model=TerminalOut,
    response_model_by_alias=True,
)
def get_terminal(serial: str, db: DB, user: ApiUser) -> TerminalOut:
    """Where a unit is, its state, TID/MID when activated, and its whole history."""
    unit = service.get_visible(db, user, _serial(serial))
    return terminal_out(db, unit)


# --- suppliers, models, purchase requests ---------------------------------------------------


@router.get("/terminal-suppliers", response_model=list[SupplierOut])
def suppliers(db: DB, user: ApiUser) -> list[SupplierOut]:
    require(user, TERMINALS_VIEW)
    return [
        SupplierOut(
            id=s.id,
            name=s.name,
            kind=s.kind,
            contact_name=s.contact_name,
            contact_mobile=s.contact_mobile,
        )
        for s in service.list_suppliers(db)
    ]


@router.post("/terminal-suppliers", response_model=SupplierOut, status_code=201)
def create_supplier(body: SupplierIn, db: DB, user: ApiUser) -> SupplierOut:
    s = service.create_supplier(
        session=db,
        actor=user,
        name=body.name,
        kind=body.kind,
        contact_name=body.contact_name,
        contact_mobile=body.contact_mobile,
    )
    db.commit()
    return SupplierOut(
        id=s.id,
        name=s.name,
        kind=s.kind,
        contact_name=s.contact_name,
        contact_mobile=s.contact_mobile,
    )


def _model_out(m: object) -> ModelOut:
    return ModelOut.model_validate(m, from_attributes=True)


@router.get("/terminal-models", response_model=list[ModelOut])
def models(db: DB, user: ApiUser) -> list[ModelOut]:
    require(user, TERMINALS_VIEW)
    return [_model_out(m) for m in service.list_models(db)]


@router.post("/terminal-models", response_model=ModelOut, status_code=201)
def create_model(body: ModelIn, db: DB, user: ApiUser) -> ModelOut:
    m = service.create_model(
        session=db,
        actor=user,
        supplier_id=body.supplier_id,
        code=body.code,
        name=body.name,
        unit_price=body.unit_price,
        has_sim=body.has_sim,
    )
    db.commit()
    return _model_out(m)


@router.get("/purchase-requests", response_model=list[PurchaseOut])
def purchase_requests(db: DB, user: ApiUser) -> list[PurchaseOut]:
    require(user, TERMINALS_PURCHASE)
    return [
        PurchaseOut.model_validate(p, from_attributes=True)
        for p in service.list_purchase_requests(db)
    ]


@router.post("/purchase-requests", response_model=PurchaseOut, status_code=201)
def create_purchase_request(body: PurchaseIn, db: DB, user: ApiUser) -> PurchaseOut:
    p = service.create_purchase_request(
        session=db,
        actor=user,
        supplier_id=body.supplier_id,
        model_id=body.model_id,
        quantity=body.quantity,
        unit_price=body.unit_price,
        description=body.description,
    )
    db.commit()
    return PurchaseOut.model_validate(p, from_attributes=True)


@router.post("/purchase-requests/{request_id}/ordered", response_model=PurchaseOut)
def mark_ordered(request_id: RecordId, db: DB, user: ApiUser) -> PurchaseOut:
    p = service.mark_ordered(session=db, actor=user, request_id=request_id)
    db.commit()
    return PurchaseOut.model_validate(p, from_attributes=True)


@router.post("/purchase-requests/{request_id}/resubmit", response_model=PurchaseOut)
def resubmit(request_id: RecordId, db: DB, user: ApiUser) -> PurchaseOut:
    p = service.resubmit_purchase_request(session=db, actor=user, request_id=request_id)
    db.commit()
    return PurchaseOut.model_validate(p, from_attributes=True)
