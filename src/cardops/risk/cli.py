"""``cardops risk …``: list and check rules, backtest a scenario, the alert queue, rate a
merchant."""

from __future__ import annotations

from datetime import date, timedelta

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from cardops.auth.service import system_user
from cardops.core.clock import local, utcnow
from cardops.core.db import unit_of_work
from cardops.core.errors import CardopsError

NAME = "risk"
app = typer.Typer(help="Risk rules, alerts, merchant ratings, backtests.", no_args_is_help=True)
out = Console()


def _fail(exc: CardopsError) -> None:
    out.print(f"[red]{exc.localized()}[/red]")
    raise typer.Exit(1)


@app.command("rules")
def rules() -> None:
    """The scenarios and their rules, with run-time failures."""
    from cardops.risk import service

    with unit_of_work() as session:
        actor = system_user(session)
        table = Table("scenario", "rule", "v", "score", "active", "failures", "condition")
        scenarios = {s.id: s for s in service.list_scenarios(session=session, actor=actor)}
        for rule in service.list_rules(session=session, actor=actor):
            scenario = scenarios.get(rule.scenario_id)
            table.add_row(
                scenario.code if scenario else "?",
                rule.code,
                str(rule.version),
                str(rule.score),
                "yes" if rule.active else "no",
                str(rule.error_count),
                rule.expression,
            )
        out.print(table)


@app.command("validate")
def validate(expression: str = typer.Argument(..., help="A CEL condition.")) -> None:
    """Check a condition as the console does (position of the error, unknown fields)."""
    from cardops.risk import service

    try:
        used = service.validate_expression(expression)
    except CardopsError as exc:
        _fail(exc)
    out.print("valid; reads " + (", ".join(used) or "no fields"))


@app.command("backtest")
def backtest(
    scenario: str = typer.Argument(..., help="Scenario code."),
    start: str = typer.Option("", "--from", help="First day, YYYY-MM-DD (default: 7 days ago)."),
    end: str = typer.Option("", "--to", help="Last day, YYYY-MM-DD (default: today)."),
    active_only: bool = typer.Option(False, "--active-only", help="Leave draft rules out."),
) -> None:
    """Replay the journal through a scenario's rules: what would have fired."""
    from cardops.risk import service
    from cardops.risk.models import Scenario

    today = local(utcnow()).date()
    try:
        first = date.fromisoformat(start) if start else today - timedelta(days=6)
        last = date.fromisoformat(end) if end else today
    except ValueError:
        out.print("[red]Dates are YYYY-MM-DD.[/red]")
        raise typer.Exit(2) from None
    with unit_of_work() as session:
        actor = system_user(session)
        found = session.execute(select(Scenario).where(Scenario.code == scenario)).scalar()
        if found is None:
            out.print(f"[red]No scenario {scenario}.[/red]")
            raise typer.Exit(1)
        try:
            result = service.backtest(
                session=session,
                actor=actor,
                scenario_id=found.id,
                start=first,
                end=last,
                include_inactive=not active_only,
            )
        except CardopsError as exc:
            _fail(exc)
        out.print(
            f"{result.scenario} {result.start}..{result.end}: {result.requests} requests, "
            + ", ".join(f"{k} {v}" for k, v in sorted(result.decisions.items()))
        )
        table = Table("rule", "active", "fired", "failures", "known outcomes")
        for r in result.rules:
            table.add_row(
                r.code,
                "yes" if r.active else "no",
                str(r.fired),
                str(r.errors),
                ", ".join(f"{k} {v}" for k, v in r.outcomes.items()) or "-",
            )
        out.print(table)


@app.command("alerts")
def alerts(
    overdue: bool = typer.Option(False, "--overdue", help="Only those past the first-look SLA."),
    limit: int = typer.Option(50, min=1, max=500),
) -> None:
    """The alert queue (open first, the oldest due first)."""
    from cardops.risk import service

    with unit_of_work() as session:
        actor = system_user(session)
        rows = service.list_alerts(
            session=session,
            actor=actor,
            filters=service.AlertFilter(overdue=overdue),
            limit=limit,
        )
        table = Table("#", "opened", "decision", "score", "rules", "tid", "amount", "state", "due")
        for a in rows:
            table.add_row(
                str(a.id),
                local(a.created_at).strftime("%Y-%m-%d %H:%M"),
                a.decision,
                str(a.score),
                " ".join(r.get("code", "") for r in a.rules or []),
                a.tid,
                f"{a.amount / 100:.2f}",
                a.state + (" OVERDUE" if service.is_overdue(a) else ""),
                local(a.due_at).strftime("%Y-%m-%d %H:%M"),
            )
        out.print(table)


@app.command("rate")
def rate(
    merchant_id: int = typer.Argument(..., min=1),
    rating: str = typer.Argument(..., help="A, B, C or D."),
    note: str = typer.Option("", help="Why (required when the rating changes)."),
) -> None:
    """Rate or review a merchant; the gateways apply the rating's limits at once."""
    from cardops.risk import service

    with unit_of_work() as session:
        try:
            row = service.rate_merchant(
                session=session,
                actor=system_user(session),
                merchant_id=merchant_id,
                rating=rating.upper(),
                note=note,
            )
        except CardopsError as exc:
            _fail(exc)
        out.print(f"merchant {merchant_id}: {row.rating}, next review {row.next_review_on}")
