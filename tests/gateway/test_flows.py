"""Void, refund, pre-authorization and completion, reversal, batch settlement."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from cardops.gateway import codec
from cardops.gateway.models import Batch, Journal
from cardops.gateway.terminal import BlockingTerminal
from cardops.wallets import service as wallets
from tests.gateway.conftest import PIN, World


def balance(db: Session, world: World) -> int:
    db.expire_all()
    return wallets.balance(db, world.card)


def test_void_gives_the_money_back_once(db: Session, world: World, pos: BlockingTerminal) -> None:
    sale = pos.call(pos.session.purchase(world.pan, 3000, pin=PIN))
    assert sale["39"] == "00" and balance(db, world) == 97_000
    void = pos.session.financial("0200", "020000", pan=world.pan, amount=3000, **{"37": sale["37"]})
    assert pos.call(void)["39"] == "00"
    assert balance(db, world) == 100_000
    again = pos.session.financial(
        "0200", "020000", pan=world.pan, amount=3000, **{"37": sale["37"]}
    )
    assert pos.call(again)["39"] == "12"
    unknown = pos.session.financial("0200", "020000", amount=3000, **{"37": "999999999999"})
    assert pos.call(unknown)["39"] == "25"
    assert balance(db, world) == 100_000


def test_refund_credits_at_most_the_original(
    db: Session, world: World, pos: BlockingTerminal
) -> None:
    sale = pos.call(pos.session.purchase(world.pan, 5000, pin=PIN))
    refund = pos.session.financial(
        "0200", "200000", pan=world.pan, amount=2000, **{"37": sale["37"]}
    )
    assert pos.call(refund)["39"] == "00"
    assert balance(db, world) == 97_000
    too_much = pos.session.financial(
        "0200", "200000", pan=world.pan, amount=3001, **{"37": sale["37"]}
    )
    assert pos.call(too_much)["39"] == "13"


def test_preauthorization_and_completion(db: Session, world: World, pos: BlockingTerminal) -> None:
    preauth_request = pos.session.financial("0100", "000000", pan=world.pan, amount=8000, pin=PIN)
    preauth = pos.call(preauth_request)
    assert preauth["t"] == "0110" and preauth["39"] == "00"
    assert balance(db, world) == 100_000  # nothing moves until completion
    original = codec.original_data("0100", preauth_request["11"], preauth_request["7"])
    over = pos.session.financial(
        "0200",
        "000000",
        pan=world.pan,
        amount=8001,
        **{"25": "06", "38": preauth["38"], "90": original},
    )
    assert pos.call(over)["39"] == "13"
    completion = pos.session.financial(
        "0200",
        "000000",
        pan=world.pan,
        amount=7500,
        **{"25": "06", "38": preauth["38"], "90": original},
    )
    assert pos.call(completion)["39"] == "00"
    assert balance(db, world) == 92_500
    twice = pos.session.financial(
        "0200",
        "000000",
        pan=world.pan,
        amount=100,
        **{"25": "06", "38": preauth["38"], "90": original},
    )
    assert pos.call(twice)["39"] == "12"


def test_reversal_is_idempotent_and_unknown_originals_are_answered(
    db: Session, world: World, pos: BlockingTerminal
) -> None:
    request = pos.session.purchase(world.pan, 4000, pin=PIN)
    assert pos.call(request)["39"] == "00"
    original = codec.original_data("0200", request["11"], request["7"])
    reversal = pos.session.financial(
        "0400", "000000", pan=world.pan, amount=4000, **{"90": original}
    )
    answer = pos.call(reversal)
    assert answer["t"] == "0410" and answer["39"] == "00" and answer["90"] == original
    assert balance(db, world) == 100_000
    second = pos.session.financial("0400", "000000", pan=world.pan, amount=4000, **{"90": original})
    assert pos.call(second)["39"] == "00"
    assert balance(db, world) == 100_000
    unknown = codec.original_data("0200", "999999", request["7"])
    stray = pos.session.financial("0400", "000000", amount=4000, **{"90": unknown})
    assert pos.call(stray)["39"] == "25"


def test_batch_settlement_compares_totals(db: Session, world: World, pos: BlockingTerminal) -> None:
    one = pos.call(pos.session.purchase(world.pan, 1000, pin=PIN, **{"60": "000001"}))
    two = pos.call(pos.session.purchase(world.pan, 2500, pin=PIN, **{"60": "000001"}))
    refund = pos.session.financial(
        "0200", "200000", pan=world.pan, amount=500, **{"37": one["37"], "60": "000001"}
    )
    assert two["39"] == "00" and pos.call(refund)["39"] == "00"

    def settle(credits: int, credit_amount: int, debits: int, debit_amount: int) -> str:
        msg = pos.session.header("0500")
        msg.update(
            {
                "60": "000001",
                "74": f"{credits:010d}",
                "76": f"{debits:010d}",
                "86": f"{credit_amount:016d}",
                "88": f"{debit_amount:016d}",
            }
        )
        return pos.call(msg)["39"]

    assert settle(1, 500, 2, 3400) == "95"  # 不平
    assert settle(1, 500, 2, 3500) == "00"  # 对账平
    batch = db.execute(select(Batch).order_by(Batch.id.desc())).scalars().first()
    assert batch is not None and batch.balanced and batch.gateway_debit_amount == 3500
    settled = db.execute(select(Journal).where(Journal.settled_batch_id == batch.id)).scalars()
    assert len(list(settled)) == 3


def test_requests_sent_back_to_back_wait_for_the_one_they_depend_on(
    db: Session, world: World, pos: BlockingTerminal
) -> None:
    """A repeat of a request still being processed, and a reversal of it, sent before its
    answer came: the repeat gets the same answer (one debit), the reversal is processed after
    the original and gives the money back."""
    request = pos.session.purchase(world.pan, 3000, pin=PIN)
    original = codec.original_data("0200", request["11"], request["7"])
    reversal = pos.session.financial(
        "0400", "000000", pan=world.pan, amount=3000, **{"90": original}
    )
    other = pos.session.purchase(world.pan, 500, pin=PIN)
    pos.send_raw(
        pos.session.encode(request)
        + pos.session.encode(request)
        + pos.session.encode(reversal)
        + pos.session.encode(other)
    )
    answers = [pos.receive() for _ in range(4)]
    purchases = [a for a in answers if a["t"] == "0210" and a["11"] == request["11"]]
    assert len(purchases) == 2 and {a["39"] for a in purchases} == {"00"}
    assert purchases[0]["37"] == purchases[1]["37"] and purchases[0]["38"] == purchases[1]["38"]
    [reversed_] = [a for a in answers if a["t"] == "0410"]
    assert reversed_["39"] == "00"
    [second] = [a for a in answers if a["11"] == other["11"]]
    assert second["39"] == "00"
    assert balance(db, world) == 100_000 - 500
