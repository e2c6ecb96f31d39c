"""Service desk: the only code that changes tickets, SLA settings, callbacks and surveys.

Public functions take keyword-only arguments, a session and the acting user; they never commit.

For other domains (repairs, field service, ...)::

    from cardops.servicedesk.service import add_event, get_ticket

    add_event(session, ticket, actor, kind, text, *, data=None, public=False) -> TicketEvent

appends one line to a ticket's history thread (``kind`` is a short code such as ``"repair"``;
``text`` is shown as written; ``data`` is a JSON dict). It does not check permissions (the
calling domain already did) and does not commit. ``get_ticket(session=..., ticket_id=...)``
loads a ticket or raises NotFound; ``get_ticket_by_number(session=..., number=...)`` too.

Tickets come from a call (an agent, :func:`create_ticket`), an e-mail to the support address
(:func:`receive_email`; replies are threaded by In-Reply-To / References or by ``[T…]`` in the
subject) or the public web form (:func:`submit_web_form`). SLA deadlines are worked out by
:mod:`cardops.servicedesk.sla` in the operator's business hours and refreshed on every change;
:func:`sla_scan` records breaches and tells the supervisors through the outbox.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from email.message import EmailMessage, Message
from email.utils import parseaddr
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cardops.audit.service import record
from cardops.auth.models import Role, User, UserRole
from cardops.auth.service import require, system_user
from cardops.core.clock import as_utc, local, utcnow
from cardops.core.config import get_settings
from cardops.core.errors import (
    Conflict,
    FieldErrors,
    NotFound,
    RateLimited,
    ValidationFailed,
)
from cardops.core.i18n import N_
from cardops.notify import service as notify
from cardops.parties import service as parties
from cardops.parties.models import Document, Person
from cardops.servicedesk import sla
from cardops.servicedesk.models import (
    ACTIVE_STATES,
    CALLBACK_OUTCOMES,
    CHANNELS,
    COMPLAINT_STAGES,
    KINDS,
    PRIORITIES,
    STATE_LABELS,
    BusinessCalendar,
    Callback,
    Holiday,
    SlaBreach,
    SlaPolicy,
    Survey,
    Team,
    TeamMember,
    Ticket,
    TicketEvent,
    TicketState,
)
from cardops.servicedesk.permissions import (
    SLA_MANAGE,
    TICKETS_ASSIGN,
    TICKETS_EDIT,
    TICKETS_VIEW,
)

MAX_PAGE = 200
NUMBER_RE = re.compile(r"\[?(T\d{8}-\d{4,6})\]?", re.IGNORECASE)
OUTBOX_MSGID_RE = re.compile(r"cardops\.(\d+)@")
PHONE_RE = re.compile(r"^\+?[0-9][0-9\- ]{4,19}$")
EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{2,}$")
# Tickets one address may submit through the public form per hour.
WEB_FORM_LIMIT_PER_HOUR = 5
SUPERVISOR_ROLE = "call_supervisor"

# Default targets in business minutes (first response, update, solution) per priority;
# every kind × priority can be overridden in the SLA settings.
DEFAULT_TARGETS: dict[str, tuple[int, int, int]] = {
    "urgent": (30, 60, 240),
    "high": (60, 120, 540),
    "normal": (120, 240, 1080),
    "low": (240, 540, 2700),
}
DEFAULT_CALENDAR = "default"
WEEKDAYS: dict[int, str] = {
    1: N_("Monday"),
    2: N_("Tuesday"),
    3: N_("Wednesday"),
    4: N_("Thursday"),
    5: N_("Friday"),
    6: N_("Saturday"),
    7: N_("Sunday"),
}


def public_url() -> str:
    """Where customers reach the public pages (survey links): ``CARDOPS_PUBLIC_URL``."""
    settings = get_settings()
    base = settings.public_url or f"http://{settings.host}:{settings.port}"
    return base.rstrip("/")


def support_address() -> str:
    settings = get_settings()
    return settings.support_address or settings.smtp_from


# --- history ------------------------------------------------------------------------------


def add_event(
    session: Session,
    ticket: Ticket,
    actor: User | None,
    kind: str,
    text: str = "",
    *,
    data: dict[str, Any] | None = None,
    public: bool = False,
    message_id: str | None = None,
) -> TicketEvent:
    """Append a line to ``ticket``'s history (no permission check, no commit)."""
    event = TicketEvent(
        ticket_id=ticket.id,
        at=utcnow(),
        kind=kind[:24],
        actor_id=actor.id if actor is not None else None,
        public=public,
        text=text,
        data=data or {},
        message_id=(message_id or None) and message_id[:255],
    )
    session.add(event)
    session.flush()
    return event


def ticket_events(session: Session, ticket: Ticket) -> list[TicketEvent]:
    stmt = select(TicketEvent).where(TicketEvent.ticket_id == ticket.id).order_by(TicketEvent.id)
    return list(session.scalars(stmt))


def linked_work(session: Session, ticket: Ticket) -> list[tuple[str, str, str, str]]:
    """Repair cases and field visits of the repairs domain linked to the ticket:
    (kind, number, state, url). Empty when that domain is not installed."""
    try:
        from cardops.repairs.models import FieldVisit, RepairCase
    except ImportError:  # pragma: no cover - the repairs domain is optional
        return []
    rows: list[tuple[str, str, str, str]] = []
    for case in session.scalars(
        select(RepairCase).where(RepairCase.ticket_id == ticket.id).order_by(RepairCase.id)
    ):
        rows.append(("repair", case.number, case.state, f"/repairs/{case.id}"))
    for visit in session.scalars(
        select(FieldVisit).where(FieldVisit.ticket_id == ticket.id).order_by(FieldVisit.id)
    ):
        rows.append(("visit", visit.number, visit.state, f"/visits/{visit.id}"))
    return rows


def get_ticket(*, session: Session, ticket_id: int) -> Ticket:
    ticket = session.get(Ticket, ticket_id) if 1 <= ticket_id < 2**31 else None
    if ticket is None:
        raise NotFound("Ticket {ticket_id} does not exist.", ticket_id=ticket_id)
    return ticket


def get_ticket_by_number(*, session: Session, number: str) -> Ticket:
    ticket = session.scalars(select(Ticket).where(Ticket.number == number.strip().upper())).first()
    if ticket is None:
        raise NotFound("Ticket {number} does not exist.", number=number)
    return ticket


def _document_owner_exists(session: Session, ticket_id: int) -> bool:
    return session.get(Ticket, ticket_id) is not None


parties.register_document_owner(
    "ticket",
    label=N_("Ticket"),
    exists=_document_owner_exists,
    url=lambda i: f"/tickets/{i}",
)


# --- calendar and SLA policies ------------------------------------------------------------


def calendar_row(session: Session) -> BusinessCalendar | None:
    return session.scalars(
        select(BusinessCalendar).where(BusinessCalendar.name == DEFAULT_CALENDAR)
    ).first()


def holidays(session: Session) -> list[Holiday]:
    row = calendar_row(session)
    if row is None:
        return []
    stmt = select(Holiday).where(Holiday.calendar_id == row.id).order_by(Holiday.day)
    return list(session.scalars(stmt))


def load_calendar(session: Session) -> sla.Calendar:
    """The operator's calendar (Mon–Fri 09:00–18:00 Asia/Shanghai until someone edits it)."""
    row = calendar_row(session)
    if row is None:
        return sla.Calendar()
    hours = {
        int(day): sla.parse_hours(", ".join(f"{a}-{b}" for a, b in spans))
        for day, spans in (row.hours or {}).items()
    }
    days = holidays(session)
    return sla.Calendar(
        timezone=row.timezone,
        hours=hours,
        holidays=frozenset(h.day for h in days if not h.working),
        workdays=frozenset(h.day for h in days if h.working),
    )


