"""Console pages of the warranty domain: ranges, issuing, registration, lookup (also a public
page without sign-in), flagged sales, installer points, returns and exchanges, settings."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from starlette.datastructures import UploadFile

from cardops.auth.service import require
from cardops.channel.regions import PROVINCES
from cardops.core.clock import as_utc
from cardops.core.errors import CardopsError, NotFound, ValidationFailed
from cardops.core.i18n import N_, gettext
from cardops.core.money import format_minor, parse_amount
from cardops.ledger.models import Receipt
from cardops.parties.models import Person
from cardops.terminals.models import TerminalModel
from cardops.warranty import service
from cardops.warranty.models import (
    CARD_STATE_LABELS,
    COMPENSATION_LABELS,
    EVENT_LABELS,
    PAYER_LABELS,
    REASON_LABELS,
    RETURN_KIND_LABELS,
    RETURN_STATE_LABELS,
    WarrantyReturn,
)
from cardops.warranty.permissions import (
    WARRANTY_ISSUE,
    WARRANTY_MANAGE,
    WARRANTY_REGISTER,
    WARRANTY_RETURNS,
    WARRANTY_SETTLE,
    WARRANTY_VIEW,
)
from cardops.web.deps import DB, Console, ConsoleForm, ConsolePage, RecordId, form_error_context
from cardops.web.nav import NavItem
from cardops.web.templating import render

router = APIRouter()
SECTION = N_("Service cards & returns")
NAV = [
    NavItem(N_("Card ranges"), "/warranty/ranges", WARRANTY_VIEW, section=SECTION, order=540),
    NavItem(N_("Issue numbers"), "/warranty/issue", WARRANTY_ISSUE, section=SECTION, order=541),
    NavItem(
        N_("Register a card"), "/warranty/cards/new", WARRANTY_REGISTER, section=SECTION, order=542
    ),
    NavItem(N_("Registered cards"), "/warranty/cards", WARRANTY_VIEW, section=SECTION, order=543),
    NavItem(N_("Card lookup"), "/warranty/lookup", WARRANTY_VIEW, section=SECTION, order=544),
    NavItem(N_("Flagged sales"), "/warranty/flagged", WARRANTY_VIEW, section=SECTION, order=545),
    NavItem(N_("Installer points"), "/warranty/points", WARRANTY_VIEW, section=SECTION, order=546),
    NavItem(
        N_("Returns & exchanges"), "/warranty/returns", WARRANTY_VIEW, section=SECTION, order=547
    ),
    NavItem(
        N_("Warranty settings"), "/warranty/settings", WARRANTY_VIEW, section=SECTION, order=548
    ),
]
METHODS = [
    ("cash", N_("Cash")),
    ("transfer", N_("Bank transfer")),
    ("wechat", N_("WeChat Pay")),
    ("alipay", N_("Alipay")),
    ("card", N_("Bank card")),
]
FLAG_FILTERS = {
    "any": N_("All flagged"),
    "cross_region": N_("Cross-region (窜货)"),
    "below_floor": N_("Below the floor price"),
}


def _text(form: dict[str, Any], name: str) -> str:
    value = form.get(name)
    if isinstance(value, list):
        value = value[0] if value else ""
    if value is None or hasattr(value, "read"):
        return ""
    return str(value)[:4000]


def _int(value: str, *, field: str, required: bool = False) -> int | None:
    value = value.strip()
    if not value:
        if required:
            raise ValidationFailed("This field is required.", field=field)
        return None
    if not value.lstrip("-").isdigit() or len(value) > 13:
        raise ValidationFailed("Enter a whole number.", field=field)
    return int(value)


def _yuan(value: str, *, field: str, required: bool = False) -> int | None:
    value = value.strip()
    if not value:
        if required:
            raise ValidationFailed("This field is required.", field=field)
        return None
    return parse_amount(value, field=field)


def _date(value: str, *, field: str) -> date | None:
    value = value.strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ValidationFailed("Enter a date as YYYY-MM-DD.", field=field) from exc


def _model_choices(console: Console) -> list[tuple[str, str]]:
    models = console.db.execute(
        select(TerminalModel).where(TerminalModel.is_active.is_(True)).order_by(TerminalModel.code)
    ).scalars()
    return [(str(m.id), f"{m.code} · {m.name}") for m in models]


def _person_choices(console: Console) -> list[tuple[str, str]]:
    persons = console.db.execute(select(Person).order_by(Person.name).limit(500)).scalars()
    return [(str(p.id), f"{p.name} ({p.mobile or p.id})") for p in persons]


def _common() -> dict[str, Any]:
    return {
        "card_states": CARD_STATE_LABELS,
        "event_labels": EVENT_LABELS,
        "return_states": RETURN_STATE_LABELS,
        "kinds": RETURN_KIND_LABELS,
        "reasons": REASON_LABELS,
        "payers": PAYER_LABELS,
        "compensation_labels": COMPENSATION_LABELS,
        "first_number": service.first_number,
        "last_number": service.last_number,
        "yuan": format_minor,
    }


# --- ranges ---------------------------------------------------------------------------------


def _ranges_page(console: Console, status_code: int = 200, **ctx: Any) -> HTMLResponse:
    rows = service.list_ranges(session=console.db, actor=console.user)
    ctx.setdefault("values", {"width": "8", "start": "1", "count": "1000"})
    return console.render(
        "warranty/ranges.html", status_code=status_code, rows=rows, **_common(), **ctx
    )


@router.get("/warranty/ranges", response_class=HTMLResponse)
def ranges_page(console: ConsolePage) -> HTMLResponse:
    require(console.user, WARRANTY_VIEW)
    return _ranges_page(console)


@router.post("/warranty/ranges", response_class=HTMLResponse)
def range_create(console: ConsoleForm) -> Response:
    require(console.user, WARRANTY_MANAGE)
    values = {k: _text(console.form, k) for k in ("prefix", "width", "start", "count", "note")}
    try:
        row = service.generate_range(
            session=console.db,
            actor=console.user,
            prefix=values["prefix"],
            width=_int(values["width"], field="width", required=True) or 0,
            start=_int(values["start"], field="start", required=True) or 0,
            count=_int(values["count"], field="count", required=True) or 0,
            note=values["note"],
        )
    except CardopsError as exc:
        console.db.rollback()
        return _ranges_page(
            console, status_code=exc.status, values=values, **form_error_context(exc)
        )
    console.flash(
        "Range {first} – {last} generated.",
        first=service.first_number(row),
        last=service.last_number(row),
    )
    console.db.commit()
    return console.redirect(f"/warranty/ranges/{row.id}")


@router.get("/warranty/ranges/{range_id}", response_class=HTMLResponse)
def range_page(console: ConsolePage, range_id: RecordId) -> HTMLResponse:
    require(console.user, WARRANTY_VIEW)
    row = service.get_range(console.db, range_id)
    return console.render(
        "warranty/range.html",
        row=service.range_row(console.db, row),
        allocations=service.range_allocations(console.db, row.id),
        **_common(),
    )


# --- issuing --------------------------------------------------------------------------------


def _issue_page(console: Console, status_code: int = 200, **ctx: Any) -> HTMLResponse:
    targets = service.issue_targets(console.db, console.user)
    levels = {"city": gettext("Branch"), "county": gettext("Dealer")}
    choices = [
        (str(p.id), f"{p.code} · {p.name} · {levels.get(p.level, p.level)}") for p in targets
    ]
    ctx.setdefault("values", {})
    return console.render(
        "warranty/issue.html",
        status_code=status_code,
        targets=choices,
        allocations=service.list_allocations(session=console.db, actor=console.user, limit=100),
        **_common(),
        **ctx,
    )


@router.get("/warranty/issue", response_class=HTMLResponse)
def issue_page(console: ConsolePage) -> HTMLResponse:
    require(console.user, WARRANTY_ISSUE)
    return _issue_page(console)


@router.post("/warranty/issue", response_class=HTMLResponse)
def issue_submit(console: ConsoleForm) -> Response:
    require(console.user, WARRANTY_ISSUE)
    values = {k: _text(console.form, k) for k in ("first", "last", "provider_id", "note")}
    try:
        row = service.issue(
            session=console.db,
            actor=console.user,
            first=values["first"],
            last=values["last"],
            provider_id=_int(values["provider_id"], field="provider_id", required=True) or 0,
            note=values["note"],
        )
    except CardopsError as exc:
        console.db.rollback()
        return _issue_page(
            console, status_code=exc.status, values=values, **form_error_context(exc)
        )
    console.flash(
        "{count} numbers issued to {provider}.", count=row.size, provider=row.provider.name
    )
    console.db.commit()
    return console.redirect("/warranty/issue")


# --- registration ---------------------------------------------------------------------------

SALE_FIELDS = (
    "number",
    "model_id",
    "serial",
    "buyer_name",
    "buyer_phone",
    "province",
    "city",
    "address",
    "price",
    "installer_id",
    "sale_date",
)


def _register_page(console: Console, status_code: int = 200, **ctx: Any) -> HTMLResponse:
    ctx.setdefault("values", {"sale_date": service.today().isoformat()})
    return console.render(
        "warranty/register.html",
        status_code=status_code,
        models=_model_choices(console),
        persons=_person_choices(console),
        provinces=[(p, p) for p in PROVINCES],
        **ctx,
    )


@router.get("/warranty/cards/new", response_class=HTMLResponse)
def register_page(console: ConsolePage, number: str = "") -> HTMLResponse:
    require(console.user, WARRANTY_REGISTER)
    return _register_page(
        console,
        values={"number": number[:40], "sale_date": service.today().isoformat()},
    )


@router.post("/warranty/cards/new", response_class=HTMLResponse)
def register_submit(console: ConsoleForm) -> Response:
    require(console.user, WARRANTY_REGISTER)
    values = {k: _text(console.form, k) for k in SALE_FIELDS}
    try:
        sale = service.Sale(
            number=values["number"],
            model_id=_int(values["model_id"], field="model_id", required=True) or 0,
            serial=values["serial"],
            buyer_name=values["buyer_name"],
            buyer_phone=values["buyer_phone"],
            province=values["province"],
            city=values["city"],
            address=values["address"],
            price=_yuan(values["price"], field="price", required=True) or 0,
            installer_id=_int(values["installer_id"], field="installer_id"),
            sale_date=_date(values["sale_date"], field="sale_date"),
        )
        card = service.register(session=console.db, actor=console.user, sale=sale)
    except CardopsError as exc:
        console.db.rollback()
        return _register_page(
            console, status_code=exc.status, values=values, **form_error_context(exc)
        )
    if card.flagged:
        console.flash("Card {number} registered and flagged for review.", number=card.number)
    else:
        console.flash("Card {number} registered.", number=card.number)
    console.db.commit()
    return console.redirect(f"/warranty/cards/{card.number}")


@router.get("/warranty/cards", response_class=HTMLResponse)
def cards_page(console: ConsolePage, q: str = "", flagged: str = "") -> HTMLResponse:
    require(console.user, WARRANTY_VIEW)
    flag = flagged if flagged in FLAG_FILTERS else None
    cards = service.list_cards(session=console.db, actor=console.user, flagged=flag, q=q[:64])
    return console.render(
        "warranty/cards.html",
        cards=cards,
        q=q[:64],
        flagged=flag or "",
        flag_filters=FLAG_FILTERS,
        title=N_("Registered cards"),
        **_common(),
    )


@router.get("/warranty/flagged", response_class=HTMLResponse)
def flagged_page(console: ConsolePage, flagged: str = "any") -> HTMLResponse:
    require(console.user, WARRANTY_VIEW)
    flag = flagged if flagged in FLAG_FILTERS else "any"
    cards = service.list_cards(session=console.db, actor=console.user, flagged=flag)
    return console.render(
        "warranty/cards.html",
        cards=cards,
        q="",
        flagged=flag,
        flag_filters=FLAG_FILTERS,
        title=N_("Flagged sales"),
        **_common(),
    )


@router.get("/warranty/cards/{number}", response_class=HTMLResponse)
def card_page(console: ConsolePage, number: str) -> HTMLResponse:
    require(console.user, WARRANTY_VIEW)
    card = service.get_card(console.db, number[:40], actor=console.user)
    returns = [
        r
        for r in service.list_returns(session=console.db, actor=console.user)
        if r.card_id == card.id
    ]
    return console.render(
        "warranty/card.html",
        card=card,
        found=service.lookup(console.db, card.number),
        returns=returns,
        **_common(),
    )


@router.post("/warranty/cards/{number}/void", response_class=HTMLResponse)
def card_void(console: ConsoleForm, number: str) -> Response:
    require(console.user, WARRANTY_REGISTER)
    card = service.get_card(console.db, number[:40], actor=console.user)
    try:
        service.void_card(
            session=console.db,
            actor=console.user,
            number=card.number,
            reason=_text(console.form, "reason"),
        )
    except CardopsError as exc:
        console.db.rollback()
        card = service.get_card(console.db, number[:40])
        return console.render(
            "warranty/card.html",
            status_code=exc.status,
            card=card,
            found=service.lookup(console.db, card.number),
            returns=[],
            **_common(),
            **form_error_context(exc),
        )
    console.flash("Card {number} voided.", number=card.number)
    console.db.commit()
    return console.redirect(f"/warranty/cards/{card.number}")


# --- lookup ---------------------------------------------------------------------------------


@router.get("/warranty/lookup", response_class=HTMLResponse)
def lookup_page(console: ConsolePage, number: str = "") -> HTMLResponse:
    require(console.user, WARRANTY_VIEW)
    found = service.lookup(console.db, number) if number.strip() else None
    return console.render(
        "warranty/lookup.html", found=found, number=number[:40], public=False, **_common()
    )


@router.get("/service-card", response_class=HTMLResponse)
def public_lookup(request: Request, db: DB, number: str = "") -> HTMLResponse:
    """For customers: is my service card genuine, and how long is it still valid? No sign-in."""
    found, error, status = None, None, 200
    if number.strip():
        try:
            service.check_public_lookup(request.client.host if request.client else None)
            found = service.lookup(db, number)
        except CardopsError as exc:
            error, status = exc.localized(), exc.status
    html = render(
        "warranty/lookup.html",
        request=request,
        user=None,
        found=found,
        error=error,
        number=number[:40],
        public=True,
        **_common(),
    )
    return HTMLResponse(html, status_code=status)


# --- installer points -----------------------------------------------------------------------


def _period(console: Console, since: str, until: str) -> tuple[date | None, date | None]:
    return _date(since, field="since"), _date(until, field="until")


@router.get("/warranty/points", response_class=HTMLResponse)
def points_page(console: ConsolePage, since: str = "", until: str = "") -> HTMLResponse:
    require(console.user, WARRANTY_VIEW)
    try:
        start, end = _period(console, since[:10], until[:10])
        period_start, period_end, rows = service.points_summary(
            session=console.db, actor=console.user, since=start, until=end
        )
    except ValidationFailed as exc:
        period_start, period_end, rows = service.points_summary(
            session=console.db, actor=console.user
        )
        return console.render(
            "warranty/points.html",
            status_code=exc.status,
            since=period_start,
            until=period_end,
            rows=rows,
            **form_error_context(exc),
        )
    return console.render("warranty/points.html", since=period_start, until=period_end, rows=rows)


@router.get("/warranty/points/{person_id}", response_class=HTMLResponse)
def statement_page(
    console: ConsolePage, person_id: RecordId, since: str = "", until: str = ""
) -> HTMLResponse:
    require(console.user, WARRANTY_VIEW)
    try:
        start, end = _period(console, since[:10], until[:10])
        statement = service.installer_statement(
            session=console.db, actor=console.user, installer_id=person_id, since=start, until=end
        )
        ctx: dict[str, Any] = {}
        status = 200
    except ValidationFailed as exc:
        statement = service.installer_statement(
            session=console.db, actor=console.user, installer_id=person_id
        )
        ctx, status = form_error_context(exc), exc.status
    return console.render("warranty/statement.html", status_code=status, st=statement, **ctx)


# --- returns --------------------------------------------------------------------------------

RETURN_FIELDS = (
    "card_number",
    "kind",
    "reason",
    "description",
    "shipping_paid_by",
    "shipping_cost",
    "refund_amount",
    "exchange_model_id",
    "exchange_serial",
    "price_difference",
    "compensation",
    "request_approval",
)


@router.get("/warranty/returns", response_class=HTMLResponse)
def returns_page(console: ConsolePage, state: str = "open") -> HTMLResponse:
    require(console.user, WARRANTY_VIEW)
    items = service.list_returns(session=console.db, actor=console.user, state=state[:16])
    return console.render("warranty/returns.html", items=items, state=state[:16], **_common())


def _return_form(console: Console, status_code: int = 200, **ctx: Any) -> HTMLResponse:
    ctx.setdefault("values", {"kind": "return", "reason": "quality"})
    return console.render(
        "warranty/return_new.html",
        status_code=status_code,
        models=_model_choices(console),
        cap=service.get_settings(console.db).compensation_cap,
        hours=service.get_settings(console.db).photo_hours,
        **_common(),
        **ctx,
    )


@router.get("/warranty/returns/new", response_class=HTMLResponse)
def return_new(console: ConsolePage, card: str = "") -> HTMLResponse:
    require(console.user, WARRANTY_RETURNS)
    return _return_form(
        console, values={"card_number": card[:40], "kind": "return", "reason": "quality"}
    )


async def _photos(form: dict[str, Any]) -> list[service.Photo]:
    raw = form.get("photos")
    uploads = raw if isinstance(raw, list) else [raw]
    photos = []
    for upload in uploads[: service.MAX_PHOTOS + 1]:
        if isinstance(upload, UploadFile) and (upload.filename or "").strip():
            data = await upload.read(15_000_001)
            photos.append(service.Photo(upload.filename or "photo.jpg", data, upload.content_type))
    return photos


@router.post("/warranty/returns/new", response_class=HTMLResponse)
async def return_create(console: ConsoleForm) -> Response:
    require(console.user, WARRANTY_RETURNS)
    values = {k: _text(console.form, k) for k in RETURN_FIELDS}
    try:
        photos = await _photos(console.form)
        data = service.ReturnInput(
            card_number=values["card_number"],
            kind=values["kind"],
            reason=values["reason"],
            description=values["description"],
            shipping_paid_by=values["shipping_paid_by"] or None,
            shipping_cost=_yuan(values["shipping_cost"], field="shipping_cost") or 0,
            refund_amount=_yuan(values["refund_amount"], field="refund_amount"),
            exchange_model_id=_int(values["exchange_model_id"], field="exchange_model_id"),
            exchange_serial=values["exchange_serial"],
            price_difference=_yuan(values["price_difference"], field="price_difference") or 0,
            compensation=_yuan(values["compensation"], field="compensation") or 0,
            request_approval=bool(values["request_approval"]),
            photos=photos,
        )
        item = service.create_return(session=console.db, actor=console.user, data=data)
    except CardopsError as exc:
        console.db.rollback()
        return _return_form(
            console, status_code=exc.status, values=values, **form_error_context(exc)
        )
    console.flash("Return {number} recorded.", number=item.number)
    console.db.commit()
    return console.redirect(f"/warranty/returns/{item.id}")


def _return_page(
    console: Console, item: WarrantyReturn, status_code: int = 200, **ctx: Any
) -> HTMLResponse:
    deadline = service.photo_deadline(console.db, item)
    photos = [(d, as_utc(d.uploaded_at) <= deadline) for d in service.photos(console.db, item)]
    return console.render(
        "warranty/return.html",
        status_code=status_code,
        item=item,
        photos=photos,
        deadline=deadline,
        money=service.settlement(item),
        receipt=console.db.get(Receipt, item.receipt_id) if item.receipt_id else None,
        methods=[(k, gettext(v)) for k, v in METHODS],
        can_settle=console.can(WARRANTY_SETTLE),
        can_handle=console.can(WARRANTY_RETURNS),
        **_common(),
        **ctx,
    )


@router.get("/warranty/returns/{return_id}", response_class=HTMLResponse)
def return_page(console: ConsolePage, return_id: RecordId) -> HTMLResponse:
    require(console.user, WARRANTY_VIEW)
    item = service.get_return(console.db, return_id, actor=console.user)
    return _return_page(console, item)


ACTIONS = ("accept", "reject", "cancel", "receive", "compensation", "complete", "photos")


@router.post("/warranty/returns/{return_id}/{action}", response_class=HTMLResponse)
async def return_action(console: ConsoleForm, return_id: RecordId, action: str) -> Response:
    if action not in ACTIONS:
        raise NotFound("There is no such page.")
    require(console.user, WARRANTY_SETTLE if action == "complete" else WARRANTY_RETURNS)
    service.get_return(console.db, return_id, actor=console.user)
    form = console.form
    db, user = console.db, console.user
    try:
        if action == "accept":
            service.accept(session=db, actor=user, return_id=return_id, note=_text(form, "note"))
        elif action == "reject":
            service.reject(
                session=db, actor=user, return_id=return_id, reason=_text(form, "reason")
            )
        elif action == "cancel":
            service.cancel(
                session=db, actor=user, return_id=return_id, reason=_text(form, "reason")
            )
        elif action == "receive":
            service.receive(session=db, actor=user, return_id=return_id, note=_text(form, "note"))
        elif action == "compensation":
            service.set_compensation(
                session=db,
                actor=user,
                return_id=return_id,
                amount=_yuan(_text(form, "compensation"), field="compensation", required=True) or 0,
                request_approval=bool(_text(form, "request_approval")),
            )
        elif action == "complete":
            service.complete(
                session=db,
                actor=user,
                return_id=return_id,
                payment_method=_text(form, "payment_method"),
            )
        else:
            service.add_photos(
                session=db, actor=user, return_id=return_id, photos_in=await _photos(form)
            )
    except CardopsError as exc:
        db.rollback()
        item = service.get_return(db, return_id)
        return _return_page(console, item, status_code=exc.status, **form_error_context(exc))
    console.flash("Saved.")
    db.commit()
    return console.redirect(f"/warranty/returns/{return_id}")


# --- settings -------------------------------------------------------------------------------


def _settings_page(console: Console, status_code: int = 200, **ctx: Any) -> HTMLResponse:
    s = service.get_settings(console.db)
    ctx.setdefault(
        "values",
        {
            "warranty_months": str(s.warranty_months),
            "points_per_card": str(s.points_per_card),
            "compensation_cap": format_minor(s.compensation_cap).replace(",", ""),
            "photo_hours": str(s.photo_hours),
        },
    )
    return console.render(
        "warranty/settings.html",
        status_code=status_code,
        models=service.list_models(console.db),
        model_choices=_model_choices(console),
        **_common(),
        **ctx,
    )


@router.get("/warranty/settings", response_class=HTMLResponse)
def settings_page(console: ConsolePage) -> HTMLResponse:
    require(console.user, WARRANTY_VIEW)
    return _settings_page(console)


@router.post("/warranty/settings", response_class=HTMLResponse)
def settings_save(console: ConsoleForm) -> Response:
    require(console.user, WARRANTY_MANAGE)
    names = ("warranty_months", "points_per_card", "compensation_cap", "photo_hours")
    values = {k: _text(console.form, k) for k in names}
    try:
        service.update_settings(
            session=console.db,
            actor=console.user,
            warranty_months=_int(values["warranty_months"], field="warranty_months", required=True)
            or 0,
            points_per_card=_int(values["points_per_card"], field="points_per_card", required=True)
            or 0,
            compensation_cap=_yuan(
                values["compensation_cap"], field="compensation_cap", required=True
            )
            or 0,
            photo_hours=_int(values["photo_hours"], field="photo_hours", required=True) or 0,
        )
    except CardopsError as exc:
        console.db.rollback()
        return _settings_page(
            console, status_code=exc.status, values=values, **form_error_context(exc)
        )
    console.flash("Saved.")
    console.db.commit()
    return console.redirect("/warranty/settings")


@router.post("/warranty/settings/model", response_class=HTMLResponse)
def model_terms_save(console: ConsoleForm) -> Response:
    require(console.user, WARRANTY_MANAGE)
    names = ("model_id", "floor_price", "model_warranty_months", "points")
    terms = {k: _text(console.form, k) for k in names}
    try:
        service.set_model_terms(
            session=console.db,
            actor=console.user,
            model_id=_int(terms["model_id"], field="model_id", required=True) or 0,
            floor_price=_yuan(terms["floor_price"], field="floor_price") or 0,
            warranty_months=_int(terms["model_warranty_months"], field="warranty_months"),
            points=_int(terms["points"], field="points"),
        )
    except CardopsError as exc:
        console.db.rollback()
        return _settings_page(
            console, status_code=exc.status, terms=terms, **form_error_context(exc)
        )
    console.flash("Saved.")
    console.db.commit()
    return console.redirect("/warranty/settings")
