"""``cardops backup …``: take a consistent backup, inspect one, restore one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from cardops.backup import service
from cardops.core.config import get_settings

NAME = "backup"
app = typer.Typer(
    help="Backups of the database and documents, and restoring them.", no_args_is_help=True
)
out = Console()

PHASES = {
    "database": "copying the database",
    "archive": "writing the archive",
    "documents": "unpacking documents",
    "restore": "restoring the database",
}


@contextmanager
def _progress() -> Iterator[service.Progress]:
    """A Rich progress bar per phase, fed by the service's progress callback."""
    tasks: dict[str, TaskID] = {}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=out,
        transient=False,
    ) as bar:

        def callback(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(PHASES.get(phase, phase), total=total or None)
            bar.update(tasks[phase], completed=done, total=total or None)

        yield callback


def _masked(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def _describe(info: service.BackupInfo) -> None:
    out.print(f"backup:     {info.path} ({info.size:,} bytes)")
    out.print(f"taken:      {info.created_at.isoformat(timespec='seconds')}")
    out.print(
        f"database:   {info.kind}, schema {info.state.revision}, cardops {info.cardops_version}"
    )
    out.print(f"rows:       {sum(info.state.tables.values()):,} in {len(info.state.tables)} tables")
    chain = "verified" if info.state.audit_ok else f"BROKEN at {info.state.audit_broken_seq}"
    out.print(
        f"audit:      {info.state.audit_count:,} entries, head {info.state.audit_head[:16]}…, {chain}"
    )
    out.print(f"documents:  {info.documents:,} files, {info.documents_bytes:,} bytes")


@app.command("create")
def create(
    path: str = typer.Argument(
        ...,
        help="The .tar.gz file to write, or a directory (ending in /) for a dated file name.",
    ),
) -> None:
    """Take a consistent backup while the server runs (database and documents)."""
    settings = get_settings()
    with _progress() as progress:
        info = service.create_backup(
            settings.effective_database_url,
            path,
            progress,
            documents_dir=settings.documents_dir,
        )
    _describe(info)
    if not info.state.audit_ok:
        out.print("[yellow]warning[/yellow]: the audit chain was already broken when backed up")
    out.print(f"[green]backup written[/green]: {info.path}")


@app.command("inspect")
def inspect(
    path: Path,
    deep: bool = typer.Option(False, "--deep", help="Also read the whole archive and check it."),
) -> None:
    """Show what a backup holds (and with --deep check its checksum and documents)."""
    info = service.verify_backup(path, deep=deep)
    _describe(info)
    table = Table("table", "rows")
    for name, rows in sorted(info.state.tables.items()):
        table.add_row(name, f"{rows:,}")
    out.print(table)
    if deep:
        out.print("[green]archive intact[/green]")


@app.command("restore")
def restore(
    path: Path,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Replace the database and the documents with a backup's. Stop the server first."""
    settings = get_settings()
    url = settings.effective_database_url
    info = service.verify_backup(path)
    _describe(info)
    service.check_restorable(info, url)
    out.print(f"target:     {_masked(url)}, documents in {settings.documents_dir}")
    if not yes:
        typer.confirm(
            "Everything in the target database and documents folder will be replaced. Continue?",
            abort=True,
        )
    with _progress() as progress:
        result = service.restore_backup(url, path, progress, documents_dir=settings.documents_dir)
    table = Table("table", "in backup", "after restore", "")
    for name in sorted(set(info.state.tables) | set(result.state.tables)):
        want = info.state.tables.get(name)
        got = result.state.tables.get(name)
        table.add_row(
            name,
            "-" if want is None else f"{want:,}",
            "-" if got is None else f"{got:,}",
            "ok" if want == got else "[red]differs[/red]",
        )
    out.print(table)
    state = result.state
    if state.audit_ok:
        out.print(
            f"audit chain verified: {state.audit_count:,} entries, head {state.audit_head[:16]}…"
        )
    else:
        out.print(f"[red]audit chain broken at entry {state.audit_broken_seq}[/red]")
    if result.needs_upgrade:
        out.print(
            "the backup's schema is older than this cardops: run [bold]cardops db upgrade[/bold]"
        )
    if not result.matches or not state.audit_ok:
        out.print("[red]the restored database does not match the backup's manifest[/red]")
        raise typer.Exit(1)
    out.print(f"[green]restored[/green] {result.documents:,} documents and the database")