def targets(
    session: Session, kind: str, priority: str
) -> tuple[int | None, int | None, int | None]:
    """(first response, update, solution) in business minutes for a kind × priority."""
    row = session.scalars(
        select(SlaPolicy).where(SlaPolicy.kind == kind, SlaPolicy.priority == priority)
    ).first()
    if row is not None:
        return row.first_response_minutes, row.update_minutes, row.solution_minutes
    return DEFAULT_TARGETS.get(priority, DEFAULT_TARGETS["normal"])


def policy_table(session: Session) -> list[dict[str, Any]]:
    """Every kind × priority with its targets (saved or default)."""
    rows = []
    for kind in KINDS:
        for priority in PRIORITIES:
            fr, upd, sol = targets(session, kind, priority)
            rows.append(
                {
                    "kind": kind,
                    "priority": priority,
                    "first_response": fr,
                    "update": upd,
                    "solution": sol,
                }
            )
    return rows


def _minutes(value: Any, field_name: str) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        number = -1
    if not 1 <= number <= 60 * 24 * 365:
        raise ValidationFailed(
            "Enter whole minutes between 1 and 525600, or leave it empty for no target.",
            field=field_name,
        )
    return number


def save_policy(
    *,
    session: Session,
    actor: User,
    kind: str,
    priority: str,
    first_response: Any,
    update: Any,
    solution: Any,
) -> SlaPolicy:
    require(actor, SLA_MANAGE)
    errors = FieldErrors()
    if kind not in KINDS:
        errors.add(ValidationFailed("Choose the ticket kind from the list.", field="kind"))
    if priority not in PRIORITIES:
        errors.add(ValidationFailed("Choose the priority from the list.", field="priority"))
    fr = errors.check(_minutes, first_response, "first_response")
    upd = errors.check(_minutes, update, "update")
    sol = errors.check(_minutes, solution, "solution")
    errors.raise_if_any()
    if fr is not None and sol is not None and sol < fr:
        raise ValidationFailed(
            "The solution target cannot be shorter than the first response target.",
            field="solution",
        )
    row = session.scalars(
        select(SlaPolicy).where(SlaPolicy.kind == kind, SlaPolicy.priority == priority)
    ).first()
    before = None
    if row is None:
        row = SlaPolicy(kind=kind, priority=priority)
        session.add(row)
    else:
        before = {
            "first_response_minutes": row.first_response_minutes,
            "update_minutes": row.update_minutes,
            "solution_minutes": row.solution_minutes,
        }
    row.first_response_minutes, row.update_minutes, row.solution_minutes = fr, upd, sol
    session.flush()
    record(session, actor, "servicedesk.sla_policy_saved", row, before=before)
    _refresh_open_tickets(session, kind=kind, priority=priority)
    return row


def _ensure_calendar(session: Session) -> BusinessCalendar:
    row = calendar_row(session)
    if row is None:
        row = BusinessCalendar(
            name=DEFAULT_CALENDAR,
            timezone=sla.DEFAULT_TIMEZONE,
            hours={
                str(day): [[f"{a:%H:%M}", f"{b:%H:%M}"] for a, b in spans]
                for day, spans in sla.DEFAULT_HOURS.items()
            },
        )
        session.add(row)
        session.flush()
    return row


def calendar_hours_text(session: Session) -> dict[int, str]:
    cal = load_calendar(session)
    return {day: sla.format_hours(cal.hours.get(day, ())) for day in WEEKDAYS}


def save_calendar(
    *, session: Session, actor: User, hours: dict[int, str], timezone: str | None = None
) -> BusinessCalendar:
    """Working hours per ISO weekday as ``"09:00-12:00, 13:00-18:00"`` (empty: day off)."""
    require(actor, SLA_MANAGE)
    errors = FieldErrors()
    parsed: dict[str, list[list[str]]] = {}
    for day in WEEKDAYS:
        text = (hours.get(day) or "").strip()[:200]
        try:
            spans = sla.parse_hours(text)
        except ValueError:
            errors.add(
                ValidationFailed(
                    "Write the hours as 09:00-18:00, several spans separated by commas.",
                    field=f"day{day}",
                )
            )
            continue
        if spans:
            parsed[str(day)] = [
                [f"{a:%H:%M}", "24:00" if b.hour == 0 and b.minute == 0 else f"{b:%H:%M}"]
                for a, b in spans
            ]
    zone = (timezone or "").strip() or None
    if zone is not None:
        try:
            from zoneinfo import ZoneInfo

            ZoneInfo(zone)
        except (KeyError, ValueError, OSError):
            errors.add(
                ValidationFailed(
                    "Unknown time zone; use a name such as Asia/Shanghai.", field="timezone"
                )
            )
    errors.raise_if_any()
    if not parsed:
        raise ValidationFailed("At least one day needs working hours.", field="day1")
    row = _ensure_calendar(session)
    before = {"timezone": row.timezone, "hours": row.hours}
    row.hours = parsed
    if zone:
        row.timezone = zone
    session.flush()
    record(session, actor, "servicedesk.calendar_saved", row, before=before)
    _refresh_open_tickets(session)
    return row


def add_holiday(
    *, session: Session, actor: User, day: Any, name: str = "", working: bool = False
) -> Holiday:
    require(actor, SLA_MANAGE)
    if isinstance(day, date):
        value = day
    else:
        try:
            value = date.fromisoformat(str(day or "").strip())
        except ValueError:
            raise ValidationFailed("Enter the date as YYYY-MM-DD.", field="day") from None
    row = _ensure_calendar(session)
    exists = session.scalars(
        select(Holiday).where(Holiday.calendar_id == row.id, Holiday.day == value)
    ).first()
    if exists is not None:
        raise Conflict("{day} is already in the calendar.", field="day", day=value.isoformat())
    holiday = Holiday(
        calendar_id=row.id, day=value, name=parties.plain_text(name)[:64], working=working
    )
    session.add(holiday)
    session.flush()
    record(session, actor, "servicedesk.holiday_added", holiday)
    _refresh_open_tickets(session)
    return holiday


def remove_holiday(*, session: Session, actor: User, holiday_id: int) -> None:
    require(actor, SLA_MANAGE)
    holiday = session.get(Holiday, holiday_id) if 1 <= holiday_id < 2**31 else None
    if holiday is None:
        raise NotFound("That calendar day does not exist.")
    record(session, actor, "servicedesk.holiday_removed", holiday)
    session.delete(holiday)
    session.flush()
    _refresh_open_tickets(session)


# --- SLA on a ticket ----------------------------------------------------------------------


def _pauses(ticket: Ticket) -> list[sla.Pause]:
    result: list[sla.Pause] = []
    for item in ticket.sla_pauses or []:
        start = datetime.fromisoformat(str(item[0]))
        end = datetime.fromisoformat(str(item[1])) if item[1] else None
        result.append((as_utc(start), as_utc(end) if end else None))
    return result


def refresh_sla(session: Session, ticket: Ticket, calendar: sla.Calendar | None = None) -> None:
    """Recompute the ticket's deadlines (a met target keeps the deadline it was met against)."""
    cal = calendar or load_calendar(session)
    fr, upd, sol = targets(session, ticket.kind, ticket.priority)
    pauses = _pauses(ticket)
    created = as_utc(ticket.created_at or utcnow())
    if ticket.first_responded_at is None:
        ticket.first_response_due = (
            sla.add_business_minutes(cal, created, fr, pauses) if fr else None
        )
    if ticket.resolved_at is None:
        ticket.solution_due = sla.add_business_minutes(cal, created, sol, pauses) if sol else None
    if ticket.state in ACTIVE_STATES and ticket.first_responded_at is not None and upd:
        base = as_utc(ticket.last_update_at or ticket.first_responded_at)
        ticket.update_due = sla.add_business_minutes(cal, base, upd, pauses)
    else:
        ticket.update_due = None


