"""Quality check and factory returns, purchase requests and scrapping through approval chains,
device upkeep."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from cardops.approvals import service as approvals
from cardops.auth.service import system_user
from cardops.core.errors import InvalidTransition, PermissionDenied, ValidationFailed
from cardops.terminals import service
from cardops.terminals.importer import import_file, sample_csv
from cardops.terminals.models import TerminalState
from tests.approvals.helpers import approvers, define
from tests.factories import make_user
from tests.terminals.helpers import model, supplier, unit


def _batch(db: Session, count: int, prefix: str, start: int):  # type: ignore[no-untyped-def]
    maker = supplier(db)
    mod = model(db, maker)
    outcome = import_file(
        session=db,
        actor=system_user(db),
        supplier=maker,
        filename="qc.csv",
        data=sample_csv(count, model=mod.code, prefix=prefix, start=start),
    )
    assert outcome.batch is not None
    return outcome.batch


def test_bulk_qc_passes_all_but_the_failed_which_go_back_to_the_factory(db: Session) -> None:
    clerk = make_user(db, "inbound_clerk")
    batch = _batch(db, 5, "QC", 810_000)
    with pytest.raises(ValidationFailed) as no_reason:
        service.quality_check(session=db, actor=clerk, batch_id=batch.id, failed=["QC00810004"])
    assert no_reason.value.field == "reason"
    passed, returns = service.quality_check(
        session=db,
        actor=clerk,
        batch_id=batch.id,
        failed="QC00810004\nQC00810001",
        reason="cracked screen",
    )
    assert passed == 3
    assert returns is not None and returns.number.startswith("RF")
    failed = service.get_by_serial(db, "QC00810004")
    assert failed.state == "returned_to_factory" and failed.factory_return_id == returns.id
    assert service.get_by_serial(db, "QC00810002").state == "in_stock"
    assert sorted(u.serial for u in service.return_units(db, returns)) == [
        "QC00810001",
        "QC00810004",
    ]

    service.ship_factory_return(session=db, actor=clerk, return_id=returns.id)
    assert returns.state == "shipped"
    assert failed.state == "returned_to_factory"
    service.receive_factory_return(session=db, actor=clerk, return_id=returns.id)
    assert returns.state == "closed"
    assert failed.state == "in_stock" and failed.location_id == service.warehouse(db).id
    kinds = [m.kind for m in service.history(failed)]
    assert kinds == ["inbound", "qc_fail", "factory_ship", "factory_back"]

    picker = make_user(db, "picker")
    with pytest.raises(PermissionDenied):
        service.quality_check(session=db, actor=picker, serials=["QC00810002"])


def test_purchase_request_is_approved_through_its_chain(db: Session) -> None:
    steps = ["business_manager", "finance_manager", "operations_director"]
    define(db, "purchase_request", steps)
    people = approvers(db, steps)
    buyer = make_user(db, "channel_supervisor")
    maker = supplier(db)
    mod = model(db, maker)
    request = service.create_purchase_request(
        session=db, actor=buyer, supplier_id=maker.id, model_id=mod.id, quantity=500
    )
    assert request.state == "pending" and request.number.startswith("PR")
    with pytest.raises(InvalidTransition):
        service.mark_ordered(session=db, actor=buyer, request_id=request.id)
    with pytest.raises(PermissionDenied):  # out of turn: finance before business
        approvals.approve(
            session=db, actor=people["finance_manager"], request_id=request.approval_request_id
        )
    for role in steps:
        approvals.approve(session=db, actor=people[role], request_id=request.approval_request_id)
    assert request.state == "approved"
    service.mark_ordered(session=db, actor=buyer, request_id=request.id)
    assert request.state == "ordered"
    clerk = make_user(db, "inbound_clerk")
    outcome = import_file(
        session=db,
        actor=clerk,
        supplier=maker,
        filename="po.csv",
        data=sample_csv(2, model=mod.code, prefix="PO", start=820_000),
        purchase_request_id=request.id,
    )
    assert outcome.batch is not None and outcome.batch.purchase_request_id == request.id
    assert request.state == "received"


def test_scrapping_needs_the_approval_chain(db: Session) -> None:
    define(db, "scrapping", ["warehouse_supervisor", "operations_director"])
    tech = make_user(db, "after_sales_specialist")
    boss = make_user(db, "warehouse_supervisor")
    director = make_user(db, "operations_director")
    terminal = unit(db, state=TerminalState.FAULTY)
    entry = service.request_scrap(session=db, actor=tech, serial=terminal.serial, reason="burnt")
    assert terminal.state == "faulty"  # not before approval
    with pytest.raises(InvalidTransition):  # the movement service refuses an unapproved jump
        service.move(db, tech, unit(db, state=TerminalState.ALLOCATED), "scrapped", kind="x")
    approvals.approve(session=db, actor=boss, request_id=entry.approval_request_id)
    assert terminal.state == "faulty"
    approvals.approve(session=db, actor=director, request_id=entry.approval_request_id)
    assert terminal.state == "scrapped" and entry.result == "approved"

    other = unit(db, state=TerminalState.FAULTY)
    refused = service.request_scrap(session=db, actor=tech, serial=other.serial, reason="old")
    approvals.reject(
        session=db, actor=boss, request_id=refused.approval_request_id, comment="fix it"
    )
    assert other.state == "faulty" and refused.result == "refused"


def test_install_inspection_repair_and_the_due_list(db: Session) -> None:
    tech = make_user(db, "after_sales_specialist")
    terminal = unit(db, state=TerminalState.AT_PROVIDER)
    with pytest.raises(ValidationFailed) as missing:
        service.record_install(session=db, actor=tech, serial=terminal.serial, test_reference="")
    assert missing.value.field == "test_reference"
    service.record_install(
        session=db, actor=tech, serial=terminal.serial, test_reference="RRN123456789"
    )
    assert terminal.state == "installed" and terminal.next_inspection_due is not None
    assert terminal in service.inspections_due(db, within_days=200)
    assert terminal not in service.inspections_due(db, within_days=10)
    service.record_inspection(session=db, actor=tech, serial=terminal.serial, result="faulty")
    assert terminal.state == "faulty"
    service.record_repair(session=db, actor=tech, serial=terminal.serial, notes="new keypad")
    assert terminal.state == "in_repair"
    service.record_repair(
        session=db,
        actor=tech,
        serial=terminal.serial,
        notes="tested ok",
        done=True,
        back_to="installed",
    )
    assert terminal.state == "installed"
    kinds = [r.kind for r in service.maintenance_file(db, terminal)]
    assert kinds == ["install", "inspection", "repair", "repair"]
