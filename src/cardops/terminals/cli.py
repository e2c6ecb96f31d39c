"""``cardops terminals …`` (serial-list import, stock) and ``cardops keys export-tmk``."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import typer
from rich.console import Console

NAME = "terminals"
app = typer.Typer(help="POS terminals: inbound import, stock.", no_args_is_help=True)
keys_app = typer.Typer(help="Terminal master keys (key custodian only).", no_args_is_help=True)
out = Console()
err = Console(stderr=True)


@app.command("import")
def import_serials(
    file: Path = typer.Argument(..., help="Serial list: .csv (UTF-8 or GBK) or .xlsx."),
    supplier: str = typer.Option(..., "--supplier", help="The supplier's name, e.g. DEMO."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check every row; import nothing."),
) -> None:
    """Import a manufacturer's serial list. Exit 0 when imported; otherwise exit 1 with one
    line per bad row (``row N: field: reason``) and nothing imported."""
    from cardops.auth.service import system_user
    from cardops.core.db import unit_of_work
    from cardops.terminals.importer import ImportRejected, import_file

    if not file.is_file():
        err.print(f"file not found: {file}")
        raise typer.Exit(2)
    started = time.perf_counter()
    try:
        with unit_of_work() as session:
            outcome = import_file(
                session=session,
                actor=system_user(session),
                supplier=supplier,
                filename=file.name,
                data=file.read_bytes(),
                dry_run=dry_run,
            )
            number = outcome.batch.number if outcome.batch else None
            count = outcome.count
    except ImportRejected as exc:
        for row in exc.rows:
            print(row.text("en"))
        total = exc.params.get("n", len(exc.rows))
        if total > len(exc.rows):
            print(f"… and {total - len(exc.rows)} more errors")
        print(f"{total} errors; nothing imported", file=sys.stderr)
        raise typer.Exit(1) from None
    seconds = time.perf_counter() - started
    if number is None:
        print(f"{count} units checked, no errors (dry run: nothing imported) in {seconds:.1f} s")
    else:
        print(f"imported {count} units as batch {number} in {seconds:.1f} s")


@app.command("recount")
def recount() -> None:
    """Rebuild the stock counts (location × model × state) from the units."""
    from cardops.core.db import unit_of_work
    from cardops.terminals.service import recount as rebuild

    with unit_of_work() as session:
        wrong = rebuild(session)
    print(f"stock counts rebuilt: {wrong} buckets were off" if wrong else "stock counts are right")


@keys_app.command("export-tmk")
def export_tmk(
    user: str = typer.Option(..., "--user", help="Your user name (a key custodian)."),
    serial: list[str] = typer.Option([], "--serial", help="A serial; repeat for more."),
    batch: str = typer.Option("", "--batch", help="Every unit of this inbound batch number."),
    out_file: Path = typer.Option(..., "--out", help="CSV file to write: serial,tmk_hex,kcv."),
    password: str = typer.Option(
        ..., prompt=True, hide_input=True, envvar="CARDOPS_PASSWORD", help="Your password."
    ),
) -> None:
    """Export terminal master keys for key injection (needs keys.export; audited)."""
    import os

    from cardops.auth.service import authenticate
    from cardops.core.db import session_factory
    from cardops.core.errors import CardopsError
    from cardops.terminals.keys import export_csv, export_tmks

    session = session_factory()
    try:
        try:
            actor = authenticate(session, user, password)
            keys = export_tmks(session=session, actor=actor, serials=serial, batch=batch or None)
        except CardopsError as exc:
            session.commit()  # keep the failed-login count
            err.print(f"[red]{exc.code}[/red]: {exc.localized('en')}")
            raise typer.Exit(1) from None
        fd = os.open(out_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(export_csv(keys))
        session.commit()
    finally:
        session.close()
    out.print(f"wrote {len(keys)} keys to {out_file} (mode 600); the export is in the audit log")


# Also registered at the top level: ``cardops keys export-tmk`` (the issue names it so).
TOP_LEVEL = {"keys": keys_app}
