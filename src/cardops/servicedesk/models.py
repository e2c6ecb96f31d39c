"""Service desk (400 call centre): tickets, their history, SLAs, callbacks and surveys.

Ticket lifecycle (``TICKET_TRANSITIONS``): new → open → pending_customer (the SLA clock is
paused) → open → resolved → closed; a resolved or closed ticket can be reopened; a ticket can be
merged into another one (``merged``, final; ``merged_into_id`` names the survivor).

Every change to a ticket appends a ``TicketEvent`` (its history thread). Other domains add
lines with ``cardops.servicedesk.service.add_event``.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cardops.core.clock import utcnow
from cardops.core.db import Base, TimestampMixin
from cardops.core.errors import InvalidTransition
from cardops.core.i18n import N_

KINDS: dict[str, str] = {
    "inquiry": N_("Inquiry"),
    "complaint": N_("Complaint"),
    "fault": N_("Fault"),
    "change": N_("Change request"),
}
PRIORITIES: dict[str, str] = {
    "low": N_("Low"),
    "normal": N_("Normal"),
    "high": N_("High"),
    "urgent": N_("Urgent"),
}
CHANNELS: dict[str, str] = {
    "phone": N_("Phone"),
    "email": N_("E-mail"),
    "web": N_("Web form"),
    "api": N_("API"),
}


class TicketState(enum.StrEnum):
    NEW = "new"
    OPEN = "open"
    PENDING_CUSTOMER = "pending_customer"
    RESOLVED = "resolved"
    CLOSED = "closed"
    MERGED = "merged"


STATE_LABELS: dict[str, str] = {
    "new": N_("New"),
    "open": N_("Open"),
    "pending_customer": N_("Pending customer"),
    "resolved": N_("Resolved"),
    "closed": N_("Closed"),
    "merged": N_("Merged"),
}

_T = TicketState
TICKET_TRANSITIONS: dict[TicketState, set[TicketState]] = {
    _T.NEW: {_T.OPEN, _T.PENDING_CUSTOMER, _T.RESOLVED, _T.MERGED},
    _T.OPEN: {_T.PENDING_CUSTOMER, _T.RESOLVED, _T.MERGED},
    _T.PENDING_CUSTOMER: {_T.OPEN, _T.RESOLVED, _T.MERGED},
    _T.RESOLVED: {_T.CLOSED, _T.OPEN},  # → open is "reopen"
    _T.CLOSED: {_T.OPEN},  # reopen
    _T.MERGED: set(),
}
# States in which the ticket still waits for the service desk (SLA clocks run).
ACTIVE_STATES = frozenset({_T.NEW.value, _T.OPEN.value, _T.PENDING_CUSTOMER.value})

# Complaint handling (complaint → investigation → result → callback).
COMPLAINT_STAGES: dict[str, str] = {
    "received": N_("Received"),
    "investigating": N_("Investigating"),
    "result": N_("Result given"),
    "called_back": N_("Called back"),
}

CALLBACK_OUTCOMES: dict[str, str] = {
    "satisfied": N_("Satisfied"),
    "partly_satisfied": N_("Partly satisfied"),
    "unsatisfied": N_("Unsatisfied"),
    "unreachable": N_("Could not reach the customer"),
}

EVENT_KINDS: dict[str, str] = {
    "created": N_("Created"),
    "note": N_("Internal note"),
    "reply": N_("Reply to customer"),
    "inbound": N_("Message from customer"),
    "state": N_("State changed"),
    "assigned": N_("Assigned"),
    "priority": N_("Priority changed"),
    "merged": N_("Merged"),
    "merged_in": N_("Ticket merged in"),
    "attachment": N_("Attachment"),
    "callback": N_("Callback"),
    "complaint": N_("Complaint stage"),
    "sla_breach": N_("SLA breached"),
    "survey": N_("Survey answered"),
    "repair": N_("Repair"),
    "visit": N_("Field visit"),
}

SLA_TARGETS: dict[str, str] = {
    "first_response": N_("First response"),
    "update": N_("Update"),
    "solution": N_("Solution"),
}


class Team(TimestampMixin, Base):
    __tablename__ = "servicedesk_teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    email: Mapped[str | None] = mapped_column(String(254))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


class TeamMember(Base):
    __tablename__ = "servicedesk_team_members"
    __table_args__ = (UniqueConstraint("team_id", "user_id", name="uq_servicedesk_team_member"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(
        ForeignKey("servicedesk_teams.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)


class Ticket(TimestampMixin, Base):
    __tablename__ = "servicedesk_tickets"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(24), unique=True)  # T20261123-0001
    kind: Mapped[str] = mapped_column(String(16), index=True)  # inquiry|complaint|fault|change
    priority: Mapped[str] = mapped_column(String(8), default="normal")  # low|normal|high|urgent
    state: Mapped[str] = mapped_column(String(20), default=TicketState.NEW.value, index=True)
    channel: Mapped[str] = mapped_column(String(8), default="phone")  # phone|email|web|api
    subject: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    # The caller: a known person, or a name + phone (+ e-mail) captured on the ticket.
    party_id: Mapped[int | None] = mapped_column(ForeignKey("persons.id"), index=True)
    contact_name: Mapped[str] = mapped_column(String(128), default="")
    contact_phone: Mapped[str] = mapped_column(String(32), default="", index=True)
    contact_email: Mapped[str] = mapped_column(String(254), default="")
    card_number: Mapped[str | None] = mapped_column(String(32))
    serial: Mapped[str | None] = mapped_column(String(40), index=True)
    terminal_id: Mapped[int | None] = mapped_column(ForeignKey("terminals.id"), index=True)
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey("merchants.id"), index=True)
    fault_type: Mapped[str] = mapped_column(String(64), default="")
    team_id: Mapped[int | None] = mapped_column(ForeignKey("servicedesk_teams.id"), index=True)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("servicedesk_tickets.id"))
    source_ip: Mapped[str | None] = mapped_column(String(45))  # web form submissions
    # SLA: deadlines are recomputed from the policy, the calendar and the pauses.
    first_response_due: Mapped[datetime | None] = mapped_column()
    update_due: Mapped[datetime | None] = mapped_column()
    solution_due: Mapped[datetime | None] = mapped_column(index=True)
    first_responded_at: Mapped[datetime | None] = mapped_column()
    last_contact_at: Mapped[datetime | None] = mapped_column()  # last customer message
    last_update_at: Mapped[datetime | None] = mapped_column()  # last reply to the customer
    resolved_at: Mapped[datetime | None] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column()
    # [[paused_at, resumed_at | null], ...] in ISO-8601 UTC (pending customer periods)
    sla_pauses: Mapped[list[list[str | None]]] = mapped_column(JSON, default=list)
    first_contact_resolution: Mapped[bool] = mapped_column(Boolean, default=False)
    # Complaint handling
    complaint_stage: Mapped[str | None] = mapped_column(String(16))
    investigation: Mapped[str] = mapped_column(Text, default="")
    result: Mapped[str] = mapped_column(Text, default="")
    close_reason: Mapped[str] = mapped_column(String(500), default="")  # closing without callback
    reopen_count: Mapped[int] = mapped_column(default=0)

    def transition(self, target: TicketState) -> TicketState:
        current = TicketState(self.state)
        if target not in TICKET_TRANSITIONS[current]:
            raise InvalidTransition(
                "Ticket {number} is {state_from}; it cannot become {state_to}.",
                number=self.number,
                state_from=current.value,
                state_to=target.value,
            )
        self.state = target.value
        return current

    @property
    def kind_label(self) -> str:
        return KINDS.get(self.kind, self.kind)

    @property
    def priority_label(self) -> str:
        return PRIORITIES.get(self.priority, self.priority)

    @property
    def state_label(self) -> str:
        return STATE_LABELS.get(self.state, self.state)

    def __repr__(self) -> str:
        return f"<Ticket {self.number}>"


class TicketEvent(Base):
    """One line of a ticket's history: created, note, reply, inbound mail, state change, ..."""

    __tablename__ = "servicedesk_ticket_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("servicedesk_tickets.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(24))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    public: Mapped[bool] = mapped_column(Boolean, default=False)  # seen by the customer
    text: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # E-mail threading: the Message-ID of an inbound or outbound message.
    message_id: Mapped[str | None] = mapped_column(String(255), index=True)


