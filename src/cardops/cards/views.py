"""Console pages of the one-card cards: search, card page with actions, issuing, stock and
requisitions, registers, card policy, the quarterly report and ownership changes."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from cardops.access.models import Property
from cardops.approvals.models import ApprovalRequest, RequestState
from cardops.auth.service import require
from cardops.cards import policy as card_policy
from cardops.cards import report as card_report
from cardops.cards import service
from cardops.cards.models import Card
from cardops.cards.permissions import (
    CARDS_CANCEL,
    CARDS_ISSUE,
    CARDS_MANAGE,
    CARDS_POLICY,
    CARDS_REPORT,
    CARDS_REQUISITION,
    CARDS_STOCK,
    CARDS_VIEW,
)
from cardops.core.config import get_settings
from cardops.core.errors import CardopsError, NotFound, ValidationFailed
from cardops.core.i18n import N_
from cardops.core.money import parse_amount
from cardops.parties.models import Organisation, Person
from cardops.parties.views import documents_context
from cardops.web.deps import Console, ConsoleForm, ConsolePage, RecordId, form_error_context
from cardops.web.nav import NavItem

router = APIRouter()
SECTION = N_("One-card")
NAV = [
    NavItem(N_("Cards"), "/cards", CARDS_VIEW, section=SECTION, order=300),
    NavItem(N_("Issue a card"), "/cards/issue", CARDS_ISSUE, section=SECTION, order=301),
    NavItem(N_("Stock & requisitions"), "/cards/stock", CARDS_VIEW, section=SECTION, order=302),
    NavItem(N_("Registers"), "/cards/registers/owner", CARDS_REPORT, section=SECTION, order=303),
    NavItem(N_("Card policy"), "/cards/policy", CARDS_POLICY, section=SECTION, order=304),
    NavItem(N_("Quarterly report"), "/cards/report", CARDS_REPORT, section=SECTION, order=305),
    NavItem(
        N_("Ownership change"), "/cards/ownership-change", CARDS_CANCEL, section=SECTION, order=306
    ),
]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
METHOD_LABELS = {
    "cash": N_("Cash"),
    "card": N_("Bank card"),
    "transfer": N_("Bank transfer"),
    "wechat": N_("WeChat Pay"),
    "alipay": N_("Alipay"),
}
ACTIONS = (
    "report-lost",
    "cancel-loss",
    "reissue",
    "replace",
    "return",
    "extend",
    "cancel",
    "acknowledge",
)


def _text(form: dict[str, Any], name: str) -> str:
    value = form.get(name)
    if isinstance(value, list):
        value = value[0] if value else ""
    return str(value or "").strip() if isinstance(value, str | int) else ""


def _int(form: dict[str, Any], name: str, *, required: bool = False) -> int | None:
    text = _text(form, name)
    if not text:
        if required:
            raise ValidationFailed("This field is required.", field=name)
        return None
    if not text.isdigit() or len(text) > 9:
        raise ValidationFailed("Enter a whole number.", field=name)
    return int(text)


def _checked(form: dict[str, Any], name: str) -> bool:
    return _text(form, name) in ("1", "on", "true", "yes")


def _common() -> dict[str, Any]:
    return {
        "holder_labels": card_policy.HOLDER_LABELS,
        "state_labels": card_policy.STATE_LABELS,
        "event_labels": card_policy.EVENT_LABELS,
        "method_labels": METHOD_LABELS,
        "evidence_labels": service.EVIDENCE_LABELS,
    }


# --- search -------------------------------------------------------------------------------


@router.get("/cards", response_class=HTMLResponse)
def card_list(
    console: ConsolePage, q: str = "", state: str = "", holder_kind: str = "", page: int = 1
) -> HTMLResponse:
    require(console.user, CARDS_VIEW)
    page = max(1, min(page, 100_000))
    rows = service.search_cards(
        session=console.db,
        actor=console.user,
        q=q[:64],
        state=state[:16] or None,
        holder_kind=holder_kind[:16] or None,
        limit=51,
        offset=(page - 1) * 50,
    )
    persons = {
        p.id: p
        for p in console.db.execute(
            select(Person).where(Person.id.in_({c.person_id for c in rows if c.person_id} or {0}))
        ).scalars()
    }
    return console.render(
        "cards/list.html",
        rows=rows[:50],
        has_more=len(rows) > 50,
        page=page,
        filters={"q": q, "state": state, "holder_kind": holder_kind},
        persons=persons,
        unit_label=lambda uid: service.unit_label(console.db, uid),
        today=service.today(),
        **_common(),
    )


# --- issuing ------------------------------------------------------------------------------


def _issue_page(
    console: Console, *, form: dict[str, Any], status_code: int = 200, **extra: Any
) -> HTMLResponse:
    kind = form.get("holder_kind") or "owner"
    if kind not in card_policy.HOLDER_LABELS:
        kind = "owner"
    props = service.list_properties(console.db)
    office_cards = list(
        console.db.execute(
            select(Card).where(Card.state == "office").order_by(Card.number).limit(200)
        ).scalars()
    )
    units: list[Any] = []
    for prop in props:
        units += [(u.id, f"{prop.code} {u.code}") for u in service.units_of(console.db, prop.id)]
    approvals = list(
        console.db.execute(
            select(ApprovalRequest)
            .where(
                ApprovalRequest.kind.in_(list(service.APPROVAL_KINDS.values())),
                ApprovalRequest.state == RequestState.APPROVED,
            )
            .order_by(ApprovalRequest.id.desc())
            .limit(100)
        ).scalars()
    )
    policy = {p.code: card_policy.for_kind(p.card_policy, kind) for p in props}
    return console.render(
        "cards/issue.html",
        status_code=status_code,
        form=form,
        kind=kind,
        needed=service.evidence_needed(kind),
        office_cards=office_cards,
        units=units,
        approvals=approvals,
        policy=policy,
        kinds=list(card_policy.HOLDER_LABELS.items()),
        doc_fields=[
            c for c in service.EVIDENCE_LABELS if c not in ("owner_confirmation", "approval")
        ],
        **_common(),
        **extra,
    )


@router.get("/cards/issue", response_class=HTMLResponse)
def issue_form(console: ConsolePage, kind: str = "owner", card: str = "") -> HTMLResponse:
    require(console.user, CARDS_ISSUE)
    return _issue_page(console, form={"holder_kind": kind[:16], "card_number": card[:64]})


def _phoned_at(form: dict[str, Any]) -> datetime | None:
    text = _text(form, "phoned_at")
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationFailed(
            "Enter the date and time of the call, e.g. 2026-05-01 10:30.", field="phoned_at"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(get_settings().timezone))
    return value.astimezone(UTC)


@router.post("/cards/issue", response_class=HTMLResponse)
def issue_submit(console: ConsoleForm) -> Response:
    require(console.user, CARDS_ISSUE)
    form = console.form
    shown = {k: v for k, v in form.items() if isinstance(v, str)}
    try:
        uploads = []
        for code in service.EVIDENCE_LABELS:
            item = form.get(f"doc_{code}")
            if item is not None and hasattr(item, "file"):
                data = item.file.read(get_settings().documents_max_bytes + 1)
                if data:
                    uploads.append(
                        service.Upload(
                            doc_type=code,
                            filename=item.filename or code,
                            data=data,
                            content_type=getattr(item, "content_type", None),
                        )
                    )
        phoned = _phoned_at(form)
        card = service.issue_card(
            session=console.db,
            actor=console.user,
            card_number=_text(form, "card_number"),
            holder_kind=_text(form, "holder_kind"),
            person_id=_int(form, "person_id", required=True) or 0,
            unit_id=_int(form, "unit_id"),
            organisation_id=_int(form, "organisation_id"),
            uploads=uploads,
            owner_confirmation=service.OwnerConfirmation(
                phoned_at=phoned, note=_text(form, "confirmation_note")[:500]
            )
            if phoned
            else None,
            approval_request_id=_int(form, "approval_request_id"),
            valid_months=_int(form, "valid_months"),
            is_gift=_checked(form, "is_gift"),
            payment_method=_text(form, "payment_method") or "cash",
            acknowledged=_checked(form, "acknowledged"),
            note=_text(form, "note"),
        )
    except CardopsError as exc:
        console.db.rollback()
        return _issue_page(console, form=shown, status_code=exc.status, **form_error_context(exc))
    console.flash("Card {number} issued.", number=card.number)
    console.db.commit()
    return console.redirect(f"/cards/{card.number}")


# --- stock --------------------------------------------------------------------------------


def _stock_page(
    console: Console, *, status_code: int = 200, form: dict[str, Any] | None = None, **extra: Any
) -> HTMLResponse:
    props = service.list_properties(console.db)
    return console.render(
        "cards/stock.html",
        status_code=status_code,
        form=form or {},
        batches=service.list_batches(console.db),
        requisitions=service.list_requisitions(console.db),
        counts=service.stock_counts(console.db),
        properties=props,
        office={p.id: service.office_stock(console.db, p.id) for p in props},
        prop_codes={p.id: p.code for p in props},
        prop_options=[(p.id, f"{p.code} {p.name}") for p in props],
        **_common(),
        **extra,
    )


@router.get("/cards/stock", response_class=HTMLResponse)
def stock(console: ConsolePage) -> HTMLResponse:
    require(console.user, CARDS_VIEW)
    return _stock_page(console)


@router.post("/cards/stock/batches", response_class=HTMLResponse)
def stock_receive(console: ConsoleForm) -> Response:
    require(console.user, CARDS_STOCK)
    form = console.form
    shown = {k: v for k, v in form.items() if isinstance(v, str)}
    try:
        csv_text = ""
        upload = form.get("csv_file")
        if upload is not None and hasattr(upload, "file"):
            csv_text = upload.file.read(5_000_001).decode("utf-8-sig", errors="replace")
        csv_text = csv_text or _text(form, "csv")
        cost = _text(form, "unit_cost")
        batch = service.receive_batch(
            session=console.db,
            actor=console.user,
            number=_text(form, "number"),
            supplier=_text(form, "supplier"),
            quantity=None if csv_text else _int(form, "quantity"),
            first_number=_text(form, "first_number") or None,
            csv_text=csv_text or None,
            unit_cost=parse_amount(cost, field="unit_cost") if cost else 0,
            note=_text(form, "note"),
        )
    except CardopsError as exc:
        console.db.rollback()
        return _stock_page(console, status_code=exc.status, form=shown, **form_error_context(exc))
    console.flash(
        "Batch {number} received: {n} cards in stock.", number=batch.number, n=batch.quantity
    )
    console.db.commit()
    return console.redirect("/cards/stock")


@router.post("/cards/stock/requisitions", response_class=HTMLResponse)
def stock_request(console: ConsoleForm) -> Response:
    require(console.user, CARDS_REQUISITION)
    form = console.form
    shown = {k: v for k, v in form.items() if isinstance(v, str)}
    try:
        row = service.request_cards(
            session=console.db,
            actor=console.user,
            property_id=_int(form, "property_id", required=True) or 0,
            quantity=_int(form, "req_quantity", required=True) or 0,
            note=_text(form, "req_note"),
        )
    except CardopsError as exc:
        console.db.rollback()
        ctx = form_error_context(exc)
        if "quantity" in ctx["field_errors"]:
            ctx["field_errors"]["req_quantity"] = ctx["field_errors"]["quantity"]
        return _stock_page(console, status_code=exc.status, form=shown, **ctx)
    console.flash("Requisition {number} sent to finance.", number=row.number)
    console.db.commit()
    return console.redirect("/cards/stock")


@router.post("/cards/stock/requisitions/{requisition_id}/fulfil", response_class=HTMLResponse)
def stock_fulfil(console: ConsoleForm, requisition_id: RecordId) -> Response:
    require(console.user, CARDS_STOCK)
    try:
        cards = service.fulfil_requisition(
            session=console.db, actor=console.user, requisition_id=requisition_id
        )
    except CardopsError as exc:
        console.db.rollback()
        return _stock_page(console, status_code=exc.status, **form_error_context(exc))
    console.flash("{n} cards handed to the office.", n=len(cards))
    console.db.commit()
    return console.redirect("/cards/stock")


# --- registers ----------------------------------------------------------------------------


def _day(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


@router.get("/cards/registers/{which}", response_class=HTMLResponse)
def registers(
    console: ConsolePage, which: str, since: str = "", until: str = "", format: str = ""
) -> Response:
    require(console.user, CARDS_REPORT)
    which = "staff" if which == "staff" else "owner"
    rows = service.register(
        session=console.db,
        actor=console.user,
        which=which,
        since=_day(since[:10]),
        until=_day(until[:10]),
    )
    if format == "xlsx":
        title = "员工卡登记表" if which == "staff" else "业主卡登记表"
        return Response(
            card_report.register_excel(rows, title=title),
            media_type=XLSX,
            headers={"Content-Disposition": f'attachment; filename="card-register-{which}.xlsx"'},
        )
    return console.render(
        "cards/register.html",
        rows=rows,
        which=which,
        filters={"since": since, "until": until},
        **_common(),
    )


# --- policy -------------------------------------------------------------------------------


def _policy_page(
    console: Console,
    prop: Property,
    *,
    values: dict[str, Any] | None = None,
    status_code: int = 200,
    **extra: Any,
) -> HTMLResponse:
    merged = service.get_policy(prop)
    if values is None:
        values = {f"{k}.{f}": v for k, row in merged.items() for f, v in row.items()}
        for key in list(values):
            if key.endswith((".fee", ".deposit", ".extension_fee")):
                values[key] = f"{values[key] / 100:.2f}"
        values["replacement_warranty_days"] = prop.replacement_warranty_days
    return console.render(
        "cards/policy.html",
        status_code=status_code,
        prop=prop,
        properties=service.list_properties(console.db),
        values=values,
        kinds=list(card_policy.HOLDER_LABELS.items()),
        **_common(),
        **extra,
    )


@router.get("/cards/policy", response_class=HTMLResponse)
def policy_first(console: ConsolePage) -> Response:
    require(console.user, CARDS_POLICY)
    props = service.list_properties(console.db)
    if not props:
        return console.render(
            "cards/policy.html", prop=None, properties=[], values={}, kinds=[], **_common()
        )
    return console.redirect(f"/cards/policy/{props[0].id}")


@router.get("/cards/policy/{property_id}", response_class=HTMLResponse)
def policy_page(console: ConsolePage, property_id: RecordId) -> HTMLResponse:
    require(console.user, CARDS_POLICY)
    return _policy_page(console, service.get_property(console.db, property_id))


@router.post("/cards/policy/{property_id}", response_class=HTMLResponse)
def policy_save(console: ConsoleForm, property_id: RecordId) -> Response:
    require(console.user, CARDS_POLICY)
    prop = service.get_property(console.db, property_id)
    form = console.form
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    try:
        policy: dict[str, dict[str, int]] = {}
        errors: list[tuple[str, str]] = []
        for kind in card_policy.DEFAULTS:
            row: dict[str, int] = {}
            for name in card_policy.FIELDS:
                key = f"{kind}.{name}"
                text = _text(form, key)
                if not text:
                    continue
                try:
                    if name in ("fee", "deposit", "extension_fee"):
                        row[name] = parse_amount(text, field=key)
                    elif text.isdigit() and len(text) < 6:
                        row[name] = int(text)
                    else:
                        raise ValidationFailed("Enter a whole number.", field=key)
                except ValidationFailed as exc:
                    errors.append((key, exc.message))
            policy[str(kind)] = row
        if errors:
            raise ValidationFailed(
                "The card policy has {n} problem(s); see the fields marked.",
                field="policy",
                errors=errors,
                n=len(errors),
            )
        service.set_policy(
            session=console.db,
            actor=console.user,
            property_id=prop.id,
            policy=policy,
            replacement_warranty_days=_int(form, "replacement_warranty_days"),
        )
    except CardopsError as exc:
        console.db.rollback()
        return _policy_page(
            console, prop, values=values, status_code=exc.status, **form_error_context(exc)
        )
    console.flash("Card policy of {property} saved.", property=prop.code)
    console.db.commit()
    return console.redirect(f"/cards/policy/{prop.id}")


# --- quarterly report ---------------------------------------------------------------------


@router.get("/cards/report", response_class=HTMLResponse)
def quarterly(console: ConsolePage, quarter: str = "", format: str = "") -> Response:
    require(console.user, CARDS_REPORT)
    try:
        rep = card_report.quarterly_report(
            session=console.db, actor=console.user, quarter=quarter[:8] or None
        )
    except CardopsError as exc:
        rep = card_report.quarterly_report(session=console.db, actor=console.user)
        return console.render(
            "cards/report.html",
            status_code=exc.status,
            rep=rep,
            chart=card_report.chart_svg(rep),
            states=card_report.STATES,
            anomaly_labels=card_report.ANOMALY_LABELS,
            quarter=quarter,
            **form_error_context(exc),
            **_common(),
        )
    if format == "xlsx":
        return Response(
            card_report.to_excel(rep),
            media_type=XLSX,
            headers={"Content-Disposition": f'attachment; filename="cards-{rep.quarter}.xlsx"'},
        )
    return console.render(
        "cards/report.html",
        rep=rep,
        chart=card_report.chart_svg(rep),
        states=card_report.STATES,
        anomaly_labels=card_report.ANOMALY_LABELS,
        quarter=rep.quarter,
        **_common(),
    )


# --- ownership change ---------------------------------------------------------------------


def _ownership_page(
    console: Console, *, form: dict[str, Any] | None = None, status_code: int = 200, **extra: Any
) -> HTMLResponse:
    units: list[Any] = []
    for prop in service.list_properties(console.db):
        units += [(u.id, f"{prop.code} {u.code}") for u in service.units_of(console.db, prop.id)]
    return console.render(
        "cards/ownership.html",
        status_code=status_code,
        form=form or {},
        units=units,
        **_common(),
        **extra,
    )


@router.get("/cards/ownership-change", response_class=HTMLResponse)
def ownership(console: ConsolePage) -> HTMLResponse:
    require(console.user, CARDS_CANCEL)
    return _ownership_page(console)


@router.post("/cards/ownership-change", response_class=HTMLResponse)
def ownership_submit(console: ConsoleForm) -> Response:
    require(console.user, CARDS_CANCEL)
    form = console.form
    shown = {k: v for k, v in form.items() if isinstance(v, str)}
    try:
        cards = service.cancel_cards_for_ownership_change(
            session=console.db,
            actor=console.user,
            unit_id=_int(form, "unit_id", required=True) or 0,
            reason=_text(form, "reason"),
            new_owner_person_id=_int(form, "new_owner_person_id"),
        )
    except CardopsError as exc:
        console.db.rollback()
        return _ownership_page(
            console, form=shown, status_code=exc.status, **form_error_context(exc)
        )
    console.flash("{n} cards cancelled; the former owner is notified.", n=len(cards))
    console.db.commit()
    return console.redirect("/cards/ownership-change")


# --- one card -----------------------------------------------------------------------------


def _card_page(
    console: Console,
    card: Card,
    *,
    status_code: int = 200,
    form: dict[str, Any] | None = None,
    action: str = "",
    **extra: Any,
) -> HTMLResponse:
    db = console.db
    person = db.get(Person, card.person_id) if card.person_id else None
    org = db.get(Organisation, card.organisation_id) if card.organisation_id else None
    prop = db.get(Property, card.property_id) if card.property_id else None
    replaces = db.get(Card, card.replaces_id) if card.replaces_id else None
    replaced_by = db.execute(select(Card).where(Card.replaces_id == card.id)).scalar_one_or_none()
    return console.render(
        "cards/card.html",
        status_code=status_code,
        card=card,
        person=person,
        org=org,
        prop=prop,
        replaces=replaces,
        replaced_by=replaced_by,
        unit=service.unit_label(db, card.unit_id),
        grants=service.grants_of(db, card),
        events=service.history(db, card),
        expired=service.is_expired(card),
        form=form or {},
        action=action,
        office_cards=list(
            db.execute(
                select(Card.number)
                .where(Card.state == "office", Card.property_id == card.property_id)
                .order_by(Card.number)
                .limit(200)
            ).scalars()
        ),
        staff_kind=card.holder_kind in {k.value for k in card_policy.STAFF_KINDS},
        **documents_context(console, "card", card.id, return_to=f"/cards/{card.number}"),
        **_common(),
        **extra,
    )


@router.get("/cards/id/{card_id}", response_class=HTMLResponse)
def card_by_id(console: ConsolePage, card_id: RecordId) -> Response:
    require(console.user, CARDS_VIEW)
    return console.redirect(f"/cards/{service.get_card_by_id(console.db, card_id).number}")


@router.get("/cards/{number}", response_class=HTMLResponse)
def card_page(console: ConsolePage, number: str) -> HTMLResponse:
    require(console.user, CARDS_VIEW)
    return _card_page(console, service.get_card(console.db, number[:64]))


@router.post("/cards/{number}/{action}", response_class=HTMLResponse)
def card_action(console: ConsoleForm, number: str, action: str) -> Response:
    if action not in ACTIONS:
        raise NotFound("There is no card action {action}.", action=action[:32])
    require(
        console.user,
        CARDS_CANCEL
        if action == "cancel"
        else CARDS_ISSUE
        if action == "acknowledge"
        else CARDS_MANAGE,
    )
    db = console.db
    card = service.get_card(db, number[:64])
    form = console.form
    shown = {k: v for k, v in form.items() if isinstance(v, str)}
    method = _text(form, "payment_method") or "cash"
    message = N_("Saved.")
    target = card.number
    try:
        if action == "report-lost":
            service.report_lost(
                session=db,
                actor=console.user,
                card_number=card.number,
                channel=_text(form, "channel") or "desk",
                note=_text(form, "note"),
            )
            message = N_("Card reported lost: doors, parking and payments are stopped.")
        elif action == "cancel-loss":
            service.cancel_loss(
                session=db,
                actor=console.user,
                card_number=card.number,
                id_checked=_checked(form, "id_checked"),
                note=_text(form, "note"),
            )
            message = N_("Loss report cancelled: the card works again.")
        elif action == "reissue":
            new = service.reissue(
                session=db,
                actor=console.user,
                card_number=card.number,
                new_card_number=_text(form, "new_card_number"),
                payment_method=method,
            )
            target, message = new.number, N_("Card reissued.")
        elif action == "replace":
            new = service.replace(
                session=db,
                actor=console.user,
                card_number=card.number,
                new_card_number=_text(form, "new_card_number"),
                damage=_text(form, "damage"),
                note=_text(form, "note"),
                payment_method=method,
            )
            target, message = new.number, N_("Card replaced.")
        elif action == "return":
            service.return_card(
                session=db,
                actor=console.user,
                card_number=card.number,
                receipt_number=_text(form, "receipt_number") or None,
                damaged=_checked(form, "damaged"),
                damage_note=_text(form, "damage_note"),
                refund_method=_text(form, "refund_method") or "cash",
            )
            message = N_("Card returned; its number is cancelled.")
        elif action == "extend":
            service.extend(
                session=db,
                actor=console.user,
                card_number=card.number,
                months=_int(form, "months", required=True) or 0,
                payment_method=method,
            )
            message = N_("Card extended.")
        elif action == "cancel":
            service.cancel_staff_card(
                session=db,
                actor=console.user,
                card_number=card.number,
                reason=_text(form, "reason"),
                note=_text(form, "note"),
            )
            message = N_("Card cancelled.")
        else:
            service.acknowledge(session=db, actor=console.user, card_number=card.number)
            message = N_("The holder's signature on the register is recorded.")
    except CardopsError as exc:
        db.rollback()
        card = service.get_card(db, number[:64])
        return _card_page(
            console,
            card,
            status_code=exc.status,
            form=shown,
            action=action,
            **form_error_context(exc),
        )
    console.flash(message)
    db.commit()
    return console.redirect(f"/cards/{target}")
