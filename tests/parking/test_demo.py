"""The parking and wallet demo data on top of (a stand-in for) the cards demo."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from cardops.core.demo_loader import DemoContext
from cardops.parking import demo as parking_demo
from cardops.parking import service as parking
from cardops.parking.models import ParkingPermit
from cardops.wallets import demo as wallets_demo
from cardops.wallets import service as wallets
from tests.factories import make_user
from tests.parking.conftest import make_card, make_estate, make_person


def _ctx(db: Session) -> DemoContext:
    admin = make_user(db, "sysadmin")
    return DemoContext(
        password="x",
        admin=admin,
        users={
            "front_desk_clerk": make_user(db, "front_desk_clerk"),
            "cashier": make_user(db, "cashier"),
        },
    )


def test_demo_skips_without_cards_and_fills_in_with_them(db: Session) -> None:
    ctx = _ctx(db)
    estate = make_estate(db)
    estate.property.code = "SUNNY"
    db.flush()
    parking_demo.load(db, ctx)  # the cards demo made no cards: nothing happens, no error
    wallets_demo.load(db, ctx)
    assert db.execute(select(ParkingPermit.id)).first() is None

    owners = [make_card(db, estate, make_person(db, f"业主{i}")) for i in range(2)]
    parking_demo.load(db, ctx)
    wallets_demo.load(db, ctx)
    permits = {p.card_id: p for p in db.execute(select(ParkingPermit)).scalars()}
    assert parking.is_current(permits[owners[0].id])
    assert not parking.is_current(permits[owners[1].id])  # the expired one
    assert all(
        item.satisfied
        for item in parking.checklist(
            db, card=owners[0], person_id=owners[0].person_id, permit=permits[owners[0].id]
        )
    )
    assert all(c.wallet_enabled for c in owners)
    assert sorted(wallets.balance(db, c) for c in owners) == [5000, 20000 - 1850]
