"""Console pages of the service desk: ticket list, new ticket (agent on the phone, with caller
lookup), ticket page (history, reply / note, assignment, transitions, complaint steps,
callbacks, merge, attachments), SLA and calendar settings, reports; and the public pages
(support form and survey) that need no sign-in."""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from cardops.auth.service import require
from cardops.core.config import get_settings
from cardops.core.errors import CardopsError, ValidationFailed
from cardops.core.i18n import N_, gettext
from cardops.servicedesk import reports, service
from cardops.servicedesk.models import (
    CALLBACK_OUTCOMES,
    CHANNELS,
    COMPLAINT_STAGES,
    EVENT_KINDS,
    KINDS,
    PRIORITIES,
    SLA_TARGETS,
    STATE_LABELS,
    TICKET_TRANSITIONS,
    Ticket,
    TicketState,
)
from cardops.servicedesk.permissions import (
    REPORTS_VIEW,
    SLA_MANAGE,
    TICKETS_ASSIGN,
    TICKETS_EDIT,
    TICKETS_VIEW,
)
from cardops.web.deps import (
    DB,
    PRELOGIN_CSRF_COOKIE,
    Console,
    ConsoleForm,
    ConsolePage,
    RecordId,
    form_error_context,
)
from cardops.web.nav import NavItem
from cardops.web.templating import render

router = APIRouter()

SECTION = N_("Service desk")
NAV = [
    NavItem(N_("Tickets"), "/tickets", TICKETS_VIEW, section=SECTION, order=700),
    NavItem(N_("New ticket"), "/tickets/new", TICKETS_EDIT, section=SECTION, order=701),
    NavItem(N_("SLA and calendar"), "/tickets/settings", SLA_MANAGE, section=SECTION, order=702),
    NavItem(N_("Service reports"), "/tickets/reports", REPORTS_VIEW, section=SECTION, order=703),
]
PAGE = 50
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
TICKET_FIELDS = (
    "kind",
    "priority",
    "subject",
    "description",
    "contact_name",
    "contact_phone",
    "contact_email",
    "party_id",
    "card_number",
    "serial",
    "fault_type",
    "team_id",
    "assignee_id",
    "resolved",
)


def _values(console: Console, names: tuple[str, ...]) -> dict[str, str]:
    values = {}
    for name in names:
        raw = console.form.get(name)
        if isinstance(raw, list):
            raw = raw[0] if raw else ""
        values[name] = raw[:20000] if isinstance(raw, str) else ""
    return values


def _int_or_none(value: str, field: str) -> int | None:
    text = (value or "").strip()
    if not text:
        return None
    if not text.isdigit() or not 1 <= int(text) < 2**31:
        raise ValidationFailed("Choose a value from the list.", field=field)
    return int(text)


def _choices(labels: dict[str, str]) -> list[tuple[str, str]]:
    return [(code, gettext(label)) for code, label in labels.items()]


def _lookup(labels: dict[str, str]) -> Any:
    def label(code: str | None) -> str:
        text = code or ""
        return gettext(labels[text]) if text in labels else text

    return label


def _labels() -> dict[str, Any]:
    return {
        "kinds": _choices(KINDS),
        "priorities": _choices(PRIORITIES),
        "states": _choices(STATE_LABELS),
        "outcomes": _choices(CALLBACK_OUTCOMES),
        "kind_label": _lookup(KINDS),
        "priority_label": _lookup(PRIORITIES),
        "state_label": _lookup(STATE_LABELS),
        "channel_label": _lookup(CHANNELS),
        "event_label": _lookup(EVENT_KINDS),
        "outcome_label": _lookup(CALLBACK_OUTCOMES),
        "stage_label": _lookup(COMPLAINT_STAGES),
        "target_label": _lookup(SLA_TARGETS),
        "sla": service.sla_view,
    }


def _people(console: Console) -> dict[str, Any]:
    return {
        "teams": service.teams(console.db),
        "desk_users": service.desk_users(console.db),
    }


# --- list ---------------------------------------------------------------------------------


