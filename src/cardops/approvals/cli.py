"""``cardops approvals …``: list approval chains, install the default ones."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from cardops.approvals import service
from cardops.auth.service import system_user
from cardops.core.db import unit_of_work

NAME = "approvals"
app = typer.Typer(help="Approval chains and requests.", no_args_is_help=True)
out = Console()


@app.command("chains")
def chains() -> None:
    """List the approval chains and their steps."""
    with unit_of_work() as session:
        table = Table("kind", "name", "active", "steps")
        for chain in service.list_chains(session=session):
            table.add_row(
                chain.kind,
                f"{chain.name_en} / {chain.name_zh}",
                "yes" if chain.active else "no",
                " → ".join(s.role.code for s in chain.steps),
            )
        out.print(table)


@app.command("defaults")
def defaults() -> None:
    """Define the default chains (distributor orders, purchase requests, …) that are missing."""
    from cardops.approvals.demo import install_defaults

    with unit_of_work() as session:
        created = install_defaults(session, system_user(session))
        out.print(f"defined {len(created)} chain(s): {', '.join(c.kind for c in created) or '-'}")
