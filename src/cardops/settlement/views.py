"""Console pages: settlement windows and day summaries, rate cards and settings, merchant and
provider statements, finance data."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from cardops.auth.service import display_names, require
from cardops.core.clock import today as local_today
from cardops.core.errors import CardopsError, ValidationFailed
from cardops.core.i18n import N_
from cardops.core.money import parse_amount
from cardops.merchants.models import Merchant
from cardops.settlement import reports, service
from cardops.settlement.permissions import (
    SETTLEMENT_DATA,
    SETTLEMENT_RATES,
    SETTLEMENT_RUN,
    SETTLEMENT_STATEMENTS,
    SETTLEMENT_VIEW,
)
from cardops.web.deps import ConsoleForm, ConsolePage, RecordId, form_error_context
from cardops.web.nav import NavItem

router = APIRouter()
SECTION = N_("Settlement")
NAV = [
    NavItem(N_("Settlement days"), "/settlement", SETTLEMENT_VIEW, section=SECTION, order=900),
    NavItem(N_("Rate cards"), "/settlement/rates", SETTLEMENT_VIEW, section=SECTION, order=901),
    NavItem(
        N_("Merchant statements"),
        "/settlement/merchant-statement",
        SETTLEMENT_VIEW,
        section=SECTION,
        order=902,
    ),
    NavItem(
        N_("Profit-share statements"),
        "/settlement/statements",
        SETTLEMENT_STATEMENTS,
        section=SECTION,
        order=903,
    ),
    NavItem(N_("Finance data"), "/settlement/data", SETTLEMENT_DATA, section=SECTION, order=904),
]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _text(console: Any, name: str) -> str:
    raw = console.form.get(name)
    return raw[:100].strip() if isinstance(raw, str) else ""


def _optional_day(value: str | None, default: date, field: str) -> date:
    return service.parse_day(value, field=field) if value else default


@router.get("/settlement", response_class=HTMLResponse)
def windows(console: ConsolePage) -> HTMLResponse:
    require(console.user, SETTLEMENT_VIEW)
    return console.render(
        "settlement/windows.html",
        windows=service.list_windows(console.db),
        values={},
        yesterday=(local_today() - timedelta(days=1)).isoformat(),
    )


@router.post("/settlement/settle", response_class=HTMLResponse)
def settle(console: ConsoleForm) -> Response:
    require(console.user, SETTLEMENT_RUN)
    values = {"business_date": _text(console, "business_date")}
    try:
        day = service.parse_day(values["business_date"])
        result = service.settle_day(session=console.db, actor=console.user, business_date=day)
    except CardopsError as exc:
        console.db.rollback()
        return console.render(
            "settlement/windows.html",
            status_code=exc.status,
            windows=service.list_windows(console.db),
            values=values,
            yesterday=values["business_date"],
            **form_error_context(exc),
        )
    if result.unchanged:
        console.flash("The day was settled already; nothing changed.")
    else:
        console.flash("Settled.")
    console.db.commit()
    return console.redirect(f"/settlement/day/{day.isoformat()}")


@router.get("/settlement/day/{business_date}", response_class=HTMLResponse)
def day(console: ConsolePage, business_date: str) -> HTMLResponse:
    summary = reports.day_summary(
        session=console.db, actor=console.user, day=service.parse_day(business_date)
    )
    return console.render(
        "settlement/day.html",
        summary=summary,
        events=service.window_events(console.db, summary.window),
    )


@router.get("/settlement/day/{business_date}/summary.xlsx")
def day_xlsx(console: ConsolePage, business_date: str) -> Response:
    day = service.parse_day(business_date)
    summary = reports.day_summary(session=console.db, actor=console.user, day=day)
    return Response(
        reports.day_summary_xlsx(summary),
        media_type=XLSX,
        headers={"Content-Disposition": f'attachment; filename="settlement-{day}.xlsx"'},
    )


@router.get("/settlement/day/{business_date}/payout.csv")
def payout(console: ConsolePage, business_date: str) -> Response:
    day = service.parse_day(business_date)
    return Response(
        reports.payout_csv(session=console.db, actor=console.user, day=day),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="payout-{day}.csv"'},
    )


def _rates_context(console: Any) -> dict[str, Any]:
    from cardops.settlement.models import MerchantRateCard

    config = service.get_config(console.db)
    recent = console.db.execute(
        select(MerchantRateCard, Merchant)
        .join(Merchant, Merchant.id == MerchantRateCard.merchant_id)
        .order_by(MerchantRateCard.id.desc())
        .limit(100)
    ).all()
    merchants = console.db.execute(select(Merchant.id, Merchant.name).order_by(Merchant.name)).all()
    versions = service.rate_history(console.db, console.user)
    return {
        "config": config,
        "recent": recent,
        "versions": versions,
        "actors": display_names(console.db, (v.actor_id for v in versions)),
        "merchants": [(str(i), n) for i, n in merchants],
        "rules": reports.list_rules(console.db),
    }


@router.get("/settlement/rates", response_class=HTMLResponse)
def rates(console: ConsolePage) -> HTMLResponse:
    require(console.user, SETTLEMENT_VIEW)
    return console.render("settlement/rates.html", values={}, **_rates_context(console))


def _cap(text: str, field: str) -> int | None:
    return parse_amount(text, field=field) if text else None


@router.post("/settlement/rates/merchant", response_class=HTMLResponse)
def set_rate(console: ConsoleForm) -> Response:
    require(console.user, SETTLEMENT_RATES)
    names = ("merchant_id", "debit_rate", "debit_cap", "credit_rate", "effective_from", "note")
    values = {n: _text(console, n) for n in names}
    try:
        merchant_text = values["merchant_id"]
        if not merchant_text.isdigit():
            raise ValidationFailed("Choose a value from the list.", field="merchant_id")
        service.set_merchant_rate(
            session=console.db,
            actor=console.user,
            merchant_id=int(merchant_text),
            debit_bp=service.parse_percent(values["debit_rate"], field="debit_rate"),
            debit_cap=_cap(values["debit_cap"], "debit_cap"),
            credit_bp=service.parse_percent(values["credit_rate"], field="credit_rate"),
            effective_from=service.parse_day(values["effective_from"], field="effective_from"),
            note=values["note"],
        )
    except CardopsError as exc:
        console.db.rollback()
        return console.render(
            "settlement/rates.html",
            status_code=exc.status,
            values=values,
            **_rates_context(console),
            **form_error_context(exc),
        )
    console.flash("Saved.")
    console.db.commit()
    return console.redirect("/settlement/rates")


@router.post("/settlement/rates/settings", response_class=HTMLResponse)
def set_settings(console: ConsoleForm) -> Response:
    require(console.user, SETTLEMENT_RATES)
    names = (
        "cutoff",
        "bank_debit_rate",
        "bank_debit_cap",
        "bank_credit_rate",
        "default_debit_rate",
        "default_debit_cap",
        "default_credit_rate",
    )
    values = {n: _text(console, n) for n in names}
    try:
        service.update_config(
            session=console.db,
            actor=console.user,
            cutoff=values["cutoff"],
            bank_debit_bp=service.parse_percent(values["bank_debit_rate"], field="bank_debit_rate"),
            bank_debit_cap=_cap(values["bank_debit_cap"], "bank_debit_cap"),
            bank_credit_bp=service.parse_percent(
                values["bank_credit_rate"], field="bank_credit_rate"
            ),
            default_debit_bp=service.parse_percent(
                values["default_debit_rate"], field="default_debit_rate"
            ),
            default_debit_cap=_cap(values["default_debit_cap"], "default_debit_cap"),
            default_credit_bp=service.parse_percent(
                values["default_credit_rate"], field="default_credit_rate"
            ),
        )
    except CardopsError as exc:
        console.db.rollback()
        return console.render(
            "settlement/rates.html",
            status_code=exc.status,
            values=values,
            **_rates_context(console),
            **form_error_context(exc),
        )
    console.flash("Saved.")
    console.db.commit()
    return console.redirect("/settlement/rates")


@router.post("/settlement/rates/rule", response_class=HTMLResponse)
def create_rule(console: ConsoleForm) -> Response:
    require(console.user, SETTLEMENT_RATES)
    names = ("name", "kind", "amount", "level", "threshold")
    values = {n: _text(console, n) for n in names}
    try:
        reports.create_rule(
            session=console.db,
            actor=console.user,
            name=values["name"],
            kind=values["kind"],
            amount=parse_amount(values["amount"] or "0", field="amount"),
            level=values["level"] or None,
            threshold=parse_amount(values["threshold"] or "0", field="threshold"),
        )
    except CardopsError as exc:
        console.db.rollback()
        return console.render(
            "settlement/rates.html",
            status_code=exc.status,
            values=values,
            **_rates_context(console),
            **form_error_context(exc),
        )
    console.flash("Saved.")
    console.db.commit()
    return console.redirect("/settlement/rates")


@router.post("/settlement/rates/rule/{rule_id}/toggle", response_class=HTMLResponse)
def toggle_rule(console: ConsoleForm, rule_id: RecordId) -> Response:
    require(console.user, SETTLEMENT_RATES)
    rule = next((r for r in reports.list_rules(console.db) if r.id == rule_id), None)
    reports.set_rule_active(
        session=console.db,
        actor=console.user,
        rule_id=rule_id,
        active=not (rule.active if rule else True),
    )
    console.flash("Saved.")
    console.db.commit()
    return console.redirect("/settlement/rates")


@router.get("/settlement/merchant-statement", response_model=None)
def merchant_statement(
    console: ConsolePage,
    merchant_id: str = "",
    date_from: str = "",
    date_to: str = "",
    format: str = "html",
) -> Response:
    require(console.user, SETTLEMENT_VIEW)
    merchants = console.db.execute(select(Merchant.id, Merchant.name).order_by(Merchant.name)).all()
    context: dict[str, Any] = {
        "merchants": [(str(i), n) for i, n in merchants],
        "values": {"merchant_id": merchant_id, "date_from": date_from, "date_to": date_to},
        "statement": None,
    }
    if merchant_id:
        try:
            if not merchant_id.isdigit() or len(merchant_id) > 9:
                raise ValidationFailed("Choose a value from the list.", field="merchant_id")
            today = local_today()
            statement = reports.merchant_statement(
                session=console.db,
                actor=console.user,
                merchant_id=int(merchant_id),
                date_from=_optional_day(date_from, today.replace(day=1), "date_from"),
                date_to=_optional_day(date_to, today, "date_to"),
            )
        except CardopsError as exc:
            return console.render(
                "settlement/merchant_statement.html",
                status_code=exc.status,
                **context,
                **form_error_context(exc),
            )
        if format == "xlsx":
            return Response(reports.merchant_statement_xlsx(statement), media_type=XLSX)
        if format == "pdf":
            return Response(reports.merchant_statement_pdf(statement), media_type="application/pdf")
        context["statement"] = statement
    return console.render("settlement/merchant_statement.html", **context)


@router.get("/settlement/statements", response_model=None)
def statements(
    console: ConsolePage, provider_id: str = "", month: str = "", format: str = "html"
) -> Response:
    require(console.user, SETTLEMENT_STATEMENTS)
    providers = reports.statement_providers(console.db, console.user)
    context: dict[str, Any] = {
        "providers": [(str(p.id), f"{p.code} {p.name}") for p in providers],
        "values": {"provider_id": provider_id, "month": month or local_today().strftime("%Y-%m")},
        "statement": None,
    }
    if provider_id:
        try:
            if not provider_id.isdigit() or len(provider_id) > 9:
                raise ValidationFailed("Choose a value from the list.", field="provider_id")
            statement = reports.provider_statement(
                session=console.db,
                actor=console.user,
                provider_id=int(provider_id),
                month=context["values"]["month"],
            )
        except CardopsError as exc:
            if exc.status == 403:
                raise
            return console.render(
                "settlement/statements.html",
                status_code=exc.status,
                **context,
                **form_error_context(exc),
            )
        if format == "xlsx":
            return Response(reports.provider_statement_xlsx(statement), media_type=XLSX)
        context["statement"] = statement
    return console.render("settlement/statements.html", **context)


@router.get("/settlement/data", response_model=None)
def data(
    console: ConsolePage,
    date_from: str = "",
    date_to: str = "",
    by: str = "provider",
    period: str = "day",
    format: str = "html",
) -> Response:
    require(console.user, SETTLEMENT_DATA)
    today = local_today()
    values = {"date_from": date_from, "date_to": date_to, "by": by, "period": period}
    try:
        rows = reports.finance_data(
            session=console.db,
            actor=console.user,
            date_from=_optional_day(date_from, today.replace(day=1), "date_from"),
            date_to=_optional_day(date_to, today, "date_to"),
            by=by,
            period=period,
        )
    except CardopsError as exc:
        return console.render(
            "settlement/data.html",
            status_code=exc.status,
            rows=[],
            values=values,
            **form_error_context(exc),
        )
    if format == "xlsx":
        return Response(
            reports.finance_data_xlsx(rows, by, period),
            media_type=XLSX,
            headers={"Content-Disposition": 'attachment; filename="finance-data.xlsx"'},
        )
    return console.render("settlement/data.html", rows=rows, values=values)


# labels the templates translate from stored codes (window states and events, card types,
# reward kinds)
LABELS = (
    N_("open"),
    N_("closed"),
    N_("settled"),
    N_("opened"),
    N_("resettled"),
    N_("debit"),
    N_("credit"),
    N_("activation"),
    N_("volume"),
)
