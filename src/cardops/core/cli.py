"""``cardops i18n …``: find strings that lack a Chinese translation."""

from __future__ import annotations

import typer
from rich.console import Console

NAME = "i18n"
app = typer.Typer(help="Translations (Simplified Chinese and English).", no_args_is_help=True)
out = Console()


@app.command("missing")
def missing(
    write: bool = typer.Option(False, help="Append them to each domain's zh_CN.po."),
    domain: str = typer.Option("", help="Only this domain (e.g. merchants)."),
) -> None:
    """List user-visible strings without a Chinese translation (exit 1 if any)."""
    from cardops.core import i18n_check

    found = i18n_check.missing()
    if domain:
        found = {name: strings for name, strings in found.items() if name == domain}
    for domain, strings in found.items():
        out.print(f"[bold]{domain}[/bold] ({len(strings)})")
        for text in strings:
            out.print(f"  {text}")
    if write:
        added = i18n_check.write_missing(only=domain or None)
        out.print(f"added {added} empty entries to the po files")
    if found:
        raise typer.Exit(1)
    out.print("[green]every string has a Chinese translation[/green]")
