"""``cardops documents …``: check that every stored document file is intact."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.progress import Progress

from cardops.core.db import unit_of_work
from cardops.parties import service

NAME = "documents"
app = typer.Typer(
    help="Uploaded documents (ID copies, contracts, licences…).", no_args_is_help=True
)
out = Console()


@app.command("verify")
def verify() -> None:
    """Re-hash every stored file and compare it with its recorded SHA-256 (exit 1 on a problem)."""
    with unit_of_work() as session:
        total = service.count_documents(session)
        with Progress(console=out, transient=True) as progress:
            task = progress.add_task("verifying documents", total=total)
            problems = service.verify_all_documents(
                session, progress=lambda n: progress.advance(task, n)
            )
    if not problems:
        out.print(f"[green]All {total} documents are intact.[/green]")
        return
    for check in problems:
        out.print(
            f"[red]document {check.document_id}[/red]: {check.status} "
            f"(expected {check.expected_sha256}, found {check.actual_sha256 or '-'})"
        )
    out.print(f"[red]{len(problems)} of {total} documents are damaged or missing.[/red]")
    raise typer.Exit(1)
