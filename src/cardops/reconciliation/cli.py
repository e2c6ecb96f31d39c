"""``cardops reconcile FILE``: import the bank's clearing file and reconcile its day;
``cardops journal export DATE --clearing-file PATH``: the bank simulator;
``cardops reconciliation …``: re-run a day, show a day's figures, list difference cases."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from cardops.core.errors import CardopsError, ValidationFailed
from cardops.core.money import format_minor

NAME = "reconciliation"
app = typer.Typer(
    help="Reconciliation with the bank (对账): days, runs, cases.", no_args_is_help=True
)
journal_app = typer.Typer(help="The transaction journal: export it.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)

STEPS = {
    "transcode": "reading the file (to UTF-8, hashing)",
    "parse": "parsing and checking every line",
    "journal": "loading the day's journal",
    "match": "matching (RRN + TID, then TID + STAN + date + amount)",
    "cases": "writing difference cases",
}


def _day(text: str) -> date:
    match = re.fullmatch(r"(\d{4})-?(\d{2})-?(\d{2})", text.strip())
    try:
        if not match:
            raise ValueError(text)
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        raise ValidationFailed(
            "Enter a date as YYYY-MM-DD or YYYYMMDD, e.g. 2026-11-20.", field="date"
        ) from None


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def _run(work, *, as_json: bool):  # type: ignore[no-untyped-def]
    """Run ``work(session, actor, step)`` in one unit of work with progress bars."""
    from cardops.auth.service import system_user
    from cardops.core.db import unit_of_work

    console = err if as_json else out
    with _progress(console) as progress:
        tasks: dict[str, TaskID] = {}

        def step(label: str, done: float) -> None:
            if label not in tasks:
                tasks[label] = progress.add_task(STEPS.get(label, label), total=1.0)
            progress.update(tasks[label], completed=done)

        with unit_of_work() as session:
            return work(session, system_user(session), step)


def _print_figures(figures: dict[str, dict[str, int]]) -> None:
    from cardops.reconciliation.models import CLASS_LABELS

    table = Table(title="Reconciliation")
    table.add_column("class")
    table.add_column("count", justify="right")
    table.add_column("amount (yuan)", justify="right")
    for key, label in CLASS_LABELS.items():
        value = figures.get(key, {"count": 0, "amount": 0})
        style = "green" if key == "matched" else ("red" if value["count"] else "")
        table.add_row(label, str(value["count"]), format_minor(value["amount"]), style=style)
    out.print(table)


def reconcile(
    file: Path = typer.Argument(..., help="The bank's clearing file CLR_<acquirer>_<YYYYMMDD>.csv"),
    utf8: bool = typer.Option(False, "--utf8", help="The file is UTF-8 (default: GBK)."),
    replace: bool = typer.Option(
        False, "--replace", help="Replace the day's earlier file with this corrected one."
    ),
    reason: str = typer.Option("", "--reason", help="Why the file is replaced (kept in history)."),
    as_json: bool = typer.Option(
        False, "--json", help="Print only the day's counts as JSON (progress goes to stderr)."
    ),
) -> None:
    """Import the bank's clearing file and reconcile its day against the journal.

    Exits non-zero only when the file is refused (nothing is imported then)."""
    from cardops.reconciliation import service

    def work(session, actor, step):  # type: ignore[no-untyped-def]
        outcome = service.import_file(
            session=session,
            actor=actor,
            path=file,
            utf8=utf8,
            replace=replace,
            reason=reason,
            progress=step,
        )
        return outcome.counts(), outcome.run.figures, outcome.file.business_date, outcome.run.id

    try:
        counts, figures, day, run_id = _run(work, as_json=as_json)
    except CardopsError as exc:
        err.print(f"[red]refused[/red] ({exc.code}): {exc.localized()}")
        raise typer.Exit(2) from exc
    if as_json:
        typer.echo(json.dumps(counts))
        return
    out.print(f"Business day [bold]{day.isoformat()}[/bold], run {run_id}:")
    _print_figures(figures)


@journal_app.command("export")
def export(
    day: str = typer.Argument(..., help="Business day, YYYY-MM-DD"),
    clearing_file: Path = typer.Option(
        ..., "--clearing-file", help="Write the day as the bank's clearing file here."
    ),
    utf8: bool = typer.Option(False, "--utf8", help="Write UTF-8 instead of GBK."),
    bank_rate: str = typer.Option(
        None, "--bank-rate", help="Bank fee rate, e.g. 0.0025 (default CARDOPS_BANK_FEE_RATE)."
    ),
) -> None:
    """Write a day's journal as the acquiring bank would send it (the bank simulator)."""
    from cardops.reconciliation.simulator import export_day, parse_rate

    try:
        business_date = _day(day)
        rate = parse_rate(bank_rate) if bank_rate is not None else None

        def work(session, actor, step):  # type: ignore[no-untyped-def]
            step("journal", 0.0)
            result = export_day(
                session=session,
                actor=actor,
                business_date=business_date,
                path=clearing_file,
                rate_ppm=rate,
                encoding="utf-8" if utf8 else "gbk",
            )
            step("journal", 1.0)
            return result

        count, total = _run(work, as_json=False)
    except CardopsError as exc:
        err.print(f"[red]{exc.code}[/red]: {exc.localized()}")
        raise typer.Exit(2) from exc
    out.print(
        f"Wrote {count} lines, {format_minor(total)} yuan SUCCESS, to [bold]{clearing_file}[/bold]"
    )


