"""``cardops access …``: door codes, a decision from the command line, the index."""

from __future__ import annotations

from datetime import date

import typer
from rich.console import Console

from cardops.access import service
from cardops.access.engine import get_engine
from cardops.auth.service import system_user
from cardops.core.db import unit_of_work

NAME = "access"
app = typer.Typer(help="Access control: doors, decisions, door codes.", no_args_is_help=True)
out = Console()


@app.command("rotate-codes")
def rotate_codes(
    quarter_start: str = typer.Option(
        "", "--quarter-start", help="YYYY-MM-DD, the first day of a quarter (default: the next)"
    ),
) -> None:
    """Make the door codes of a quarter and queue the residents' notices (one week ahead)."""
    with unit_of_work() as session:
        start = (
            date.fromisoformat(quarter_start)
            if quarter_start
            else service.next_quarter_start(service.local_today())
        )
        result = service.rotate_door_codes(
            session=session, actor=system_user(session), quarter_start=start
        )
        out.print(
            f"Quarter from {start}: {len(result.created)} new door codes, "
            f"{result.notified} notices queued."
        )


@app.command("decide")
def decide(card: str, door: str) -> None:
    """Ask the decision engine whether CARD may open DOOR now (not logged)."""
    decision = get_engine().decide(card, door)
    colour = "green" if decision.allowed else "red"
    out.print(
        f"[{colour}]{'allowed' if decision.allowed else 'denied'}[/{colour}] {decision.reason}"
    )


@app.command("index")
def index() -> None:
    """Build the decision index and show its size and build time."""
    engine = get_engine()
    engine.rebuild()
    for key, value in engine.stats().items():
        out.print(f"{key}: {value}")
