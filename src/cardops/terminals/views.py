"""Console pages of the terminals domain: search and the unit page, stock, inbound import with
preview, quality check, factory returns, suppliers and models, purchase requests, upkeep."""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cardops.auth.service import require
from cardops.core.config import get_settings
from cardops.core.errors import CardopsError, ValidationFailed
from cardops.core.i18n import N_
from cardops.core.money import parse_amount
from cardops.terminals import importer, service
from cardops.terminals.models import (
    TRANSITIONS,
    InboundBatch,
    Location,
    Supplier,
    SupplierKind,
    Terminal,
    TerminalModel,
    TerminalState,
)
from cardops.terminals.permissions import (
    TERMINALS_INBOUND,
    TERMINALS_MAINTAIN,
    TERMINALS_PURCHASE,
    TERMINALS_QC,
    TERMINALS_REPORTS,
    TERMINALS_SUPPLIERS,
    TERMINALS_VIEW,
)
from cardops.web.deps import Console, ConsoleForm, ConsolePage, RecordId, form_error_context
from cardops.web.nav import NavItem

router = APIRouter()
SECTION = N_("Terminals")
NAV = [
    NavItem(N_("Search"), "/terminals", TERMINALS_VIEW, section=SECTION, order=400),
    NavItem(N_("Stock"), "/terminals/stock", TERMINALS_VIEW, section=SECTION, order=401),
    NavItem(N_("Inbound"), "/terminals/inbound", TERMINALS_INBOUND, section=SECTION, order=402),
    NavItem(N_("Quality check"), "/terminals/qc", TERMINALS_QC, section=SECTION, order=403),
    NavItem(N_("Factory returns"), "/terminals/returns", TERMINALS_QC, section=SECTION, order=404),
    NavItem(
        N_("Suppliers & models"),
        "/terminals/suppliers",
        TERMINALS_VIEW,
        section=SECTION,
        order=405,
    ),
    NavItem(
        N_("Purchase requests"),
        "/terminals/purchases",
        TERMINALS_PURCHASE,
        section=SECTION,
        order=406,
    ),
    NavItem(
        N_("Maintenance"), "/terminals/maintenance", TERMINALS_VIEW, section=SECTION, order=407
    ),
]
PAGE = 50

STATE_LABELS = {
    "received": N_("Received, awaiting QC"),
    "in_stock": N_("In stock"),
    "allocated": N_("Allocated"),
    "shipped": N_("Shipped"),
    "at_provider": N_("At provider"),
    "installed": N_("Installed"),
    "activated": N_("Activated"),
    "faulty": N_("Faulty"),
    "in_repair": N_("In repair"),
    "returned_to_factory": N_("Returned to factory"),
    "on_loan": N_("On loan (loaner)"),
    "scrapped": N_("Scrapped"),
}
KIND_LABELS = {
    "manufacturer": N_("Manufacturer"),
    "acquiring_platform": N_("Acquiring platform"),
    "sim_carrier": N_("SIM carrier"),
}
LOCATION_LABELS = {
    "warehouse": N_("Warehouse"),
    "provider": N_("Provider"),
    "merchant": N_("Merchant"),
    "factory": N_("Factory"),
    "scrap": N_("Scrap"),
}


def _text(form: dict[str, Any], name: str, limit: int = 10_000) -> str:
    value = form.get(name)
    if isinstance(value, list):
        value = value[0] if value else ""
    if hasattr(value, "read"):
        return ""
    return str(value or "").strip()[:limit]


