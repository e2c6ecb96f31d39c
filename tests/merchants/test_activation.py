"""Activation, change and cancellation cases: routing, review, platform verdict, binding."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from cardops.core.clock import freeze
from cardops.core.errors import Conflict, InvalidTransition, PermissionDenied, ValidationFailed
from cardops.merchants import service
from cardops.merchants.models import ActivationCase, Merchant
from cardops.terminals.models import Location, Terminal, TerminalMovement
from tests.merchants.conftest import World, case_documents, make_id


def _apply(world: World, merchant: Merchant, unit: Terminal, **over: object) -> ActivationCase:
    values: dict[str, object] = {
        "kind": "activation",
        "serial": unit.serial,
        "merchant_id": merchant.id,
        "applicant_name": "李四",
        "applicant_id_number": make_id(),
        "install_province": "四川",
        "install_city": "成都",
        "install_address": "锦江区春熙路 8 号",
        "documents": case_documents(),
    }
    values.update(over)
    return service.apply(session=world.db, actor=world.specialist, **values)  # type: ignore[arg-type]


def _activate(world: World, case: ActivationCase) -> ActivationCase:
    service.pass_review(
        session=world.db,
        actor=world.reviewer_for(case),
        case_id=case.id,
        platform="富友",
        platform_reference="FY-001",
    )
    return service.record_verdict(
        session=world.db,
        actor=world.reviewer_for(case),
        case_id=case.id,
        approved=True,
        note="ok",
    )


def test_full_activation_flow_binds_tid_and_mid_and_activates_the_unit(world: World) -> None:
    merchant = world.approved_merchant()
    unit = world.unit()
    case = _apply(world, merchant, unit)
    assert case.state == "submitted"
    assert case.region_code == "southwest"
    assert case.reviewer_id == world.reviewer.id
    assert case.number.startswith("ACT-")
    service.start_review(session=world.db, actor=world.reviewer, case_id=case.id)
    assert case.state == "in_review"
    service.pass_review(
        session=world.db,
        actor=world.reviewer,
        case_id=case.id,
        platform="富友",
        platform_reference="FY-778",
    )
    assert case.state == "with_platform" and case.platform == "富友"
    service.record_verdict(
        session=world.db, actor=world.reviewer, case_id=case.id, approved=True, note="通过"
    )
    assert case.state == "approved"
    assert unit.state == "activated"
    assert unit.tid is not None and len(unit.tid) == 8
    assert unit.mid == merchant.mid and len(unit.mid or "") == 15
    assert unit.merchant_id == merchant.id
    assert unit.activated_at is not None
    assert unit.cross_region is False
    assert case.tid == unit.tid and case.mid == merchant.mid
    location = world.db.get(Location, unit.location_id)
    assert location is not None and location.kind == "merchant" and location.ref_id == merchant.id
    moves = list(
        world.db.execute(
            select(TerminalMovement)
            .where(TerminalMovement.terminal_id == unit.id)
            .order_by(TerminalMovement.id)
        ).scalars()
    )
    assert [(m.from_state, m.to_state) for m in moves] == [
        ("at_provider", "installed"),
        ("installed", "activated"),
    ]
    assert all(m.document == case.number for m in moves)
    service.record_callback(
        session=world.db, actor=world.reviewer, case_id=case.id, note="已告知用户可以使用"
    )
    assert case.state == "called_back" and case.called_back_at is not None
    service.archive(session=world.db, actor=world.reviewer, case_id=case.id)
    assert case.state == "archived" and case.archived_at is not None
    kinds = [e.kind for e in service.case_events(world.db, case)]
    assert kinds == [
        "submitted",
        "review_started",
        "sent_to_platform",
        "approved",
        "called_back",
        "archived",
    ]


def test_second_activation_gets_a_different_tid(world: World) -> None:
    merchant = world.approved_merchant()
    first = _activate(world, _apply(world, merchant, world.unit()))
    second = _activate(world, _apply(world, merchant, world.unit()))
    assert first.tid != second.tid


def test_reviewer_of_another_region_is_refused(world: World) -> None:
    merchant = world.approved_merchant()
    case = _apply(world, merchant, world.unit())
    with pytest.raises(PermissionDenied) as exc:
        service.start_review(session=world.db, actor=world.north_reviewer, case_id=case.id)
    assert "southwest" in str(exc.value)
    mine = service.list_cases(session=world.db, actor=world.north_reviewer, mine=True)
    assert case not in mine
    assert case in service.list_cases(session=world.db, actor=world.reviewer, mine=True)


def test_install_in_beijing_goes_to_the_north_reviewer_and_is_flagged_cross_region(
    world: World,
) -> None:
    merchant = world.approved_merchant()
    unit = world.unit()  # belongs to the Chengdu provider
    case = _apply(
        world,
        merchant,
        unit,
        install_province="北京",
        install_city="北京",
        install_address="朝阳区 1 号",
    )
    assert case.region_code == "north" and case.reviewer_id == world.north_reviewer.id
    _activate(world, case)
    assert unit.cross_region is True
    assert case.data["cross_region"] is True
    assert "cross_region" in [e.kind for e in service.case_events(world.db, case)]


def test_unmapped_province_is_a_clear_error(world: World) -> None:
    merchant = world.approved_merchant()
    with pytest.raises(ValidationFailed) as exc:
        _apply(world, merchant, world.unit(), install_province="西藏")
    assert exc.value.field == "install_province"
    assert "西藏" in str(exc.value) and "Regions" in str(exc.value)


def test_returned_case_is_corrected_and_resubmitted(world: World) -> None:
    merchant = world.approved_merchant()
    case = _apply(world, merchant, world.unit())
    with pytest.raises(ValidationFailed):
        service.return_case(session=world.db, actor=world.reviewer, case_id=case.id, reason=" ")
    service.return_case(
        session=world.db, actor=world.reviewer, case_id=case.id, reason="身份证复印件不清晰"
    )
    assert case.state == "returned"
    first_due = case.due_at
    service.upload_case_document(
        session=world.db,
        actor=world.specialist,
        case_id=case.id,
        doc_type="id_front",
        filename="front2.png",
        data=b"\x89PNG\r\n\x1a\nclearer",
    )
    service.resubmit(session=world.db, actor=world.specialist, case_id=case.id, note="重新扫描")
    assert case.state == "submitted" and case.round == 2
    assert case.due_at is not None and first_due is not None and case.due_at >= first_due
    with pytest.raises(InvalidTransition):
        service.resubmit(session=world.db, actor=world.specialist, case_id=case.id)


def test_one_terminal_per_person(world: World) -> None:
    merchant = world.approved_merchant()
    person_id = make_id()
    unit = world.unit()
    case = _apply(world, merchant, unit, applicant_id_number=person_id)
    with pytest.raises(Conflict) as exc:
        _apply(world, merchant, world.unit(), applicant_id_number=person_id)
    assert case.number in str(exc.value)
    assert exc.value.field == "applicant_id_number"
    _activate(world, case)
    with pytest.raises(Conflict) as exc:
        _apply(world, merchant, world.unit(), applicant_id_number=person_id)
    assert unit.serial in str(exc.value)


def test_case_needs_form_and_id_copy(world: World) -> None:
    merchant = world.approved_merchant()
    docs = [d for d in case_documents() if d.doc_type != "id_back"]
    with pytest.raises(ValidationFailed) as exc:
        _apply(world, merchant, world.unit(), documents=docs)
    assert "ID copy (back)" in str(exc.value)
    docs = [*case_documents(), service.NewDocument("lease_contract", "x.pdf", b"%PDF-1.4 x")]
    with pytest.raises(ValidationFailed) as exc:
        _apply(world, merchant, world.unit(), documents=docs)
    assert "lease_contract" in str(exc.value) and exc.value.field == "doc_type"


def test_unit_must_be_at_a_provider_and_merchant_approved(world: World) -> None:
    merchant = world.approved_merchant()
    unit = world.unit()
    unit.state = "in_stock"
    world.db.flush()
    with pytest.raises(Conflict) as exc:
        _apply(world, merchant, unit)
    assert unit.serial in str(exc.value)
    draft = service.create_merchant(
        session=world.db, actor=world.specialist, **world.merchant_fields()
    )
    with pytest.raises(Conflict) as exc:
        _apply(world, draft, world.unit())
    assert exc.value.field == "merchant_id"


def test_due_date_skips_the_weekend() -> None:
    # Thursday 2026-01-08 10:00 Shanghai (02:00 UTC) → due Monday 2026-01-12 10:00
    thursday = datetime(2026, 1, 8, 2, 0, tzinfo=UTC)
    assert service.add_working_days(thursday, 2) == datetime(2026, 1, 12, 2, 0, tzinfo=UTC)
    # Friday 23:00 Shanghai = Friday 15:00 UTC → Tuesday 23:00 Shanghai
    friday_night = datetime(2026, 1, 9, 15, 0, tzinfo=UTC)
    assert service.add_working_days(friday_night, 2) == datetime(2026, 1, 13, 15, 0, tzinfo=UTC)
    # Saturday → Tuesday
    saturday = datetime(2026, 1, 10, 2, 0, tzinfo=UTC)
    assert service.add_working_days(saturday, 2) == datetime(2026, 1, 13, 2, 0, tzinfo=UTC)


def test_overdue_list(world: World) -> None:
    merchant = world.approved_merchant()
    freeze(datetime(2026, 1, 8, 2, 0, tzinfo=UTC))  # Thursday
    late = _apply(world, merchant, world.unit())
    on_time = _apply(world, merchant, world.unit())
    done = _apply(world, merchant, world.unit())
    _activate(world, done)
    freeze(datetime(2026, 1, 12, 1, 0, tzinfo=UTC))  # Monday before 10:00: nothing late yet
    assert service.overdue_cases(session=world.db, actor=world.reviewer) == []
    freeze(datetime(2026, 1, 12, 3, 0, tzinfo=UTC))
    overdue = service.overdue_cases(session=world.db, actor=world.reviewer)
    assert late in overdue and on_time in overdue and done not in overdue
    service.return_case(session=world.db, actor=world.reviewer, case_id=on_time.id, reason="x")
    overdue = service.overdue_cases(session=world.db, actor=world.reviewer)
    assert overdue == [late]
    assert service.is_overdue(late, datetime(2026, 1, 12, 3, 0, tzinfo=UTC) + timedelta(0))


def test_change_moves_the_install_address_and_account(world: World) -> None:
    merchant = world.approved_merchant()
    unit = world.unit()
    _activate(world, _apply(world, merchant, unit))
    tid = unit.tid
    with pytest.raises(ValidationFailed):
        service.apply(
            session=world.db,
            actor=world.specialist,
            kind="change",
            serial=unit.serial,
            applicant_name="李四",
            applicant_id_number=make_id(),
            documents=case_documents(),
        )
    change = service.apply(
        session=world.db,
        actor=world.specialist,
        kind="change",
        serial=unit.serial,
        applicant_name="王五",
        applicant_id_number=make_id(),
        install_province="北京",
        install_city="北京",
        install_address="海淀区 2 号",
        bank_name="工商银行",
        bank_account="6212260200000000001",
        bank_account_name="新账户",
        documents=case_documents(),
    )
    assert change.number.startswith("CHG-") and change.region_code == "north"
    _activate(world, change)
    assert unit.install_province == "北京" and unit.install_address == "海淀区 2 号"
    assert unit.cross_region is True
    assert unit.tid == tid and unit.state == "activated"
    assert merchant.bank_account == "6212260200000000001"


def test_cancellation_unbinds_the_tid_and_returns_the_unit_to_its_provider(world: World) -> None:
    merchant = world.approved_merchant()
    unit = world.unit()
    person_id = make_id()
    activation = _activate(world, _apply(world, merchant, unit, applicant_id_number=person_id))
    tid = unit.tid
    cancel = service.apply(
        session=world.db,
        actor=world.specialist,
        kind="cancellation",
        serial=unit.serial,
        applicant_name="李四",
        applicant_id_number=person_id,
        documents=case_documents(),
    )
    assert cancel.number.startswith("CAN-") and cancel.tid == tid
    _activate(world, cancel)
    assert unit.state == "at_provider"
    assert unit.tid is None and unit.mid is None and unit.merchant_id is None
    location = world.db.get(Location, unit.location_id)
    assert location is not None and location.kind == "provider" and location.ref_id == world.cd.id
    assert activation.tid == tid  # the history keeps it
    last = world.db.execute(
        select(TerminalMovement)
        .where(TerminalMovement.terminal_id == unit.id)
        .order_by(TerminalMovement.id.desc())
        .limit(1)
    ).scalar_one()
    assert (last.from_state, last.to_state, last.document) == (
        "activated",
        "at_provider",
        cancel.number,
    )
    # the person may now activate another terminal
    again = _apply(world, merchant, world.unit(), applicant_id_number=person_id)
    assert again.state == "submitted"


def test_declined_case_does_not_bind(world: World) -> None:
    merchant = world.approved_merchant()
    unit = world.unit()
    case = _apply(world, merchant, unit)
    service.pass_review(session=world.db, actor=world.reviewer, case_id=case.id, platform="富友")
    with pytest.raises(ValidationFailed):
        service.record_verdict(
            session=world.db, actor=world.reviewer, case_id=case.id, approved=False
        )
    service.record_verdict(
        session=world.db,
        actor=world.reviewer,
        case_id=case.id,
        approved=False,
        note="商户信息不符",
    )
    assert case.state == "declined" and unit.state == "at_provider" and unit.tid is None
