"""``cardops repairs …``: RMA batches (list, send, receive) and open repair cases, for the
warehouse's batch work at the shipping desk."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

NAME = "repairs"
app = typer.Typer(help="Repair workshop: repair cases and RMA batches.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)


@app.command("rma-list")
def rma_list(
    state: str = typer.Option("", "--state", help="open, sent or received (default: all)."),
) -> None:
    """RMA batches with their units: number, manufacturer, state, carrier, tracking number."""
    from cardops.auth.service import system_user
    from cardops.core.db import unit_of_work
    from cardops.repairs import service
    from cardops.terminals.models import Supplier

    if state and state not in ("open", "sent", "received"):
        err.print("--state is open, sent or received")
        raise typer.Exit(2)
    with unit_of_work() as session:
        actor = system_user(session)
        table = Table("batch", "manufacturer", "state", "carrier", "tracking", "sent", "units")
        for batch in service.list_batches(session=session, actor=actor, state=state or None):
            supplier = session.get(Supplier, batch.supplier_id)
            cases = service.batch_cases(session, batch)
            table.add_row(
                batch.number,
                supplier.name if supplier else "",
                batch.state,
                batch.carrier,
                batch.tracking_number,
                batch.sent_at.strftime("%Y-%m-%d %H:%M") if batch.sent_at else "",
                " ".join(c.serial for c in cases),
            )
        out.print(table)


@app.command("rma-send")
def rma_send(
    number: str = typer.Argument(..., help="The batch number, e.g. RMA2026-000001."),
    carrier: str = typer.Option(..., "--carrier"),
    tracking: str = typer.Option(..., "--tracking"),
) -> None:
    """Send an open batch to the factory with its carrier and tracking number."""
    _batch_step(number, lambda s, a, b: _send(s, a, b, carrier, tracking))


@app.command("rma-receive")
def rma_receive(
    number: str = typer.Argument(..., help="The batch number."),
    serials: list[str] = typer.Argument(None, help="Serials received (default: the whole batch)."),
) -> None:
    """Receive units back from the factory: they are ready to return to their customers."""
    from cardops.repairs import service

    _batch_step(
        number,
        lambda s, a, b: service.receive_batch(
            session=s, actor=a, batch_id=b.id, serials=serials or ()
        ),
    )


def _send(session, actor, batch, carrier: str, tracking: str):  # type: ignore[no-untyped-def]
    from cardops.repairs import service

    return service.send_batch(
        session=session, actor=actor, batch_id=batch.id, carrier=carrier, tracking_number=tracking
    )


def _batch_step(number: str, step) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from cardops.auth.service import system_user
    from cardops.core.db import unit_of_work
    from cardops.core.errors import CardopsError
    from cardops.repairs.models import RmaBatch

    try:
        with unit_of_work() as session:
            batch = session.execute(
                select(RmaBatch).where(RmaBatch.number == number.strip()[:32])
            ).scalar_one_or_none()
            if batch is None:
                err.print(f"no RMA batch {number}")
                raise typer.Exit(1)
            step(session, system_user(session), batch)
            out.print(f"{batch.number}: {batch.state}")
    except CardopsError as exc:
        err.print(exc.localized("en"))
        raise typer.Exit(1) from None


@app.command("open-cases")
def open_cases() -> None:
    """Repair cases not yet returned, oldest first, with their loaners."""
    from sqlalchemy import select

    from cardops.core.db import unit_of_work
    from cardops.repairs.models import OPEN_REPAIR_STATES, RepairCase
    from cardops.terminals.models import Terminal

    with unit_of_work() as session:
        table = Table("case", "serial", "state", "received", "loaner")
        rows = session.execute(
            select(RepairCase)
            .where(RepairCase.state.in_(OPEN_REPAIR_STATES))
            .order_by(RepairCase.id)
            .limit(1000)
        ).scalars()
        for case in rows:
            loaner = session.get(Terminal, case.loaner_terminal_id) if case.loaner_out else None
            table.add_row(
                case.number,
                case.serial,
                case.state,
                case.received_at.strftime("%Y-%m-%d"),
                loaner.serial if loaner else "",
            )
        out.print(table)
