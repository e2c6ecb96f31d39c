"""``cardops tickets …``: the SLA scan (escalation) once, and a list of tickets."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from cardops.auth.service import system_user
from cardops.core.clock import local
from cardops.core.db import unit_of_work
from cardops.servicedesk import service
from cardops.servicedesk.models import KINDS, STATE_LABELS

NAME = "tickets"
app = typer.Typer(help="Service desk tickets: SLA escalation, lists.", no_args_is_help=True)
out = Console()


@app.command("sla-scan")
def sla_scan() -> None:
    """Record SLA breaches and notify the supervisors through the outbox (once)."""
    with unit_of_work() as session:
        found = service.sla_scan(session=session, actor=system_user(session))
        rows = [(b.ticket_id, b.target, b.due_at) for b in found]
    for ticket_id, target, due in rows:
        out.print(f"ticket {ticket_id}: {target} due {local(due):%Y-%m-%d %H:%M} breached")
    out.print(f"{len(rows)} new breaches escalated.")


@app.command("list")
def list_tickets(
    state: str = typer.Option("", help="new, open, pending_customer, resolved, closed, merged"),
    kind: str = typer.Option("", help="inquiry, complaint, fault, change"),
    open_only: bool = typer.Option(False, "--open", help="only tickets still being worked"),
    breached: bool = typer.Option(False, "--breached", help="only tickets with a missed SLA"),
    limit: int = typer.Option(50, min=1, max=200),
) -> None:
    """Tickets, newest first, with their nearest SLA deadline."""
    if state and state not in STATE_LABELS:
        raise typer.BadParameter(f"unknown state {state!r}", param_hint="--state")
    if kind and kind not in KINDS:
        raise typer.BadParameter(f"unknown kind {kind!r}", param_hint="--kind")
    table = Table("number", "kind", "priority", "state", "subject", "caller", "next deadline")
    with unit_of_work() as session:
        rows = service.search_tickets(
            session=session,
            actor=system_user(session),
            state=state or None,
            kind=kind or None,
            open_only=open_only,
            breached=breached,
            limit=limit,
        )
        for t in rows:
            view = service.sla_view(t)
            near = view.nearest
            due = ""
            if view.paused:
                due = "paused"
            elif near and near.due:
                due = f"{local(near.due):%Y-%m-%d %H:%M} {near.target}"
                if near.breached:
                    due = f"[red]{due} BREACHED[/red]"
            table.add_row(t.number, t.kind, t.priority, t.state, t.subject, t.contact_name, due)
    out.print(table)