def _refresh_open_tickets(
    session: Session, *, kind: str | None = None, priority: str | None = None
) -> None:
    cal = load_calendar(session)
    stmt = select(Ticket).where(Ticket.state.in_(ACTIVE_STATES))
    if kind:
        stmt = stmt.where(Ticket.kind == kind)
    if priority:
        stmt = stmt.where(Ticket.priority == priority)
    for ticket in session.scalars(stmt):
        refresh_sla(session, ticket, cal)
    session.flush()


@dataclass
class SlaTarget:
    target: str  # first_response | update | solution
    due: datetime | None
    met_at: datetime | None
    breached: bool
    paused: bool

    @property
    def label(self) -> str:
        return {
            "first_response": N_("First response"),
            "update": N_("Update"),
            "solution": N_("Solution"),
        }[self.target]


@dataclass
class SlaView:
    targets: list[SlaTarget] = field(default_factory=list)
    paused: bool = False

    def get(self, target: str) -> SlaTarget:
        return next(t for t in self.targets if t.target == target)

    @property
    def nearest(self) -> SlaTarget | None:
        """The earliest deadline still to meet (or already missed) on an active ticket."""
        pending = [t for t in self.targets if t.due is not None and t.met_at is None]
        return min(pending, key=lambda t: t.due or utcnow(), default=None)

    @property
    def breached(self) -> bool:
        return any(t.breached for t in self.targets)


def sla_view(ticket: Ticket, now: datetime | None = None) -> SlaView:
    now = as_utc(now or utcnow())
    paused = ticket.state == TicketState.PENDING_CUSTOMER.value
    active = ticket.state in ACTIVE_STATES
    view = SlaView(paused=paused)
    solved_at = ticket.resolved_at or (ticket.closed_at if not active else None)
    for name, due, met in (
        ("first_response", ticket.first_response_due, ticket.first_responded_at),
        ("update", ticket.update_due if active else None, None),
        ("solution", ticket.solution_due, solved_at),
    ):
        due_utc = as_utc(due) if due else None
        met_utc = as_utc(met) if met else None
        if due_utc is None:
            breached = False
        elif met_utc is not None:
            breached = met_utc > due_utc
        else:
            breached = active and now > due_utc
        view.targets.append(SlaTarget(name, due_utc, met_utc, breached, paused and met is None))
    return view


# --- numbering, contacts, lookup ------------------------------------------------------------


def _next_number(session: Session, now: datetime) -> str:
    prefix = f"T{local(now):%Y%m%d}-"
    last = session.scalars(
        select(Ticket.number)
        .where(Ticket.number.like(f"{prefix}%"))
        .order_by(func.length(Ticket.number).desc(), Ticket.number.desc())
        .limit(1)
    ).first()
    seq = int(last.rsplit("-", 1)[1]) + 1 if last else 1
    return f"{prefix}{seq:04d}"


def normalize_phone(value: str, *, field_name: str = "contact.phone") -> str:
    text = parties.plain_text(value).strip()
    if not text:
        return ""
    compact = re.sub(r"[\s\-()]", "", text)
    if re.fullmatch(r"(\+?86|0086)?1\d{10}", compact):
        return parties.validate_mobile(compact, field=field_name)
    if not PHONE_RE.fullmatch(text) or not 5 <= len(compact) <= 20:
        raise ValidationFailed(
            "Enter a phone number: a mobile such as 13800138000 or a landline such as "
            "028-85551234.",
            field=field_name,
        )
    return text


def normalize_email_address(value: str, *, field_name: str = "contact.email") -> str:
    text = (value or "").strip().lower()
    if not text:
        return ""
    if len(text) > 254 or not EMAIL_RE.fullmatch(text):
        raise ValidationFailed("Enter a valid e-mail address.", field=field_name)
    return text


def _clean_text(
    value: str | None,
    *,
    field_name: str,
    max_length: int,
    required: bool = False,
    multiline: bool = False,
) -> str:
    text = parties.plain_text(value or "", multiline=multiline).strip()
    if required and not text:
        raise ValidationFailed("This field is required.", field=field_name)
    if len(text) > max_length:
        raise ValidationFailed(
            "At most {n} characters are accepted.", field=field_name, n=max_length
        )
    return text


@dataclass
class CallerMatch:
    """A caller found by phone, card number or terminal serial."""

    how: str  # phone | card | serial | ticket
    person: Person | None = None
    name: str = ""
    phone: str = ""
    email: str = ""
    card_number: str | None = None
    serial: str | None = None
    terminal_id: int | None = None
    merchant_id: int | None = None
    merchant_name: str = ""
    tickets: list[Ticket] = field(default_factory=list)


def lookup_caller(*, session: Session, actor: User, q: str) -> list[CallerMatch]:
    """Who is calling: persons by mobile, cards by number, terminals by serial, and callers
    of earlier tickets with the same phone; each with their recent tickets."""
    require(actor, TICKETS_VIEW)
    from cardops.cards.models import Card
    from cardops.merchants.models import Merchant
    from cardops.terminals.models import Terminal

    text = parties.plain_text(q).strip()[:64]
    if len(text) < 3:
        return []
    matches: list[CallerMatch] = []
    person: Person | None
    compact = re.sub(r"[\s\-()]", "", text)
    for person in session.scalars(select(Person).where(Person.mobile == compact).limit(10)):
        matches.append(
            CallerMatch("phone", person, person.name, person.mobile or "", person.email or "")
        )
    for card in session.scalars(select(Card).where(Card.number == text.upper()).limit(5)):
        person = session.get(Person, card.person_id) if card.person_id else None
        matches.append(
            CallerMatch(
                "card",
                person,
                person.name if person else "",
                (person.mobile or "") if person else "",
                (person.email or "") if person else "",
                card_number=card.number,
            )
        )
    for unit in session.scalars(select(Terminal).where(Terminal.serial == text.upper()).limit(5)):
        merchant = session.get(Merchant, unit.merchant_id) if unit.merchant_id else None
        person = (
            session.get(Person, merchant.legal_person_id)
            if merchant and merchant.legal_person_id
            else None
        )
        matches.append(
            CallerMatch(
                "serial",
                person,
                person.name if person else "",
                (person.mobile or "") if person else "",
                (person.email or "") if person else "",
                serial=unit.serial,
                terminal_id=unit.id,
                merchant_id=merchant.id if merchant else None,
                merchant_name=merchant.name if merchant else "",
            )
        )
    if not matches:
        earlier = session.scalars(
            select(Ticket)
            .where(Ticket.contact_phone == compact)
            .order_by(Ticket.id.desc())
            .limit(1)
        ).first()
        if earlier is not None:
            matches.append(
                CallerMatch(
                    "ticket",
                    None,
                    earlier.contact_name,
                    earlier.contact_phone,
                    earlier.contact_email,
                )
            )
    for match in matches:
        conditions = []
        if match.person is not None:
            conditions.append(Ticket.party_id == match.person.id)
        if match.phone:
            conditions.append(Ticket.contact_phone == match.phone)
        if match.serial:
            conditions.append(Ticket.serial == match.serial)
        if conditions:
            match.tickets = list(
                session.scalars(
                    select(Ticket).where(or_(*conditions)).order_by(Ticket.id.desc()).limit(10)
                )
            )
    return matches


# --- creating tickets -----------------------------------------------------------------------


