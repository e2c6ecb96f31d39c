"""Console pages: repair cases with every step of the faulty-terminal flow, RMA batches, field
visits (the 客户服务记录表 with its checklist, replacements, signature pad and PDF) and the
checklist configuration."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from cardops.auth.models import User
from cardops.auth.service import require
from cardops.channel.models import Provider
from cardops.channel.service import visible_provider_ids
from cardops.core.config import get_settings
from cardops.core.errors import CardopsError, NotFound, ValidationFailed
from cardops.core.i18n import N_, gettext
from cardops.core.money import format_minor, parse_amount
from cardops.merchants.models import Merchant
from cardops.repairs import service
from cardops.repairs.models import (
    ACCESSORIES,
    FAULT_TYPES,
    REPAIR_STATE_LABELS,
    REPLACEMENT_KINDS,
    RETURN_TARGETS,
    SATISFACTION,
    SERVICE_TYPES,
    VISIT_MODES,
    VISIT_STATE_LABELS,
    WARRANTY_STATES,
    ChecklistItem,
    FieldVisit,
    RepairCase,
    RmaBatch,
)
from cardops.repairs.pdf import render_visit_pdf
from cardops.repairs.permissions import (
    CHECKLIST_MANAGE,
    REPAIRS_INSPECT,
    REPAIRS_INTAKE,
    REPAIRS_MANAGE,
    REPAIRS_RMA,
    REPAIRS_VIEW,
    VISITS_EDIT,
)
from cardops.terminals.models import Location, Supplier, Terminal
from cardops.web.deps import Console, ConsoleForm, ConsolePage, RecordId, form_error_context
from cardops.web.nav import NavItem

router = APIRouter()

SECTION = N_("After-sales")
NAV = [
    NavItem(N_("Repair cases"), "/repairs", REPAIRS_VIEW, section=SECTION, order=720),
    NavItem(N_("RMA batches"), "/rma-batches", REPAIRS_VIEW, section=SECTION, order=721),
    NavItem(N_("Field visits"), "/visits", REPAIRS_VIEW, section=SECTION, order=722),
    NavItem(
        N_("Visit checklist"), "/visits/checklist", CHECKLIST_MANAGE, section=SECTION, order=723
    ),
]
PAGE = 50
REPLACEMENT_ROWS = 3
EVENT_LABELS = service.EVENT_LABELS


def _str(console: Console, name: str, limit: int = 5000) -> str:
    raw = console.form.get(name)
    if isinstance(raw, list):
        raw = raw[0] if raw else ""
    return raw[:limit] if isinstance(raw, str) else ""


def _list(console: Console, name: str) -> list[str]:
    raw = console.form.get(name)
    if raw is None:
        return []
    items = raw if isinstance(raw, list) else [raw]
    return [str(i)[:40] for i in items if isinstance(i, str)][:50]


def _values(console: Console, names: tuple[str, ...]) -> dict[str, str]:
    return {name: _str(console, name) for name in names}


def _int_or_none(value: str, field: str) -> int | None:
    text = (value or "").strip()
    if not text:
        return None
    if not text.isdigit() or not 1 <= int(text) < 2**31:
        raise ValidationFailed("Choose a value from the list.", field=field)
    return int(text)


def _yes_no(value: str, field: str) -> bool | None:
    if value in ("yes", "no"):
        return value == "yes"
    if not value:
        return None
    raise ValidationFailed("Choose a value from the list.", field=field)


def _local_dt(value: str, field: str) -> datetime | None:
    """A ``datetime-local`` input (the operator's time zone) as an aware datetime."""
    text = (value or "").strip()
    if not text:
        return None
    try:
        naive = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValidationFailed("Enter a date and time like 2026-05-01 14:30.", field=field) from exc
    if naive.tzinfo is None:
        naive = naive.replace(tzinfo=ZoneInfo(get_settings().timezone))
    if not 2000 <= naive.year <= 2100:
        raise ValidationFailed("Enter a date and time like 2026-05-01 14:30.", field=field)
    return naive


def _labels() -> dict[str, Any]:
    def pick(labels: dict[str, str]) -> list[tuple[str, str]]:
        return [(k, gettext(v)) for k, v in labels.items()]

    def label(labels: dict[str, str]) -> Any:
        return lambda code: gettext(labels[code]) if code in labels else (code or "")

    return {
        "fault_types": pick(FAULT_TYPES),
        "accessory_choices": pick(ACCESSORIES),
        "return_targets": pick(RETURN_TARGETS),
        "case_states": pick(REPAIR_STATE_LABELS),
        "visit_states": pick(VISIT_STATE_LABELS),
        "service_types": pick(SERVICE_TYPES),
        "visit_modes": pick(VISIT_MODES),
        "warranty_states": pick(WARRANTY_STATES),
        "satisfaction_choices": pick(SATISFACTION),
        "replacement_kinds": pick(REPLACEMENT_KINDS),
        "fault_label": label(FAULT_TYPES),
        "accessory_label": label(ACCESSORIES),
        "case_state_label": label(REPAIR_STATE_LABELS),
        "visit_state_label": label(VISIT_STATE_LABELS),
        "event_label": label(EVENT_LABELS),
        "service_type_label": label(SERVICE_TYPES),
        "warranty_label": label(WARRANTY_STATES),
        "mode_label": label(VISIT_MODES),
        "satisfaction_label": label(SATISFACTION),
        "replacement_label": label(REPLACEMENT_KINDS),
        "return_label": label(RETURN_TARGETS),
        "yuan": lambda fen: format_minor(fen) if fen is not None else "—",
    }


def _ticket_info(console: Console, ticket_id: int | None) -> Any:
    if ticket_id is None:
        return None
    from cardops.servicedesk.models import Ticket

    return console.db.get(Ticket, ticket_id)


def _page(page: int) -> tuple[int, int]:
    page = max(1, min(page, 100_000))
    return page, (page - 1) * PAGE


# --- repair cases ---------------------------------------------------------------------------


@router.get("/repairs", response_class=HTMLResponse)
def case_list(console: ConsolePage, q: str = "", state: str = "", page: int = 1) -> HTMLResponse:
    require(console.user, REPAIRS_VIEW)
    page, offset = _page(page)
    state = state if state in REPAIR_STATE_LABELS else ""
    rows = service.list_cases(
        session=console.db,
        actor=console.user,
        q=q[:40],
        state=state or None,
        limit=PAGE + 1,
        offset=offset,
    )
    return console.render(
        "repairs/cases.html",
        rows=rows[:PAGE],
        has_more=len(rows) > PAGE,
        page=page,
        q=q[:40],
        state=state,
        **_labels(),
    )


INTAKE_FIELDS = (
    "serial",
    "fault_code",
    "fault_description",
    "brought_by_name",
    "brought_by_phone",
    "appearance",
    "accessories_note",
    "ticket",
    "provider_id",
)


def _providers(console: Console) -> list[tuple[str, str]]:
    rows = console.db.execute(
        select(Provider).where(Provider.is_active.is_(True)).order_by(Provider.code).limit(500)
    ).scalars()
    return [(str(p.id), f"{p.code} {p.name}") for p in rows]


def _intake_form(
    console: Console,
    values: dict[str, Any],
    accessories: list[str],
    status_code: int = 200,
    **extra: Any,
) -> HTMLResponse:
    return console.render(
        "repairs/intake.html",
        status_code=status_code,
        values=values,
        accessories=accessories,
        providers=_providers(console),
        **_labels(),
        **extra,
    )


@router.get("/repairs/new", response_class=HTMLResponse)
def intake_new(console: ConsolePage, ticket: str = "", serial: str = "") -> HTMLResponse:
    require(console.user, REPAIRS_INTAKE)
    values: dict[str, Any] = {"serial": serial[:40], "ticket": ticket[:24]}
    if ticket:
        try:
            found = service.find_ticket(console.db, ticket[:24])
        except CardopsError:
            found = None
        if found is not None:
            values["ticket"] = found.number
            values["serial"] = values["serial"] or (found.serial or "")
            values["brought_by_name"] = found.contact_name
            values["brought_by_phone"] = found.contact_phone
            values["fault_description"] = found.subject + (
                f"\n{found.description}" if found.description else ""
            )
    return _intake_form(console, values, [])


@router.post("/repairs/new", response_class=HTMLResponse)
def intake_create(console: ConsoleForm) -> Response:
    require(console.user, REPAIRS_INTAKE)
    values = _values(console, INTAKE_FIELDS)
    accessories = _list(console, "accessories")
    try:
        ticket = service.find_ticket(console.db, values["ticket"])
        case = service.intake(
            session=console.db,
            actor=console.user,
            serial=values["serial"],
            fault_code=values["fault_code"],
            fault_description=values["fault_description"],
            brought_by_name=values["brought_by_name"],
            brought_by_phone=values["brought_by_phone"],
            appearance=values["appearance"],
            accessories=accessories,
            accessories_note=values["accessories_note"],
            ticket_id=ticket.id if ticket is not None else None,
            provider_id=_int_or_none(values["provider_id"], "provider_id"),
        )
    except CardopsError as exc:
        console.db.rollback()
        return _intake_form(
            console, values, accessories, status_code=exc.status, **form_error_context(exc)
        )
    console.flash("Repair case {number} opened; hand the unit to a technician.", number=case.number)
    console.db.commit()
    return console.redirect(f"/repairs/{case.id}")


def _case_page(
    console: Console,
    case: RepairCase,
    *,
    status_code: int = 200,
    action: str = "",
    values: dict[str, str] | None = None,
    **extra: Any,
) -> HTMLResponse:
    db = console.db
    unit = db.get(Terminal, case.terminal_id)
    loaner = db.get(Terminal, case.loaner_terminal_id) if case.loaner_terminal_id else None
    replacement = (
        db.get(Terminal, case.replacement_terminal_id) if case.replacement_terminal_id else None
    )
    batch = db.get(RmaBatch, case.rma_batch_id) if case.rma_batch_id else None
    location = db.get(Location, unit.location_id) if unit is not None else None
    events = service.case_events(db, case)
    actors = {e.actor_id for e in events if e.actor_id}

    names = {
        u.id: u.display_name for u in db.execute(select(User).where(User.id.in_(actors))).scalars()
    }
    return console.render(
        "repairs/case.html",
        status_code=status_code,
        case=case,
        unit=unit,
        location=location,
        loaner=loaner,
        replacement=replacement,
        batch=batch,
        ticket=_ticket_info(console, case.ticket_id),
        provider=db.get(Provider, case.provider_id) if case.provider_id else None,
        merchant=db.get(Merchant, case.merchant_id) if case.merchant_id else None,
        events=events,
        actor_names=names,
        replacements=service.case_replacements(db, case),
        action=action,
        values=values or {},
        may_inspect=console.can(REPAIRS_INSPECT),
        may_manage=console.can(REPAIRS_MANAGE),
        **_labels(),
        **extra,
    )


@router.get("/repairs/{case_id:int}", response_class=HTMLResponse)
def case_detail(console: ConsolePage, case_id: RecordId) -> HTMLResponse:
    case = service.get_case(session=console.db, case_id=case_id, actor=console.user)
    return _case_page(console, case)


CASE_ACTION_FIELDS = (
    "findings",
    "fault_code",
    "under_warranty",
    "estimate",
    "route",
    "note",
    "repair_notes",
    "loaner_serial",
    "kind",
    "new_serial",
    "old_serial",
    "device_name",
    "return_to",
    "carrier",
    "tracking_number",
    "loaner_returned",
)
CASE_FLASH = {
    "inspect": N_("Inspection recorded."),
    "decide": N_("Decision recorded."),
    "finish": N_("Repair recorded; the unit is ready to return."),
    "loaner": N_("Loaner lent."),
    "loaner-back": N_("Loaner back in stock."),
    "replacement": N_("Replacement recorded."),
    "return": N_("Unit returned."),
    "close": N_("Repair case closed."),
    "remove-from-batch": N_("Taken off the RMA batch; repair it in-house."),
}


@router.post("/repairs/{case_id:int}/{action}", response_class=HTMLResponse)
def case_action(console: ConsoleForm, case_id: RecordId, action: str) -> Response:
    if action not in CASE_FLASH:
        raise NotFound("No such page.")
    needed = REPAIRS_INSPECT if action in ("inspect", "finish") else REPAIRS_MANAGE
    require(console.user, needed)
    case = service.get_case(session=console.db, case_id=case_id, actor=console.user)
    values = _values(console, CASE_ACTION_FIELDS)
    db, user = console.db, console.user
    try:
        if action == "inspect":
            estimate = (
                parse_amount(values["estimate"], field="estimate")
                if values["estimate"].strip()
                else None
            )
            service.inspect(
                session=db,
                actor=user,
                case_id=case.id,
                findings=values["findings"],
                fault_code=values["fault_code"],
                under_warranty=_yes_no(values["under_warranty"], "under_warranty"),
                estimate=estimate,
            )
        elif action == "decide":
            service.decide(
                session=db, actor=user, case_id=case.id, route=values["route"], note=values["note"]
            )
        elif action == "finish":
            service.finish_repair(
                session=db, actor=user, case_id=case.id, notes=values["repair_notes"]
            )
        elif action == "loaner":
            service.lend_loaner(
                session=db, actor=user, case_id=case.id, serial=values["loaner_serial"]
            )
        elif action == "loaner-back":
            service.loaner_back(session=db, actor=user, case_id=case.id)
        elif action == "replacement":
            service.record_replacement(
                session=db,
                actor=user,
                case_id=case.id,
                kind=values["kind"],
                new_serial=values["new_serial"],
                old_serial=values["old_serial"],
                device_name=values["device_name"],
            )
        elif action == "return":
            service.return_unit(
                session=db,
                actor=user,
                case_id=case.id,
                return_to=values["return_to"],
                carrier=values["carrier"],
                tracking_number=values["tracking_number"],
                loaner_returned=values["loaner_returned"] == "yes",
            )
        elif action == "close":
            service.close_case(session=db, actor=user, case_id=case.id, note=values["note"])
        else:
            service.remove_from_batch(session=db, actor=user, case_id=case.id)
    except CardopsError as exc:
        db.rollback()
        case = service.get_case(session=db, case_id=case_id, actor=user)
        return _case_page(
            console,
            case,
            status_code=exc.status,
            action=action,
            values=values,
            **form_error_context(exc),
        )
    console.flash(CASE_FLASH[action])
    db.commit()
    return console.redirect(f"/repairs/{case.id}")


# --- RMA batches ----------------------------------------------------------------------------


@router.get("/rma-batches", response_class=HTMLResponse)
def batch_list(console: ConsolePage, state: str = "") -> HTMLResponse:
    require(console.user, REPAIRS_VIEW)
    state = state if state in ("open", "sent", "received") else ""
    rows = service.list_batches(session=console.db, actor=console.user, state=state or None)
    suppliers = {s.id: s.name for s in console.db.execute(select(Supplier)).scalars()}
    counts = {b.id: len(service.batch_cases(console.db, b)) for b in rows}
    return console.render(
        "repairs/batches.html", rows=rows, suppliers=suppliers, counts=counts, state=state
    )


def _batch_page(
    console: Console, batch: RmaBatch, status_code: int = 200, **extra: Any
) -> HTMLResponse:
    return console.render(
        "repairs/batch.html",
        status_code=status_code,
        batch=batch,
        supplier=console.db.get(Supplier, batch.supplier_id),
        cases=service.batch_cases(console.db, batch),
        may_rma=console.can(REPAIRS_RMA),
        **_labels(),
        **extra,
    )


@router.get("/rma-batches/{batch_id:int}", response_class=HTMLResponse)
def batch_detail(console: ConsolePage, batch_id: RecordId) -> HTMLResponse:
    batch = service.get_batch(session=console.db, batch_id=batch_id, actor=console.user)
    return _batch_page(console, batch, values={})


@router.post("/rma-batches/{batch_id:int}/{action}", response_class=HTMLResponse)
def batch_action(console: ConsoleForm, batch_id: RecordId, action: str) -> Response:
    if action not in ("send", "receive"):
        raise NotFound("No such page.")
    require(console.user, REPAIRS_RMA)
    batch = service.get_batch(session=console.db, batch_id=batch_id, actor=console.user)
    values = _values(console, ("carrier", "tracking_number", "sent_at", "note", "serials"))
    try:
        if action == "send":
            service.send_batch(
                session=console.db,
                actor=console.user,
                batch_id=batch.id,
                carrier=values["carrier"],
                tracking_number=values["tracking_number"],
                sent_at=_local_dt(values["sent_at"], "sent_at"),
                note=values["note"],
            )
            console.flash("RMA batch {number} sent to the factory.", number=batch.number)
        else:
            service.receive_batch(
                session=console.db,
                actor=console.user,
                batch_id=batch.id,
                serials=values["serials"],
            )
            console.flash("Units received back from the factory.")
    except CardopsError as exc:
        console.db.rollback()
        batch = service.get_batch(session=console.db, batch_id=batch_id, actor=console.user)
        return _batch_page(
            console,
            batch,
            status_code=exc.status,
            values=values,
            action=action,
            **form_error_context(exc),
        )
    console.db.commit()
    return console.redirect(f"/rma-batches/{batch.id}")


# --- field visits ---------------------------------------------------------------------------


@router.get("/visits", response_class=HTMLResponse)
def visit_list(console: ConsolePage, q: str = "", state: str = "", page: int = 1) -> HTMLResponse:
    require(console.user, REPAIRS_VIEW)
    page, offset = _page(page)
    state = state if state in VISIT_STATE_LABELS else ""
    rows = service.list_visits(
        session=console.db,
        actor=console.user,
        q=q[:64],
        state=state or None,
        limit=PAGE + 1,
        offset=offset,
    )
    return console.render(
        "repairs/visits.html",
        rows=rows[:PAGE],
        has_more=len(rows) > PAGE,
        page=page,
        q=q[:64],
        state=state,
        **_labels(),
    )


VISIT_FIELDS = (
    "mode",
    "customer_name",
    "merchant_id",
    "address",
    "contact_name",
    "contact_phone",
    "service_type",
    "service_type_other",
    "warranty",
    "warranty_other",
    "serial",
    "scheduled_at",
    "technician_id",
    "ticket",
    "registration_number",
    "problem",
)


def _merchants(console: Console) -> list[tuple[str, str]]:
    stmt = select(Merchant).where(Merchant.state == "approved")
    visible = visible_provider_ids(console.db, console.user)
    if visible is not None:
        stmt = stmt.where(Merchant.provider_id.in_(visible))
    rows = console.db.execute(stmt.order_by(Merchant.name).limit(500)).scalars()
    return [(str(m.id), f"{m.name} {m.mid or ''}".strip()) for m in rows]


def _technicians(console: Console) -> list[tuple[str, str]]:
    return [(str(u.id), u.display_name) for u in service.technicians(console.db)]


def _visit_form(
    console: Console, values: dict[str, Any], status_code: int = 200, **extra: Any
) -> HTMLResponse:
    return console.render(
        "repairs/visit_form.html",
        status_code=status_code,
        values=values,
        merchants=_merchants(console),
        technicians=_technicians(console),
        **_labels(),
        **extra,
    )


@router.get("/visits/new", response_class=HTMLResponse)
def visit_new(console: ConsolePage, ticket: str = "") -> HTMLResponse:
    require(console.user, VISITS_EDIT)
    values: dict[str, Any] = {"mode": "scheduled", "service_type": "repair", "warranty": "in"}
    if ticket:
        try:
            found = service.find_ticket(console.db, ticket[:24])
        except CardopsError:
            found = None
        if found is not None:
            values.update(
                ticket=found.number,
                mode="on_call",
                contact_name=found.contact_name,
                contact_phone=found.contact_phone,
                serial=found.serial or "",
                problem=found.subject,
                merchant_id=str(found.merchant_id or ""),
            )
    return _visit_form(console, values)


@router.post("/visits/new", response_class=HTMLResponse)
def visit_create(console: ConsoleForm) -> Response:
    require(console.user, VISITS_EDIT)
    values = _values(console, VISIT_FIELDS)
    try:
        ticket = service.find_ticket(console.db, values["ticket"])
        visit = service.schedule_visit(
            session=console.db,
            actor=console.user,
            mode=values["mode"],
            customer_name=values["customer_name"],
            merchant_id=_int_or_none(values["merchant_id"], "merchant_id"),
            address=values["address"],
            contact_name=values["contact_name"],
            contact_phone=values["contact_phone"],
            service_type=values["service_type"],
            service_type_other=values["service_type_other"],
            warranty=values["warranty"],
            warranty_other=values["warranty_other"],
            serial=values["serial"],
            scheduled_at=_local_dt(values["scheduled_at"], "scheduled_at"),
            technician_id=_int_or_none(values["technician_id"], "technician_id"),
            ticket_id=ticket.id if ticket is not None else None,
            registration_number=values["registration_number"],
            problem=values["problem"],
        )
    except CardopsError as exc:
        console.db.rollback()
        return _visit_form(console, values, status_code=exc.status, **form_error_context(exc))
    console.flash("Visit {number} booked.", number=visit.number)
    console.db.commit()
    return console.redirect(f"/visits/{visit.id}")


def _visit_page(
    console: Console,
    visit: FieldVisit,
    *,
    status_code: int = 200,
    values: dict[str, Any] | None = None,
    action: str = "",
    **extra: Any,
) -> HTMLResponse:
    db = console.db
    items = service.checklist_items(db)
    return console.render(
        "repairs/visit.html",
        status_code=status_code,
        visit=visit,
        ticket=_ticket_info(console, visit.ticket_id),
        merchant=db.get(Merchant, visit.merchant_id) if visit.merchant_id else None,
        technician=db.get(User, visit.technician_id) if visit.technician_id else None,
        checks=service.visit_checks(db, visit),
        items=[(i.code, service.item_label(i, console.locale)) for i in items],
        replacements=service.visit_replacements(db, visit),
        events=service.visit_events(db, visit),
        rows=range(REPLACEMENT_ROWS),
        values=values or {},
        action=action,
        may_edit=console.can(VISITS_EDIT),
        **_labels(),
        **extra,
    )


@router.get("/visits/{visit_id:int}", response_class=HTMLResponse)
def visit_detail(console: ConsolePage, visit_id: RecordId) -> HTMLResponse:
    visit = service.get_visit(session=console.db, visit_id=visit_id, actor=console.user)
    return _visit_page(console, visit)


def _replacement_rows(console: Console) -> list[service.ReplacementIn]:
    rows = []
    for i in range(REPLACEMENT_ROWS):
        kind = _str(console, f"replacements.{i}.kind", 16)
        device = _str(console, f"replacements.{i}.device_name", 200)
        old = _str(console, f"replacements.{i}.old_serial", 60)
        new = _str(console, f"replacements.{i}.new_serial", 60)
        qty = _str(console, f"replacements.{i}.quantity", 6).strip() or "1"
        if not (kind or device.strip() or old.strip() or new.strip()):
            continue
        if not qty.isdigit():
            raise ValidationFailed(
                "Enter a quantity from 1 to 999.", field=f"replacements.{i}.quantity"
            )
        rows.append(service.ReplacementIn(kind, device, int(qty), old, new))
    return rows


@router.post("/visits/{visit_id:int}/{action}", response_class=HTMLResponse)
def visit_action(console: ConsoleForm, visit_id: RecordId, action: str) -> Response:
    if action not in ("arrive", "complete", "sign", "cancel"):
        raise NotFound("No such page.")
    require(console.user, VISITS_EDIT)
    visit = service.get_visit(session=console.db, visit_id=visit_id, actor=console.user)
    db, user = console.db, console.user
    values: dict[str, Any] = {k: v for k, v in console.form.items() if isinstance(v, str)}
    values.pop("signature", None)
    try:
        if action == "arrive":
            service.arrive(
                session=db,
                actor=user,
                visit_id=visit.id,
                at=_local_dt(_str(console, "arrived_at"), "arrived_at"),
            )
            console.flash("Arrival recorded.")
        elif action == "complete":
            checks = [
                service.CheckIn(
                    code,
                    _str(console, f"check.{code}") == "on",
                    _str(console, f"check_note.{code}", 255),
                )
                for code in (i.code for i in service.checklist_items(db))
            ]
            service.complete_visit(
                session=db,
                actor=user,
                visit_id=visit.id,
                work_notes=_str(console, "work_notes"),
                problem=_str(console, "problem"),
                departed_at=_local_dt(_str(console, "departed_at"), "departed_at"),
                checks=checks,
                replacements=_replacement_rows(console),
                device_ok=_yes_no(_str(console, "device_ok"), "device_ok"),
                other_issues=_str(console, "other_issues"),
            )
            console.flash("Work recorded; ask the customer to sign.")
        elif action == "sign":
            service.sign_off(
                session=db,
                actor=user,
                visit_id=visit.id,
                signed_name=_str(console, "signed_name"),
                signature_png=service.decode_signature(_str(console, "signature", 500_000)),
                satisfaction=_str(console, "satisfaction"),
                satisfaction_note=_str(console, "satisfaction_note"),
            )
            console.flash("Signed off. Print the record for the customer.")
        else:
            service.cancel_visit(
                session=db, actor=user, visit_id=visit.id, reason=_str(console, "reason")
            )
            console.flash("Visit cancelled.")
    except CardopsError as exc:
        db.rollback()
        visit = service.get_visit(session=db, visit_id=visit_id, actor=user)
        return _visit_page(
            console,
            visit,
            status_code=exc.status,
            values=values,
            action=action,
            **form_error_context(exc),
        )
    db.commit()
    return console.redirect(f"/visits/{visit.id}")


@router.get("/visits/{visit_id:int}/pdf")
def visit_pdf(console: ConsolePage, visit_id: RecordId) -> Response:
    visit = service.get_visit(session=console.db, visit_id=visit_id, actor=console.user)
    return Response(
        render_visit_pdf(console.db, visit),
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{visit.number}.pdf"'},
    )


@router.get("/visits/{visit_id:int}/signature.png")
def visit_signature(console: ConsolePage, visit_id: RecordId) -> Response:
    visit = service.get_visit(session=console.db, visit_id=visit_id, actor=console.user)
    data = service.signature_bytes(console.db, visit)
    if data is None:
        raise NotFound("This visit has no signature yet.")
    return Response(data, media_type="image/png", headers={"Cache-Control": "private"})


# --- checklist configuration ----------------------------------------------------------------


def _checklist_page(console: Console, status_code: int = 200, **extra: Any) -> HTMLResponse:
    return console.render(
        "repairs/checklist.html",
        status_code=status_code,
        items=service.checklist_items(console.db, active_only=False),
        **extra,
    )


@router.get("/visits/checklist", response_class=HTMLResponse)
def checklist(console: ConsolePage) -> HTMLResponse:
    require(console.user, CHECKLIST_MANAGE)
    return _checklist_page(console, values={})


@router.post("/visits/checklist", response_class=HTMLResponse)
def checklist_add(console: ConsoleForm) -> Response:
    require(console.user, CHECKLIST_MANAGE)
    values = _values(console, ("code", "label_en", "label_zh"))
    try:
        service.add_checklist_item(session=console.db, actor=console.user, **values)
    except CardopsError as exc:
        console.db.rollback()
        return _checklist_page(
            console, status_code=exc.status, values=values, **form_error_context(exc)
        )
    console.flash("Checklist item added.")
    console.db.commit()
    return console.redirect("/visits/checklist")


@router.post("/visits/checklist/{item_id:int}/toggle", response_class=HTMLResponse)
def checklist_toggle(console: ConsoleForm, item_id: RecordId) -> Response:
    require(console.user, CHECKLIST_MANAGE)
    item = console.db.get(ChecklistItem, item_id)
    if item is None:
        raise NotFound("No checklist item with number {id}.", id=item_id)
    service.set_checklist_item_active(
        session=console.db, actor=console.user, item_id=item.id, active=not item.is_active
    )
    console.flash("Saved.")
    console.db.commit()
    return console.redirect("/visits/checklist")