def _int(text: str, field: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise ValidationFailed("Enter a whole number.", field=field) from exc
    if not 0 <= value <= 2_147_483_647:
        raise ValidationFailed("Enter a whole number.", field=field)
    return value


def _common() -> dict[str, Any]:
    return {
        "state_labels": STATE_LABELS,
        "kind_labels": KIND_LABELS,
        "location_labels": LOCATION_LABELS,
    }


# --- search and the unit page ---------------------------------------------------------------


@router.get("/terminals", response_class=HTMLResponse)
def search(
    console: ConsolePage,
    q: str = Query("", max_length=100),
    state: str = Query("", max_length=24),
    location: int = Query(0, ge=0, le=2_147_483_647),
    model: int = Query(0, ge=0, le=2_147_483_647),
    page: int = Query(1, ge=1, le=100_000),
) -> Response:
    require(console.user, TERMINALS_VIEW)
    db = console.db
    allowed = service.visible_provider_ids(db, console.user)
    text = q.strip()
    if text and not (state or location or model):
        exact = service.find(db, text)
        codes = (exact[0].serial, exact[0].imei, exact[0].iccid, exact[0].tid) if exact else ()
        if (
            len(exact) == 1
            and text in codes
            and (allowed is None or exact[0].provider_id in allowed)
        ):
            return console.redirect(f"/terminals/units/{exact[0].serial}")
    units, total = service.list_terminals(
        db,
        q=q,
        state=state or None,
        location_id=location or None,
        model_id=model or None,
        provider_ids=allowed,
        limit=PAGE,
        offset=(page - 1) * PAGE,
    )
    return console.render(
        "terminals/search.html",
        units=units,
        total=total,
        page=page,
        pages=max(1, (total + PAGE - 1) // PAGE),
        filters={"q": q, "state": state, "location": location, "model": model},
        locations={loc.id: loc for loc in service.list_locations(db)},
        models={m.id: m for m in service.list_models(db)},
        **_common(),
    )


def _unit_page(
    console: Console, serial: str, *, status_code: int = 200, **extra: Any
) -> HTMLResponse:
    from cardops.channel.models import Provider
    from cardops.merchants.models import Merchant

    db = console.db
    unit = service.get_visible(db, console.user, serial)
    return console.render(
        "terminals/unit.html",
        status_code=status_code,
        unit=unit,
        model=db.get(TerminalModel, unit.model_id),
        supplier=db.get(Supplier, unit.supplier_id),
        location=db.get(Location, unit.location_id),
        provider=db.get(Provider, unit.provider_id) if unit.provider_id else None,
        merchant=db.get(Merchant, unit.merchant_id) if unit.merchant_id else None,
        events=service.history_events(db, unit),
        maintenance=service.maintenance_file(db, unit),
        next_states=sorted(s.value for s in TRANSITIONS[TerminalState(unit.state)]),
        form=extra.pop("form", {}),
        **_common(),
        **extra,
    )


@router.get("/terminals/units/{serial}", response_class=HTMLResponse)
def unit_page(console: ConsolePage, serial: str) -> HTMLResponse:
    return _unit_page(console, serial[:40])


@router.post("/terminals/units/{serial}/upkeep", response_class=HTMLResponse)
def unit_upkeep(console: ConsoleForm, serial: str) -> Response:
    """Install (test transaction), inspection, repair start/finish or a scrapping request."""
    require(console.user, TERMINALS_MAINTAIN)
    form = console.form
    action = _text(form, "action")
    serial = serial[:40]
    try:
        if action == "install":
            service.record_install(
                session=console.db,
                actor=console.user,
                serial=serial,
                test_reference=_text(form, "test_reference", 100),
                notes=_text(form, "notes", 2000),
            )
        elif action == "inspection":
            service.record_inspection(
                session=console.db,
                actor=console.user,
                serial=serial,
                result=_text(form, "result", 20),
                notes=_text(form, "notes", 2000),
            )
        elif action in ("repair", "repaired"):
            service.record_repair(
                session=console.db,
                actor=console.user,
                serial=serial,
                notes=_text(form, "notes", 2000),
                done=action == "repaired",
                back_to=_text(form, "back_to", 24) or "in_stock",
            )
        elif action == "scrap":
            service.request_scrap(
                session=console.db,
                actor=console.user,
                serial=serial,
                reason=_text(form, "notes", 2000),
            )
        else:
            raise ValidationFailed("Choose what to record.", field="action")
    except CardopsError as exc:
        console.db.rollback()
        return _unit_page(
            console, serial, status_code=exc.status, form=form, **form_error_context(exc)
        )
    console.flash("Saved.")
    console.db.commit()
    return console.redirect(f"/terminals/units/{serial}")


# --- stock ----------------------------------------------------------------------------------


def _chart(rows: list[tuple[str, int]]) -> dict[str, Any]:
    top = max((n for _, n in rows), default=0) or 1
    return {"bars": [(label, n, int(300 * n / top)) for label, n in rows], "height": 22}


STOCK_PAGE = 100


def stock_context(
    db: Session,
    provider_ids: set[int] | None,
    *,
    location: int = 0,
    model: int = 0,
    state: str = "",
    page: int = 1,
) -> dict[str, Any]:
    """What the stock page shows (also used by bench/terminals_search.py)."""
    rows = service.stock_summary(
        db,
        location_id=location or None,
        model_id=model or None,
        state=state or None,
        provider_ids=provider_ids,
    )
    by_state: dict[str, int] = {}
    for row in rows:
        by_state[row.state] = by_state.get(row.state, 0) + row.count
    pages = max(1, (len(rows) + STOCK_PAGE - 1) // STOCK_PAGE)
    page = min(page, pages)
    return {
        "rows": rows[(page - 1) * STOCK_PAGE : page * STOCK_PAGE],
        "total": sum(r.count for r in rows),
        "chart": _chart([(STATE_LABELS.get(k, k), v) for k, v in sorted(by_state.items())]),
        "filters": {"location": location, "model": model, "state": state},
        "page": page,
        "pages": pages,
        "locations": service.list_locations(db),
        "models": service.list_models(db),
        **_common(),
    }


@router.get("/terminals/stock", response_class=HTMLResponse)
def stock(
    console: ConsolePage,
    location: int = Query(0, ge=0, le=2_147_483_647),
    model: int = Query(0, ge=0, le=2_147_483_647),
    state: str = Query("", max_length=24),
    page: int = Query(1, ge=1, le=100_000),
) -> HTMLResponse:
    require(console.user, TERMINALS_VIEW)
    db = console.db
    return console.render(
        "terminals/stock.html",
        **stock_context(
            db,
            service.visible_provider_ids(db, console.user),
            location=location,
            model=model,
            state=state,
            page=page,
        ),
    )


@router.get("/terminals/stock.xlsx")
def stock_excel(console: ConsolePage) -> Response:
    """The stock report (location × model × state) as an Excel workbook."""
    require(console.user, TERMINALS_REPORTS)
    from openpyxl import Workbook

    from cardops.core.i18n import gettext

    rows = service.stock_summary(
        console.db, provider_ids=service.visible_provider_ids(console.db, console.user)
    )
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "stock"
    sheet.append(
        [gettext("Location"), gettext("Kind"), gettext("Model"), gettext("State"), gettext("Units")]
    )
    for r in rows:
        sheet.append(
            [
                r.location,
                gettext(LOCATION_LABELS.get(r.location_kind, r.location_kind)),
                r.model,
                gettext(STATE_LABELS.get(r.state, r.state)),
                r.count,
            ]
        )
    due = service.inspections_due(console.db, within_days=30)
    sheet2 = book.create_sheet("inspections")
    sheet2.append([gettext("Serial"), gettext("State"), gettext("Inspection due")])
    for unit in due:
        sheet2.append([unit.serial, unit.state, unit.next_inspection_due])
    buffer = io.BytesIO()
    book.save(buffer)
    return Response(
        buffer.getvalue(),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": 'attachment; filename="terminal-stock.xlsx"'},
    )


# --- inbound import with preview ------------------------------------------------------------


def _upload_dir() -> Path:
    path = get_settings().var_dir / "inbound-uploads"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _inbound_page(console: Console, *, status_code: int = 200, **extra: Any) -> HTMLResponse:
    db = console.db
    batches = list(
        db.execute(select(InboundBatch).order_by(InboundBatch.id.desc()).limit(20)).scalars()
    )
    return console.render(
        "terminals/inbound.html",
        status_code=status_code,
        suppliers=service.list_suppliers(db, kind=SupplierKind.MANUFACTURER.value),
        batches=batches,
        supplier_names={s.id: s.name for s in service.list_suppliers(db)},
        form=extra.pop("form", {}),
        **_common(),
        **extra,
    )


@router.get("/terminals/inbound", response_class=HTMLResponse)
def inbound(console: ConsolePage) -> HTMLResponse:
    require(console.user, TERMINALS_INBOUND)
    return _inbound_page(console)


@router.post("/terminals/inbound", response_class=HTMLResponse)
def inbound_upload(console: ConsoleForm) -> Response:
    """Step 1: upload → preview of the first rows and the error report (nothing imported)."""
    require(console.user, TERMINALS_INBOUND)
    form = console.form
    upload = form.get("file")
    supplier_id = _text(form, "supplier_id")
    shown = {"supplier_id": supplier_id}
    try:
        if upload is None or not hasattr(upload, "read"):
            raise ValidationFailed("The file is empty. Choose a file to upload.", field="file")
        data = upload.file.read(get_settings().documents_max_bytes + 1)
        filename = re.sub(r"[^\w.\-]+", "_", upload.filename or "list.csv")[-100:]
        supplier = service.get_supplier(console.db, _int(supplier_id or "0", "supplier_id"))
        parsed = importer.parse(console.db, supplier=supplier, filename=filename, data=data)
    except CardopsError as exc:
        console.db.rollback()
        return _inbound_page(console, status_code=exc.status, form=shown, **form_error_context(exc))
    sha = hashlib.sha256(data).hexdigest()
    suffix = ".xlsx" if importer.is_excel(filename, data) else ".csv"
    (_upload_dir() / f"{sha}{suffix}").write_bytes(data)
    return _inbound_page(
        console,
        status_code=200 if parsed.ok else 422,
        form=shown,
        preview=parsed,
        preview_rows=parsed.rows[: importer.PREVIEW_ROWS],
        upload={"sha": sha, "suffix": suffix, "filename": filename, "supplier": supplier},
    )


@router.post("/terminals/inbound/confirm", response_class=HTMLResponse)
def inbound_confirm(console: ConsoleForm) -> Response:
    """Step 2: re-read the stored upload and import it (all or nothing)."""
    require(console.user, TERMINALS_INBOUND)
    form = console.form
    sha = _text(form, "sha", 64)
    suffix = ".xlsx" if _text(form, "suffix", 8) == ".xlsx" else ".csv"
    filename = _text(form, "filename", 100)
    supplier_id = _text(form, "supplier_id")
    try:
        if not re.fullmatch(r"[0-9a-f]{64}", sha):
            raise ValidationFailed("Upload the file again.", field="file")
        path = _upload_dir() / f"{sha}{suffix}"
        if not path.is_file():
            raise ValidationFailed("Upload the file again.", field="file")
        data = path.read_bytes()
        outcome = importer.import_file(
            session=console.db,
            actor=console.user,
            supplier=service.get_supplier(console.db, _int(supplier_id or "0", "supplier_id")),
            filename=filename,
            data=data,
        )
    except importer.ImportRejected as exc:
        console.db.rollback()
        return _inbound_page(
            console,
            status_code=exc.status,
            form={"supplier_id": supplier_id},
            rejected=exc.rows,
            **form_error_context(exc),
        )
    except CardopsError as exc:
        console.db.rollback()
        return _inbound_page(
            console,
            status_code=exc.status,
            form={"supplier_id": supplier_id},
            **form_error_context(exc),
        )
    batch = outcome.batch
    assert batch is not None
    console.flash(
        "Imported {count} units as batch {number}.", count=outcome.count, number=batch.number
    )
    console.db.commit()
    path.unlink(missing_ok=True)
    return console.redirect(f"/terminals/qc?batch={batch.id}")


# --- quality check and factory returns ------------------------------------------------------


def _qc_page(console: Console, *, status_code: int = 200, **extra: Any) -> HTMLResponse:
    db = console.db
    waiting = db.execute(
        select(InboundBatch, func.count(Terminal.id))
        .join(Terminal, Terminal.inbound_batch_id == InboundBatch.id)
        .where(Terminal.state == TerminalState.RECEIVED.value)
        .group_by(InboundBatch.id)
        .order_by(InboundBatch.id.desc())
    ).all()
    return console.render(
        "terminals/qc.html",
        status_code=status_code,
        waiting=waiting,
        form=extra.pop("form", {}),
        **_common(),
        **extra,
    )


@router.get("/terminals/qc", response_class=HTMLResponse)
def qc(console: ConsolePage, batch: int = Query(0, ge=0, le=2_147_483_647)) -> HTMLResponse:
    require(console.user, TERMINALS_QC)
    return _qc_page(console, form={"batch_id": str(batch or "")})


@router.post("/terminals/qc", response_class=HTMLResponse)
def qc_submit(console: ConsoleForm) -> Response:
    require(console.user, TERMINALS_QC)
    form = console.form
    try:
        batch_text = _text(form, "batch_id")
        passed, returns = service.quality_check(
            session=console.db,
            actor=console.user,
            batch_id=_int(batch_text, "batch_id") if batch_text else None,
            serials=_text(form, "serials"),
            failed=_text(form, "failed"),
            reason=_text(form, "reason", 500),
        )
    except CardopsError as exc:
        console.db.rollback()
        return _qc_page(console, status_code=exc.status, form=form, **form_error_context(exc))
    if returns is not None:
        console.flash(
            "{passed} units passed; failures are in return batch {number}.",
            passed=passed,
            number=returns.number,
        )
    else:
        console.flash("{passed} units passed.", passed=passed)
    console.db.commit()
    return console.redirect("/terminals/qc")


def _returns_page(console: Console, *, status_code: int = 200, **extra: Any) -> HTMLResponse:
    db = console.db
    returns = service.list_factory_returns(db)
    return console.render(
        "terminals/returns.html",
        status_code=status_code,
        returns=returns,
        units={r.id: service.return_units(db, r) for r in returns[:50]},
        supplier_names={s.id: s.name for s in service.list_suppliers(db)},
        form=extra.pop("form", {}),
        **_common(),
        **extra,
    )


@router.get("/terminals/returns", response_class=HTMLResponse)
def returns_page(console: ConsolePage) -> HTMLResponse:
    require(console.user, TERMINALS_QC)
    return _returns_page(console)


@router.post("/terminals/returns", response_class=HTMLResponse)
def returns_create(console: ConsoleForm) -> Response:
    require(console.user, TERMINALS_QC)
    form = console.form
    try:
        found = service.create_factory_return(
            session=console.db,
            actor=console.user,
            serials=_text(form, "serials"),
            reason=_text(form, "reason", 500),
        )
    except CardopsError as exc:
        console.db.rollback()
        return _returns_page(console, status_code=exc.status, form=form, **form_error_context(exc))
    console.flash("Return batch {number} created.", number=found.number)
    console.db.commit()
    return console.redirect("/terminals/returns")


@router.post("/terminals/returns/{return_id}/{action}", response_class=HTMLResponse)
def returns_action(console: ConsoleForm, return_id: RecordId, action: str) -> Response:
    require(console.user, TERMINALS_QC)
    try:
        if action == "ship":
            service.ship_factory_return(session=console.db, actor=console.user, return_id=return_id)
        elif action == "receive":
            service.receive_factory_return(
                session=console.db, actor=console.user, return_id=return_id
            )
        else:
            raise ValidationFailed("Choose what to record.", field="action")
    except CardopsError as exc:
        console.db.rollback()
        return _returns_page(console, status_code=exc.status, **form_error_context(exc))
    console.flash("Saved.")
    console.db.commit()
    return console.redirect("/terminals/returns")


# --- suppliers and models -------------------------------------------------------------------


def _suppliers_page(console: Console, *, status_code: int = 200, **extra: Any) -> HTMLResponse:
    db = console.db
    return console.render(
        "terminals/suppliers.html",
        status_code=status_code,
        suppliers=service.list_suppliers(db),
        models=service.list_models(db),
        manufacturers=service.list_suppliers(db, kind=SupplierKind.MANUFACTURER.value),
        form=extra.pop("form", {}),
        **_common(),
        **extra,
    )


@router.get("/terminals/suppliers", response_class=HTMLResponse)
def suppliers(console: ConsolePage) -> HTMLResponse:
    require(console.user, TERMINALS_VIEW)
    return _suppliers_page(console)


@router.post("/terminals/suppliers", response_class=HTMLResponse)
def suppliers_create(console: ConsoleForm) -> Response:
    require(console.user, TERMINALS_SUPPLIERS)
    form = console.form
    try:
        if _text(form, "what") == "model":
            price = parse_amount(_text(form, "unit_price", 20) or "0", field="unit_price")
            model = service.create_model(
                session=console.db,
                actor=console.user,
                supplier_id=_int(_text(form, "supplier_id") or "0", "supplier_id"),
                code=_text(form, "code", 100),
                name=_text(form, "name", 200),
                unit_price=price,
                has_sim=_text(form, "has_sim") == "1",
            )
            console.flash("Model {value} added.", value=model.code)
        else:
            supplier = service.create_supplier(
                session=console.db,
                actor=console.user,
                name=_text(form, "name", 200),
                kind=_text(form, "kind", 32),
                contact_name=_text(form, "contact_name", 100),
                contact_mobile=_text(form, "contact_mobile", 100),
            )
            console.flash("Supplier {name} added.", name=supplier.name)
    except CardopsError as exc:
        console.db.rollback()
        return _suppliers_page(
            console, status_code=exc.status, form=form, **form_error_context(exc)
        )
    console.db.commit()
    return console.redirect("/terminals/suppliers")


# --- purchase requests ----------------------------------------------------------------------


def _purchases_page(console: Console, *, status_code: int = 200, **extra: Any) -> HTMLResponse:
    db = console.db
    return console.render(
        "terminals/purchases.html",
        status_code=status_code,
        requests=service.list_purchase_requests(db),
        suppliers=service.list_suppliers(db, kind=SupplierKind.MANUFACTURER.value),
        supplier_names={s.id: s.name for s in service.list_suppliers(db)},
        models=service.list_models(db),
        model_codes={m.id: m.code for m in service.list_models(db)},
        form=extra.pop("form", {}),
        **_common(),
        **extra,
    )


@router.get("/terminals/purchases", response_class=HTMLResponse)
def purchases(console: ConsolePage) -> HTMLResponse:
    require(console.user, TERMINALS_PURCHASE)
    return _purchases_page(console)


@router.post("/terminals/purchases", response_class=HTMLResponse)
def purchases_create(console: ConsoleForm) -> Response:
    require(console.user, TERMINALS_PURCHASE)
    form = console.form
    try:
        model_text = _text(form, "model_id")
        request = service.create_purchase_request(
            session=console.db,
            actor=console.user,
            supplier_id=_int(_text(form, "supplier_id") or "0", "supplier_id"),
            model_id=_int(model_text, "model_id") if model_text else None,
            quantity=_int(_text(form, "quantity") or "0", "quantity"),
            unit_price=parse_amount(_text(form, "unit_price", 20) or "0", field="unit_price"),
            description=_text(form, "description", 1000),
        )
    except CardopsError as exc:
        console.db.rollback()
        return _purchases_page(
            console, status_code=exc.status, form=form, **form_error_context(exc)
        )
    console.flash("Purchase request {number} submitted for approval.", number=request.number)
    console.db.commit()
    return console.redirect("/terminals/purchases")


@router.post("/terminals/purchases/{request_id}/{action}", response_class=HTMLResponse)
def purchases_action(console: ConsoleForm, request_id: RecordId, action: str) -> Response:
    require(console.user, TERMINALS_PURCHASE)
    try:
        if action == "ordered":
            service.mark_ordered(session=console.db, actor=console.user, request_id=request_id)
        elif action == "resubmit":
            service.resubmit_purchase_request(
                session=console.db, actor=console.user, request_id=request_id
            )
        else:
            raise ValidationFailed("Choose what to record.", field="action")
    except CardopsError as exc:
        console.db.rollback()
        return _purchases_page(console, status_code=exc.status, **form_error_context(exc))
    console.flash("Saved.")
    console.db.commit()
    return console.redirect("/terminals/purchases")


# --- maintenance ----------------------------------------------------------------------------


@router.get("/terminals/maintenance", response_class=HTMLResponse)
def maintenance(console: ConsolePage, within: int = Query(30, ge=0, le=3650)) -> HTMLResponse:
    require(console.user, TERMINALS_VIEW)
    from cardops.core.clock import local, utcnow

    return console.render(
        "terminals/maintenance.html",
        units=service.inspections_due(console.db, within_days=within),
        today=local(utcnow()).date(),
        within=within,
        **_common(),
    )