@router.get("/tickets", response_class=HTMLResponse)
def ticket_list(
    console: ConsolePage,
    q: str = "",
    kind: str = "",
    state: str = "",
    priority: str = "",
    team_id: str = "",
    assignee_id: str = "",
    breached: str = "",
    open_only: str = "",
    page: int = 1,
) -> HTMLResponse:
    require(console.user, TICKETS_VIEW)
    page = max(1, min(page, 100_000))
    kind = kind if kind in KINDS else ""
    state = state if state in STATE_LABELS else ""
    priority = priority if priority in PRIORITIES else ""
    team = int(team_id) if team_id.isdigit() and int(team_id) < 2**31 else None
    assignee = int(assignee_id) if assignee_id.isdigit() and int(assignee_id) < 2**31 else None
    rows = service.search_tickets(
        session=console.db,
        actor=console.user,
        q=q[:100],
        kind=kind or None,
        state=state or None,
        priority=priority or None,
        team_id=team,
        assignee_id=assignee,
        breached=breached == "1",
        open_only=open_only == "1",
        limit=PAGE + 1,
        offset=(page - 1) * PAGE,
    )
    return console.render(
        "servicedesk/tickets.html",
        rows=rows[:PAGE],
        has_more=len(rows) > PAGE,
        page=page,
        q=q[:100],
        kind=kind,
        state=state,
        priority=priority,
        team_id=team,
        assignee_id=assignee,
        breached=breached == "1",
        open_only=open_only == "1",
        **_people(console),
        **_labels(),
    )


# --- new ticket -----------------------------------------------------------------------------


def _new_form(
    console: Console,
    values: dict[str, str],
    *,
    lookup: str = "",
    status_code: int = 200,
    **extra: Any,
) -> HTMLResponse:
    matches = (
        service.lookup_caller(session=console.db, actor=console.user, q=lookup) if lookup else []
    )
    return console.render(
        "servicedesk/new.html",
        status_code=status_code,
        values=values,
        lookup=lookup,
        matches=matches,
        **_people(console),
        **_labels(),
        **extra,
    )


@router.get("/tickets/new", response_class=HTMLResponse)
def ticket_new(console: ConsolePage, lookup: str = "", use: int = -1) -> HTMLResponse:
    require(console.user, TICKETS_EDIT)
    values: dict[str, str] = {"kind": "inquiry", "priority": "normal"}
    lookup = lookup[:64]
    if lookup and use >= 0:
        matches = service.lookup_caller(session=console.db, actor=console.user, q=lookup)
        if use < len(matches):
            match = matches[use]
            values.update(
                contact_name=match.name,
                contact_phone=match.phone,
                contact_email=match.email,
                party_id=str(match.person.id) if match.person else "",
                card_number=match.card_number or "",
                serial=match.serial or "",
            )
            if match.serial:
                values["kind"] = "fault"
    elif lookup:
        digits = lookup.replace(" ", "").replace("-", "")
        if digits.isdigit() and len(digits) >= 7:
            values["contact_phone"] = lookup
    return _new_form(console, values, lookup=lookup)


@router.post("/tickets/new", response_class=HTMLResponse)
def ticket_create(console: ConsoleForm) -> Response:
    require(console.user, TICKETS_EDIT)
    values = _values(console, TICKET_FIELDS)
    try:
        ticket = service.create_ticket(
            session=console.db,
            actor=console.user,
            kind=values["kind"],
            priority=values["priority"] or "normal",
            subject=values["subject"],
            description=values["description"],
            contact_name=values["contact_name"],
            contact_phone=values["contact_phone"],
            contact_email=values["contact_email"],
            party_id=_int_or_none(values["party_id"], "contact"),
            card_number=values["card_number"],
            serial=values["serial"],
            fault_type=values["fault_type"],
            channel="phone",
            team_id=_int_or_none(values["team_id"], "team_id"),
            assignee_id=_int_or_none(values["assignee_id"], "assignee_id"),
            resolved_on_first_contact=values["resolved"] == "1",
        )
    except CardopsError as exc:
        console.db.rollback()
        return _new_form(console, values, status_code=exc.status, **form_error_context(exc))
    console.flash("Ticket {number} created.", number=ticket.number)
    console.db.commit()
    return console.redirect(f"/tickets/{ticket.id}")


# --- ticket page ----------------------------------------------------------------------------


