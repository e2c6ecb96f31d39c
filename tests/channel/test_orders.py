"""Provider orders: to HQ through the five-step chain, and county orders filed with HQ."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader
from sqlalchemy import select
from sqlalchemy.orm import Session

from cardops.approvals import service as approvals
from cardops.auth.models import User
from cardops.channel import service
from cardops.channel.delivery_note import render_delivery_note
from cardops.channel.models import ProviderOrder
from cardops.core.errors import Conflict, PermissionDenied, ValidationFailed
from cardops.parties.models import Document
from cardops.terminals.models import Location, TerminalMovement
from tests.channel.conftest import ORDER_STEPS, World, add_units, staff
from tests.factories import make_user


def _paid_order(db: Session, buyer_staff: User, world: World, qty: int = 3) -> ProviderOrder:
    order = service.create_order(
        session=db, actor=buyer_staff, lines=[(world.model.id, qty)], note="月度订货"
    )
    service.upload_payment_slip(
        session=db,
        actor=buyer_staff,
        order_id=order.id,
        filename="slip.png",
        data=b"\x89PNG fake slip",
        paid_amount=order.total,
        reference="ABC-BANK-001",
    )
    return order


def _to_approved(db: Session, world: World, qty: int = 3) -> tuple[ProviderOrder, list[str]]:
    cd_staff = staff(db, world, world.cd)
    order = _paid_order(db, cd_staff, world, qty)
    service.submit_order(session=db, actor=cd_staff, order_id=order.id)
    units = add_units(db, world, qty)
    specialist = make_user(db, "channel_specialist")
    serials = [u.serial for u in units]
    service.select_serials(session=db, actor=specialist, order_id=order.id, serials=serials)
    for role in ORDER_STEPS:
        approvals.approve(
            session=db, actor=make_user(db, role), request_id=order.approval_request_id or 0
        )
    return order, serials


def test_order_to_hq_through_the_whole_flow(db: Session, world: World) -> None:
    cd_staff = staff(db, world, world.cd)
    order = _paid_order(db, cd_staff, world, qty=3)
    assert order.seller_id == world.hq.id and order.buyer_id == world.cd.id
    assert order.total == 3 * 30000
    assert order.state == "draft"

    service.submit_order(session=db, actor=cd_staff, order_id=order.id)
    assert order.state == "approving"
    request = approvals.get_request(session=db, request_id=order.approval_request_id or 0)
    assert request.subject_id == str(order.id) and request.kind == "distributor_order"

    units = add_units(db, world, 3)
    serials = [u.serial for u in units]
    specialist = make_user(db, "channel_specialist")
    service.select_serials(
        session=db, actor=specialist, order_id=order.id, serials="\n".join(serials)
    )
    assert [s.terminal.serial for s in order.serials] == serials

    # an order approved out of turn is refused: the finance manager cannot take step 1
    with pytest.raises(PermissionDenied) as refused:
        approvals.approve(session=db, actor=make_user(db, "finance_manager"), request_id=request.id)
    assert "Step 1" in str(refused.value)

    for n, role in enumerate(ORDER_STEPS, start=1):
        assert request.current_step == n
        assert order.state == "approving"
        approvals.approve(session=db, actor=make_user(db, role), request_id=request.id)
    assert order.state == "approved"
    assert {u.state for u in units} == {"allocated"}

    picker = make_user(db, "picker")
    stranger = add_units(db, world, 1)[0]
    with pytest.raises(ValidationFailed) as wrong:
        service.pick(session=db, actor=picker, order_id=order.id, serials=[stranger.serial])
    assert stranger.serial in str(wrong.value)
    assert order.state == "approved"
    service.pick(session=db, actor=picker, order_id=order.id, serials=serials[:2])
    assert order.state == "picking"
    service.pick(session=db, actor=picker, order_id=order.id, serials=serials[2:])

    checker = make_user(db, "checker")
    with pytest.raises(ValidationFailed) as mismatch:
        service.check(
            session=db, actor=checker, order_id=order.id, serials=[*serials[:2], stranger.serial]
        )
    message = str(mismatch.value)
    assert f"Missing: {serials[2]}" in message
    assert f"Not on the order: {stranger.serial}" in message
    assert order.state == "picking"
    service.check(session=db, actor=checker, order_id=order.id, serials=serials)
    assert order.state == "checked"

    supervisor = make_user(db, "warehouse_supervisor")
    with pytest.raises(ValidationFailed):
        service.dispatch(
            session=db, actor=supervisor, order_id=order.id, carrier="", tracking_no="SF1"
        )
    service.dispatch(
        session=db, actor=supervisor, order_id=order.id, carrier="顺丰", tracking_no="SF100200300"
    )
    assert order.state == "dispatched"
    assert {u.state for u in units} == {"shipped"}

    pdf = PdfReader(io.BytesIO(render_delivery_note(order)))
    assert len(pdf.pages) == 3
    texts = [page.extract_text() for page in pdf.pages]
    for text, label in zip(texts, ("Channel copy", "Warehouse copy", "Finance copy"), strict=True):
        assert label in text
        assert order.number in text
        assert serials[0] in text and "SF100200300" in text

    other_staff = staff(db, world, world.bj)
    with pytest.raises(Exception) as hidden:
        service.receive(session=db, actor=other_staff, order_id=order.id)
    assert getattr(hidden.value, "status", None) == 404
    service.receive(session=db, actor=cd_staff, order_id=order.id)
    assert order.state == "received"
    cd_location = db.execute(
        select(Location).where(Location.kind == "provider", Location.ref_id == world.cd.id)
    ).scalar_one()
    for unit in units:
        assert unit.state == "at_provider"
        assert unit.location_id == cd_location.id
        assert unit.provider_id == world.cd.id
        kinds = [
            m.kind
            for m in db.execute(
                select(TerminalMovement)
                .where(TerminalMovement.terminal_id == unit.id)
                .order_by(TerminalMovement.id)
            ).scalars()
        ]
        assert kinds == ["allocate", "ship", "receive"]
    csv_text = service.serial_list_csv(order).decode("utf-8-sig")
    assert csv_text.splitlines()[0] == "serial,model,imei,iccid"
    assert serials[1] in csv_text and world.model.code in csv_text
    assert [e.kind for e in order.events] == [
        "created",
        "payment_slip",
        "submitted",
        "serials_selected",
        "approved",
        "picked",
        "picked",
        "checked",
        "dispatched",
        "received",
    ]


def test_submit_needs_payment_slip_and_full_payment(db: Session, world: World) -> None:
    cd_staff = staff(db, world, world.cd)
    order = service.create_order(session=db, actor=cd_staff, lines=[(world.model.id, 2)])
    with pytest.raises(ValidationFailed) as missing:
        service.submit_order(session=db, actor=cd_staff, order_id=order.id)
    assert missing.value.field == "payment_slip"
    service.upload_payment_slip(
        session=db,
        actor=cd_staff,
        order_id=order.id,
        filename="slip.pdf",
        data=b"%PDF-1.4 slip",
        paid_amount=100,
        reference="R1",
    )
    with pytest.raises(ValidationFailed) as short:
        service.submit_order(session=db, actor=cd_staff, order_id=order.id)
    assert short.value.field == "paid_amount"
    assert order.state == "draft"
    doc = db.get(Document, order.payment_slip_document_id)
    assert doc is not None and doc.doc_type == "payment_slip" and doc.owner_type == "provider_order"


def test_serial_selection_errors_name_the_serials(db: Session, world: World) -> None:
    cd_staff = staff(db, world, world.cd)
    order = _paid_order(db, cd_staff, world, qty=2)
    service.submit_order(session=db, actor=cd_staff, order_id=order.id)
    specialist = make_user(db, "channel_specialist")
    good = add_units(db, world, 2)
    mini = add_units(db, world, 1, model=world.other_model)[0]

    def refused(serials: list[str]) -> str:
        with pytest.raises(ValidationFailed) as exc:
            service.select_serials(session=db, actor=specialist, order_id=order.id, serials=serials)
        assert exc.value.field == "serials"
        return str(exc.value)

    assert "NOPE-1" in refused([good[0].serial, "NOPE-1"])
    assert good[0].serial in refused([good[0].serial, good[0].serial])
    assert mini.serial in refused([good[0].serial, mini.serial])
    assert "asks for 2 units but 1" in refused([good[0].serial])
    good[1].state = "faulty"
    assert good[1].serial in refused([good[0].serial, good[1].serial])
    # a county user cannot pick HQ's stock
    with pytest.raises(PermissionDenied):
        service.select_serials(
            session=db, actor=cd_staff, order_id=order.id, serials=[good[0].serial]
        )
    assert order.serials == []


def test_final_approval_needs_the_serials_and_rejection_releases_them(
    db: Session, world: World
) -> None:
    cd_staff = staff(db, world, world.cd)
    unit = add_units(db, world, 1)[0]
    order = _paid_order(db, cd_staff, world, qty=1)
    service.submit_order(session=db, actor=cd_staff, order_id=order.id)
    service.select_serials(
        session=db,
        actor=make_user(db, "channel_specialist"),
        order_id=order.id,
        serials=[unit.serial],
    )
    approvals.reject(
        session=db,
        actor=make_user(db, "channel_supervisor"),
        request_id=order.approval_request_id or 0,
        comment="付款金额不符",
    )
    assert order.state == "rejected"
    assert order.serials == [] and unit.state == "in_stock"
    assert order.events[-1].data["released"] == [unit.serial]
    # corrected and sent again: a new request starts at step 1
    first_request = order.approval_request_id
    service.submit_order(session=db, actor=cd_staff, order_id=order.id)
    assert order.state == "approving" and order.approval_request_id != first_request

    # without the serials picked the last step cannot approve (the decision is undone)
    request_id = order.approval_request_id or 0
    for role in ORDER_STEPS[:-1]:
        approvals.approve(session=db, actor=make_user(db, role), request_id=request_id)
    with pytest.raises(ValidationFailed) as early:
        approvals.approve(
            session=db, actor=make_user(db, "warehouse_supervisor"), request_id=request_id
        )
    assert order.number in str(early.value)
    assert order.state == "approving"


def test_county_order_between_city_and_county_and_filing(db: Session, world: World) -> None:
    _order, serials = _to_approved(db, world, qty=3)
    hq_order = _order
    picker, checker, supervisor = (
        make_user(db, r) for r in ("picker", "checker", "warehouse_supervisor")
    )
    service.pick(session=db, actor=picker, order_id=hq_order.id, serials=serials)
    service.check(session=db, actor=checker, order_id=hq_order.id, serials=serials)
    service.dispatch(
        session=db, actor=supervisor, order_id=hq_order.id, carrier="EMS", tracking_no="E1"
    )
    cd_staff = staff(db, world, world.cd)
    service.receive(session=db, actor=cd_staff, order_id=hq_order.id)

    px_staff = staff(db, world, world.px)
    order = _paid_order(db, px_staff, world, qty=2)
    assert order.seller_id == world.cd.id and order.buyer_id == world.px.id
    service.submit_order(session=db, actor=px_staff, order_id=order.id)
    assert order.state == "submitted" and order.approval_request_id is None

    # a serial not in the sender's stock (still at HQ) is refused, naming it
    at_hq = add_units(db, world, 1)[0]
    with pytest.raises(ValidationFailed) as not_theirs:
        service.select_serials(
            session=db, actor=cd_staff, order_id=order.id, serials=[serials[0], at_hq.serial]
        )
    assert at_hq.serial in str(not_theirs.value)
    # the county provider cannot approve its own order
    with pytest.raises(PermissionDenied):
        service.approve_county_order(session=db, actor=px_staff, order_id=order.id)

    service.select_serials(session=db, actor=cd_staff, order_id=order.id, serials=serials[:2])
    service.approve_county_order(session=db, actor=cd_staff, order_id=order.id)
    assert order.state == "approved"
    service.check(session=db, actor=cd_staff, order_id=order.id, serials=serials[:2])  # pick+check
    assert order.state == "checked"
    with pytest.raises(Conflict):
        service.file_with_hq(session=db, actor=cd_staff, order_id=order.id)
    service.dispatch(session=db, actor=cd_staff, order_id=order.id, carrier="自送", tracking_no="-")
    service.file_with_hq(session=db, actor=cd_staff, order_id=order.id)
    assert order.filed_with_hq_at is not None
    notes = {
        d.note
        for d in db.execute(
            select(Document).where(
                Document.owner_type == "provider_order", Document.owner_id == order.id
            )
        ).scalars()
    }
    assert {"发货单 Delivery note", "机具三码 Serial list"} <= notes

    hq_staff = make_user(db, "channel_specialist")
    filed = service.list_orders(session=db, actor=hq_staff, county=True, filed_only=True)
    assert order in filed and hq_order not in filed
    service.receive(session=db, actor=px_staff, order_id=order.id)
    px_units = [u for u in world.units if u.serial in serials[:2]]
    assert {u.provider_id for u in px_units} == {world.px.id}
    assert {u.state for u in px_units} == {"at_provider"}


def test_provider_staff_see_only_their_subtree(db: Session, world: World) -> None:
    cd_staff = staff(db, world, world.cd)
    px_staff = staff(db, world, world.px)
    bj_staff = staff(db, world, world.bj)
    cd_order = _paid_order(db, cd_staff, world, qty=1)
    px_order = _paid_order(db, px_staff, world, qty=1)
    assert service.visible_provider_ids(db, make_user(db, "channel_supervisor")) is None
    assert service.visible_provider_ids(db, cd_staff) == {world.cd.id, world.px.id}
    assert service.visible_provider_ids(db, px_staff) == {world.px.id}
    assert {o.id for o in service.list_orders(session=db, actor=cd_staff)} == {
        cd_order.id,
        px_order.id,
    }
    assert [o.id for o in service.list_orders(session=db, actor=px_staff)] == [px_order.id]
    assert service.list_orders(session=db, actor=bj_staff) == []
    for user, order in ((px_staff, cd_order), (bj_staff, px_order)):
        with pytest.raises(Exception) as exc:
            service.get_order(session=db, actor=user, order_id=order.id)
        assert getattr(exc.value, "status", None) == 404
    assert {p.id for p in service.list_providers(session=db, actor=px_staff)} == {world.px.id}


def test_cross_region_list_is_scoped(db: Session, world: World) -> None:
    cd_unit, bj_unit, plain = add_units(db, world, 3)
    cd_unit.provider_id, cd_unit.cross_region = world.cd.id, True
    cd_unit.install_province, cd_unit.install_city = "北京", "北京"
    bj_unit.provider_id, bj_unit.cross_region = world.bj.id, True
    plain.provider_id = world.cd.id
    db.flush()
    hq_rows = service.cross_region_units(session=db, actor=make_user(db, "channel_supervisor"))
    serials = {t.serial for t, _ in hq_rows}
    assert {cd_unit.serial, bj_unit.serial} <= serials and plain.serial not in serials
    cd_rows = service.cross_region_units(session=db, actor=staff(db, world, world.cd))
    assert [(t.serial, p.code if p else None) for t, p in cd_rows] == [
        (cd_unit.serial, world.cd.code)
    ]
