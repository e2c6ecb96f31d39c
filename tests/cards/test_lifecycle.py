"""Loss, un-loss, reissue, replacement, return, cancellation, extension, reminders, history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from cardops.access import engine
from cardops.access.models import CredentialChange
from cardops.cards import service
from cardops.core.clock import freeze
from cardops.core.errors import Conflict, InvalidTransition, ValidationFailed
from cardops.ledger import service as ledger
from cardops.ledger.chart import CARD_FEE_INCOME, CASH, DEPOSITS_HELD
from cardops.notify.models import OutboxMessage
from cardops.parking.models import ParkingPermit
from tests.cards.conftest import Desk
from tests.factories import bearer


def _tenant(desk: Desk, name: str = "租户", **kwargs: object):  # type: ignore[no-untyped-def]
    person = desk.person(
        name, docs=("id_front", "lease_contract"), mobile="13900000001", email="t@example.com"
    )
    return person, desk.issue("tenant", person, "1-102", **kwargs)


def test_loss_reaches_the_next_decision_and_unloss_needs_an_id_check(
    client: TestClient, db: Session, desk: Desk
) -> None:
    _, card = _tenant(desk)
    db.commit()
    assert engine.decide(card.number, "UNIT-1").allowed is True
    headers = bearer(db, desk.clerk)
    lost = client.post(
        f"/api/v1/cards/{card.number}/report-lost", json={"channel": "phone"}, headers=headers
    )
    assert lost.status_code == 200 and lost.json()["state"] == "lost"
    decision = engine.decide(card.number, "UNIT-1")  # the very next decision after the commit
    assert (decision.allowed, decision.reason) == (False, "lost")
    refused = client.post(f"/api/v1/cards/{card.number}/cancel-loss", json={}, headers=headers)
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "id_checked"
    found = client.post(
        f"/api/v1/cards/{card.number}/cancel-loss", json={"id_checked": True}, headers=headers
    )
    assert found.status_code == 200 and found.json()["state"] == "active"
    assert engine.decide(card.number, "UNIT-1").allowed is True
    again = client.post(
        f"/api/v1/cards/{card.number}/cancel-loss", json={"id_checked": True}, headers=headers
    )
    assert again.status_code == 409
    detail = client.get(f"/api/v1/cards/{card.number}", headers=headers).json()
    assert [h["kind"] for h in detail["history"]] == [
        "requisitioned",
        "issued",
        "granted",
        "lost",
        "found",
    ]
    assert detail["holder_kind"] == "tenant" and detail["grants"] == [
        {"group": "B1", "schedule": "ALWAYS"}
    ]
    assert detail["valid_until"] and detail["card_class"] == "grey"
    missing = client.post("/api/v1/cards/NOPE-1/report-lost", headers=headers)
    assert missing.status_code == 404 and "NOPE-1" in missing.json()["detail"]


def test_every_change_appends_a_credential_change(desk: Desk) -> None:
    _, card = _tenant(desk)
    service.report_lost(session=desk.db, actor=desk.clerk, card_number=card.number)
    reasons = (
        desk.db.execute(
            select(CredentialChange.reason)
            .where(CredentialChange.card_id == card.id)
            .order_by(CredentialChange.id)
        )
        .scalars()
        .all()
    )
    assert reasons[0] == "issued" and reasons[-1] == "lost"


def test_reissue_moves_holder_doors_deposit_and_parking(desk: Desk) -> None:
    person, old = _tenant(desk)
    permit = ParkingPermit(
        number="P-T1",
        property_id=desk.prop.id,
        card_id=old.id,
        person_id=person.id,
        plate="川A12345",
        valid_from=service.today(),
        valid_until=service.today() + timedelta(days=30),
    )
    desk.db.add(permit)
    desk.db.flush()
    _, busy = _tenant(desk, "租户二")
    service.report_lost(session=desk.db, actor=desk.clerk, card_number=old.number)
    with pytest.raises(Conflict):  # not a blank office card
        service.reissue(
            session=desk.db, actor=desk.clerk, card_number=old.number, new_card_number=busy.number
        )
    income = ledger.balance(desk.db, CARD_FEE_INCOME)
    new = service.reissue(
        session=desk.db, actor=desk.clerk, card_number=old.number, new_card_number=desk.blank()
    )
    assert old.state == "cancelled" and old.state_reason == "reissued"
    assert new.state == "active" and new.person_id == person.id and new.replaces_id == old.id
    assert new.valid_until == old.valid_until and new.deposit == 5000 and old.deposit == 0
    assert new.deposit_receipt_no == old.deposit_receipt_no
    assert ledger.balance(desk.db, CARD_FEE_INCOME) == income - 2000  # fee charged again
    assert [g.code for g, _ in service.grants_of(desk.db, new)] == ["B1"]
    assert permit.card_id == new.id
    assert new.events[-1].kind == "reissued" and new.events[-1].data["old_card"] == old.number


def test_replacement_free_within_warranty_fee_after_refused_for_man_made(desk: Desk) -> None:
    start = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
    freeze(start)
    _, card = _tenant(desk)
    _, second = _tenant(desk, "租户二")
    with pytest.raises(ValidationFailed) as exc:
        service.replace(
            session=desk.db,
            actor=desk.clerk,
            card_number=card.number,
            new_card_number=desk.numbers[0],
            damage="man_made",
        )
    assert "man-made damage" in str(exc.value).lower() and "buy a new card" in str(exc.value)
    assert card.state == "active"
    freeze(start + timedelta(days=20))
    free = service.replace(
        session=desk.db,
        actor=desk.clerk,
        card_number=card.number,
        new_card_number=desk.blank(),
        damage="natural",
    )
    assert free.fee == 0 and free.fee_receipt_no is None and card.state == "replaced"
    freeze(start + timedelta(days=45))
    paid = service.replace(
        session=desk.db,
        actor=desk.clerk,
        card_number=second.number,
        new_card_number=desk.blank(),
        damage="natural",
    )
    assert paid.fee == 2000 and paid.fee_receipt_no
    with pytest.raises(InvalidTransition):
        service.report_lost(session=desk.db, actor=desk.clerk, card_number=card.number)


def test_return_needs_the_receipt_and_refunds_the_deposit(desk: Desk) -> None:
    _, card = _tenant(desk)
    with pytest.raises(ValidationFailed) as exc:
        service.return_card(
            session=desk.db, actor=desk.clerk, card_number=card.number, receipt_number=None
        )
    assert exc.value.field == "receipt_number" and "receipt" in str(exc.value)
    with pytest.raises(ValidationFailed):
        service.return_card(
            session=desk.db,
            actor=desk.clerk,
            card_number=card.number,
            receipt_number="RC1999-000001",
        )
    assert card.state == "active" and card.deposit == 5000
    held, cash = ledger.balance(desk.db, DEPOSITS_HELD), ledger.balance(desk.db, CASH)
    result = service.return_card(
        session=desk.db,
        actor=desk.clerk,
        card_number=card.number,
        receipt_number=card.deposit_receipt_no.lower(),
    )
    assert (
        result.refunded == 5000 and result.refund_number and result.refund_number.startswith("RF")
    )
    assert ledger.balance(desk.db, DEPOSITS_HELD) == held + 5000
    assert ledger.balance(desk.db, CASH) == cash - 5000
    assert card.state == "returned" and card.deposit == 0
    with pytest.raises(InvalidTransition):  # the number is cancelled for good
        card.transition(service.CardState.ACTIVE)


def test_damaged_card_keeps_the_deposit_and_gifted_card_refunds_nothing(desk: Desk) -> None:
    _, card = _tenant(desk)
    result = service.return_card(
        session=desk.db,
        actor=desk.clerk,
        card_number=card.number,
        receipt_number=card.fee_receipt_no,
        damaged=True,
        damage_note="折断",
    )
    assert (result.refunded, result.forfeited) == (0, 5000)
    _, gift = _tenant(desk, "租户赠", is_gift=True)
    result = service.return_card(
        session=desk.db, actor=desk.clerk, card_number=gift.number, receipt_number=None
    )
    assert result.refunded == 0 and gift.state == "returned"


def test_ownership_change_cancels_the_household_and_notifies(desk: Desk) -> None:
    owner = desk.person("原业主", owner_of="1-101", mobile="13900000009", email="old@example.com")
    own = desk.issue("owner", owner, "1-101")
    family = desk.issue(
        "family", desk.person("家属"), "1-101", owner_confirmation=desk.confirmation()
    )
    nanny = desk.issue(
        "nanny",
        desk.person("保姆", docs=("id_front",)),
        "1-101",
        owner_confirmation=desk.confirmation(),
    )
    service.report_lost(session=desk.db, actor=desk.clerk, card_number=nanny.number)
    neighbour = desk.issue("owner", desk.person("邻居", owner_of="1-201"), "1-201")
    buyer = desk.person("新业主")
    cards = service.cancel_cards_for_ownership_change(
        session=desk.db,
        actor=desk.supervisor,
        unit_id=desk.unit("1-101").id,
        reason="房屋出售",
        new_owner_person_id=buyer.id,
    )
    assert {c.number for c in cards} == {own.number, family.number, nanny.number}
    assert all(c.state == "cancelled" for c in cards) and neighbour.state == "active"
    assert desk.unit("1-101").owner_person_id == buyer.id
    notices = (
        desk.db.execute(
            select(OutboxMessage).where(
                OutboxMessage.recipient.in_(["13900000009", "old@example.com"])
            )
        )
        .scalars()
        .all()
    )
    assert {n.channel for n in notices} == {"sms", "email"}
    assert own.number in notices[0].body


def test_staff_card_cancelled_when_staff_leave(desk: Desk) -> None:
    staff = desk.person("离职员工", docs=())
    card = desk.issue(
        "staff", staff, actor=desk.supervisor, approval_request_id=desk.approved("staff", staff)
    )
    with pytest.raises(ValidationFailed):
        service.cancel_staff_card(
            session=desk.db, actor=desk.supervisor, card_number=card.number, reason="bored"
        )
    service.cancel_staff_card(
        session=desk.db, actor=desk.supervisor, card_number=card.number, reason="left"
    )
    assert card.state == "cancelled" and card.state_reason == "staff_left"
    _, tenant = _tenant(desk)
    with pytest.raises(ValidationFailed):
        service.cancel_staff_card(
            session=desk.db, actor=desk.supervisor, card_number=tenant.number, reason="left"
        )


def test_extension_within_policy(desk: Desk) -> None:
    _, card = _tenant(desk)  # tenants: 12 months
    with pytest.raises(ValidationFailed) as exc:
        service.extend(session=desk.db, actor=desk.clerk, card_number=card.number, months=6)
    assert exc.value.field == "months" and "12 months" in str(exc.value)
    freeze(datetime.now(UTC) + timedelta(days=200))
    until = card.valid_until
    service.extend(session=desk.db, actor=desk.clerk, card_number=card.number, months=6)
    assert card.valid_until > until and card.events[-1].kind == "extended"


def test_expiry_reminders_are_queued_once(desk: Desk) -> None:
    _, card = _tenant(desk)
    on = card.valid_until - timedelta(days=10)
    assert service.queue_expiry_reminders(desk.db, on=on) == 2  # SMS and e-mail
    assert service.queue_expiry_reminders(desk.db, on=on) == 0
    assert service.queue_expiry_reminders(desk.db, on=card.valid_until - timedelta(days=60)) == 0
    message = desk.db.execute(
        select(OutboxMessage).where(
            OutboxMessage.channel == "sms", OutboxMessage.recipient == "13900000001"
        )
    ).scalar_one()
    assert card.number in message.body and card.valid_until.isoformat() in message.body


def test_lifecycle_api_paths(client: TestClient, db: Session, desk: Desk) -> None:
    _, card = _tenant(desk)
    headers = bearer(db, desk.clerk)
    ext = client.post(f"/api/v1/cards/{card.number}/extend", json={"months": 0}, headers=headers)
    assert ext.status_code == 422
    man = client.post(
        f"/api/v1/cards/{card.number}/replace",
        json={"new_card_number": desk.numbers[0], "damage": "man_made"},
        headers=headers,
    )
    assert man.status_code == 422 and man.json()["errors"][0]["field"] == "damage"
    ret = client.post(f"/api/v1/cards/{card.number}/return", json={}, headers=headers)
    assert ret.status_code == 422 and "receipt" in ret.json()["detail"]
    ok = client.post(
        f"/api/v1/cards/{card.number}/return",
        json={"receipt_number": card.fee_receipt_no},
        headers=headers,
    )
    assert ok.status_code == 200 and ok.json()["refunded"] == 5000
    assert ok.json()["card"]["state"] == "returned"
    listing = client.get("/api/v1/cards", params={"q": card.number}, headers=headers).json()
    assert [c["number"] for c in listing] == [card.number]
    clerk_cancel = client.post(
        f"/api/v1/cards/{card.number}/cancel", json={"reason": "left"}, headers=headers
    )
    assert clerk_cancel.status_code == 403
