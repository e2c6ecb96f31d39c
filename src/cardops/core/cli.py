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
) -> None:
    """List user-visible strings without a Chinese translation (exit 1 if any)."""
    from cardops.core import i18n_check

    found = i18n_check.missing()
    for domain, strings in found.items():
        out.print(f"[bold]{domain}[/bold] ({len(strings)})")
        for text in strings:
            out.print(f"  {text}")
    if write:
        out.print(f"added {i18n_check.write_missing()} empty entries to the po files")
    if found:
        raise typer.Exit(1)
    out.print("[green]every string has a Chinese translation[/green]")
