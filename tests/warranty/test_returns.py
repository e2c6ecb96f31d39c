"""Returns and exchanges: photo evidence within 24 h, who pays shipping, price differences,
compensations capped (above the cap only with the supervisor's approval), ledger postings."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cardops.approvals import service as approvals
from cardops.auth.models import User
from cardops.core.clock import freeze
from cardops.core.errors import InvalidTransition, ValidationFailed
from cardops.ledger import service as ledger
from cardops.ledger.models import Posting
from cardops.warranty import service
from cardops.warranty.models import InstallerPoints, WarrantyReturn
from tests.factories import bearer, make_user
from tests.warranty.conftest import PNG, World, register, stocked

NOW = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


def _return(db: Session, world: World, card_number: str, **kw: object) -> WarrantyReturn:
    values: dict[str, object] = {
        "card_number": card_number,
        "kind": "return",
        "reason": "quality",
        "description": "屏幕有裂纹",
        "photos": [service.Photo("crack.png", PNG, "image/png")],
    }
    values.update(kw)
    return service.create_return(
        session=db,
        actor=world.admin,
        data=service.ReturnInput(**values),  # type: ignore[arg-type]
    )


def _count(db: Session, model: type) -> int:
    return db.execute(select(func.count()).select_from(model)).scalar_one()


def test_quality_return_with_photos_is_refunded_through_the_ledger(
    db: Session, world: World
) -> None:
    freeze(NOW)
    stocked(db, world)
    card = register(db, world, 3, price=45000)
    item = _return(db, world, card.number, shipping_cost=1200)
    assert item.shipping_paid_by == "company"  # quality: we pay the shipping
    assert item.refund_amount == 45000 and item.state == "requested"
    service.accept(session=db, actor=world.admin, return_id=item.id)
    service.receive(session=db, actor=world.admin, return_id=item.id)
    service.complete(session=db, actor=world.admin, return_id=item.id, payment_method="alipay")
    assert item.state == "completed" and card.state == "returned"
    posting = db.get(Posting, item.posting_id)
    assert posting is not None
    amounts = {line.account.code: line.amount for line in posting.lines}
    assert amounts == {"warranty.refunds": 45000, "warranty.shipping": 1200, "1003": -46200}
    assert sum(amounts.values()) == 0
    assert ledger.balance(db, "warranty.refunds") == 45000
    points = db.execute(
        select(func.sum(InstallerPoints.points)).where(InstallerPoints.card_id == card.id)
    ).scalar_one()
    assert points == 0  # the installer's points for a returned sale are taken back
    assert [e.kind for e in item.events] == ["requested", "accepted", "received", "completed"]
    with pytest.raises(InvalidTransition):
        _return(db, world, card.number)  # a returned card takes no new return


def test_quality_claim_without_photos_or_after_24_hours_is_refused(
    db: Session, world: World
) -> None:
    freeze(NOW)
    stocked(db, world)
    card = register(db, world, 3)
    before = _count(db, WarrantyReturn)
    with pytest.raises(ValidationFailed) as none:
        _return(db, world, card.number, photos=[])
    assert none.value.field == "photos"
    with pytest.raises(ValidationFailed) as late:
        _return(db, world, card.number, requested_at=NOW - timedelta(hours=25))
    assert late.value.field == "photos"
    assert _count(db, WarrantyReturn) == before
    # not a quality problem: no photos needed, the customer pays the shipping
    other = _return(db, world, card.number, reason="non_quality", photos=[])
    assert other.shipping_paid_by == "customer"


def test_photos_added_later_must_arrive_within_the_window(db: Session, world: World) -> None:
    freeze(NOW)
    stocked(db, world)
    card = register(db, world, 3)
    item = _return(db, world, card.number)
    freeze(NOW + timedelta(hours=23))
    service.add_photos(
        session=db, actor=world.admin, return_id=item.id, photos_in=[service.Photo("b.png", PNG)]
    )
    freeze(NOW + timedelta(hours=25))
    with pytest.raises(ValidationFailed) as late:
        service.add_photos(
            session=db,
            actor=world.admin,
            return_id=item.id,
            photos_in=[service.Photo("c.png", PNG)],
        )
    assert late.value.field == "photos"
    assert len(service.photos(db, item)) == 2


def test_compensation_over_the_cap_needs_the_supervisor(db: Session, world: World) -> None:
    freeze(NOW)
    stocked(db, world)
    card = register(db, world, 3)
    service.update_settings(
        session=db,
        actor=world.admin,
        warranty_months=12,
        points_per_card=10,
        compensation_cap=1000,
        photo_hours=24,
    )
    before = _count(db, WarrantyReturn)
    with pytest.raises(ValidationFailed) as over:
        _return(db, world, card.number, kind="exchange", compensation=1500)
    assert over.value.field == "compensation"
    assert _count(db, WarrantyReturn) == before
    agent = make_user(db, "after_sales_specialist")
    item = service.create_return(
        session=db,
        actor=agent,
        data=service.ReturnInput(
            card_number=card.number,
            kind="exchange",
            reason="quality",
            photos=[service.Photo("a.png", PNG)],
            price_difference=-5000,
            compensation=1500,
            request_approval=True,
        ),
    )
    assert item.compensation_state == "pending" and item.approval_request_id
    service.accept(session=db, actor=agent, return_id=item.id)
    service.receive(session=db, actor=agent, return_id=item.id)
    with pytest.raises(ValidationFailed) as waiting:
        service.complete(session=db, actor=agent, return_id=item.id, payment_method="cash")
    assert waiting.value.field == "compensation" and item.state == "received"
    supervisor = make_user(db, "call_supervisor")
    approvals.approve(session=db, actor=supervisor, request_id=item.approval_request_id)
    assert item.compensation_state == "approved"
    service.complete(session=db, actor=agent, return_id=item.id, payment_method="cash")
    posting = db.get(Posting, item.posting_id)
    assert posting is not None
    amounts = {line.account.code: line.amount for line in posting.lines}
    assert amounts == {"warranty.refunds": 5000, "warranty.compensation": 1500, "1001": -6500}
    assert card.state == "registered"  # an exchange keeps the card


def _return_awaiting_approval(db: Session, world: World) -> tuple[WarrantyReturn, User]:
    """A non-quality return asking ¥50 compensation, sent for approval by an agent."""
    stocked(db, world)
    card = register(db, world, 3)
    agent = make_user(db, "after_sales_specialist")
    item = service.create_return(
        session=db,
        actor=agent,
        data=service.ReturnInput(
            card_number=card.number,
            kind="return",
            reason="non_quality",
            compensation=5000,
            request_approval=True,
        ),
    )
    return item, agent


def test_rejected_compensation_blocks_completion_until_lowered(db: Session, world: World) -> None:
    item, agent = _return_awaiting_approval(db, world)
    supervisor = make_user(db, "call_supervisor")
    approvals.reject(
        session=db, actor=supervisor, request_id=item.approval_request_id, comment="太多"
    )
    assert item.compensation_state == "rejected"
    service.accept(session=db, actor=agent, return_id=item.id)
    service.receive(session=db, actor=agent, return_id=item.id)
    with pytest.raises(ValidationFailed):
        service.complete(session=db, actor=agent, return_id=item.id, payment_method="wechat")
    service.set_compensation(session=db, actor=agent, return_id=item.id, amount=800)
    service.complete(session=db, actor=agent, return_id=item.id, payment_method="wechat")
    assert item.state == "completed"


def test_exchange_to_a_dearer_unit_takes_the_difference_with_a_receipt(
    db: Session, world: World
) -> None:
    stocked(db, world)
    card = register(db, world, 3, model_id=world.cheap_model.id, price=20000)
    item = _return(
        db,
        world,
        card.number,
        kind="exchange",
        reason="non_quality",
        photos=[],
        exchange_model_id=world.model.id,
        exchange_serial="SN-NEW-1",
        price_difference=25000,
    )
    for step in (service.accept, service.receive):
        step(session=db, actor=world.admin, return_id=item.id)
    service.complete(session=db, actor=world.admin, return_id=item.id, payment_method="cash")
    assert item.posting_id is None and item.receipt_id is not None
    assert card.model_id == world.model.id and card.serial == "SN-NEW-1"
    assert ledger.balance(db, "6051") == -25000


def test_returns_api_and_bad_input(client: TestClient, db: Session, world: World) -> None:
    stocked(db, world)
    card = register(db, world, 3)
    db.commit()
    headers = bearer(db, world.admin)
    photo = {"filename": "a.png", "content_base64": base64.b64encode(PNG).decode()}
    missing = client.post(
        "/api/v1/returns",
        headers=headers,
        json={"card_number": card.number, "kind": "return", "reason": "quality"},
    )
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "photos"
    unknown = client.post(
        "/api/v1/returns",
        headers=headers,
        json={"card_number": "JD000000019", "kind": "return", "reason": "non_quality"},
    )
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "card_number"
    over = client.post(
        "/api/v1/returns",
        headers=headers,
        json={
            "card_number": card.number,
            "kind": "return",
            "reason": "quality",
            "photos": [photo],
            "compensation": 99999,
        },
    )
    assert over.status_code == 422 and over.json()["errors"][0]["field"] == "compensation"
    created = client.post(
        "/api/v1/returns",
        headers=headers,
        json={"card_number": card.number, "kind": "return", "reason": "quality", "photos": [photo]},
    )
    assert created.status_code == 201, created.text
    rid = created.json()["id"]
    assert created.json()["photos"][0]["in_time"] is True
    assert (
        client.post(
            f"/api/v1/returns/{rid}/complete", headers=headers, json={"payment_method": "cash"}
        ).status_code
        == 409
    )
    for step in ("accept", "receive"):
        assert client.post(f"/api/v1/returns/{rid}/{step}", headers=headers).status_code == 200
    done = client.post(
        f"/api/v1/returns/{rid}/complete", headers=headers, json={"payment_method": "transfer"}
    )
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "completed" and done.json()["posting_id"]
    lookup = client.get(f"/api/v1/service-cards/{card.number}").json()
    assert lookup["state"] == "returned" and lookup["in_warranty"] is False


def test_cancelling_a_return_withdraws_its_pending_compensation_request(
    db: Session, world: World
) -> None:
    from cardops.approvals.models import ApprovalRequest

    item, _ = _return_awaiting_approval(db, world)
    request = db.get(ApprovalRequest, item.approval_request_id)
    assert request is not None and request.state == "pending"
    # another clerk cancels it: the supervisor is not left with a request about nothing
    service.cancel(session=db, actor=world.admin, return_id=item.id, reason="客户不退了")
    assert item.state == "cancelled"
    assert request.state == "withdrawn"
    assert item.compensation_state == "rejected"
    supervisor = make_user(db, "call_supervisor")
    with pytest.raises(InvalidTransition):
        approvals.approve(session=db, actor=supervisor, request_id=request.id)