def _ticket_page(
    console: Console,
    ticket: Ticket,
    *,
    status_code: int = 200,
    action: str = "",
    values: dict[str, str] | None = None,
    **extra: Any,
) -> HTMLResponse:
    db = console.db
    from cardops.auth.models import User

    events = service.ticket_events(db, ticket)
    actors = {e.actor_id for e in events if e.actor_id} | {
        x for x in (ticket.assignee_id, ticket.created_by_id) if x
    }
    names = {u.id: u.display_name for u in db.query(User).filter(User.id.in_(actors))}
    merged_into = db.get(Ticket, ticket.merged_into_id) if ticket.merged_into_id else None
    team = None
    if ticket.team_id:
        team = next(
            (t for t in service.teams(db, active_only=False) if t.id == ticket.team_id), None
        )
    moves = [
        t.value for t in TICKET_TRANSITIONS[TicketState(ticket.state)] if t != TicketState.MERGED
    ]
    return console.render(
        "servicedesk/ticket.html",
        status_code=status_code,
        ticket=ticket,
        view=service.sla_view(ticket),
        events=events,
        names=names,
        team=team,
        merged_into=merged_into,
        moves=moves,
        callbacks=service.callbacks(db, ticket),
        breaches=service.breaches(db, ticket),
        attachments=service.attachments(db, ticket),
        survey=service.ticket_survey(db, ticket),
        linked=service.linked_work(db, ticket),
        action=action,
        values=values or {},
        may_edit=console.can(TICKETS_EDIT),
        may_assign=console.can(TICKETS_ASSIGN),
        **_people(console),
        **_labels(),
        **extra,
    )


@router.get("/tickets/{ticket_id:int}", response_class=HTMLResponse)
def ticket_detail(console: ConsolePage, ticket_id: RecordId) -> HTMLResponse:
    require(console.user, TICKETS_VIEW)
    ticket = service.get_ticket(session=console.db, ticket_id=ticket_id)
    return _ticket_page(console, ticket)


ACTION_FIELDS = (
    "text",
    "pending",
    "team_id",
    "assignee_id",
    "state",
    "reason",
    "into",
    "outcome",
    "note",
    "stage",
    "priority",
)


def _run_action(console: Console, ticket: Ticket, action: str, values: dict[str, str]) -> str:
    """Perform one form action; returns the flash message (English source)."""
    db, user, tid = console.db, console.user, ticket.id
    if action == "reply":
        service.reply(
            session=db,
            actor=user,
            ticket_id=tid,
            text=values["text"],
            pending=values["pending"] == "1",
        )
        return N_("Reply sent.")
    if action == "note":
        service.add_note(session=db, actor=user, ticket_id=tid, text=values["text"])
        return N_("Note added.")
    if action == "assign":
        service.assign(
            session=db,
            actor=user,
            ticket_id=tid,
            team_id=_int_or_none(values["team_id"], "team_id"),
            assignee_id=_int_or_none(values["assignee_id"], "assignee_id"),
        )
        return N_("Assignment saved.")
    if action == "transition":
        service.transition(
            session=db, actor=user, ticket_id=tid, state=values["state"], reason=values["reason"]
        )
        return N_("State changed.")
    if action == "priority":
        service.set_priority(session=db, actor=user, ticket_id=tid, priority=values["priority"])
        return N_("Priority changed.")
    if action == "merge":
        text = values["into"].strip()
        if not text:
            raise ValidationFailed("Enter the number of the ticket to keep.", field="into")
        try:
            target = (
                service.get_ticket(session=db, ticket_id=int(text))
                if text.isdigit() and len(text) < 10
                else service.get_ticket_by_number(session=db, number=text)
            )
        except CardopsError:
            raise ValidationFailed(
                "Ticket {number} does not exist.", field="into", number=text
            ) from None
        service.merge(session=db, actor=user, ticket_id=tid, into_id=target.id)
        return N_("Ticket merged.")
    if action == "callback":
        service.record_callback(
            session=db, actor=user, ticket_id=tid, outcome=values["outcome"], note=values["note"]
        )
        return N_("Callback recorded.")
    if action == "complaint":
        service.complaint_step(
            session=db, actor=user, ticket_id=tid, stage=values["stage"], text=values["text"]
        )
        return N_("Complaint handling recorded.")
    if action == "attach":
        upload = console.form.get("file")
        if not isinstance(upload, UploadFile) or not (upload.filename or "").strip():
            raise ValidationFailed("Choose a file to upload.", field="file")
        data = upload.file.read(get_settings().documents_max_bytes + 1)
        service.attach(
            session=db,
            actor=user,
            ticket_id=tid,
            filename=upload.filename or "",
            data=data,
            content_type=upload.content_type,
        )
        return N_("File attached.")
    raise ValidationFailed("Unknown action.")


ACTION_PERMISSION = {"assign": TICKETS_ASSIGN, "merge": TICKETS_ASSIGN}


