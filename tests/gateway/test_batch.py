"""Group commit of on-us payments: a batch's purchases are debited together, in order, and
never overdraw a wallet; the declined ones carry no RRN or approval code; repeats are
answered from the journal without a second debit."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cardops.gateway import codec
from cardops.gateway.config import GatewayConfig
from cardops.gateway.engine import Ctx, Engine
from cardops.gateway.models import Journal
from cardops.gateway.terminal import TerminalSession
from cardops.ledger.models import Posting
from cardops.wallets import service as wallets
from tests.gateway.conftest import PIN, World


def _batch(engine: Engine, pos: TerminalSession, messages: list[codec.Message]) -> list[Ctx]:
    items = []
    for msg in messages:
        raw = codec.encode_with_mac(msg, None if msg["t"] == "0800" else pos.tak)
        items.append(Ctx(raw=raw, msg=codec.decode(raw)))
    engine.process_batch(items)
    return items


def test_one_batch_debits_in_order_without_overdraft(
    db: Session, world: World, gateway_config: GatewayConfig
) -> None:
    engine = Engine(gateway_config)
    pos = TerminalSession(world.tid, world.mid, world.tmk)
    [signed] = _batch(engine, pos, [pos.sign_on()])
    pos.accept_keys(signed.response)
    requests = [pos.purchase(world.pan, 40_000, pin=PIN) for _ in range(4)]
    requests.append(pos.purchase(world.pan, 20_000, pin=PIN))
    done = _batch(engine, pos, requests)
    assert [c.response["39"] for c in done] == ["00", "00", "51", "51", "00"]
    for ctx in done:
        approved = ctx.response["39"] == "00"
        assert ("37" in ctx.response) is approved and ("38" in ctx.response) is approved
        assert ctx.out  # encoded only after the commit
    db.expire_all()
    assert wallets.balance(db, world.card) == 0
    rows = db.execute(select(Journal).where(Journal.tid == world.tid, Journal.kind == "purchase"))
    journal = {r.stan: r for r in rows.scalars()}
    assert len(journal) == 5
    assert sorted(r.response_code for r in journal.values()) == ["00", "00", "00", "51", "51"]
    assert all((r.wallet_key is not None) is r.approved for r in journal.values())

    # the same requests again: answered from the journal, nothing debited twice
    postings = db.execute(select(func.count(Posting.id))).scalar_one()
    engine.recent.clear()  # as after a restart: the journal answers
    again = _batch(engine, pos, requests)
    assert [c.response for c in again] == [c.response for c in done]
    db.expire_all()
    assert db.execute(select(func.count(Posting.id))).scalar_one() == postings
    assert wallets.balance(db, world.card) == 0
    count = select(func.count(Journal.id)).where(Journal.tid == world.tid)
    assert db.execute(count.where(Journal.kind == "purchase")).scalar_one() == 5
