"""``cardops warranty …``: service-card ranges, issuing, lookup, flagged sales, points."""

from __future__ import annotations

from datetime import date

import typer
from rich.console import Console
from rich.table import Table

from cardops.auth.service import system_user
from cardops.channel import service as channel
from cardops.core.db import unit_of_work
from cardops.core.errors import CardopsError
from cardops.core.money import format_minor
from cardops.warranty import service

NAME = "warranty"
app = typer.Typer(
    help="Numbered service / warranty cards (售后服务卡), returns and exchanges.",
    no_args_is_help=True,
)
out = Console()


def _fail(exc: CardopsError) -> None:
    out.print(f"[red]{exc.localized()}[/red]")
    raise typer.Exit(1)


@app.command("generate")
def generate(
    prefix: str = typer.Option(..., "--prefix", help="1–6 letters, e.g. JD"),
    start: int = typer.Option(1, "--start", help="First sequence number"),
    count: int = typer.Option(..., "--count", help="How many numbers"),
    width: int = typer.Option(8, "--width", help="Digits of the sequence"),
    note: str = typer.Option("", "--note"),
) -> None:
    """Generate a range of card numbers (refused when it overlaps an existing range)."""
    try:
        with unit_of_work() as session:
            row = service.generate_range(
                session=session,
                actor=system_user(session),
                prefix=prefix,
                width=width,
                start=start,
                count=count,
                note=note,
            )
            out.print(f"{service.first_number(row)} – {service.last_number(row)} ({row.size})")
    except CardopsError as exc:
        _fail(exc)


@app.command("ranges")
def ranges() -> None:
    """List the generated ranges with how many numbers are issued and registered."""
    with unit_of_work() as session:
        table = Table("first", "last", "count", "issued", "registered", "note")
        for row in service.list_ranges(session=session, actor=system_user(session)):
            r = row.card_range
            table.add_row(
                service.first_number(r),
                service.last_number(r),
                str(r.size),
                str(row.issued),
                str(row.registered),
                r.note,
            )
        out.print(table)


@app.command("issue")
def issue(
    first: str = typer.Argument(..., help="First card number (with its check character)"),
    last: str = typer.Argument(..., help="Last card number"),
    to: str = typer.Option(..., "--to", help="Provider code of the branch or dealer"),
) -> None:
    """Issue numbers to a branch, or from a branch's holding to one of its dealers."""
    try:
        with unit_of_work() as session:
            provider = channel.find_provider(session, to.strip().upper())
            if provider is None:
                out.print(f"[red]no provider {to}[/red]")
                raise typer.Exit(1)
            row = service.issue(
                session=session,
                actor=system_user(session),
                first=first,
                last=last,
                provider_id=provider.id,
            )
            out.print(f"{row.size} numbers issued to {provider.code} {provider.name}")
    except CardopsError as exc:
        _fail(exc)


@app.command("lookup")
def lookup(number: str) -> None:
    """Tell whether a card number is genuine, who holds it and the warranty left."""
    with unit_of_work() as session:
        found = service.lookup(session, number)
        if not found.genuine:
            out.print(f"[red]{found.number}: not genuine ({found.reason})[/red]")
            raise typer.Exit(2)
        out.print(f"[green]{found.number}: genuine[/green]")
        out.print(f"branch: {found.branch.name if found.branch else '-'}")
        out.print(f"dealer: {found.dealer.name if found.dealer else '-'}")
        if found.card is not None:
            out.print(
                f"registered: {found.card.sale_date} {found.card.buyer_name}; warranty ends "
                f"{found.card.warranty_end} ({found.days_left} days left); state {found.card.state}"
            )
        else:
            out.print("not registered to a sale yet")


@app.command("flagged")
def flagged(
    kind: str = typer.Option("any", "--kind", help="any | cross_region | below_floor"),
) -> None:
    """Registered cards flagged for cross-region selling (窜货) or a price below the floor."""
    with unit_of_work() as session:
        table = Table("number", "model", "sold in", "branch", "dealer", "price", "floor", "flags")
        for c in service.list_cards(session=session, actor=system_user(session), flagged=kind):
            flags = " ".join(
                f
                for f, on in (("cross_region", c.cross_region), ("below_floor", c.below_floor))
                if on
            )
            table.add_row(
                c.number,
                c.model.code,
                f"{c.province} {c.city}",
                c.branch.code,
                c.dealer.code if c.dealer else "",
                format_minor(c.price),
                format_minor(c.floor_price),
                flags,
            )
        out.print(table)


@app.command("points")
def points(
    since: str = typer.Option("", "--since", help="YYYY-MM-DD (default: start of this month)"),
    until: str = typer.Option("", "--until", help="YYYY-MM-DD (default: today)"),
) -> None:
    """Installer points per installer in a period."""
    try:
        start = date.fromisoformat(since) if since else None
        end = date.fromisoformat(until) if until else None
    except ValueError:
        out.print("[red]dates are YYYY-MM-DD[/red]")
        raise typer.Exit(1) from None
    try:
        with unit_of_work() as session:
            first, last, rows = service.points_summary(
                session=session, actor=system_user(session), since=start, until=end
            )
            table = Table("installer", "id", "cards", "points", title=f"{first} – {last}")
            for person, total, cards in rows:
                table.add_row(person.name, str(person.id), str(cards), str(total))
            out.print(table)
    except CardopsError as exc:
        _fail(exc)
