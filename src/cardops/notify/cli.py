"""``cardops notify …``: send the outbox, run the dispatcher, send a test e-mail."""

from __future__ import annotations

import asyncio

import typer
from rich.console import Console
from rich.table import Table

from cardops.auth.service import system_user
from cardops.core.config import get_settings
from cardops.core.db import unit_of_work
from cardops.notify import jobs, service
from cardops.notify.models import MessageState, OutboxMessage

NAME = "notify"
app = typer.Typer(help="Notifications: the e-mail and SMS outbox.", no_args_is_help=True)
out = Console()


@app.command("dispatch")
def dispatch(
    limit: int = typer.Option(100, min=1, max=100_000, help="Send at most this many."),
) -> None:
    """Send the messages that are due, once."""
    sent, failed = jobs.dispatch_once(limit=limit)
    out.print(f"sent {sent}, failed {failed}")


@app.command("run")
def run(
    interval: float = typer.Option(jobs.DEFAULT_INTERVAL, min=1, help="Seconds between rounds."),
) -> None:
    """Send due messages every INTERVAL seconds until Ctrl-C."""
    out.print(f"sending due notifications every {interval:g} s; Ctrl-C stops")
    try:
        asyncio.run(jobs.run(asyncio.Event(), interval=interval))
    except KeyboardInterrupt:
        out.print("stopped")


@app.command("test-email")
def test_email(address: str) -> None:
    """Send a short test e-mail to ADDRESS now, to check CARDOPS_SMTP_URL."""
    with unit_of_work() as session:
        message = service.send_test_email(
            session=session, actor=system_user(session), address=address
        )
        message_id = message.id
    jobs.dispatch_once(ids=[message_id])
    with unit_of_work() as session:
        result = session.get(OutboxMessage, message_id)
        assert result is not None
        if result.state == MessageState.SENT:
            out.print(f"[green]sent[/green] test e-mail {message_id} to {result.recipient}")
            return
        out.print(
            f"[red]not sent[/red] (message {message_id} is {result.state}): "
            f"{result.last_error or ''}"
        )
        if not get_settings().smtp_url:
            out.print(
                "set CARDOPS_SMTP_URL, e.g. smtp://user:password@mail.example.com:587?starttls=1"
            )
    raise typer.Exit(1)


@app.command("list")
def list_messages(
    state: str = typer.Option("", help="pending, sending, sent, failed or dead."),
    limit: int = typer.Option(50, min=1, max=10_000),
) -> None:
    """The newest messages in the outbox."""
    with unit_of_work() as session:
        table = Table(
            "id", "queued", "channel", "recipient", "subject", "state", "attempts", "error"
        )
        for m in service.list_messages(
            session=session, actor=system_user(session), state=state or None, limit=limit
        ):
            table.add_row(
                str(m.id),
                m.created_at.isoformat(timespec="minutes"),
                m.channel,
                m.recipient,
                m.subject,
                m.state,
                str(m.attempts),
                (m.last_error or "")[:60],
            )
        out.print(table)