def create_ticket(
    *,
    session: Session,
    actor: User,
    kind: str,
    priority: str = "normal",
    subject: str,
    description: str = "",
    contact_name: str = "",
    contact_phone: str = "",
    contact_email: str = "",
    party_id: int | None = None,
    card_number: str | None = None,
    serial: str | None = None,
    fault_type: str = "",
    channel: str = "phone",
    team_id: int | None = None,
    assignee_id: int | None = None,
    source_ip: str | None = None,
    message_id: str | None = None,
    resolved_on_first_contact: bool = False,
) -> Ticket:
    """Open a ticket. The contact is a known person (``party_id``) or a name with a phone or
    e-mail address; without one the ticket is refused (field ``contact``)."""
    require(actor, TICKETS_EDIT)
    from cardops.terminals.models import Terminal

    errors = FieldErrors()
    if kind not in KINDS:
        errors.add(
            ValidationFailed("Choose the kind: inquiry, complaint, fault or change.", field="kind")
        )
    if priority not in PRIORITIES:
        errors.add(
            ValidationFailed("Choose the priority: low, normal, high or urgent.", field="priority")
        )
    if channel not in CHANNELS:
        errors.add(ValidationFailed("Unknown channel.", field="channel"))
    clean_subject = errors.check(
        _clean_text, subject, field_name="subject", max_length=200, required=True
    )
    clean_description = errors.check(
        _clean_text, description, field_name="description", max_length=20000, multiline=True
    )
    name = errors.check(_clean_text, contact_name, field_name="contact.name", max_length=128)
    phone = errors.check(normalize_phone, contact_phone or "")
    email = errors.check(normalize_email_address, contact_email or "")
    clean_fault = errors.check(_clean_text, fault_type, field_name="fault_type", max_length=64)
    person: Person | None = None
    if party_id is not None:
        person = session.get(Person, party_id) if 1 <= party_id < 2**31 else None
        if person is None:
            errors.add(
                ValidationFailed(
                    "There is no person with number {party_id}.",
                    field="contact.party_id",
                    party_id=party_id,
                )
            )
    elif not (name and (phone or email)):
        errors.add(
            ValidationFailed(
                "Give the contact: the caller's name and phone (or e-mail), or a known "
                "person's party_id.",
                field="contact",
            )
        )
    unit = None
    clean_serial = (serial or "").strip().upper()[:40] or None
    if clean_serial:
        if not re.fullmatch(r"[A-Z0-9\-_/.]{3,40}", clean_serial):
            errors.add(
                ValidationFailed(
                    "A serial number is 3–40 letters, digits or - _ / .", field="serial"
                )
            )
        else:
            unit = session.scalars(select(Terminal).where(Terminal.serial == clean_serial)).first()
    clean_card = (card_number or "").strip().upper()[:32] or None
    team = _team_or_error(session, team_id, errors)
    assignee = _user_or_error(session, assignee_id, errors)
    errors.raise_if_any()
    now = utcnow()
    ticket = Ticket(
        kind=kind,
        priority=priority,
        state=TicketState.NEW.value,
        channel=channel,
        subject=clean_subject,
        description=clean_description or "",
        party_id=person.id if person else None,
        contact_name=name or (person.name if person else ""),
        contact_phone=phone or ((person.mobile or "") if person else ""),
        contact_email=email or ((person.email or "") if person else ""),
        card_number=clean_card,
        serial=clean_serial,
        terminal_id=unit.id if unit else None,
        merchant_id=unit.merchant_id if unit else None,
        fault_type=clean_fault or "",
        team_id=team.id if team else None,
        assignee_id=assignee.id if assignee else None,
        created_by_id=actor.id,
        source_ip=(source_ip or None) and source_ip[:45],
        complaint_stage="received" if kind == "complaint" else None,
        sla_pauses=[],
        created_at=now,
        last_contact_at=now,
    )
    for _ in range(5):
        ticket.number = _next_number(session, now)
        try:
            with session.begin_nested():
                session.add(ticket)
                session.flush()
            break
        except IntegrityError:
            continue
    else:  # pragma: no cover - five writers numbering at the same instant
        raise Conflict("Could not number the ticket; try again.")
    refresh_sla(session, ticket)
    add_event(
        session,
        ticket,
        actor,
        "created",
        clean_description or "",
        data={"channel": channel, "kind": kind, "priority": priority},
        public=channel in ("email", "web"),
        message_id=message_id,
    )
    record(session, actor, "ticket.created", ticket)
    if resolved_on_first_contact:
        reply(
            session=session,
            actor=actor,
            ticket_id=ticket.id,
            text=clean_description or clean_subject or "",
            send=False,
        )
        ticket.first_contact_resolution = True
        transition(session=session, actor=actor, ticket_id=ticket.id, state="resolved")
    return ticket


def _team_or_error(session: Session, team_id: int | None, errors: FieldErrors) -> Team | None:
    if team_id is None:
        return None
    team = session.get(Team, team_id) if 1 <= team_id < 2**31 else None
    if team is None or not team.is_active:
        errors.add(ValidationFailed("Choose the team from the list.", field="team_id"))
        return None
    return team


def _user_or_error(session: Session, user_id: int | None, errors: FieldErrors) -> User | None:
    if user_id is None:
        return None
    user = session.get(User, user_id) if 1 <= user_id < 2**31 else None
    if user is None or not user.is_active or user.is_system:
        errors.add(ValidationFailed("Choose the person from the list.", field="assignee_id"))
        return None
    return user


def submit_web_form(
    *,
    session: Session,
    name: str,
    phone: str,
    email: str,
    subject: str,
    description: str,
    kind: str = "inquiry",
    source_ip: str | None = None,
) -> Ticket:
    """A ticket from the public web form (no login): acts as the system user; at most
    ``WEB_FORM_LIMIT_PER_HOUR`` submissions per address and hour."""
    if kind not in ("inquiry", "complaint", "fault", "change"):
        kind = "inquiry"
    if source_ip:
        since = utcnow() - timedelta(hours=1)
        count = session.scalar(
            select(func.count(Ticket.id)).where(
                Ticket.source_ip == source_ip[:45], Ticket.created_at >= since
            )
        )
        if (count or 0) >= WEB_FORM_LIMIT_PER_HOUR:
            raise RateLimited(
                "Too many requests from your address. Please call us or try again in an hour."
            )
    errors = FieldErrors()
    if not (phone or "").strip() and not (email or "").strip():
        errors.add(
            ValidationFailed("Give a phone number or an e-mail address.", field="contact.phone")
        )
    if not parties.plain_text(name or "").strip():
        errors.add(ValidationFailed("Enter your name.", field="contact.name"))
    errors.raise_if_any()
    return create_ticket(
        session=session,
        actor=system_user(session),
        kind=kind,
        priority="normal",
        subject=subject,
        description=description,
        contact_name=name,
        contact_phone=phone,
        contact_email=email,
        channel="web",
        source_ip=source_ip,
    )


# --- working on tickets ---------------------------------------------------------------------


def _live(ticket: Ticket) -> None:
    if ticket.state == TicketState.MERGED.value:
        raise Conflict(
            "Ticket {number} was merged into another ticket; work on that one.",
            number=ticket.number,
        )


def _set_state(
    session: Session, ticket: Ticket, actor: User | None, target: TicketState, note: str = ""
) -> None:
    now = utcnow()
    old = ticket.transition(target)
    pauses = [list(p) for p in (ticket.sla_pauses or [])]
    if target == TicketState.PENDING_CUSTOMER:
        pauses.append([now.isoformat(), None])
    elif old == TicketState.PENDING_CUSTOMER and pauses and pauses[-1][1] is None:
        pauses[-1][1] = now.isoformat()
    if target in (TicketState.RESOLVED, TicketState.CLOSED) and ticket.first_responded_at is None:
        ticket.first_responded_at = now  # a solution answers the ticket too
    if target == TicketState.RESOLVED:
        ticket.resolved_at = now
    if target == TicketState.CLOSED:
        ticket.closed_at = now
        if ticket.resolved_at is None:
            ticket.resolved_at = now
    if target == TicketState.OPEN and old in (TicketState.RESOLVED, TicketState.CLOSED):
        ticket.resolved_at = None
        ticket.closed_at = None
        ticket.reopen_count = (ticket.reopen_count or 0) + 1
        ticket.first_contact_resolution = False
    ticket.sla_pauses = pauses
    refresh_sla(session, ticket)
    add_event(
        session,
        ticket,
        actor,
        "state",
        note,
        data={"from": old.value, "to": target.value},
    )