@router.post("/tickets/{ticket_id:int}/{action}", response_class=HTMLResponse)
def ticket_action(console: ConsoleForm, ticket_id: RecordId, action: str) -> Response:
    require(console.user, ACTION_PERMISSION.get(action, TICKETS_EDIT))
    ticket = service.get_ticket(session=console.db, ticket_id=ticket_id)
    values = _values(console, ACTION_FIELDS)
    try:
        message = _run_action(console, ticket, action, values)
    except CardopsError as exc:
        console.db.rollback()
        ticket = service.get_ticket(session=console.db, ticket_id=ticket_id)
        return _ticket_page(
            console,
            ticket,
            status_code=exc.status,
            action=action,
            values=values,
            **form_error_context(exc),
        )
    console.flash(message)
    console.db.commit()
    target = ticket.merged_into_id if action == "merge" and ticket.merged_into_id else ticket.id
    return console.redirect(f"/tickets/{target}")


# --- settings -------------------------------------------------------------------------------


def _settings_page(
    console: Console,
    *,
    status_code: int = 200,
    values: dict[str, str] | None = None,
    action: str = "",
    **extra: Any,
) -> HTMLResponse:
    db = console.db
    row = service.calendar_row(db)
    hours = service.calendar_hours_text(db)
    return console.render(
        "servicedesk/settings.html",
        status_code=status_code,
        policies=service.policy_table(db),
        hours=hours,
        weekdays=[(day, gettext(label)) for day, label in service.WEEKDAYS.items()],
        timezone=row.timezone if row else "Asia/Shanghai",
        holidays=service.holidays(db),
        team_rows=[(t, service.team_members(db, t)) for t in service.teams(db)],
        values=values or {},
        action=action,
        **_people(console),
        **_labels(),
        **extra,
    )


@router.get("/tickets/settings", response_class=HTMLResponse)
def settings_page(console: ConsolePage) -> HTMLResponse:
    require(console.user, SLA_MANAGE)
    return _settings_page(console)


SETTINGS_FIELDS = (
    "kind",
    "priority",
    "first_response",
    "update",
    "solution",
    "timezone",
    "day",
    "name",
    "working",
    "holiday_id",
    "code",
    "email",
    "team_id",
    "user_id",
    *(f"day{d}" for d in range(1, 8)),
)


@router.post("/tickets/settings/{action}", response_class=HTMLResponse)
def settings_action(console: ConsoleForm, action: str) -> Response:
    require(console.user, SLA_MANAGE)
    values = _values(console, SETTINGS_FIELDS)
    db, user = console.db, console.user
    try:
        if action == "policy":
            service.save_policy(
                session=db,
                actor=user,
                kind=values["kind"],
                priority=values["priority"],
                first_response=values["first_response"],
                update=values["update"],
                solution=values["solution"],
            )
        elif action == "calendar":
            service.save_calendar(
                session=db,
                actor=user,
                hours={d: values[f"day{d}"] for d in range(1, 8)},
                timezone=values["timezone"],
            )
        elif action == "holiday":
            service.add_holiday(
                session=db,
                actor=user,
                day=values["day"],
                name=values["name"],
                working=values["working"] == "1",
            )
        elif action == "holiday-remove":
            holiday_id = _int_or_none(values["holiday_id"], "holiday_id")
            if holiday_id is None:
                raise ValidationFailed("Choose a value from the list.", field="holiday_id")
            service.remove_holiday(session=db, actor=user, holiday_id=holiday_id)
        elif action == "team":
            service.create_team(
                session=db,
                actor=user,
                code=values["code"],
                name=values["name"],
                email=values["email"],
            )
        elif action == "member":
            team_id = _int_or_none(values["team_id"], "team_id")
            user_id = _int_or_none(values["user_id"], "user_id")
            if team_id is None or user_id is None:
                raise ValidationFailed("Choose a team and a person.", field="user_id")
            service.add_team_member(session=db, actor=user, team_id=team_id, user_id=user_id)
        else:
            raise ValidationFailed("Unknown action.")
    except CardopsError as exc:
        db.rollback()
        return _settings_page(
            console,
            status_code=exc.status,
            values=values,
            action=action,
            **form_error_context(exc),
        )
    console.flash("Saved.")
    db.commit()
    return console.redirect("/tickets/settings")


# --- reports --------------------------------------------------------------------------------


@router.get("/tickets/reports", response_class=HTMLResponse)
def reports_page(console: ConsolePage, start: str = "", end: str = "") -> HTMLResponse:
    require(console.user, REPORTS_VIEW)
    try:
        period = reports.period(start, end)
    except ValidationFailed as exc:
        period = reports.period("", "")
        return console.render(
            "servicedesk/reports.html",
            status_code=exc.status,
            report=reports.build(console.db, console.user, *period),
            charts=reports.charts,
            **_labels(),
            **form_error_context(exc),
        )
    report = reports.build(console.db, console.user, *period)
    return console.render(
        "servicedesk/reports.html", report=report, charts=reports.charts, **_labels()
    )


