"""On-us payments end to end over TCP: sign-on, purchase with PIN and MAC, balance."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from cardops.gateway.models import Journal
from cardops.gateway.terminal import BlockingTerminal
from cardops.wallets import service as wallets
from tests.gateway.conftest import PIN, World


def test_purchase_debits_the_wallet_and_is_journaled(
    db: Session, world: World, pos: BlockingTerminal
) -> None:
    request = pos.session.purchase(world.pan, 2500, pin=PIN, expiry=world.expiry)
    response = pos.call(request)
    assert response["t"] == "0210"
    assert response["39"] == "00"
    assert response["11"] == request["11"] and response["41"] == world.tid
    assert len(response["37"]) == 12 and len(response["38"]) == 6
    assert pos.session.verify(pos.last_raw, response)
    db.expire_all()
    assert wallets.balance(db, world.card) == 100_000 - 2500
    row = db.execute(select(Journal).where(Journal.rrn == response["37"])).scalar_one()
    assert row.approved and row.amount == 2500 and row.route == "on-us"
    assert row.pan_masked.startswith("621234") and world.pan not in str(row.request)
    assert row.pan_hash and world.pan not in row.pan_hash
    assert "52" not in row.request
