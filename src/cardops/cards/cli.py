"""``cardops cards …``: expiry reminders and the quarterly report as an Excel file."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from cardops.auth.service import system_user
from cardops.cards import jobs
from cardops.cards import report as card_report
from cardops.core.db import unit_of_work

NAME = "cards"
app = typer.Typer(help="One-card IC cards: reminders and reports.", no_args_is_help=True)
out = Console()


@app.command("remind")
def remind(
    days: int = typer.Option(jobs.DAYS_AHEAD, min=0, max=366, help="Cards expiring within N days."),
) -> None:
    """Queue expiry reminders (SMS / e-mail) once; the web server also does this daily."""
    out.print(f"queued {jobs.remind_once(days)} reminder(s)")


@app.command("quarterly-report")
def quarterly_report(
    out_file: Path = typer.Argument(..., help="Where to write the .xlsx file."),
    quarter: str = typer.Option("", help="e.g. 2026Q4; default: the current quarter."),
) -> None:
    """Write the quarterly card report (智能卡季度整理表) as an Excel file."""
    with unit_of_work() as session:
        rep = card_report.quarterly_report(
            session=session, actor=system_user(session), quarter=quarter or None
        )
        out_file.write_bytes(card_report.to_excel(rep))
    out.print(f"{rep.quarter}: {sum(rep.totals.values())} cards, written to {out_file}")
