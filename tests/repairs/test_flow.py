"""The faulty-terminal flow through the service: every step moves the unit in the terminals'
stock and history, a unit is never in two places, bad input changes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from cardops.core.errors import Conflict, InvalidTransition, ValidationFailed
from cardops.repairs import service
from cardops.terminals import service as terminals
from cardops.terminals.models import TerminalState
from tests.repairs.conftest import World


def _intake(w: World, serial: str, **over: object):  # type: ignore[no-untyped-def]
    args: dict[str, object] = {
        "serial": serial,
        "fault_code": "printer",
        "fault_description": "打印机不出纸 / printer does not feed",
        "brought_by_name": "李四",
        "brought_by_phone": "028-85551234",
        "appearance": "外壳有划痕 scratches",
        "accessories": ["adapter", "battery"],
    }
    args.update(over)
    return service.intake(session=w.db, actor=w.after_sales, **args)  # type: ignore[arg-type]


def _kinds(db: Session, unit) -> list[str]:  # type: ignore[no-untyped-def]
    return [m.kind for m in terminals.history(unit, db)]


def test_factory_repair_with_loaner_and_return_to_the_user(world: World) -> None:
    w, db = world, world.db
    broken = w.unit(TerminalState.ACTIVATED)
    origin = broken.location_id
    loaner = w.unit(TerminalState.IN_STOCK)

    case = _intake(w, broken.serial)
    assert case.state == "received" and case.number.startswith("RP")
    assert broken.state == "faulty" and broken.location_id == terminals.warehouse(db).id
    assert case.merchant_id == w.merchant.id and case.accessories == ["adapter", "battery"]

    service.inspect(
        session=db,
        actor=w.technician,
        case_id=case.id,
        findings="打印头损坏 print head broken",
        fault_code="printer",
        under_warranty=True,
        estimate=0,
    )
    service.lend_loaner(session=db, actor=w.after_sales, case_id=case.id, serial=loaner.serial)
    assert loaner.state == "on_loan" and loaner.merchant_id == w.merchant.id

    service.decide(session=db, actor=w.after_sales, case_id=case.id, route="factory")
    assert case.state == "awaiting_factory" and case.rma_batch_id is not None
    batch = service.get_batch(session=db, batch_id=case.rma_batch_id)
    service.send_batch(
        session=db,
        actor=w.warehouse,
        batch_id=batch.id,
        carrier="顺丰 SF Express",
        tracking_number="SF1234567890",
    )
    assert batch.state == "sent" and case.state == "at_factory"
    assert broken.state == "returned_to_factory"
    assert broken.location_id == terminals.factory_of(db, w.supplier.id).id

    service.receive_batch(session=db, actor=w.warehouse, batch_id=batch.id)
    assert batch.state == "received" and case.state == "ready"
    assert broken.state == "in_repair" and broken.location_id == terminals.warehouse(db).id

    service.return_unit(session=db, actor=w.after_sales, case_id=case.id, return_to="user")
    with pytest.raises(Conflict) as exc:  # the loaner is still out
        service.close_case(session=db, actor=w.after_sales, case_id=case.id)
    assert exc.value.field == "loaner_serial"
    assert case.state == "returned"
    assert broken.state == "activated" and broken.location_id == origin
    service.loaner_back(session=db, actor=w.after_sales, case_id=case.id)
    assert loaner.state == "in_stock" and loaner.merchant_id is None
    service.close_case(session=db, actor=w.after_sales, case_id=case.id)
    assert case.state == "closed"
    assert _kinds(db, broken) == [
        "repair_intake",
        "repair_inspect",
        "rma_queued",
        "rma_send",
        "rma_back",
        "repair_return",
    ]
    assert _kinds(db, loaner) == ["loan_out", "loan_back"]
    events = [e.kind for e in service.case_events(db, case)]
    assert events == [
        "received",
        "inspected",
        "loaner_out",
        "rma_queued",
        "rma_sent",
        "rma_back",
        "returned",
        "loaner_back",
        "closed",
    ]


def test_whole_unit_replacement_goes_to_the_provider(world: World) -> None:
    w, db = world, world.db
    broken = w.unit(TerminalState.AT_PROVIDER)
    spare = w.unit(TerminalState.IN_STOCK)
    case = _intake(w, broken.serial)
    service.inspect(
        session=db,
        actor=w.technician,
        case_id=case.id,
        findings="主板烧毁 mainboard burnt",
        fault_code="power",
        under_warranty=False,
        estimate=25_000,
    )
    service.record_replacement(
        session=db, actor=w.after_sales, case_id=case.id, kind="whole", new_serial=spare.serial
    )
    assert spare.state == "allocated"
    service.decide(session=db, actor=w.after_sales, case_id=case.id, route="none")
    service.return_unit(session=db, actor=w.after_sales, case_id=case.id, return_to="provider")
    assert spare.state == "at_provider" and spare.provider_id == w.provider.id
    assert broken.state == "faulty" and broken.location_id == terminals.warehouse(db).id
    rows = service.case_replacements(db, case)
    assert [(r.old_serial, r.new_serial) for r in rows] == [(broken.serial, spare.serial)]


def test_in_house_repair(world: World) -> None:
    w, db = world, world.db
    broken = w.unit(TerminalState.AT_PROVIDER)
    case = _intake(w, broken.serial, ticket_id=None)
    service.inspect(
        session=db,
        actor=w.technician,
        case_id=case.id,
        findings="按键失灵",
        fault_code="keypad",
        under_warranty=True,
    )
    service.decide(session=db, actor=w.after_sales, case_id=case.id, route="in_house")
    assert broken.state == "in_repair"
    service.finish_repair(
        session=db, actor=w.technician, case_id=case.id, notes="更换键盘膜 new keypad membrane"
    )
    service.return_unit(session=db, actor=w.after_sales, case_id=case.id, return_to="provider")
    assert broken.state == "at_provider"


def test_bad_input_names_the_field_and_changes_nothing(world: World) -> None:
    w, db = world, world.db
    broken = w.unit(TerminalState.ACTIVATED)
    with pytest.raises(ValidationFailed) as exc:
        _intake(w, "NOSUCH0001")
    assert exc.value.field == "serial"
    with pytest.raises(ValidationFailed) as exc:
        _intake(w, broken.serial, fault_code="bogus", brought_by_name="")
    fields = {f for f, _ in exc.value.errors}
    assert fields == {"fault_code", "brought_by_name"}
    assert broken.state == "activated"

    case = _intake(w, broken.serial)
    with pytest.raises(Conflict) as conflict:
        _intake(w, broken.serial)
    assert conflict.value.field == "serial"

    installed = w.unit(TerminalState.INSTALLED)
    # a loaner or a replacement that is not in stock is refused naming the field
    with pytest.raises(ValidationFailed) as exc:
        service.lend_loaner(
            session=db, actor=w.after_sales, case_id=case.id, serial=installed.serial
        )
    assert exc.value.field == "loaner_serial"
    service.inspect(
        session=db,
        actor=w.technician,
        case_id=case.id,
        findings="x",
        fault_code="screen",
        under_warranty=True,
    )
    with pytest.raises(ValidationFailed) as exc:
        service.record_replacement(
            session=db,
            actor=w.after_sales,
            case_id=case.id,
            kind="whole",
            new_serial=installed.serial,
        )
    assert exc.value.field == "new_serial"
    assert installed.state == "installed" and case.replacement_terminal_id is None
    # the lifecycle refuses skipping steps
    with pytest.raises(InvalidTransition):
        service.return_unit(session=db, actor=w.after_sales, case_id=case.id, return_to="user")