@router.get("/tickets/reports.xlsx")
def reports_xlsx(console: ConsolePage, start: str = "", end: str = "") -> Response:
    require(console.user, REPORTS_VIEW)
    report = reports.build(console.db, console.user, *reports.period(start, end))
    return Response(
        reports.to_xlsx(report),
        media_type=XLSX,
        headers={"Content-Disposition": 'attachment; filename="service-desk-report.xlsx"'},
    )


# --- public pages (no sign-in) --------------------------------------------------------------


def _public(
    request: Request, template: str, *, status_code: int = 200, **context: Any
) -> HTMLResponse:
    token = request.cookies.get(PRELOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
    html = render(template, request=request, user=None, form_csrf=token, **context)
    response = HTMLResponse(html, status_code=status_code)
    response.set_cookie(PRELOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict")
    return response


def _csrf_ok(request: Request, form: Any) -> bool:
    cookie = request.cookies.get(PRELOGIN_CSRF_COOKIE) or ""
    sent = str(form.get("csrf_token") or "")
    return bool(cookie) and secrets.compare_digest(cookie, sent)


PUBLIC_FIELDS = ("name", "phone", "email", "kind", "subject", "description")


@router.get("/support", response_class=HTMLResponse)
def support_form(request: Request) -> HTMLResponse:
    return _public(request, "servicedesk/support.html", values={}, kinds=_choices(KINDS))


@router.post("/support", response_class=HTMLResponse)
async def support_submit(request: Request, db: DB) -> Response:
    form = await request.form()
    values = {k: str(form.get(k) or "")[:20000] for k in PUBLIC_FIELDS}
    context: dict[str, Any] = {"values": values, "kinds": _choices(KINDS)}
    if not _csrf_ok(request, form):
        error = gettext(
            "The form has expired or did not come from this site. Reload the page and try again."
        )
        return _public(request, "servicedesk/support.html", status_code=403, error=error, **context)
    if str(form.get("website") or ""):  # the honeypot: people do not see this field
        return RedirectResponse("/support/thanks", status_code=303)
    client = request.client.host if request.client else None
    try:
        ticket = service.submit_web_form(
            session=db,
            name=values["name"],
            phone=values["phone"],
            email=values["email"],
            subject=values["subject"],
            description=values["description"],
            kind=values["kind"],
            source_ip=client,
        )
    except CardopsError as exc:
        db.rollback()
        return _public(
            request,
            "servicedesk/support.html",
            status_code=exc.status,
            **form_error_context(exc),
            **context,
        )
    db.commit()
    return RedirectResponse(f"/support/thanks?number={ticket.number}", status_code=303)


@router.get("/support/thanks", response_class=HTMLResponse)
def support_thanks(request: Request, number: str = "") -> HTMLResponse:
    clean = number if service.NUMBER_RE.fullmatch(number or "") else ""
    return _public(request, "servicedesk/thanks.html", number=clean)


@router.get("/survey/{token}", response_class=HTMLResponse)
def survey_page(request: Request, db: DB, token: str) -> HTMLResponse:
    survey = service.survey_by_token(db, token[:64])
    ticket = db.get(Ticket, survey.ticket_id)
    return _public(request, "servicedesk/survey.html", survey=survey, ticket=ticket, values={})


@router.post("/survey/{token}", response_class=HTMLResponse)
async def survey_submit(request: Request, db: DB, token: str) -> Response:
    form = await request.form()
    survey = service.survey_by_token(db, token[:64])
    ticket = db.get(Ticket, survey.ticket_id)
    values = {"score": str(form.get("score") or ""), "comment": str(form.get("comment") or "")}
    context: dict[str, Any] = {"survey": survey, "ticket": ticket, "values": values}
    if not _csrf_ok(request, form):
        error = gettext(
            "The form has expired or did not come from this site. Reload the page and try again."
        )
        return _public(request, "servicedesk/survey.html", status_code=403, error=error, **context)
    try:
        service.answer_survey(
            session=db, token=survey.token, score=values["score"], comment=values["comment"][:1000]
        )
    except CardopsError as exc:
        db.rollback()
        return _public(
            request,
            "servicedesk/survey.html",
            status_code=exc.status,
            **form_error_context(exc),
            **context,
        )
    db.commit()
    return _public(request, "servicedesk/survey.html", done=True, **context)
