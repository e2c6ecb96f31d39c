"""``cardops ledger …``: trial balance, receipt PDFs, the standard chart, the PDF font."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from cardops.auth.service import system_user
from cardops.core.db import unit_of_work
from cardops.core.money import format_minor
from cardops.ledger import service
from cardops.ledger.receipts_pdf import pdf_font, render_receipt_pdf

NAME = "ledger"
app = typer.Typer(help="The double-entry ledger and receipts.", no_args_is_help=True)
out = Console()


@app.command("trial-balance")
def trial_balance(
    as_of: str = typer.Option("", "--as-of", help="Business date YYYY-MM-DD (default: today)."),
    no_rollup: bool = typer.Option(False, "--no-rollup", help="List sub-accounts separately."),
) -> None:
    """Every account with a balance, in debit and credit columns; exit 1 when out of balance."""
    day = date.fromisoformat(as_of) if as_of else None
    with unit_of_work() as session:
        result = service.trial_balance(session, as_of=day, rollup=not no_rollup)
        table = Table("code", "name", "type", "currency", "debit", "credit")
        for row in result.rows:
            table.add_row(
                row.account.code,
                f"{row.account.name_zh} {row.account.name_en}",
                row.account.type,
                row.account.currency,
                format_minor(row.debit) if row.debit else "",
                format_minor(row.credit) if row.credit else "",
            )
        for total in result.totals:
            table.add_row(
                "",
                "total",
                "",
                total.currency,
                format_minor(total.debit),
                format_minor(total.credit),
            )
        out.print(table)
        if not result.balanced:
            out.print("[red]Out of balance: debits and credits differ.[/red]")
            raise typer.Exit(1)
        out.print("[green]Debits equal credits.[/green]")


@app.command("receipt-pdf")
def receipt_pdf(number: str, output: Path) -> None:
    """Write the printable PDF of receipt NUMBER to OUTPUT."""
    with unit_of_work() as session:
        receipt = service.get_receipt(session, number)
        output.write_bytes(render_receipt_pdf(receipt))
    out.print(f"wrote {output} ({output.stat().st_size} bytes)")


@app.command("init-chart")
def init_chart() -> None:
    """Open any missing account of the standard chart of accounts."""
    with unit_of_work() as session:
        opened = service.ensure_standard_chart(session=session, actor=system_user(session))
    out.print(f"{opened} account(s) opened")


@app.command("export")
def export(
    format: str = typer.Option("beancount", "--format", help="Output format: beancount."),
    output: Path | None = typer.Option(None, "--output", help="File to write (default: stdout)."),
) -> None:
    """Write the whole books (every account and posting) for another accounting tool."""
    from cardops.ledger.beancount import export_lines

    if format != "beancount":
        out.print("[red]Only --format beancount is supported.[/red]")
        raise typer.Exit(2)
    with unit_of_work() as session:
        if output is None:
            for line in export_lines(session):
                print(line)
            return
        with output.open("w", encoding="utf-8") as handle:
            for line in export_lines(session):
                handle.write(line + "\n")
    out.print(f"wrote {output}")


@app.command("pdf-font")
def font() -> None:
    """Show which font receipts are printed with and whether it is embedded."""
    chosen = pdf_font()
    if chosen.embedded:
        out.print(f"[green]{chosen.path}[/green] (font #{chosen.subfont_index}, embedded)")
        return
    out.print(
        f"[red]{chosen.name}[/red]: NOT embedded; Chinese prints as boxes where Adobe's CJK fonts "
        "are missing. Install fonts-wqy-zenhei or set CARDOPS_PDF_FONT."
    )
    raise typer.Exit(1)
