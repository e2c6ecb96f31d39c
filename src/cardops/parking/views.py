"""Console pages of parking permits: list, issue with the document checklist, permit page
with periods and receipts, top-up and end."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import UploadFile

from cardops.auth.service import require
from cardops.cards.models import Card
from cardops.core.config import get_settings
from cardops.core.errors import CardopsError, NotFound, ValidationFailed
from cardops.core.i18n import N_, gettext
from cardops.core.money import format_minor, parse_amount
from cardops.ledger.models import PaymentMethod
from cardops.parking import service
from cardops.parking.models import ParkingPermit
from cardops.parking.permissions import PARKING_MANAGE, PARKING_VIEW
from cardops.parties.models import Person
from cardops.parties.views import documents_context
from cardops.web.deps import Console, ConsoleForm, ConsolePage, RecordId, form_error_context
from cardops.web.nav import NavItem

router = APIRouter()

SECTION = N_("One-card")
NAV = [NavItem(N_("Parking"), "/parking", PARKING_VIEW, section=SECTION, order=330)]
PAGE = 50
ISSUE_FIELDS = (
    "card_number",
    "person_id",
    "plate",
    "space",
    "kind",
    "months",
    "monthly_fee",
    "payment_method",
    "note",
)
METHOD_LABELS = {
    PaymentMethod.CASH.value: N_("Cash"),
    PaymentMethod.CARD.value: N_("Bank card"),
    PaymentMethod.TRANSFER.value: N_("Bank transfer"),
    PaymentMethod.WECHAT.value: N_("WeChat Pay"),
    PaymentMethod.ALIPAY.value: N_("Alipay"),
}


def _text(console: Console, name: str, max_length: int = 255) -> str:
    raw = console.form.get(name)
    if isinstance(raw, list):
        raw = raw[0] if raw else ""
    return raw[: max_length * 4] if isinstance(raw, str) else ""


def _int(value: str, *, fld: str, message: str, **params: Any) -> int:
    text = value.strip()
    if not text.isdigit() or len(text) > 6:
        raise ValidationFailed(message, field=fld, **params)
    return int(text)


def _fee(value: str) -> int:
    amount = parse_amount(value, field="monthly_fee")
    if amount < 0:
        raise ValidationFailed(
            "Enter the monthly fee in yuan: zero or more, e.g. 300.00.", field="monthly_fee"
        )
    return amount


def _choices(labels: dict[str, str]) -> list[tuple[str, str]]:
    return [(key, gettext(label)) for key, label in labels.items()]


def _common() -> dict[str, Any]:
    return {
        "kinds": _choices(service.KIND_LABELS),
        "methods": _choices(METHOD_LABELS),
        "state_labels": service.STATE_LABELS,
        "kind_labels": service.KIND_LABELS,
    }


@router.get("/parking", response_class=HTMLResponse)
def permit_list(
    console: ConsolePage, q: str = "", state: str = "", expiring: int = 0, page: int = 1
) -> HTMLResponse:
    require(console.user, PARKING_VIEW)
    page = max(1, min(page, 100_000))
    state = state if state in service.STATE_LABELS else ""
    rows = service.list_permits(
        session=console.db,
        actor=console.user,
        state=state or None,
        q=q[:64],
        expiring_within=service.EXPIRING_DAYS if expiring else None,
        limit=PAGE + 1,
        offset=(page - 1) * PAGE,
    )
    cards = _cards(console, rows[:PAGE])
    today = service.today()
    return console.render(
        "parking/list.html",
        rows=rows[:PAGE],
        cards=cards,
        expiring={p.id for p in rows if service.is_expiring(p, on=today)},
        has_more=len(rows) > PAGE,
        page=page,
        q=q[:64],
        state=state,
        expiring_only=bool(expiring),
        **_common(),
    )


def _cards(console: Console, rows: list[ParkingPermit]) -> dict[int, str]:
    ids = {p.card_id for p in rows}
    if not ids:
        return {}
    from sqlalchemy import select

    return {
        cid: number
        for cid, number in console.db.execute(
            select(Card.id, Card.number).where(Card.id.in_(ids))
        ).tuples()
    }


def _issue_page(
    console: Console, values: dict[str, str], status_code: int = 200, **extra: Any
) -> HTMLResponse:
    """The issue form; with a card number it shows the holder and the document checklist."""
    card = service.find_card(console.db, values.get("card_number", ""))
    person = None
    person_id = values.get("person_id", "").strip()
    if person_id.isdigit() and 0 < int(person_id) < 2**31:
        person = console.db.get(Person, int(person_id))
    elif card is not None and card.person_id:
        person = console.db.get(Person, card.person_id)
    items = service.checklist(console.db, card=card, person_id=person.id if person else None)
    return console.render(
        "parking/new.html",
        status_code=status_code,
        values=values,
        card=card,
        person=person,
        checklist=items,
        doc_max_size=get_settings().documents_max_bytes // (1024 * 1024),
        **_common(),
        **extra,
    )


@router.get("/parking/new", response_class=HTMLResponse)
def permit_new(console: ConsolePage, card: str = "", person: str = "") -> HTMLResponse:
    require(console.user, PARKING_MANAGE)
    values = {
        "card_number": card.strip()[:32],
        "person_id": person.strip()[:12],
        "kind": "monthly",
        "months": "1",
        "payment_method": "cash",
    }
    return _issue_page(console, values)


def _uploads(console: Console) -> dict[str, service.Upload]:
    limit = get_settings().documents_max_bytes
    out: dict[str, service.Upload] = {}
    for code in service.REQUIREMENTS:
        upload = console.form.get(f"doc_{code}")
        if isinstance(upload, UploadFile) and (upload.filename or "").strip():
            data = upload.file.read(limit + 1)
            if len(data) > limit:
                raise ValidationFailed(
                    "The file is too large: at most {limit} MB is accepted.",
                    field=f"doc_{code}",
                    limit=limit // (1024 * 1024),
                )
            out[code] = service.Upload(upload.filename or code, data, upload.content_type)
    return out


@router.post("/parking/new", response_class=HTMLResponse)
def permit_create(console: ConsoleForm) -> Response:
    require(console.user, PARKING_MANAGE)
    values = {name: _text(console, name) for name in ISSUE_FIELDS}
    if console.form.get("check"):
        # "Check documents": show the holder and what is on file, save nothing.
        return _issue_page(console, values)
    try:
        person_text = values["person_id"].strip()
        permit = service.issue_permit(
            session=console.db,
            actor=console.user,
            card_number=values["card_number"],
            person_id=_int(
                person_text,
                fld="person_id",
                message=N_("Enter the person's number, or leave it empty for the card's holder."),
            )
            if person_text
            else None,
            plate=values["plate"],
            space=values["space"],
            kind=values["kind"] or "monthly",
            months=_int(
                values["months"] or "1",
                fld="months",
                message=N_("Enter the number of months: a whole number from {low} to {high}."),
                low=1,
                high=service.MAX_MONTHS,
            ),
            monthly_fee=_fee(values["monthly_fee"]),
            payment_method=values["payment_method"] or None,
            documents=_uploads(console),
            note=values["note"],
        )
    except CardopsError as exc:
        console.db.rollback()
        return _issue_page(console, values, status_code=exc.status, **_errors(exc))
    console.flash(
        "Parking permit {number} issued for {plate}, valid to {until}.",
        number=permit.number,
        plate=permit.plate,
        until=permit.valid_until.isoformat(),
    )
    console.db.commit()
    return console.redirect(f"/parking/{permit.number}")


def _errors(exc: CardopsError) -> dict[str, Any]:
    return form_error_context(exc)


def _permit_page(
    console: Console, number: str, status_code: int = 200, **extra: Any
) -> HTMLResponse:
    permit = service.get_permit(session=console.db, actor=console.user, number=number)
    card = console.db.get(Card, permit.card_id)
    person = console.db.get(Person, permit.person_id)
    items = service.checklist(console.db, card=card, person_id=permit.person_id, permit=permit)
    extra.setdefault("topup_values", {"months": "1", "payment_method": "cash"})
    extra.setdefault("end_values", {})
    return console.render(
        "parking/detail.html",
        status_code=status_code,
        permit=permit,
        card=card,
        person=person,
        checklist=items,
        current=service.is_current(permit),
        expiring=service.is_expiring(permit),
        fee_yuan=format_minor(permit.monthly_fee).replace(",", ""),
        **_common(),
        **documents_context(
            console, service.OWNER_TYPE, permit.id, return_to=f"/parking/{permit.number}"
        ),
        **extra,
    )


@router.get("/parking/by-id/{permit_id}", response_class=HTMLResponse)
def permit_by_id(console: ConsolePage, permit_id: RecordId) -> Response:
    require(console.user, PARKING_VIEW)
    permit = console.db.get(ParkingPermit, permit_id)
    if permit is None:
        raise NotFound("There is no parking permit {number}.", number=str(permit_id))
    return console.redirect(f"/parking/{permit.number}")


@router.get("/parking/{number}", response_class=HTMLResponse)
def permit_detail(console: ConsolePage, number: str) -> HTMLResponse:
    require(console.user, PARKING_VIEW)
    return _permit_page(console, number[:32])


@router.post("/parking/{number}/top-up", response_class=HTMLResponse)
def permit_top_up(console: ConsoleForm, number: str) -> Response:
    require(console.user, PARKING_MANAGE)
    number = number[:32]
    values = {name: _text(console, name) for name in ("months", "monthly_fee", "payment_method")}
    try:
        fee_text = values["monthly_fee"].strip()
        row = service.top_up(
            session=console.db,
            actor=console.user,
            number=number,
            months=_int(
                values["months"],
                fld="months",
                message=N_("Enter the number of months: a whole number from {low} to {high}."),
                low=1,
                high=service.MAX_MONTHS,
            ),
            monthly_fee=_fee(fee_text) if fee_text else None,
            payment_method=values["payment_method"] or None,
        )
    except CardopsError as exc:
        console.db.rollback()
        return _permit_page(
            console, number, status_code=exc.status, topup_values=values, **_errors(exc)
        )
    console.flash("Topped up: the permit now runs to {until}.", until=row.period_until.isoformat())
    console.db.commit()
    return console.redirect(f"/parking/{number}")


@router.post("/parking/{number}/end", response_class=HTMLResponse)
def permit_end(console: ConsoleForm, number: str) -> Response:
    require(console.user, PARKING_MANAGE)
    number = number[:32]
    values = {name: _text(console, name) for name in ("reason", "confirmation")}
    confirmed = _text(console, "owner_confirmed") in ("1", "on", "yes", "true")
    try:
        service.end_permit(
            session=console.db,
            actor=console.user,
            number=number,
            reason=values["reason"],
            owner_confirmed=confirmed,
            confirmation=values["confirmation"],
        )
    except CardopsError as exc:
        console.db.rollback()
        return _permit_page(
            console,
            number,
            status_code=exc.status,
            end_values={**values, "owner_confirmed": "1" if confirmed else ""},
            **_errors(exc),
        )
    console.flash("The parking authorization has ended.")
    console.db.commit()
    return console.redirect(f"/parking/{number}")
