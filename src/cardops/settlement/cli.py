"""``cardops settle DATE``, ``cardops statements MONTH`` and ``cardops settlement …``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cardops.auth.service import system_user
from cardops.core.db import unit_of_work
from cardops.core.money import format_minor
from cardops.settlement import reports, service

NAME = "settlement"
app = typer.Typer(help="Settlement windows, payout files and statements.", no_args_is_help=True)
out = Console()

STEPS = ("close", "sales", "cancellations", "figures", "store", "post")


def settle_fn(
    business_date: str = typer.Argument(..., help="Business date YYYY-MM-DD."),
    payout_file: Path | None = typer.Option(
        None, "--payout-file", help="Also write the payout CSV."
    ),
) -> None:
    """Settle one business day: close its window, compute, post; repeatable."""
    day = service.parse_day(business_date)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=out
    ) as bar:
        task = bar.add_task(f"settle {day}", total=len(STEPS))

        def step(label: str) -> None:
            done = STEPS.index(label) if label in STEPS else 0
            bar.update(task, completed=done, description=f"settle {day}: {label}")

        with unit_of_work() as session:
            actor = system_user(session)
            result = service.settle_day(
                session=session, actor=actor, business_date=day, progress=step
            )
            bar.update(task, completed=len(STEPS), description=f"settle {day}: done")
            w = result.window
            if payout_file is not None:
                payout_file.write_bytes(reports.payout_csv(session=session, actor=actor, day=day))
    table = Table("count", "gross", "fee", "net", "bank fee", "shares", "HQ margin", "postings")
    table.add_row(
        str(w.count),
        format_minor(w.gross),
        format_minor(w.fee),
        format_minor(w.net),
        format_minor(w.bank_fee),
        format_minor(w.shares),
        format_minor(w.hq_margin),
        "unchanged" if result.unchanged else str(result.postings),
    )
    out.print(table)
    if payout_file is not None:
        out.print(f"payout file {payout_file}")


def statements_fn(
    month: str = typer.Argument(..., help="Month YYYY-MM."),
    output_dir: Path = typer.Option(
        Path("."), "--output-dir", help="Where to write the Excel files."
    ),
) -> None:
    """Grant the month's volume-target rewards and write every provider's statement (Excel)."""
    service.parse_month(month)
    output_dir.mkdir(parents=True, exist_ok=True)
    with unit_of_work() as session:
        actor = system_user(session)
        granted = reports.volume_rewards(session=session, actor=actor, month=month)
        providers = reports.statement_providers(session, actor)
        with Progress(
            TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=out
        ) as bar:
            task = bar.add_task(f"statements {month}", total=len(providers))
            table = Table("provider", "volume", "share", "rewards", "file")
            for provider in providers:
                statement = reports.provider_statement(
                    session=session, actor=actor, provider_id=provider.id, month=month
                )
                path = output_dir / f"statement-{provider.code}-{month}.xlsx"
                path.write_bytes(reports.provider_statement_xlsx(statement))
                table.add_row(
                    provider.code,
                    format_minor(statement.volume),
                    format_minor(statement.share),
                    format_minor(statement.reward_total),
                    str(path),
                )
                bar.advance(task)
    out.print(table)
    out.print(f"{len(granted)} volume-target reward(s) granted")


TOP_LEVEL_COMMANDS = {"settle": settle_fn, "statements": statements_fn}


@app.command("close")
def close(business_date: str) -> None:
    """Close a window whose cut-off has passed (fixes its journal range)."""
    day = service.parse_day(business_date)
    with unit_of_work() as session:
        w = service.close_window(session=session, actor=system_user(session), business_date=day)
        out.print(f"{day}: {w.state}, journal ids {w.first_id}+1 … {w.last_id}")


@app.command("windows")
def windows() -> None:
    """The latest windows with their state and totals."""
    with unit_of_work() as session:
        table = Table("date", "state", "count", "gross", "fee", "net")
        for w in service.list_windows(session, limit=30):
            table.add_row(
                w.business_date.isoformat(),
                w.state,
                str(w.count),
                format_minor(w.gross),
                format_minor(w.fee),
                format_minor(w.net),
            )
        out.print(table)


@app.command("payout-file")
def payout_file(business_date: str, output: Path) -> None:
    """Write the bank payout CSV of a settled day."""
    day = service.parse_day(business_date)
    with unit_of_work() as session:
        output.write_bytes(reports.payout_csv(session=session, actor=system_user(session), day=day))
    out.print(f"wrote {output}")


@app.command("day-summary")
def day_summary(business_date: str, output: Path) -> None:
    """Write the day summary of a business day as an Excel workbook."""
    day = service.parse_day(business_date)
    with unit_of_work() as session:
        summary = reports.day_summary(session=session, actor=system_user(session), day=day)
        output.write_bytes(reports.day_summary_xlsx(summary))
    out.print(f"wrote {output}")
