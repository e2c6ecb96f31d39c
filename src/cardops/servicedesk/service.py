"""Service desk: the only code that changes tickets, SLA settings, callbacks and surveys.

Public functions take keyword-only arguments, a session and the acting user; they never commit.

For other domains (repairs, field service, ...)::

    from cardops.servicedesk.service import add_event, get_ticket

    add_event(session, ticket, actor, kind, text, *, data=None, public=False) -> TicketEvent

appends one line to a ticket's history thread (``kind`` is a short code such as ``"repair"``;
``text`` is shown as written; ``data`` is a JSON dict). It does not check permissions (the
calling domain already did) and does not commit. ``get_ticket(session=..., ticket_id=...)``
loads a ticket or raises NotFound; ``get_ticket_by_number(session=..., number=...)`` too.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cardops.auth.models import User
from cardops.core.clock import utcnow
from cardops.core.errors import NotFound
from cardops.servicedesk.models import Ticket, TicketEvent


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
        message_id=message_id,
    )
    session.add(event)
    session.flush()
    return event


def get_ticket(*, session: Session, ticket_id: int) -> Ticket:
    ticket = session.get(Ticket, ticket_id)
    if ticket is None:
        raise NotFound("Ticket {ticket_id} does not exist.", ticket_id=ticket_id)
    return ticket


def get_ticket_by_number(*, session: Session, number: str) -> Ticket:
    ticket = session.scalars(select(Ticket).where(Ticket.number == number.strip().upper())).first()
    if ticket is None:
        raise NotFound("Ticket {number} does not exist.", number=number)
    return ticket
