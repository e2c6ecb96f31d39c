"""Console pages of the channel: providers tree, regions, orders, county filings, cross-region
units and the purchases report. Every page is filtered by the user's provider scope."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from cardops.auth.models import User
from cardops.auth.service import display_names, require
from cardops.channel import service
from cardops.channel.delivery_note import render_delivery_note
from cardops.channel.models import ProviderLevel, ProviderOrder
from cardops.channel.permissions import (
    CHANNEL_CHECK,
    CHANNEL_DISPATCH,
    CHANNEL_MANAGE,
    CHANNEL_ORDER,
    CHANNEL_PICK,
    CHANNEL_RECEIVE,
    CHANNEL_VIEW,
)
from cardops.core.config import get_settings
from cardops.core.errors import CardopsError, NotFound, ValidationFailed
from cardops.core.i18n import N_
from cardops.core.money import format_minor, parse_amount
from cardops.parties.views import documents_context
from cardops.terminals.models import TerminalModel
from cardops.web.deps import Console, ConsoleForm, ConsolePage, RecordId, form_error_context
from cardops.web.nav import NavItem

router = APIRouter()
SECTION = N_("Channel")
NAV = [
    NavItem(N_("Providers"), "/channel/providers", CHANNEL_VIEW, section=SECTION, order=420),
    NavItem(N_("Regions"), "/channel/regions", CHANNEL_VIEW, section=SECTION, order=421),
    NavItem(N_("Orders (to HQ)"), "/channel/orders", CHANNEL_VIEW, section=SECTION, order=422),
    NavItem(
        N_("County orders (filed)"),
        "/channel/county-orders",
        CHANNEL_VIEW,
        section=SECTION,
        order=423,
    ),
    NavItem(
        N_("Cross-region units"), "/channel/cross-region", CHANNEL_VIEW, section=SECTION, order=424
    ),
    NavItem(
        N_("Purchases report"),
        "/channel/reports/purchases",
        CHANNEL_VIEW,
        section=SECTION,
        order=425,
    ),
]
LINE_ROWS = 4
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _text(form: dict[str, Any], name: str) -> str:
    value = form.get(name)
    if isinstance(value, list):
        value = value[0] if value else ""
    if value is None or hasattr(value, "read"):
        return ""
    return str(value)


def _int(value: str, *, field: str, label_required: bool = False) -> int | None:
    value = value.strip()
    if not value:
        if label_required:
            raise ValidationFailed("This field is required.", field=field)
        return None
    if not value.isdigit() or len(value) > 9:
        raise ValidationFailed("Enter a whole number.", field=field)
    return int(value)


def _date(value: str, *, field: str) -> date | None:
    value = value.strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise ValidationFailed("Enter a date as YYYY-MM-DD.", field=field) from exc


# --- providers ------------------------------------------------------------------------------


@router.get("/channel/providers", response_class=HTMLResponse)
def providers_page(console: ConsolePage) -> HTMLResponse:
    require(console.user, CHANNEL_VIEW)
    tree = service.provider_tree(session=console.db, actor=console.user)
    return console.render("channel/providers.html", tree=tree, level_labels=service.LEVEL_LABELS)


def _provider_values(form: dict[str, Any]) -> dict[str, str]:
    names = (
        "code",
        "level",
        "name",
        "parent_id",
        "provinces",
        "cities",
        "contract_no",
        "contract_start",
        "contract_end",
        "debit_rate_bp",
        "debit_cap",
        "credit_rate_bp",
        "credit_cap",
        "activation_reward",
        "is_active",
    )
    return {name: _text(form, name) for name in names}


def _provider_fields(values: dict[str, str]) -> service.ProviderFields:
    card: dict[str, Any] = {}
    for kind in service.CARD_TYPES:
        rate = _int(values[f"{kind}_rate_bp"], field=f"{kind}_rate_bp")
        cap_text = values[f"{kind}_cap"].strip()
        cap = parse_amount(cap_text, field=f"{kind}_cap") if cap_text else None
        if rate is None and cap is not None:
            raise ValidationFailed("Enter the rate for this cap.", field=f"{kind}_rate_bp")
        if rate is not None:
            card[kind] = {"rate_bp": rate, **({"cap": cap} if cap is not None else {})}
    reward_text = values["activation_reward"].strip()
    return service.ProviderFields(
        name=values["name"],
        parent_id=_int(values["parent_id"], field="parent_id"),
        provinces=service.split_list(values["provinces"]),
        cities=service.split_list(values["cities"]),
        contract_no=values["contract_no"],
        contract_start=_date(values["contract_start"], field="contract_start"),
        contract_end=_date(values["contract_end"], field="contract_end"),
        rate_card=card,
        activation_reward=parse_amount(reward_text, field="activation_reward")
        if reward_text
        else 0,
        is_active=values["is_active"] in ("1", "on", "true"),
    )


def _values_of(provider: Any) -> dict[str, str]:
    card = provider.rate_card or {}

    def part(kind: str, key: str) -> str:
        value = (card.get(kind) or {}).get(key)
        if value is None:
            return ""
        return format_minor(value).replace(",", "") if key == "cap" else str(value)

    return {
        "code": provider.code,
        "level": provider.level,
        "name": provider.name,
        "parent_id": str(provider.parent_id or ""),
        "provinces": " ".join(provider.provinces or []),
        "cities": " ".join(provider.cities or []),
        "contract_no": provider.contract_no,
        "contract_start": provider.contract_start.isoformat() if provider.contract_start else "",
        "contract_end": provider.contract_end.isoformat() if provider.contract_end else "",
        "debit_rate_bp": part("debit", "rate_bp"),
        "debit_cap": part("debit", "cap"),
        "credit_rate_bp": part("credit", "rate_bp"),
        "credit_cap": part("credit", "cap"),
        "activation_reward": format_minor(provider.activation_reward).replace(",", ""),
        "is_active": "1" if provider.is_active else "",
    }


def _provider_form(
    console: Console, *, provider: Any, values: dict[str, str], status_code: int = 200, **ctx: Any
) -> HTMLResponse:
    parents = [
        (p.id, f"{p.code} {p.name}")
        for p in service.list_providers(session=console.db, actor=console.user)
        if p.level in (ProviderLevel.HQ.value, ProviderLevel.CITY.value)
        and (provider is None or p.id != provider.id)
    ]
    users: list[User] = []
    link_choices: list[tuple[int, str]] = []
    rate_versions: list[Any] = []
    rate_actors: dict[int, str] = {}
    if provider is not None:
        users = service.provider_users(console.db, provider.id)
        rate_versions = service.rate_history(console.db, console.user, provider.id)
        rate_actors = display_names(console.db, (v.actor_id for v in rate_versions))
        if console.can(CHANNEL_MANAGE):
            link_choices = [
                (u.id, f"{u.username} {u.display_name}")
                for u in console.db.execute(
                    select(User).where(User.is_system.is_(False)).order_by(User.username)
                ).scalars()
            ]
    return console.render(
        "channel/provider_form.html",
        status_code=status_code,
        provider=provider,
        values=values,
        parents=parents,
        levels=[(k, v) for k, v in service.LEVEL_LABELS.items()],
        level_labels=service.LEVEL_LABELS,
        users=users,
        link_choices=link_choices,
        rate_versions=rate_versions,
        rate_actors=rate_actors,
        **ctx,
    )


@router.get("/channel/providers/new", response_class=HTMLResponse)
def provider_new(console: ConsolePage) -> HTMLResponse:
    require(console.user, CHANNEL_MANAGE)
    return _provider_form(console, provider=None, values={"level": "city", "is_active": "1"})


@router.post("/channel/providers/new", response_class=HTMLResponse)
def provider_create(console: ConsoleForm) -> Response:
    require(console.user, CHANNEL_MANAGE)
    values = _provider_values(console.form)
    try:
        provider = service.create_provider(
            session=console.db,
            actor=console.user,
            code=values["code"],
            level=values["level"],
            fields=_provider_fields(values),
        )
    except CardopsError as exc:
        console.db.rollback()
        return _provider_form(
            console,
            provider=None,
            values=values,
            status_code=exc.status,
            **form_error_context(exc),
        )
    console.flash("Provider {name} has been created.", name=provider.name)
    console.db.commit()
    return console.redirect(f"/channel/providers/{provider.id}")


@router.get("/channel/providers/{provider_id}", response_class=HTMLResponse)
def provider_page(console: ConsolePage, provider_id: RecordId) -> HTMLResponse:
    provider = service.get_provider(console.db, provider_id, actor=console.user)
    return _provider_form(console, provider=provider, values=_values_of(provider))


@router.post("/channel/providers/{provider_id}", response_class=HTMLResponse)
def provider_update(console: ConsoleForm, provider_id: RecordId) -> Response:
    require(console.user, CHANNEL_MANAGE)
    provider = service.get_provider(console.db, provider_id, actor=console.user)
    values = {**_provider_values(console.form), "code": provider.code, "level": provider.level}
    try:
        service.update_provider(
            session=console.db,
            actor=console.user,
            provider_id=provider.id,
            fields=_provider_fields(values),
        )
    except CardopsError as exc:
        console.db.rollback()
        provider = service.get_provider(console.db, provider_id)
        return _provider_form(
            console,
            provider=provider,
            values=values,
            status_code=exc.status,
            **form_error_context(exc),
        )
    console.flash("Saved.")
    console.db.commit()
    return console.redirect(f"/channel/providers/{provider_id}")


@router.post("/channel/providers/{provider_id}/users", response_class=HTMLResponse)
def provider_link_user(console: ConsoleForm, provider_id: RecordId) -> Response:
    require(console.user, CHANNEL_MANAGE)
    provider = service.get_provider(console.db, provider_id, actor=console.user)
    user_text = _text(console.form, "user_id")
    try:
        user_id = _int(user_text, field="user_id", label_required=True) or 0
        if _text(console.form, "unlink"):
            service.unlink_user(session=console.db, actor=console.user, user_id=user_id)
        else:
            service.link_user(
                session=console.db, actor=console.user, user_id=user_id, provider_id=provider.id
            )
    except CardopsError as exc:
        console.db.rollback()
        provider = service.get_provider(console.db, provider_id)
        return _provider_form(
            console,
            provider=provider,
            values=_values_of(provider),
            status_code=exc.status,
            **form_error_context(exc),
        )
    console.flash("Saved.")
    console.db.commit()
    return console.redirect(f"/channel/providers/{provider_id}")


# --- regions --------------------------------------------------------------------------------


def _regions_page(console: Console, status_code: int = 200, **ctx: Any) -> HTMLResponse:
    reviewers = [
        (u.id, f"{u.username} {u.display_name}")
        for u in console.db.execute(
            select(User)
            .where(User.is_system.is_(False), User.is_active.is_(True))
            .order_by(User.username)
        ).scalars()
    ]
    return console.render(
        "channel/regions.html",
        status_code=status_code,
        regions=service.list_regions(console.db),
        unassigned=service.unassigned_provinces(console.db),
        reviewers=reviewers,
        **ctx,
    )


@router.get("/channel/regions", response_class=HTMLResponse)
def regions_page(console: ConsolePage) -> HTMLResponse:
    require(console.user, CHANNEL_VIEW)
    return _regions_page(console)


@router.post("/channel/regions/defaults", response_class=HTMLResponse)
def regions_defaults(console: ConsoleForm) -> Response:
    require(console.user, CHANNEL_MANAGE)
    created = service.install_default_regions(session=console.db, actor=console.user)
    console.flash("{n} region(s) created.", n=len(created))
    console.db.commit()
    return console.redirect("/channel/regions")


@router.post("/channel/regions/{code}", response_class=HTMLResponse)
def region_update(console: ConsoleForm, code: str) -> Response:
    require(console.user, CHANNEL_MANAGE)
    values = {
        "provinces": _text(console.form, "provinces"),
        "reviewer_id": _text(console.form, "reviewer_id"),
    }
    try:
        service.set_region(
            session=console.db,
            actor=console.user,
            code=code[:16],
            provinces=service.split_list(values["provinces"]),
            reviewer_id=_int(values["reviewer_id"], field="reviewer_id"),
        )
    except CardopsError as exc:
        console.db.rollback()
        return _regions_page(
            console,
            status_code=exc.status,
            edited=code[:16],
            values=values,
            **form_error_context(exc),
        )
    console.flash("Saved.")
    console.db.commit()
    return console.redirect("/channel/regions")


# --- orders ---------------------------------------------------------------------------------


@router.get("/channel/orders", response_class=HTMLResponse)
def orders_page(
    console: ConsolePage, state: str = "", kind: str = "", provider: str = ""
) -> HTMLResponse:
    require(console.user, CHANNEL_VIEW)
    state = state if state in service.STATE_LABELS else ""
    county = {"county": True, "to_hq": False}.get(kind)
    provider_id = int(provider) if provider.isdigit() and len(provider) < 10 else None
    rows = service.list_orders(
        session=console.db,
        actor=console.user,
        state=state or None,
        county=county,
        provider_id=provider_id,
    )
    return console.render(
        "channel/orders.html",
        rows=rows,
        state=state,
        kind=kind if county is not None else "",
        heading=N_("Provider orders"),
        state_labels=service.STATE_LABELS,
        is_county=service.is_county_order,
    )


@router.get("/channel/county-orders", response_class=HTMLResponse)
def county_orders_page(console: ConsolePage) -> HTMLResponse:
    require(console.user, CHANNEL_VIEW)
    rows = service.list_orders(session=console.db, actor=console.user, county=True, filed_only=True)
    return console.render(
        "channel/orders.html",
        rows=rows,
        state="",
        kind="county",
        filed=True,
        heading=N_("County orders filed with HQ"),
        state_labels=service.STATE_LABELS,
        is_county=service.is_county_order,
    )


def _model_choices(console: Console) -> list[tuple[int, str]]:
    models = console.db.execute(
        select(TerminalModel).where(TerminalModel.is_active.is_(True)).order_by(TerminalModel.code)
    ).scalars()
    return [(m.id, f"{m.code} {m.name} · ¥{format_minor(m.unit_price)}") for m in models]


def _new_order_form(
    console: Console, values: dict[str, str], status_code: int = 200, **ctx: Any
) -> HTMLResponse:
    own = service.user_provider(console.db, console.user)
    buyers = [
        (p.id, f"{p.code} {p.name}")
        for p in service.list_providers(session=console.db, actor=console.user)
        if p.level != ProviderLevel.HQ.value and p.is_active
    ]
    return console.render(
        "channel/order_new.html",
        status_code=status_code,
        values=values,
        buyers=buyers,
        own=own,
        models=_model_choices(console),
        rows=range(LINE_ROWS),
        **ctx,
    )


@router.get("/channel/orders/new", response_class=HTMLResponse)
def order_new(console: ConsolePage) -> HTMLResponse:
    require(console.user, CHANNEL_ORDER)
    own = service.user_provider(console.db, console.user)
    return _new_order_form(console, {"buyer_id": str(own.id) if own else ""})


@router.post("/channel/orders/new", response_class=HTMLResponse)
def order_create(console: ConsoleForm) -> Response:
    require(console.user, CHANNEL_ORDER)
    values = {"buyer_id": _text(console.form, "buyer_id"), "note": _text(console.form, "note")}
    for n in range(LINE_ROWS):
        values[f"model_{n}"] = _text(console.form, f"model_{n}")
        values[f"quantity_{n}"] = _text(console.form, f"quantity_{n}")
    try:
        lines: list[tuple[int, int]] = []
        for n in range(LINE_ROWS):
            model_id = _int(values[f"model_{n}"], field=f"model_{n}")
            quantity = _int(values[f"quantity_{n}"], field=f"quantity_{n}")
            if model_id is None and quantity is None:
                continue
            if model_id is None:
                raise ValidationFailed("Choose a terminal model.", field=f"model_{n}")
            if quantity is None:
                raise ValidationFailed("Enter the quantity.", field=f"quantity_{n}")
            lines.append((model_id, quantity))
        order = service.create_order(
            session=console.db,
            actor=console.user,
            buyer_id=_int(values["buyer_id"], field="buyer_id"),
            lines=lines,
            note=values["note"],
        )
    except CardopsError as exc:
        console.db.rollback()
        return _new_order_form(console, values, status_code=exc.status, **form_error_context(exc))
    console.flash("Order {number} has been created.", number=order.number)
    console.db.commit()
    return console.redirect(f"/channel/orders/{order.id}")


def _order_page(
    console: Console, order_id: int, status_code: int = 200, **ctx: Any
) -> HTMLResponse:
    order = service.get_order(session=console.db, actor=console.user, order_id=order_id)
    acting = service._acting_provider_id(console.db, console.user)
    county = service.is_county_order(order)
    seller_side = acting == order.seller_id
    buyer_side = acting in (order.buyer_id, order.seller_id)
    can = console.can
    step = CHANNEL_ORDER if county else None
    state = order.state
    actions = {
        "payment": buyer_side and can(CHANNEL_ORDER) and state in ("draft", "rejected"),
        "order_form": buyer_side
        and can(CHANNEL_ORDER)
        and state in ("draft", "rejected", "submitted"),
        "submit": buyer_side and can(CHANNEL_ORDER) and state in ("draft", "rejected"),
        "cancel": buyer_side and can(CHANNEL_ORDER) and state in ("draft", "submitted", "rejected"),
        "select": seller_side and can(CHANNEL_ORDER) and state in ("submitted", "approving"),
        "approve": county and seller_side and can(CHANNEL_ORDER) and state == "submitted",
        "pick": seller_side and can(step or CHANNEL_PICK) and state in ("approved", "picking"),
        "check": seller_side
        and can(step or CHANNEL_CHECK)
        and (state == "picking" or (county and state == "approved")),
        "dispatch": seller_side and can(step or CHANNEL_DISPATCH) and state == "checked",
        "receive": can(CHANNEL_RECEIVE)
        and state == "dispatched"
        and (acting == order.buyer_id or service.user_provider(console.db, console.user) is None),
        "file": county
        and seller_side
        and can(CHANNEL_ORDER)
        and state in ("dispatched", "received")
        and order.filed_with_hq_at is None,
    }
    ctx.setdefault("values", {})
    ctx.setdefault("failed", "")
    return console.render(
        "channel/order.html",
        status_code=status_code,
        order=order,
        county=county,
        actions=actions,
        request_=service.approval_request(console.db, order),
        state_labels=service.STATE_LABELS,
        codes={line.model_id: line.model.code for line in order.lines},
        picked=sum(1 for s in order.serials if s.picked_at),
        **documents_context(
            console, service.DOC_OWNER, order.id, return_to=f"/channel/orders/{order.id}"
        ),
        **ctx,
    )


@router.get("/channel/orders/{order_id}", response_class=HTMLResponse)
def order_page(console: ConsolePage, order_id: RecordId) -> HTMLResponse:
    return _order_page(console, order_id)


def _upload(form: dict[str, Any], name: str) -> tuple[str, bytes, str | None]:
    upload = form.get(name)
    if upload is None or not hasattr(upload, "file"):
        return "", b"", None
    data = upload.file.read(get_settings().documents_max_bytes + 1)
    return upload.filename or "", data, upload.content_type


@router.post("/channel/orders/{order_id}/{action}", response_class=HTMLResponse)
def order_action(console: ConsoleForm, order_id: RecordId, action: str) -> Response:
    form = console.form
    values = {
        name: _text(form, name)
        for name in ("serials", "carrier", "tracking_no", "paid_amount", "reference", "reason")
    }
    db, user = console.db, console.user
    try:
        if action == "payment-slip":
            filename, data, content_type = _upload(form, "file")
            service.upload_payment_slip(
                session=db,
                actor=user,
                order_id=order_id,
                filename=filename,
                data=data,
                content_type=content_type,
                paid_amount=parse_amount(values["paid_amount"], field="paid_amount"),
                reference=values["reference"],
            )
        elif action == "order-form":
            filename, data, content_type = _upload(form, "file")
            service.upload_order_form(
                session=db,
                actor=user,
                order_id=order_id,
                filename=filename,
                data=data,
                content_type=content_type,
            )
        elif action == "submit":
            service.submit_order(session=db, actor=user, order_id=order_id)
        elif action == "cancel":
            service.cancel_order(session=db, actor=user, order_id=order_id, reason=values["reason"])
        elif action == "serials":
            service.select_serials(
                session=db, actor=user, order_id=order_id, serials=values["serials"]
            )
        elif action == "approve":
            service.approve_county_order(session=db, actor=user, order_id=order_id)
        elif action == "pick":
            service.pick(session=db, actor=user, order_id=order_id, serials=values["serials"])
        elif action == "check":
            service.check(session=db, actor=user, order_id=order_id, serials=values["serials"])
        elif action == "dispatch":
            service.dispatch(
                session=db,
                actor=user,
                order_id=order_id,
                carrier=values["carrier"],
                tracking_no=values["tracking_no"],
            )
        elif action == "receive":
            service.receive(session=db, actor=user, order_id=order_id)
        elif action == "file-with-hq":
            service.file_with_hq(session=db, actor=user, order_id=order_id)
        else:
            raise NotFound("No such page.")
    except CardopsError as exc:
        db.rollback()
        if exc.status == 404:
            raise
        return _order_page(
            console,
            order_id,
            status_code=exc.status,
            values=values,
            failed=action,
            **form_error_context(exc),
        )
    console.flash("Saved.")
    db.commit()
    return console.redirect(f"/channel/orders/{order_id}")


@router.get("/channel/orders/{order_id}/delivery-note.pdf")
def order_delivery_note(console: ConsolePage, order_id: RecordId) -> Response:
    order = service.get_order(session=console.db, actor=console.user, order_id=order_id)
    if not order.serials:
        raise NotFound("Order {number} has no serials picked yet.", number=order.number)
    return Response(
        render_delivery_note(order),
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{order.number}.pdf"'},
    )


def _serial_file(order: ProviderOrder, fmt: str) -> Response:
    if fmt == "xlsx":
        data, media = service.serial_list_xlsx(order), XLSX
    else:
        data, media = service.serial_list_csv(order), "text/csv; charset=utf-8"
    return Response(
        data,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{order.number}-serials.{fmt}"'},
    )


@router.get("/channel/orders/{order_id}/serials.csv")
def order_serials_csv(console: ConsolePage, order_id: RecordId) -> Response:
    order = service.get_order(session=console.db, actor=console.user, order_id=order_id)
    return _serial_file(order, "csv")


@router.get("/channel/orders/{order_id}/serials.xlsx")
def order_serials_xlsx(console: ConsolePage, order_id: RecordId) -> Response:
    order = service.get_order(session=console.db, actor=console.user, order_id=order_id)
    return _serial_file(order, "xlsx")


# --- cross-region and the purchases report ------------------------------------------------


@router.get("/channel/cross-region", response_class=HTMLResponse)
def cross_region_page(console: ConsolePage) -> HTMLResponse:
    rows = service.cross_region_units(session=console.db, actor=console.user)
    return console.render(
        "channel/cross_region.html",
        rows=[(t, p, service.effective_area(p)[0] if p else []) for t, p in rows],
    )


@router.get("/channel/reports/purchases", response_model=None)
def purchases_page(
    console: ConsolePage, since: str = "", until: str = "", format: str = ""
) -> Response:
    require(console.user, CHANNEL_VIEW)
    try:
        start = _date(since[:10], field="since")
        end = _date(until[:10], field="until")
    except CardopsError as exc:
        start = end = None
        context: dict[str, Any] = form_error_context(exc)
    else:
        context = {}
    rows = service.purchases_report(session=console.db, actor=console.user, since=start, until=end)
    if format == "xlsx":
        return Response(
            service.purchases_xlsx(rows),
            media_type=XLSX,
            headers={"Content-Disposition": 'attachment; filename="provider-purchases.xlsx"'},
        )
    return console.render(
        "channel/purchases.html",
        rows=rows,
        chart=service.purchases_svg(rows),
        since=since[:10],
        until=until[:10],
        totals=(
            sum(r.orders for r in rows),
            sum(r.quantity for r in rows),
            sum(r.amount for r in rows),
        ),
        **context,
    )