@app.command("rerun")
def rerun(
    day: str = typer.Argument(..., help="Business day, YYYY-MM-DD"),
    as_json: bool = typer.Option(False, "--json", help="Print only the counts as JSON."),
) -> None:
    """Reconcile a day again against its active file (same cases, none doubled)."""
    from cardops.reconciliation import service

    def work(session, actor, step):  # type: ignore[no-untyped-def]
        outcome = service.rerun_day(
            session=session, actor=actor, business_date=_day(day), progress=step
        )
        return outcome.counts(), outcome.run.figures

    try:
        counts, figures = _run(work, as_json=as_json)
    except CardopsError as exc:
        err.print(f"[red]{exc.code}[/red]: {exc.localized()}")
        raise typer.Exit(2) from exc
    if as_json:
        typer.echo(json.dumps(counts))
        return
    _print_figures(figures)


@app.command("show")
def show(
    day: str = typer.Argument(..., help="Business day, YYYY-MM-DD"),
    as_json: bool = typer.Option(False, "--json", help="Print only the counts as JSON."),
) -> None:
    """The day's figures from its latest reconciliation run."""
    from cardops.auth.service import system_user
    from cardops.core.db import unit_of_work
    from cardops.reconciliation import service

    try:
        with unit_of_work() as session:
            run = service.current_run(
                session=session, actor=system_user(session), business_date=_day(day)
            )
            figures = dict(run.figures)
    except CardopsError as exc:
        err.print(f"[red]{exc.code}[/red]: {exc.localized()}")
        raise typer.Exit(2) from exc
    if as_json:
        typer.echo(json.dumps({k: int(v["count"]) for k, v in figures.items()}))
        return
    _print_figures(figures)


@app.command("cases")
def cases(
    day: str = typer.Option(None, "--date", help="Only this business day (YYYY-MM-DD)."),
    kind: str = typer.Option(None, "--kind", help="Only this class, e.g. amount_mismatch."),
    state: str = typer.Option(None, "--state", help="open, investigating, resolved, cleared."),
) -> None:
    """List difference cases."""
    from cardops.auth.service import system_user
    from cardops.core.db import unit_of_work
    from cardops.reconciliation import service

    try:
        with unit_of_work() as session:
            rows, total = service.list_cases(
                session=session,
                actor=system_user(session),
                business_date=_day(day) if day else None,
                kind=kind,
                state=state,
            )
            table = Table(title=f"{total} cases")
            for column in ("number", "day", "class", "state", "TID", "RRN", "bank", "ours"):
                table.add_column(column)
            for case in rows:
                table.add_row(
                    case.number,
                    case.business_date.isoformat(),
                    case.kind,
                    case.state,
                    case.tid,
                    case.rrn,
                    format_minor(case.bank_amount) if case.bank_amount is not None else "",
                    format_minor(case.our_amount) if case.our_amount is not None else "",
                )
    except CardopsError as exc:
        err.print(f"[red]{exc.code}[/red]: {exc.localized()}")
        raise typer.Exit(2) from exc
    out.print(table)


TOP_LEVEL = {"journal": journal_app}
TOP_LEVEL_COMMANDS = {"reconcile": reconcile}
