"""The movement service every domain uses: lifecycle, history, allocation checks."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cardops.audit.models import AuditEntry
from cardops.auth.service import system_user
from cardops.core.errors import InvalidTransition, ValidationFailed
from cardops.terminals import service
from cardops.terminals.models import TerminalState
from tests.terminals.helpers import model, provider, supplier, unit


def test_location_for_is_get_or_create(db: Session) -> None:
    first = service.location_for(db, "provider", 901, "成都地市服务商")
    again = service.location_for(db, "provider", 901, "成都地市服务商")
    assert first.id == again.id
    assert service.warehouse(db).id == service.warehouse(db).id
    assert service.warehouse(db).kind == "warehouse"


def test_move_records_history_and_refuses_illegal_moves(db: Session) -> None:
    actor = system_user(db)
    terminal = unit(db, state=TerminalState.IN_STOCK)
    owner = provider(db)
    place = service.location_for(db, "provider", owner.id, owner.name)
    service.move(db, actor, terminal, TerminalState.ALLOCATED, kind="allocate", document="PO-1")
    service.move(db, actor, terminal, "shipped", kind="ship", document="PO-1")
    service.move(db, actor, terminal, TerminalState.AT_PROVIDER, place, kind="receive")
    assert terminal.provider_id == owner.id
    assert terminal.location_id == place.id
    with pytest.raises(InvalidTransition) as refused:
        service.move(db, actor, terminal, TerminalState.RETURNED_TO_FACTORY, kind="return")
    assert terminal.serial in str(refused.value)
    assert terminal.state == "at_provider"

    events = service.history(terminal)
    assert [(e.kind, e.from_state, e.to_state) for e in events] == [
        ("allocate", "in_stock", "allocated"),
        ("ship", "allocated", "shipped"),
        ("receive", "shipped", "at_provider"),
    ]
    assert events[0].document == "PO-1"
    assert events[2].to_location_id == place.id
    audited = db.execute(
        select(AuditEntry).where(
            AuditEntry.entity_type == "terminals", AuditEntry.entity_id == str(terminal.id)
        )
    ).scalars()
    assert {a.action for a in audited} >= {"terminal.allocate", "terminal.receive"}


def test_allocation_refuses_serials_not_in_the_senders_stock(db: Session) -> None:
    actor = system_user(db)
    mod = model(db, supplier(db))
    good = unit(db, mod=mod)
    shipped = unit(db, mod=mod, state=TerminalState.SHIPPED)
    with pytest.raises(ValidationFailed) as refused:
        service.allocate_serials(db, actor, [good.serial, shipped.serial, "NOSUCH001"], "PO-2")
    message = str(refused.value)
    assert shipped.serial in message and "NOSUCH001" in message
    assert good.serial not in message
    assert good.state == "in_stock"  # all or none

    units = service.allocate_serials(db, actor, f"{good.serial}\n", "PO-2")
    assert [u.state for u in units] == ["allocated"]
    service.release_serials(db, actor, [good.serial], "PO-2")
    assert good.state == "in_stock"


def test_find_by_any_code_and_prefix(db: Session) -> None:
    terminal = unit(db, serial="FINDME-0001")
    terminal.imei = "490154203237518"
    terminal.tid = "T1234567"
    db.flush()
    assert service.find(db, "490154203237518") == [terminal]
    assert service.find(db, "T1234567") == [terminal]
    assert terminal in service.find(db, "FINDME-")
    assert service.get_by_serial(db, "FINDME-0001") is terminal


def test_stock_counts_follow_every_move_and_recount_finds_no_drift(db: Session) -> None:
    from cardops.terminals.importer import import_file, sample_csv

    actor = system_user(db)
    maker = supplier(db)
    mod = model(db, maker)
    import_file(
        session=db,
        actor=actor,
        supplier=maker,
        filename="c.csv",
        data=sample_csv(4, model=mod.code, prefix="CNT", start=900_000),
    )
    home = service.warehouse(db)

    def counts() -> dict[str, int]:
        return {
            r.state: r.count
            for r in service.stock_summary(db, location_id=home.id, model_id=mod.id)
        }

    assert counts() == {"received": 4}
    service.quality_check(
        session=db, actor=actor, batch_id=None, serials=["CNT00900000", "CNT00900001"]
    )
    assert counts() == {"received": 2, "in_stock": 2}
    service.allocate_serials(db, actor, ["CNT00900000"], "PO-9")
    assert counts() == {"received": 2, "in_stock": 1, "allocated": 1}
    direct = unit(db, mod=mod, state=TerminalState.IN_STOCK)  # another domain's ORM insert
    assert counts()["in_stock"] == 2
    direct.state = "allocated"  # even a change that bypasses the movement service
    db.flush()
    assert counts() == {"received": 2, "in_stock": 1, "allocated": 2}
    assert service.recount(db) == 0