def transition(
    *, session: Session, actor: User, ticket_id: int, state: str, reason: str = ""
) -> Ticket:
    """Move a ticket along its lifecycle. Closing a complaint needs a callback on record or a
    ``reason``; closing sends the satisfaction survey."""
    require(actor, TICKETS_EDIT)
    ticket = get_ticket(session=session, ticket_id=ticket_id)
    try:
        target = TicketState(state)
    except ValueError:
        raise ValidationFailed("Choose the new state from the list.", field="state") from None
    if target == TicketState.MERGED:
        raise ValidationFailed("Use merge to merge a ticket into another.", field="state")
    clean_reason = _clean_text(reason, field_name="reason", max_length=500)
    if target == TicketState.CLOSED and ticket.kind == "complaint":
        has_callback = session.scalar(
            select(func.count(Callback.id)).where(Callback.ticket_id == ticket.id)
        )
        if not has_callback and not clean_reason:
            raise ValidationFailed(
                "A complaint is closed only after a callback to the customer; record the "
                "callback or give the reason for closing without one.",
                field="reason",
            )
        if not has_callback:
            ticket.close_reason = clean_reason
    before = {"state": ticket.state}
    _set_state(session, ticket, actor, target, clean_reason)
    record(session, actor, "ticket.transition", ticket, before=before, reason=clean_reason)
    if target == TicketState.CLOSED:
        send_survey(session=session, ticket=ticket, actor=actor)
    return ticket


def _send_to_customer(
    session: Session, ticket: Ticket, actor: User | None, subject: str, body: str
) -> int | None:
    """Queue an e-mail (or an SMS when only a phone is known); returns the outbox id."""
    ref = f"ticket:{ticket.id}"
    if ticket.contact_email:
        message = notify.enqueue(
            session,
            channel="email",
            recipient=ticket.contact_email,
            subject=f"[{ticket.number}] {subject}"[:200],
            body=body,
            actor=actor,
            ref=ref,
        )
        return message.id
    phone = re.sub(r"\D", "", ticket.contact_phone or "")
    if re.fullmatch(r"1[3-9]\d{9}", phone):
        message = notify.enqueue(
            session,
            channel="sms",
            recipient=phone,
            subject="",
            body=f"[{ticket.number}] {body}"[:300],
            actor=actor,
            ref=ref,
        )
        return message.id
    return None


def reply(
    *,
    session: Session,
    actor: User,
    ticket_id: int,
    text: str,
    pending: bool = False,
    send: bool = True,
) -> TicketEvent:
    """A reply to the customer: it goes out through the outbox (e-mail, or SMS when only a
    mobile is known), counts as the first response / an update, and with ``pending`` leaves
    the ticket waiting for the customer (the SLA clock pauses)."""
    require(actor, TICKETS_EDIT)
    ticket = get_ticket(session=session, ticket_id=ticket_id)
    _live(ticket)
    body = _clean_text(text, field_name="text", max_length=20000, required=True, multiline=True)
    now = utcnow()
    outbox_id = None
    if send:
        outbox_id = _send_to_customer(session, ticket, actor, ticket.subject, body)
    if ticket.first_responded_at is None:
        ticket.first_responded_at = now
    ticket.last_update_at = now
    event = add_event(
        session, ticket, actor, "reply", body, public=True, data={"outbox_id": outbox_id}
    )
    if ticket.state in (TicketState.RESOLVED.value, TicketState.CLOSED.value):
        pass  # a reply after resolution does not reopen; the customer's answer does
    elif pending and ticket.state != TicketState.PENDING_CUSTOMER.value:
        _set_state(session, ticket, actor, TicketState.PENDING_CUSTOMER)
    elif ticket.state == TicketState.NEW.value:
        _set_state(session, ticket, actor, TicketState.OPEN)
    refresh_sla(session, ticket)
    record(session, actor, "ticket.replied", ticket, event_id=event.id, outbox_id=outbox_id)
    return event


def add_note(*, session: Session, actor: User, ticket_id: int, text: str) -> TicketEvent:
    """An internal note: seen by staff only, never sent, does not stop any SLA clock."""
    require(actor, TICKETS_EDIT)
    ticket = get_ticket(session=session, ticket_id=ticket_id)
    body = _clean_text(text, field_name="text", max_length=20000, required=True, multiline=True)
    event = add_event(session, ticket, actor, "note", body)
    record(session, actor, "ticket.note", ticket, event_id=event.id)
    return event


def assign(
    *,
    session: Session,
    actor: User,
    ticket_id: int,
    team_id: int | None = None,
    assignee_id: int | None = None,
) -> Ticket:
    require(actor, TICKETS_ASSIGN)
    ticket = get_ticket(session=session, ticket_id=ticket_id)
    _live(ticket)
    errors = FieldErrors()
    team = _team_or_error(session, team_id, errors)
    user = _user_or_error(session, assignee_id, errors)
    errors.raise_if_any()
    if user is not None and team is not None:
        member = session.scalars(
            select(TeamMember).where(TeamMember.team_id == team.id, TeamMember.user_id == user.id)
        ).first()
        if member is None:
            raise ValidationFailed(
                "{user} is not a member of team {team}.",
                field="assignee_id",
                user=user.display_name,
                team=team.name,
            )
    before = {"team_id": ticket.team_id, "assignee_id": ticket.assignee_id}
    ticket.team_id = team.id if team else None
    ticket.assignee_id = user.id if user else None
    if ticket.state == TicketState.NEW.value and (team or user):
        _set_state(session, ticket, actor, TicketState.OPEN)
    add_event(
        session,
        ticket,
        actor,
        "assigned",
        " / ".join(x for x in (team.name if team else "", user.display_name if user else "") if x),
        data={"team_id": ticket.team_id, "assignee_id": ticket.assignee_id},
    )
    record(session, actor, "ticket.assigned", ticket, before=before)
    if user is not None and user.id != actor.id and user.email:
        notify.enqueue(
            session,
            channel="email",
            recipient=user.email,
            subject=f"[{ticket.number}] {ticket.subject}"[:200],
            body=f"Ticket {ticket.number} was assigned to you.\n工单 {ticket.number} 已分派给您。",
            actor=actor,
            ref=f"ticket:{ticket.id}",
        )
    return ticket


def set_priority(*, session: Session, actor: User, ticket_id: int, priority: str) -> Ticket:
    require(actor, TICKETS_EDIT)
    ticket = get_ticket(session=session, ticket_id=ticket_id)
    _live(ticket)
    if priority not in PRIORITIES:
        raise ValidationFailed(
            "Choose the priority: low, normal, high or urgent.", field="priority"
        )
    before = {"priority": ticket.priority}
    ticket.priority = priority
    refresh_sla(session, ticket)
    add_event(
        session, ticket, actor, "priority", "", data={"from": before["priority"], "to": priority}
    )
    record(session, actor, "ticket.priority", ticket, before=before)
    return ticket


def merge(*, session: Session, actor: User, ticket_id: int, into_id: int) -> Ticket:
    """Merge a duplicate into the surviving ticket: its history stays on it, the survivor gets
    a line naming it, and the duplicate is marked merged and points to the survivor."""
    require(actor, TICKETS_ASSIGN)
    duplicate = get_ticket(session=session, ticket_id=ticket_id)
    try:
        survivor = get_ticket(session=session, ticket_id=into_id)
    except NotFound:
        raise ValidationFailed(
            "Ticket {ticket_id} does not exist.", field="into_id", ticket_id=into_id
        ) from None
    if survivor.id == duplicate.id:
        raise ValidationFailed("A ticket cannot be merged into itself.", field="into_id")
    if survivor.state == TicketState.MERGED.value:
        raise ValidationFailed(
            "Ticket {number} was itself merged; choose the ticket it was merged into.",
            field="into_id",
            number=survivor.number,
        )
    _live(duplicate)
    before = {"state": duplicate.state, "merged_into_id": None}
    _set_state(session, duplicate, actor, TicketState.MERGED, survivor.number)
    duplicate.merged_into_id = survivor.id
    add_event(session, duplicate, actor, "merged", survivor.number, data={"into_id": survivor.id})
    add_event(
        session,
        survivor,
        actor,
        "merged_in",
        duplicate.number,
        data={"ticket_id": duplicate.id, "subject": duplicate.subject},
    )
    if survivor.state in (TicketState.RESOLVED.value, TicketState.CLOSED.value):
        _set_state(session, survivor, actor, TicketState.OPEN)
    record(session, actor, "ticket.merged", duplicate, before=before, into=survivor.number)
    return survivor


