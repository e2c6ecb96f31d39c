"""Console pages: the alert queue and its cases, rules and scenarios (edited with validation
that points at the error), merchant ratings and limits, backtest, reports."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from cardops.auth.service import require
from cardops.core.clock import local, utcnow
from cardops.core.errors import CardopsError, ValidationFailed
from cardops.core.i18n import N_, gettext
from cardops.merchants.reports import bar_chart_svg
from cardops.risk import service
from cardops.risk.expressions import WINDOWS
from cardops.risk.models import (
    ALERT_EVENTS,
    ALERT_STATES,
    DECLINE_CODES,
    OUTCOMES,
    RATINGS,
    SCORED_KINDS,
    Rule,
    Scenario,
)
from cardops.risk.permissions import (
    RISK_ALERTS,
    RISK_RATINGS,
    RISK_RULES,
    RISK_VIEW,
)
from cardops.web.deps import Console, ConsoleForm, ConsolePage, RecordId, form_error_context
from cardops.web.nav import NavItem

router = APIRouter()

SECTION = N_("Risk")
NAV = [
    NavItem(N_("Risk alerts"), "/risk/alerts", RISK_VIEW, section=SECTION, order=900),
    NavItem(N_("Risk rules"), "/risk/rules", RISK_VIEW, section=SECTION, order=901),
    NavItem(N_("Merchant ratings"), "/risk/ratings", RISK_VIEW, section=SECTION, order=902),
    NavItem(N_("Backtest"), "/risk/backtest", RISK_VIEW, section=SECTION, order=903),
    NavItem(N_("Risk reports"), "/risk/reports", RISK_VIEW, section=SECTION, order=904),
]
PAGE = 50
DECISIONS = {"approve": N_("Approve"), "review": N_("Review"), "decline": N_("Decline")}


def _labels() -> dict[str, Any]:
    return {
        "state_label": lambda c: gettext(ALERT_STATES.get(c) or c) if c else "",
        "outcome_label": lambda c: gettext(OUTCOMES.get(c) or c) if c else "",
        "event_label": lambda c: gettext(ALERT_EVENTS.get(c) or c),
        "kind_label": lambda c: gettext(SCORED_KINDS.get(c) or c),
        "decision_label": lambda c: gettext(DECISIONS.get(c) or c),
        "code_label": lambda c: gettext(DECLINE_CODES[c]) if c in DECLINE_CODES else "",
        "is_overdue": service.is_overdue,
    }


def _flag(value: Any) -> bool:
    return str(value or "").lower() in ("1", "on", "true", "yes")


def _date(value: str, field: str, default: date) -> date:
    text = (value or "").strip()
    if not text:
        return default
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed("Enter a date as YYYY-MM-DD.", field=field) from None


# --- alerts ------------------------------------------------------------------------------


@router.get("/risk/alerts", response_class=HTMLResponse)
def alert_list(
    console: ConsolePage, state: str = "", overdue: str = "", mine: str = "", page: int = 1
) -> HTMLResponse:
    require(console.user, RISK_VIEW)
    page = max(1, min(page, 10_000))
    state = state if state in ALERT_STATES else ""
    filters = service.AlertFilter(
        state=state,
        overdue=_flag(overdue),
        assignee_id=console.user.id if _flag(mine) else None,
    )
    rows = service.list_alerts(
        session=console.db,
        actor=console.user,
        filters=filters,
        limit=PAGE + 1,
        offset=(page - 1) * PAGE,
    )
    return console.render(
        "risk/alerts.html",
        rows=rows[:PAGE],
        has_more=len(rows) > PAGE,
        page=page,
        state=state,
        overdue=_flag(overdue),
        mine=_flag(mine),
        states=list(ALERT_STATES.items()),
        **_labels(),
    )


def _alert_page(
    console: Console, alert_id: int, status_code: int = 200, **extra: Any
) -> HTMLResponse:
    from cardops.auth.models import User

    alert = service.get_alert(session=console.db, actor=console.user, alert_id=alert_id)
    events = service.alert_events(session=console.db, actor=console.user, alert_id=alert_id)
    users = {
        u.id: u.display_name or u.username
        for u in console.db.query(User).filter(
            User.id.in_({e.actor_id for e in events if e.actor_id} | {alert.assignee_id or 0})
        )
    }
    return console.render(
        "risk/alert.html",
        status_code=status_code,
        alert=alert,
        events=events,
        users=users,
        transaction=service.alert_transaction(console.db, alert),
        outcomes=[(k, gettext(v)) for k, v in OUTCOMES.items()],
        values=extra.pop("values", {}),
        **_labels(),
        **extra,
    )


@router.get("/risk/alerts/{alert_id:int}", response_class=HTMLResponse)
def alert_detail(console: ConsolePage, alert_id: RecordId) -> HTMLResponse:
    require(console.user, RISK_VIEW)
    return _alert_page(console, alert_id)


@router.post("/risk/alerts/{alert_id:int}/{action}", response_class=HTMLResponse)
def alert_action(console: ConsoleForm, alert_id: RecordId, action: str) -> Response:
    require(console.user, RISK_ALERTS)
    form = console.form
    db, user = console.db, console.user
    try:
        if action == "take":
            service.take_alert(session=db, actor=user, alert_id=alert_id)
            console.flash("You have taken the alert up.")
        elif action == "assign":
            service.assign_alert(
                session=db, actor=user, alert_id=alert_id, assignee=str(form.get("assignee", ""))
            )
            console.flash("Alert assigned.")
        elif action == "note":
            service.add_note(
                session=db, actor=user, alert_id=alert_id, text=str(form.get("text", ""))
            )
            console.flash("Note added.")
        elif action == "close":
            service.close_alert(
                session=db,
                actor=user,
                alert_id=alert_id,
                outcome=str(form.get("outcome", "")),
                note=str(form.get("note", "")),
                stop_card=_flag(form.get("stop_card")),
                suspend_merchant=_flag(form.get("suspend_merchant")),
            )
            console.flash("Alert closed.")
        elif action == "reopen":
            service.reopen_alert(
                session=db, actor=user, alert_id=alert_id, note=str(form.get("note", ""))
            )
            console.flash("Alert reopened.")
        else:
            raise ValidationFailed("Unknown action.", field="action")
    except CardopsError as exc:
        db.rollback()
        return _alert_page(
            console,
            alert_id,
            status_code=exc.status,
            values={k: str(v) for k, v in form.items() if k != "csrf_token"},
            action=action,
            **form_error_context(exc),
        )
    db.commit()
    return console.redirect(f"/risk/alerts/{alert_id}")


# --- rules and scenarios -----------------------------------------------------------------


@router.get("/risk/rules", response_class=HTMLResponse)
def rule_list(console: ConsolePage) -> HTMLResponse:
    require(console.user, RISK_VIEW)
    scenarios = service.list_scenarios(session=console.db, actor=console.user)
    rules = service.list_rules(session=console.db, actor=console.user)
    by_scenario: dict[int, list[Rule]] = {}
    for rule in rules:
        by_scenario.setdefault(rule.scenario_id, []).append(rule)
    return console.render(
        "risk/rules.html",
        scenarios=scenarios,
        by_scenario=by_scenario,
        **_labels(),
    )


def _caret(expression: str, exc: CardopsError) -> dict[str, Any]:
    """The expression's line with a caret under the error's column, when it has one."""
    line, column = exc.params.get("line"), exc.params.get("column")
    if not isinstance(line, int) or not isinstance(column, int):
        return {}
    lines = (expression or "").splitlines() or [""]
    if not 1 <= line <= len(lines):
        return {}
    return {"error_line": lines[line - 1], "error_caret": " " * (column - 1) + "^"}


def _rule_form(
    console: Console,
    *,
    rule: Rule | None,
    values: dict[str, Any],
    status_code: int = 200,
    **extra: Any,
) -> HTMLResponse:
    scenarios = service.list_scenarios(session=console.db, actor=console.user)
    versions = (
        service.rule_versions(session=console.db, actor=console.user, rule_id=rule.id)
        if rule is not None
        else []
    )
    return console.render(
        "risk/rule_form.html",
        status_code=status_code,
        rule=rule,
        values=values,
        versions=versions,
        scenarios=[(s.id, f"{s.code} — {s.name}") for s in scenarios],
        codes=[("", gettext("The scenario's code"))]
        + [(k, gettext(v)) for k, v in DECLINE_CODES.items()],
        fields=service.field_list(),
        windows=WINDOWS,
        **extra,
    )


RULE_FIELDS = ("scenario_id", "code", "name", "expression", "score", "decline_code", "note")


def _rule_values(console: Console) -> dict[str, Any]:
    form = console.form
    values: dict[str, Any] = {k: str(form.get(k, "")) for k in RULE_FIELDS}
    values["active"] = _flag(form.get("active"))
    return values


@router.get("/risk/rules/new", response_class=HTMLResponse)
def rule_new(console: ConsolePage, scenario_id: int = 0) -> HTMLResponse:
    require(console.user, RISK_RULES)
    return _rule_form(
        console,
        rule=None,
        values={"scenario_id": scenario_id or "", "score": "10", "active": True},
    )


@router.post("/risk/rules/new", response_class=HTMLResponse)
def rule_create(console: ConsoleForm) -> Response:
    require(console.user, RISK_RULES)
    values = _rule_values(console)
    try:
        scenario_id = int(values["scenario_id"]) if values["scenario_id"].isdigit() else 0
        rule = service.create_rule(
            session=console.db,
            actor=console.user,
            scenario_id=scenario_id,
            code=values["code"],
            name=values["name"],
            expression=values["expression"],
            score=values["score"],
            decline_code=values["decline_code"],
            active=values["active"],
            note=values["note"],
        )
    except CardopsError as exc:
        console.db.rollback()
        return _rule_form(
            console,
            rule=None,
            values=values,
            status_code=exc.status,
            **form_error_context(exc),
            **_caret(values["expression"], exc),
        )
    console.flash("Rule {code} saved; running gateways apply it within seconds.", code=rule.code)
    console.db.commit()
    return console.redirect(f"/risk/rules/{rule.id}")


@router.get("/risk/rules/{rule_id:int}", response_class=HTMLResponse)
def rule_edit(console: ConsolePage, rule_id: RecordId) -> HTMLResponse:
    require(console.user, RISK_VIEW)
    rule = service.get_rule(session=console.db, actor=console.user, rule_id=rule_id)
    values = {
        "scenario_id": rule.scenario_id,
        "code": rule.code,
        "name": rule.name,
        "expression": rule.expression,
        "score": rule.score,
        "decline_code": rule.decline_code,
        "active": rule.active,
        "note": "",
    }
    return _rule_form(console, rule=rule, values=values)


@router.post("/risk/rules/{rule_id:int}", response_class=HTMLResponse)
def rule_update(console: ConsoleForm, rule_id: RecordId) -> Response:
    require(console.user, RISK_RULES)
    rule = service.get_rule(session=console.db, actor=console.user, rule_id=rule_id)
    values = _rule_values(console)
    values["code"], values["scenario_id"] = rule.code, rule.scenario_id
    try:
        service.update_rule(
            session=console.db,
            actor=console.user,
            rule_id=rule_id,
            name=values["name"],
            expression=values["expression"],
            score=values["score"],
            decline_code=values["decline_code"],
            active=values["active"],
            note=values["note"],
        )
    except CardopsError as exc:
        console.db.rollback()
        rule = service.get_rule(session=console.db, actor=console.user, rule_id=rule_id)
        return _rule_form(
            console,
            rule=rule,
            values=values,
            status_code=exc.status,
            **form_error_context(exc),
            **_caret(values["expression"], exc),
        )
    console.flash("Rule {code} saved; running gateways apply it within seconds.", code=rule.code)
    console.db.commit()
    return console.redirect(f"/risk/rules/{rule_id}")


@router.post("/risk/rules/{rule_id:int}/reset-errors", response_class=HTMLResponse)
def rule_reset_errors(console: ConsoleForm, rule_id: RecordId) -> Response:
    require(console.user, RISK_RULES)
    service.reset_rule_errors(session=console.db, actor=console.user, rule_id=rule_id)
    console.flash("Run-time failures cleared.")
    console.db.commit()
    return console.redirect(f"/risk/rules/{rule_id}")


SCENARIO_FIELDS = ("code", "name", "review_threshold", "decline_threshold", "decline_code")


def _scenario_form(
    console: Console,
    *,
    scenario: Scenario | None,
    values: dict[str, Any],
    status_code: int = 200,
    **extra: Any,
) -> HTMLResponse:
    return console.render(
        "risk/scenario_form.html",
        status_code=status_code,
        scenario=scenario,
        values=values,
        kinds=[(k, gettext(v)) for k, v in SCORED_KINDS.items()],
        codes=[(k, gettext(v)) for k, v in DECLINE_CODES.items()],
        **extra,
    )


def _scenario_values(console: Console) -> dict[str, Any]:
    form = console.form
    values: dict[str, Any] = {k: str(form.get(k, "")) for k in SCENARIO_FIELDS}
    kinds = form.get("kinds", [])
    values["kinds"] = [str(k) for k in (kinds if isinstance(kinds, list) else [kinds])]
    values["active"] = _flag(form.get("active"))
    return values


@router.get("/risk/scenarios/new", response_class=HTMLResponse)
def scenario_new(console: ConsolePage) -> HTMLResponse:
    require(console.user, RISK_RULES)
    values = {
        "review_threshold": "50",
        "decline_threshold": "100",
        "decline_code": "59",
        "kinds": ["purchase", "preauth", "completion"],
        "active": True,
    }
    return _scenario_form(console, scenario=None, values=values)


@router.post("/risk/scenarios/new", response_class=HTMLResponse)
def scenario_create(console: ConsoleForm) -> Response:
    require(console.user, RISK_RULES)
    values = _scenario_values(console)
    try:
        service.create_scenario(session=console.db, actor=console.user, **values)
    except CardopsError as exc:
        console.db.rollback()
        return _scenario_form(
            console, scenario=None, values=values, status_code=exc.status, **form_error_context(exc)
        )
    console.flash("Scenario saved.")
    console.db.commit()
    return console.redirect("/risk/rules")


@router.get("/risk/scenarios/{scenario_id:int}", response_class=HTMLResponse)
def scenario_edit(console: ConsolePage, scenario_id: RecordId) -> HTMLResponse:
    require(console.user, RISK_VIEW)
    s = service.get_scenario(session=console.db, actor=console.user, scenario_id=scenario_id)
    values = {
        "code": s.code,
        "name": s.name,
        "review_threshold": s.review_threshold,
        "decline_threshold": s.decline_threshold,
        "decline_code": s.decline_code,
        "kinds": s.kind_list,
        "active": s.active,
    }
    return _scenario_form(console, scenario=s, values=values)


@router.post("/risk/scenarios/{scenario_id:int}", response_class=HTMLResponse)
def scenario_update(console: ConsoleForm, scenario_id: RecordId) -> Response:
    require(console.user, RISK_RULES)
    s = service.get_scenario(session=console.db, actor=console.user, scenario_id=scenario_id)
    values = _scenario_values(console)
    values["code"] = s.code
    try:
        service.update_scenario(
            session=console.db,
            actor=console.user,
            scenario_id=scenario_id,
            name=values["name"],
            kinds=values["kinds"],
            review_threshold=values["review_threshold"],
            decline_threshold=values["decline_threshold"],
            decline_code=values["decline_code"],
            active=values["active"],
        )
    except CardopsError as exc:
        console.db.rollback()
        s = service.get_scenario(session=console.db, actor=console.user, scenario_id=scenario_id)
        return _scenario_form(
            console, scenario=s, values=values, status_code=exc.status, **form_error_context(exc)
        )
    console.flash("Scenario saved.")
    console.db.commit()
    return console.redirect("/risk/rules")


# --- ratings -----------------------------------------------------------------------------


def _ratings_page(console: Console, status_code: int = 200, **extra: Any) -> HTMLResponse:
    due = _flag(console.request.query_params.get("due"))
    rows = service.merchant_ratings(session=console.db, actor=console.user, due_only=due)
    limits = service.rating_limits(session=console.db, actor=console.user)
    return console.render(
        "risk/ratings.html",
        status_code=status_code,
        rows=rows,
        limits=limits,
        due=due,
        ratings=[(r, r) for r in RATINGS],
        **extra,
    )


@router.get("/risk/ratings", response_class=HTMLResponse)
def ratings(console: ConsolePage) -> HTMLResponse:
    require(console.user, RISK_VIEW)
    return _ratings_page(console)


def _yuan(fen: int | None) -> str:
    return "" if fen is None else f"{fen // 100}.{fen % 100:02d}"


@router.post("/risk/limits/{rating}", response_class=HTMLResponse)
def set_limit(console: ConsoleForm, rating: str) -> Response:
    require(console.user, RISK_RATINGS)
    form = console.form
    try:
        service.set_rating_limit(
            session=console.db,
            actor=console.user,
            rating=rating if rating in RATINGS else "?",
            single_limit=str(form.get("single_limit", "")),
            daily_limit=str(form.get("daily_limit", "")),
            monthly_limit=str(form.get("monthly_limit", "")),
        )
    except CardopsError as exc:
        console.db.rollback()
        return _ratings_page(
            console, status_code=exc.status, limit_rating=rating, **form_error_context(exc)
        )
    console.flash(
        "Limits of rating {rating} saved; the gateways apply them at once.", rating=rating
    )
    console.db.commit()
    return console.redirect("/risk/ratings")


@router.get("/risk/ratings/{merchant_id:int}", response_class=HTMLResponse)
def rating_detail(console: ConsolePage, merchant_id: RecordId) -> HTMLResponse:
    require(console.user, RISK_VIEW)
    return _rating_page(console, merchant_id)


def _rating_page(
    console: Console, merchant_id: int, status_code: int = 200, **extra: Any
) -> HTMLResponse:
    from cardops.auth.models import User
    from cardops.core.errors import NotFound

    found = [
        r
        for r in service.merchant_ratings(session=console.db, actor=console.user)
        if r.merchant_id == merchant_id
    ]
    if not found:
        raise NotFound("There is no merchant {id}.", id=merchant_id)
    history = service.rating_history(
        session=console.db, actor=console.user, merchant_id=merchant_id
    )
    users = {
        u.id: u.display_name or u.username
        for u in console.db.query(User).filter(User.id.in_({h.actor_id or 0 for h in history}))
    }
    return console.render(
        "risk/rating.html",
        status_code=status_code,
        row=found[0],
        history=history,
        users=users,
        ratings=[(r, r) for r in RATINGS],
        values=extra.pop("values", {}),
        **extra,
    )


@router.post("/risk/ratings/{merchant_id:int}", response_class=HTMLResponse)
def rate(console: ConsoleForm, merchant_id: RecordId) -> Response:
    require(console.user, RISK_RATINGS)
    form = console.form
    values = {"rating": str(form.get("rating", "")), "note": str(form.get("note", ""))}
    try:
        service.rate_merchant(
            session=console.db,
            actor=console.user,
            merchant_id=merchant_id,
            rating=values["rating"],
            note=values["note"],
        )
    except CardopsError as exc:
        console.db.rollback()
        return _rating_page(
            console, merchant_id, status_code=exc.status, values=values, **form_error_context(exc)
        )
    console.flash("Rating saved; the gateways apply its limits at once.")
    console.db.commit()
    return console.redirect(f"/risk/ratings/{merchant_id}")


# --- backtest and reports ----------------------------------------------------------------


@router.get("/risk/backtest", response_class=HTMLResponse)
def backtest(
    console: ConsolePage,
    scenario_id: int = 0,
    start: str = "",
    end: str = "",
    drafts: str = "1",
) -> HTMLResponse:
    require(console.user, RISK_VIEW)
    today = local(utcnow()).date()
    scenarios = service.list_scenarios(session=console.db, actor=console.user)
    values = {"scenario_id": scenario_id or "", "start": start, "end": end, "drafts": _flag(drafts)}
    result = None
    status = 200
    extra: dict[str, Any] = {}
    if scenario_id:
        try:
            result = service.backtest(
                session=console.db,
                actor=console.user,
                scenario_id=scenario_id,
                start=_date(start, "start", today - timedelta(days=6)),
                end=_date(end, "end", today),
                include_inactive=_flag(drafts),
            )
        except CardopsError as exc:
            status = exc.status
            extra = form_error_context(exc)
    return console.render(
        "risk/backtest.html",
        status_code=status,
        scenarios=[(s.id, f"{s.code} — {s.name}") for s in scenarios],
        values=values,
        result=result,
        outcomes=OUTCOMES,
        outcome_label=lambda c: gettext(OUTCOMES.get(c) or c),
        decision_label=_labels()["decision_label"],
        **extra,
    )


RC_LABELS = {
    "05": N_("Do not honour"),
    "13": N_("Invalid amount"),
    "14": N_("Invalid card number"),
    "25": N_("Original not found"),
    "30": N_("Format error"),
    "41": N_("Lost card"),
    "43": N_("Stolen card"),
    "51": N_("Insufficient funds"),
    "54": N_("Expired card"),
    "55": N_("Wrong PIN"),
    "57": N_("Not permitted to the card"),
    "58": N_("Not permitted to the terminal"),
    "59": N_("Suspected fraud"),
    "61": N_("Exceeds amount limit"),
    "65": N_("Exceeds frequency limit"),
    "75": N_("PIN tries exceeded"),
    "91": N_("Issuer unavailable"),
    "94": N_("Duplicate transmission"),
    "96": N_("System malfunction"),
}


@router.get("/risk/reports", response_class=HTMLResponse)
def reports(console: ConsolePage, start: str = "", end: str = "") -> HTMLResponse:
    require(console.user, RISK_VIEW)
    today = local(utcnow()).date()
    extra: dict[str, Any] = {}
    status = 200
    try:
        last = _date(end, "end", today)
        first = _date(start, "start", last - timedelta(days=13))
        data = service.report(session=console.db, actor=console.user, start=first, end=last)
    except CardopsError as exc:
        status = exc.status
        extra = form_error_context(exc)
        last, first = today, today - timedelta(days=13)
        data = service.report(session=console.db, actor=console.user, start=first, end=last)
    labels = [d[4:] for d in data.days]  # MMDD (the chart drops two more characters)
    return console.render(
        "risk/reports.html",
        status_code=status,
        data=data,
        start=first.isoformat(),
        end=last.isoformat(),
        alerts_chart=bar_chart_svg(
            [d[2:] for d in data.days],
            data.alerts_per_day,
            title=gettext("Alerts per day"),
        ),
        declines_chart=bar_chart_svg(
            [d[2:] for d in data.days],
            data.declines_per_day,
            title=gettext("Declines per day"),
        ),
        day_labels=labels,
        rc_label=lambda rc: gettext(RC_LABELS[rc]) if rc in RC_LABELS else "",
        outcome_label=lambda c: (
            gettext(OUTCOMES.get(c) or "Open") if c != "open" else gettext("Open")
        ),
        outcomes=[*OUTCOMES, "open"],
        **extra,
    )
