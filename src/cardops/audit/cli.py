"""``cardops audit …``: verify the hash chain."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.progress import Progress

from cardops.audit import service
from cardops.core.db import unit_of_work

NAME = "audit"
app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
out = Console()


@app.command("verify")
def verify() -> None:
    """Walk the whole chain; report the first broken link (exit 1) or that it is intact."""
    with unit_of_work() as session:
        total = service.count(session)
        with Progress(console=out, transient=True) as progress:
            task = progress.add_task("verifying audit chain", total=total)
            result = service.verify(session, progress=lambda n: progress.advance(task, n))
    if result.ok:
        out.print(f"[green]Audit chain intact[/green]: {result.checked} entries verified.")
        return
    reasons = {
        "missing": "an entry is missing (deleted)",
        "prev_hash": "the link to the previous entry does not match",
        "hash": "the entry was changed after it was written",
    }
    out.print(
        f"[red]Audit chain broken at entry {result.broken_seq}[/red]: "
        f"{reasons.get(result.reason or '', result.reason)}; {result.checked} entries before it are intact."
    )
    raise typer.Exit(1)