class SlaPolicy(TimestampMixin, Base):
    """Targets in business minutes per ticket kind × priority (None = no target)."""

    __tablename__ = "servicedesk_sla_policies"
    __table_args__ = (UniqueConstraint("kind", "priority", name="uq_servicedesk_sla_kind_prio"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    priority: Mapped[str] = mapped_column(String(8))
    first_response_minutes: Mapped[int | None] = mapped_column()
    update_minutes: Mapped[int | None] = mapped_column()
    solution_minutes: Mapped[int | None] = mapped_column()


class BusinessCalendar(TimestampMixin, Base):
    """The operator's working hours: ``hours`` maps ISO weekday 1–7 to [["09:00", "18:00"]]."""

    __tablename__ = "servicedesk_calendars"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    hours: Mapped[dict[str, list[list[str]]]] = mapped_column(JSON, default=dict)


class Holiday(Base):
    """A day off (holiday) or a make-up working day (调休, ``working`` = True) of a calendar."""

    __tablename__ = "servicedesk_holidays"
    __table_args__ = (UniqueConstraint("calendar_id", "day", name="uq_servicedesk_holiday_day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    calendar_id: Mapped[int] = mapped_column(
        ForeignKey("servicedesk_calendars.id", ondelete="CASCADE"), index=True
    )
    day: Mapped[date] = mapped_column(Date)
    name: Mapped[str] = mapped_column(String(64), default="")
    working: Mapped[bool] = mapped_column(Boolean, default=False)


class SlaBreach(Base):
    """A deadline that passed unmet; written once by the scan and kept."""

    __tablename__ = "servicedesk_sla_breaches"
    __table_args__ = (
        UniqueConstraint("ticket_id", "target", "due_at", name="uq_servicedesk_breach"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("servicedesk_tickets.id", ondelete="CASCADE"), index=True
    )
    target: Mapped[str] = mapped_column(String(16))  # first_response | update | solution
    due_at: Mapped[datetime] = mapped_column()
    detected_at: Mapped[datetime] = mapped_column(default=utcnow)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("servicedesk_teams.id"))
    escalated_to: Mapped[str] = mapped_column(String(500), default="")


class Callback(Base):
    """A callback (回访) to the customer, with its outcome."""

    __tablename__ = "servicedesk_callbacks"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("servicedesk_tickets.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    outcome: Mapped[str] = mapped_column(String(20))
    note: Mapped[str] = mapped_column(String(1000), default="")


class Survey(Base):
    """A satisfaction survey sent after closure; answered once through its token."""

    __tablename__ = "servicedesk_surveys"
    __table_args__ = (Index("ix_servicedesk_surveys_answered", "answered_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("servicedesk_tickets.id", ondelete="CASCADE"), unique=True
    )
    token: Mapped[str] = mapped_column(String(64), unique=True)
    sent_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_via: Mapped[str] = mapped_column(String(8), default="link")  # link | sms | email
    # Snapshot at sending, so results per agent / team / kind stay stable.
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("servicedesk_teams.id"))
    kind: Mapped[str] = mapped_column(String(16), default="")
    answered_at: Mapped[datetime | None] = mapped_column()
    score: Mapped[int | None] = mapped_column()  # 1 (very unsatisfied) .. 5 (very satisfied)
    comment: Mapped[str] = mapped_column(String(1000), default="")