def complaint_step(
    *, session: Session, actor: User, ticket_id: int, stage: str, text: str
) -> Ticket:
    """Complaint handling: ``investigating`` (what is being checked), ``result`` (the finding
    and the remedy). The callback (:func:`record_callback`) completes it."""
    require(actor, TICKETS_EDIT)
    ticket = get_ticket(session=session, ticket_id=ticket_id)
    _live(ticket)
    if ticket.kind != "complaint":
        raise ValidationFailed("Only complaints have investigation steps.", field="stage")
    if stage not in ("investigating", "result"):
        raise ValidationFailed("Choose investigation or result.", field="stage")
    body = _clean_text(text, field_name="text", max_length=5000, required=True, multiline=True)
    order = list(COMPLAINT_STAGES)
    current = ticket.complaint_stage or "received"
    if stage == "result" and order.index(current) < order.index("investigating"):
        raise ValidationFailed("Record the investigation before the result.", field="stage")
    before = {
        "complaint_stage": ticket.complaint_stage,
        "investigation": ticket.investigation,
        "result": ticket.result,
    }
    if stage == "investigating":
        ticket.investigation = (
            ticket.investigation + "\n\n" if ticket.investigation else ""
        ) + body
        if order.index(current) < order.index("investigating"):
            ticket.complaint_stage = "investigating"
    else:
        ticket.result = body
        if order.index(current) < order.index("result"):
            ticket.complaint_stage = "result"
    if ticket.state == TicketState.NEW.value:
        _set_state(session, ticket, actor, TicketState.OPEN)
    add_event(session, ticket, actor, "complaint", body, data={"stage": stage})
    record(session, actor, "ticket.complaint_step", ticket, before=before)
    return ticket


def record_callback(
    *, session: Session, actor: User, ticket_id: int, outcome: str, note: str = ""
) -> Callback:
    """A callback (回访) with its outcome, on any ticket."""
    require(actor, TICKETS_EDIT)
    ticket = get_ticket(session=session, ticket_id=ticket_id)
    _live(ticket)
    if outcome not in CALLBACK_OUTCOMES:
        raise ValidationFailed("Choose the outcome of the callback from the list.", field="outcome")
    clean = _clean_text(note, field_name="note", max_length=1000, multiline=True)
    if ticket.kind == "complaint" and not ticket.result and outcome != "unreachable":
        raise ValidationFailed(
            "Record the result of the investigation before calling the customer back.",
            field="outcome",
        )
    callback = Callback(
        ticket_id=ticket.id, at=utcnow(), actor_id=actor.id, outcome=outcome, note=clean
    )
    session.add(callback)
    session.flush()
    if ticket.kind == "complaint" and outcome != "unreachable":
        ticket.complaint_stage = "called_back"
    add_event(session, ticket, actor, "callback", clean, data={"outcome": outcome})
    record(session, actor, "ticket.callback", callback)
    return callback


def callbacks(session: Session, ticket: Ticket) -> list[Callback]:
    stmt = select(Callback).where(Callback.ticket_id == ticket.id).order_by(Callback.id)
    return list(session.scalars(stmt))


def attach(
    *,
    session: Session,
    actor: User,
    ticket_id: int,
    filename: str,
    data: bytes,
    content_type: str | None = None,
    note: str = "",
) -> Document:
    """Store a file with the ticket (content-addressed in the parties document store)."""
    require(actor, TICKETS_EDIT)
    ticket = get_ticket(session=session, ticket_id=ticket_id)
    document = _store_attachment(session, ticket, actor, filename, data, content_type, note)
    record(session, actor, "ticket.attachment", ticket, document_id=document.id)
    return document


def _store_attachment(
    session: Session,
    ticket: Ticket,
    actor: User,
    filename: str,
    data: bytes,
    content_type: str | None,
    note: str = "",
) -> Document:
    # The parties store checks its own upload permission; a desk user may attach to tickets.
    from cardops.parties.permissions import DOCUMENTS_UPLOAD

    uploader = actor
    if DOCUMENTS_UPLOAD not in _permissions(actor):
        uploader = system_user(session)
    document = parties.upload_document(
        session=session,
        actor=uploader,
        owner_type="ticket",
        owner_id=ticket.id,
        doc_type="other",
        filename=filename,
        data=data,
        content_type=content_type,
        note=note[:500],
    )
    add_event(
        session,
        ticket,
        actor,
        "attachment",
        document.filename,
        data={"document_id": document.id, "sha256": document.sha256, "size": document.size},
    )
    return document


def _permissions(user: User) -> set[str]:
    from cardops.auth.service import permissions_of

    return set(permissions_of(user))


def attachments(session: Session, ticket: Ticket) -> list[Document]:
    stmt = (
        select(Document)
        .where(Document.owner_type == "ticket", Document.owner_id == ticket.id)
        .order_by(Document.id)
    )
    return list(session.scalars(stmt))


# --- e-mail ---------------------------------------------------------------------------------


def _message_text(message: Message) -> str:
    if message.is_multipart():
        html = ""
        for part in message.walk():
            if part.is_multipart() or part.get_content_disposition() == "attachment":
                continue
            payload = part.get_payload(decode=True)
            if not isinstance(payload, bytes):
                continue
            text = payload.decode(part.get_content_charset() or "utf-8", "replace")
            if part.get_content_type() == "text/plain":
                return text
            if part.get_content_type() == "text/html" and not html:
                html = re.sub(r"<[^>]+>", " ", text)
        return html
    payload = message.get_payload(decode=True)
    if isinstance(payload, bytes):
        text = payload.decode(message.get_content_charset() or "utf-8", "replace")
        if message.get_content_type() == "text/html":
            text = re.sub(r"<[^>]+>", " ", text)
        return text
    return str(message.get_payload() or "")


def _strip_quoted(text: str) -> str:
    """Drop the quoted earlier message from a reply (lines starting with '>' and below)."""
    lines = []
    for line in text.splitlines():
        if line.startswith(">") or re.match(r"^On .+ wrote:$", line.strip()):
            break
        lines.append(line)
    return "\n".join(lines).strip() or text.strip()


def _thread_ticket(session: Session, message: Message) -> Ticket | None:
    ids: list[str] = []
    for header in ("In-Reply-To", "References"):
        ids.extend(re.findall(r"<[^<>]+>", str(message.get(header) or "")))
    for msgid in ids:
        event = session.scalars(
            select(TicketEvent).where(TicketEvent.message_id == msgid[:255]).limit(1)
        ).first()
        if event is not None:
            return session.get(Ticket, event.ticket_id)
        match = OUTBOX_MSGID_RE.search(msgid)
        if match:
            from cardops.notify.models import OutboxMessage

            sent = session.get(OutboxMessage, int(match.group(1)))
            ref = (sent.ref or "") if sent is not None else ""
            if ref.startswith("ticket:") and ref[7:].isdigit():
                ticket = session.get(Ticket, int(ref[7:]))
                if ticket is not None:
                    return ticket
    found = NUMBER_RE.search(str(message.get("Subject") or ""))
    if found:
        return session.scalars(
            select(Ticket).where(Ticket.number == found.group(1).upper())
        ).first()
    return None


