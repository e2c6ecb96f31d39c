"""Card stock: finance receives batches, the office requisitions blank cards."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cardops.cards import service
from cardops.cards.models import Card, CardBatch
from cardops.core.errors import Conflict, ValidationFailed
from tests.cards.conftest import Desk
from tests.factories import api_headers


def test_batch_numbers_uids_and_wiegand_are_normalised(desk: Desk) -> None:
    specs = [
        service.CardSpec(number="x-1", uid="04:a1:b2:c3"),
        service.CardSpec(number="X-2", uid="04a1b2c4"),
    ]
    batch = service.receive_batch(
        session=desk.db, actor=desk.cashier, number="b-x", cards=specs, unit_cost=300
    )
    assert batch.number == "B-X" and batch.quantity == 2
    card = service.get_card(desk.db, "04A1B2C3")  # found by UID in any spelling
    assert card.number == "X-1" and card.uid == "04A1B2C3" and card.state == "stock"
    csv_batch = service.receive_batch(
        session=desk.db,
        actor=desk.cashier,
        number="B-CSV",
        csv_text="number,uid,wiegand\nW-1,04AABB01,12:1001\nW-2,,34:300:7\n",
    )
    assert csv_batch.quantity == 2
    w1, w2 = service.get_card(desk.db, "W-1"), service.get_card(desk.db, "W-2")
    assert (w1.wiegand_format, w1.wiegand_facility, w1.wiegand_number) == (26, 12, 1001)
    assert (w2.wiegand_format, w2.wiegand_facility, w2.wiegand_number) == (34, 300, 7)


def test_duplicate_numbers_are_refused_and_nothing_is_saved(desk: Desk) -> None:
    before = desk.db.execute(select(func.count()).select_from(Card)).scalar_one()
    with pytest.raises(Conflict) as exc:
        service.receive_batch(
            session=desk.db, actor=desk.cashier, number="B-DUP", first_number="T000029", quantity=5
        )
    assert "T000029" in str(exc.value)
    assert desk.db.execute(select(func.count()).select_from(Card)).scalar_one() == before
    assert desk.db.execute(select(CardBatch).where(CardBatch.number == "B-DUP")).first() is None
    with pytest.raises(ValidationFailed) as bad:
        service.receive_batch(
            session=desk.db, actor=desk.cashier, number="B-BAD", csv_text="Z-1,NOTHEX\n"
        )
    assert bad.value.field == "cards"
    with pytest.raises(ValidationFailed):
        service.parse_wiegand("26:999:1")  # facility too big for 26-bit


def test_requisition_moves_stock_cards_to_the_office(desk: Desk) -> None:
    service.receive_batch(
        session=desk.db, actor=desk.cashier, number="B-R", first_number="R0001", quantity=3
    )
    req = service.request_cards(
        session=desk.db, actor=desk.clerk, property_id=desk.prop.id, quantity=2
    )
    cards = service.fulfil_requisition(session=desk.db, actor=desk.cashier, requisition_id=req.id)
    assert [c.number for c in cards] == ["R0001", "R0002"]
    assert all(c.state == "office" and c.property_id == desk.prop.id for c in cards)
    assert req.state == "fulfilled"
    assert cards[0].events[-1].kind == "requisitioned"
    big = service.request_cards(
        session=desk.db, actor=desk.clerk, property_id=desk.prop.id, quantity=50
    )
    with pytest.raises(Conflict) as exc:
        service.fulfil_requisition(session=desk.db, actor=desk.cashier, requisition_id=big.id)
    assert "1 blank cards" in str(exc.value)


def test_stock_api_and_permissions(client: TestClient, db: Session, desk: Desk) -> None:
    clerk = api_headers(db, "front_desk_clerk")
    cashier = api_headers(db, "cashier")
    body = {"number": "B-API", "first_number": "A00001", "quantity": 3, "unit_cost": 350}
    assert client.post("/api/v1/cards/batches", json=body, headers=clerk).status_code == 403
    made = client.post("/api/v1/cards/batches", json=body, headers=cashier)
    assert made.status_code == 201 and made.json()["quantity"] == 3
    req = client.post(
        "/api/v1/cards/requisitions",
        json={"property_id": desk.prop.id, "quantity": 3},
        headers=clerk,
    )
    assert req.status_code == 201
    done = client.post(
        f"/api/v1/cards/requisitions/{req.json()['id']}/fulfil", json={}, headers=cashier
    )
    assert done.status_code == 200 and done.json()["state"] == "fulfilled"
    card = client.get("/api/v1/cards/A00001", headers=clerk).json()
    assert card["state"] == "office" and card["property"] == "SUNNY"
    zero = client.post(
        "/api/v1/cards/requisitions",
        json={"property_id": desk.prop.id, "quantity": 0},
        headers=clerk,
    )
    assert zero.status_code == 422
