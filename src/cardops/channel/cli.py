"""``cardops channel …``: default regions, the providers tree."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from cardops.auth.service import system_user
from cardops.channel import service
from cardops.core.db import unit_of_work

NAME = "channel"
app = typer.Typer(help="Service providers, regions and provider orders.", no_args_is_help=True)
out = Console()


@app.command("regions")
def regions(
    defaults: bool = typer.Option(
        False, "--defaults", help="Create the six regions of seed 002 that do not exist yet."
    ),
) -> None:
    """List the service regions and their provinces (with --defaults: create them first)."""
    with unit_of_work() as session:
        if defaults:
            created = service.install_default_regions(session=session, actor=system_user(session))
            out.print(f"{len(created)} region(s) created")
        table = Table("code", "name", "provinces", "reviewer")
        for region in service.list_regions(session):
            table.add_row(
                region.code,
                f"{region.name_zh} {region.name_en}",
                " ".join(region.provinces or []),
                str(region.reviewer_id or ""),
            )
        out.print(table)
        left = service.unassigned_provinces(session)
        if left:
            out.print(f"not in any region: {' '.join(left)}")


@app.command("providers")
def providers() -> None:
    """Print the providers tree."""
    with unit_of_work() as session:
        for node in service.provider_tree(session=session, actor=system_user(session)):
            p = node.provider
            area = " ".join([*(p.provinces or []), *(p.cities or [])])
            out.print(f"{'  ' * node.depth}{p.code}  {p.name}  [{p.level}]  {area}")