# What an inbound e-mail is about, from words in its subject (then the start of its body):
# the first kind whose words appear wins; an agent corrects it on the ticket when it is wrong.
EMAIL_KIND_WORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("complaint", ("投诉", "不满", "complaint", "complain")),
    (
        "fault",
        (
            "故障",
            "报修",
            "坏了",
            "死机",
            "黑屏",
            "无法",
            "不能用",
            "fault",
            "broken",
            "not working",
        ),
    ),
    ("change", ("变更", "更改", "换绑", "迁址", "change request", "change of")),
)
EMAIL_URGENT_WORDS = ("紧急", "加急", "urgent", "asap")


def classify_email(subject: str, body: str, headers: Message | None = None) -> tuple[str, str]:
    """(kind, priority) of a new e-mail ticket: words in the subject or the body's first lines
    choose complaint / fault / change (else inquiry); "urgent" words make it urgent, and the
    sender's own high-importance flag (``Importance: high``, ``X-Priority: 1``/``2``) high."""
    kind = "inquiry"
    for text in (subject.lower(), body[:500].lower()):
        found = next((k for k, words in EMAIL_KIND_WORDS if any(w in text for w in words)), None)
        if found:
            kind = found
            break
    head = f"{subject} {body[:200]}".lower()
    priority = "normal"
    if any(word in head for word in EMAIL_URGENT_WORDS):
        priority = "urgent"
    elif headers is not None:
        importance = str(headers.get("Importance") or "").strip().lower()
        flag = str(headers.get("X-Priority") or "").strip()[:1]
        if importance == "high" or flag in ("1", "2"):
            priority = "high"
    return kind, priority


def receive_email(session: Session, message: EmailMessage | Message) -> tuple[Ticket, bool]:
    """Turn an inbound e-mail into a ticket, or thread it into the ticket it answers.

    Returns ``(ticket, created)``. Acts as the system user; attachments are stored with the
    ticket. A reply to a merged ticket lands on the survivor; an answer to a ticket waiting for
    the customer reopens its clock; an answer to a resolved or closed ticket reopens it.
    """
    actor = system_user(session)
    sender_name, sender = parseaddr(str(message.get("From") or ""))
    sender = sender.strip().lower()
    subject = parties.plain_text(str(message.get("Subject") or "")).strip()[:200] or "(no subject)"
    body = _message_text(message).strip()
    msgid = str(message.get("Message-ID") or "").strip() or None
    if msgid:
        known = session.scalars(
            select(TicketEvent).where(TicketEvent.message_id == msgid[:255]).limit(1)
        ).first()
        if known is not None:  # the same message delivered twice
            ticket = session.get(Ticket, known.ticket_id)
            assert ticket is not None
            return ticket, False
    ticket = _thread_ticket(session, message)
    while ticket is not None and ticket.merged_into_id is not None:
        ticket = session.get(Ticket, ticket.merged_into_id)
    created = False
    if ticket is None:
        person = session.scalars(select(Person).where(Person.email == sender).limit(1)).first()
        kind, priority = classify_email(subject, body, message)
        ticket = create_ticket(
            session=session,
            actor=actor,
            kind=kind,
            priority=priority,
            subject=subject,
            description=body[:20000],
            contact_name=sender_name or sender.split("@", 1)[0],
            contact_email=sender,
            party_id=person.id if person else None,
            channel="email",
            message_id=msgid,
        )
        created = True
    else:
        add_event(
            session,
            ticket,
            actor,
            "inbound",
            _strip_quoted(body)[:20000],
            public=True,
            data={"from": sender, "subject": subject},
            message_id=msgid,
        )
        ticket.last_contact_at = utcnow()
        if ticket.state in (
            TicketState.PENDING_CUSTOMER.value,
            TicketState.RESOLVED.value,
            TicketState.CLOSED.value,
        ):
            _set_state(session, ticket, actor, TicketState.OPEN, "e-mail from the customer")
        record(session, actor, "ticket.email_received", ticket, message_id=msgid)
    for part in message.walk() if message.is_multipart() else []:
        if part.get_content_disposition() != "attachment":
            continue
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes) and payload:
            try:
                _store_attachment(
                    session,
                    ticket,
                    actor,
                    part.get_filename() or "attachment",
                    payload,
                    part.get_content_type(),
                )
            except ValidationFailed as exc:  # too large: note it, keep the message
                add_event(session, ticket, actor, "note", exc.localized())
    return ticket, created


# --- SLA scan and escalation ----------------------------------------------------------------


def supervisors(session: Session) -> list[User]:
    stmt = (
        select(User)
        .join(UserRole, UserRole.user_id == User.id)
        .join(Role, Role.id == UserRole.role_id)
        .where(Role.code == SUPERVISOR_ROLE, User.is_active.is_(True))
        .order_by(User.id)
    )
    return list(session.scalars(stmt).unique())


def sla_scan(*, session: Session, actor: User, now: datetime | None = None) -> list[SlaBreach]:
    """Record every deadline that passed unmet (once per ticket, target and deadline) and
    tell the supervisors through the outbox. Returns the new breach rows."""
    require(actor, TICKETS_VIEW)
    now = as_utc(now or utcnow())
    found: list[SlaBreach] = []
    stmt = select(Ticket).where(
        Ticket.state.in_((TicketState.NEW.value, TicketState.OPEN.value)),
        or_(
            Ticket.first_response_due < now,
            Ticket.update_due < now,
            Ticket.solution_due < now,
        ),
    )
    people = supervisors(session)
    for ticket in session.scalars(stmt).all():
        view = sla_view(ticket, now)
        for target in view.targets:
            if not target.breached or target.met_at is not None or target.due is None:
                continue
            exists = session.scalars(
                select(SlaBreach).where(
                    SlaBreach.ticket_id == ticket.id,
                    SlaBreach.target == target.target,
                    SlaBreach.due_at == target.due,
                )
            ).first()
            if exists is not None:
                continue
            recipients = [p.email or p.mobile or p.username for p in people]
            breach = SlaBreach(
                ticket_id=ticket.id,
                target=target.target,
                due_at=target.due,
                detected_at=now,
                assignee_id=ticket.assignee_id,
                team_id=ticket.team_id,
                escalated_to=", ".join(r for r in recipients if r)[:500],
            )
            session.add(breach)
            session.flush()
            add_event(
                session,
                ticket,
                actor,
                "sla_breach",
                target.target,
                data={"target": target.target, "due": target.due.isoformat()},
            )
            record(session, actor, "ticket.sla_breached", breach)
            due_text = f"{local(target.due):%Y-%m-%d %H:%M}"
            body = (
                f"Ticket {ticket.number} ({ticket.subject}) missed its {target.target} "
                f"deadline {due_text}.\n"
                f"工单 {ticket.number}（{ticket.subject}）已超过 SLA 时限 {due_text}"
                f"（{_TARGET_ZH[target.target]}）。\n{public_url()}/tickets/{ticket.id}"
            )
            for person in people:
                channel, to = ("email", person.email) if person.email else ("sms", person.mobile)
                if not to:
                    continue
                notify.enqueue(
                    session,
                    channel=channel,
                    recipient=to,
                    subject=f"[{ticket.number}] SLA breached / 超时"[:200],
                    body=body if channel == "email" else body[:300],
                    actor=actor,
                    ref=f"ticket:{ticket.id}",
                    dedupe_key=f"sla:{breach.id}:{person.id}",
                )
            found.append(breach)
    return found


_TARGET_ZH = {"first_response": "首次响应", "update": "更新", "solution": "解决"}


def breaches(session: Session, ticket: Ticket) -> list[SlaBreach]:
    stmt = select(SlaBreach).where(SlaBreach.ticket_id == ticket.id).order_by(SlaBreach.id)
    return list(session.scalars(stmt))


# --- surveys --------------------------------------------------------------------------------


def send_survey(*, session: Session, ticket: Ticket, actor: User | None) -> Survey | None:
    """After closure: one survey per ticket, a link with a token, by SMS or e-mail."""
    existing = session.scalars(select(Survey).where(Survey.ticket_id == ticket.id)).first()
    if existing is not None:
        return existing
    token = secrets.token_urlsafe(24)
    via = "link"
    link = f"{public_url()}/survey/{token}"
    survey = Survey(
        ticket_id=ticket.id,
        token=token,
        sent_at=utcnow(),
        agent_id=ticket.assignee_id or ticket.created_by_id,
        team_id=ticket.team_id,
        kind=ticket.kind,
    )
    text = (
        f"您的工单 {ticket.number} 已关闭，请为我们的服务打分：{link}\n"
        f"Your ticket {ticket.number} is closed; please rate our service: {link}"
    )
    phone = re.sub(r"\D", "", ticket.contact_phone or "")
    if re.fullmatch(r"1[3-9]\d{9}", phone):
        notify.enqueue(
            session,
            channel="sms",
            recipient=phone,
            subject="",
            body=text[:300],
            actor=actor,
            ref=f"ticket:{ticket.id}",
        )
        via = "sms"
    elif ticket.contact_email:
        notify.enqueue(
            session,
            channel="email",
            recipient=ticket.contact_email,
            subject=f"[{ticket.number}] 满意度调查 / How did we do?",
            body=text,
            actor=actor,
            ref=f"ticket:{ticket.id}",
        )
        via = "email"
    survey.sent_via = via
    session.add(survey)
    session.flush()
    record(session, actor, "ticket.survey_sent", survey)
    return survey


def survey_by_token(session: Session, token: str) -> Survey:
    survey = None
    if re.fullmatch(r"[A-Za-z0-9_\-]{16,64}", token or ""):
        survey = session.scalars(select(Survey).where(Survey.token == token)).first()
    if survey is None:
        raise NotFound("This survey link is not valid.")
    return survey


def answer_survey(*, session: Session, token: str, score: Any, comment: str = "") -> Survey:
    """The customer's answer (1–5 and a comment); a second answer is refused."""
    survey = survey_by_token(session, token)
    if survey.answered_at is not None:
        raise Conflict(
            "This survey was already answered on {when}. Thank you!",
            when=f"{local(survey.answered_at):%Y-%m-%d %H:%M}",
        )
    try:
        value = int(str(score).strip())
    except ValueError:
        value = 0
    if not 1 <= value <= 5:
        raise ValidationFailed("Choose a score from 1 to 5.", field="score")
    clean = _clean_text(comment, field_name="comment", max_length=1000, multiline=True)
    survey.score = value
    survey.comment = clean
    survey.answered_at = utcnow()
    session.flush()
    ticket = session.get(Ticket, survey.ticket_id)
    actor = system_user(session)
    if ticket is not None:
        add_event(session, ticket, actor, "survey", clean, data={"score": value}, public=True)
    record(session, actor, "ticket.survey_answered", survey)
    return survey


def ticket_survey(session: Session, ticket: Ticket) -> Survey | None:
    return session.scalars(select(Survey).where(Survey.ticket_id == ticket.id)).first()


# --- teams ----------------------------------------------------------------------------------


def teams(session: Session, *, active_only: bool = True) -> list[Team]:
    stmt = select(Team).order_by(Team.name)
    if active_only:
        stmt = stmt.where(Team.is_active.is_(True))
    return list(session.scalars(stmt))


def create_team(*, session: Session, actor: User, code: str, name: str, email: str = "") -> Team:
    require(actor, SLA_MANAGE)
    errors = FieldErrors()
    clean_code = (code or "").strip().lower()
    if not re.fullmatch(r"[a-z0-9_\-]{2,32}", clean_code):
        errors.add(
            ValidationFailed("The code is 2–32 lower-case letters, digits, - or _.", field="code")
        )
    clean_name = errors.check(_clean_text, name, field_name="name", max_length=128, required=True)
    clean_email = errors.check(normalize_email_address, email or "", field_name="email")
    errors.raise_if_any()
    if session.scalars(select(Team).where(Team.code == clean_code)).first() is not None:
        raise Conflict("A team with code {code} exists already.", field="code", code=clean_code)
    team = Team(code=clean_code, name=clean_name, email=clean_email or None)
    session.add(team)
    session.flush()
    record(session, actor, "servicedesk.team_created", team)
    return team


def add_team_member(*, session: Session, actor: User, team_id: int, user_id: int) -> TeamMember:
    require(actor, SLA_MANAGE)
    errors = FieldErrors()
    team = _team_or_error(session, team_id, errors)
    user = _user_or_error(session, user_id, errors)
    errors.raise_if_any()
    assert team is not None and user is not None
    existing = session.scalars(
        select(TeamMember).where(TeamMember.team_id == team.id, TeamMember.user_id == user.id)
    ).first()
    if existing is not None:
        return existing
    member = TeamMember(team_id=team.id, user_id=user.id)
    session.add(member)
    session.flush()
    record(session, actor, "servicedesk.team_member_added", member)
    return member


def team_members(session: Session, team: Team) -> list[User]:
    stmt = (
        select(User)
        .join(TeamMember, TeamMember.user_id == User.id)
        .where(TeamMember.team_id == team.id)
        .order_by(User.display_name)
    )
    return list(session.scalars(stmt))


def desk_users(session: Session) -> list[User]:
    """People tickets can be assigned to: active users holding a desk role."""
    stmt = (
        select(User)
        .join(UserRole, UserRole.user_id == User.id)
        .join(Role, Role.id == UserRole.role_id)
        .where(
            Role.code.in_(("call_agent", SUPERVISOR_ROLE, "after_sales_specialist", "technician")),
            User.is_active.is_(True),
            User.is_system.is_(False),
        )
        .order_by(User.display_name)
    )
    return list(dict.fromkeys(session.scalars(stmt)))


# --- lists ----------------------------------------------------------------------------------


def search_tickets(
    *,
    session: Session,
    actor: User,
    q: str = "",
    kind: str | None = None,
    state: str | None = None,
    priority: str | None = None,
    team_id: int | None = None,
    assignee_id: int | None = None,
    breached: bool = False,
    open_only: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> list[Ticket]:
    require(actor, TICKETS_VIEW)
    limit = max(1, min(limit, MAX_PAGE + 1))
    offset = max(0, min(offset, 10_000_000))
    stmt = select(Ticket)
    text = parties.plain_text(q).strip()[:100]
    if text:
        like = f"%{text.replace('%', '').replace('_', '')}%"
        stmt = stmt.where(
            or_(
                Ticket.number == text.upper(),
                Ticket.subject.ilike(like),
                Ticket.contact_name.ilike(like),
                Ticket.contact_phone == re.sub(r"[\s\-()]", "", text),
                Ticket.contact_email == text.lower(),
                Ticket.serial == text.upper(),
            )
        )
    if kind:
        stmt = stmt.where(Ticket.kind == kind)
    if state:
        stmt = stmt.where(Ticket.state == state)
    elif open_only:
        stmt = stmt.where(Ticket.state.in_(ACTIVE_STATES))
    if priority:
        stmt = stmt.where(Ticket.priority == priority)
    if team_id:
        stmt = stmt.where(Ticket.team_id == team_id)
    if assignee_id:
        stmt = stmt.where(Ticket.assignee_id == assignee_id)
    if breached:
        now = utcnow()
        stmt = stmt.where(
            or_(
                Ticket.id.in_(select(SlaBreach.ticket_id)),
                (Ticket.state.in_(ACTIVE_STATES))
                & or_(
                    (Ticket.first_responded_at.is_(None)) & (Ticket.first_response_due < now),
                    Ticket.solution_due < now,
                    Ticket.update_due < now,
                ),
            )
        )
    stmt = stmt.order_by(Ticket.id.desc()).limit(limit).offset(offset)
    return list(session.scalars(stmt))


def state_label(state: str) -> str:
    return STATE_LABELS.get(state, state)
