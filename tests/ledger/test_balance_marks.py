"""Remembered balance marks: a balance read from a mark plus the lines after it always equals
the full SUM of the account's lines, and a mark read in a transaction that rolls back is
never remembered."""

from __future__ import annotations

import random
import time

from sqlalchemy.orm import Session

from cardops.auth.models import User
from cardops.ledger import service
from cardops.ledger.chart import CASH, WALLET_FLOAT


def _wallet(db: Session, finance: User, n: int) -> int:
    account = service.ensure_account(
        session=db,
        actor=finance,
        code=f"wallet:card:{9000 + n}",
        name_en=f"Wallet {n}",
        name_zh=f"钱包{n}",
        type="liability",
        parent_code=WALLET_FLOAT,
    )
    return account.id


def test_marked_balances_equal_the_full_sum_through_many_commits(
    db: Session, finance: User
) -> None:
    ids = [_wallet(db, finance, n) for n in range(4)]
    codes = {aid: f"wallet:card:{9000 + n}" for n, aid in enumerate(ids)}
    db.commit()
    rng = random.Random(7)
    for round_no in range(12):
        batch = []
        for aid in rng.sample(ids, 3):
            amount = rng.randint(1, 5_000)
            batch.append(service.NewPosting([(CASH, amount), (codes[aid], -amount)], "top-up"))
        if round_no % 3 == 0:  # single postings take the same lock and are counted the same
            service.post(
                session=db, actor=finance, lines=[(CASH, 7), (codes[ids[0]], -7)], description="x"
            )
        service.post_many(session=db, actor=finance, postings=batch)
        db.commit()
        full = service.balances(db, [service.get_account_by_code(db, codes[a]) for a in ids])
        marked = service.current_balances(db, ids)
        assert marked == {aid: full.get(aid, 0) for aid in ids}
        db.commit()
    # the marks are remembered once committed: a read now starts from them
    assert set(ids) <= service._MARKS.keys()
    assert all(service._MARKS[aid][1] == full[aid] for aid in ids)


def test_a_mark_read_in_a_rolled_back_savepoint_is_not_remembered(
    db: Session, finance: User
) -> None:
    aid = _wallet(db, finance, 10)
    code = "wallet:card:9010"
    service.post(session=db, actor=finance, lines=[(CASH, 100), (code, -100)], description="a")
    db.commit()
    nested = db.begin_nested()
    service.post(session=db, actor=finance, lines=[(CASH, 50), (code, -50)], description="b")
    assert service.current_balances(db, [aid]) == {aid: -150}
    nested.rollback()
    db.commit()
    assert aid not in service._MARKS  # the read saw a line that is gone
    assert service.current_balances(db, [aid]) == {aid: -100}
    db.commit()
    assert service._MARKS[aid][1] == -100


def test_overdraft_is_refused_from_a_remembered_mark(db: Session, finance: User) -> None:
    aid = _wallet(db, finance, 20)
    code = "wallet:card:9020"
    service.post(session=db, actor=finance, lines=[(CASH, 1_000), (code, -1_000)], description="t")
    db.commit()
    service.current_balances(db, [aid])
    db.commit()
    assert aid in service._MARKS
    pay = service.NewPosting([(code, 600), (CASH, -600)], "pay", no_overdraft=[code])
    first, second = service.post_many(session=db, actor=finance, postings=[pay, pay])
    assert first.refused is None and second.refused == "overdraft"
    assert second.balances == {code: -400}


def test_an_expired_mark_is_not_trusted(db: Session, finance: User) -> None:
    aid = _wallet(db, finance, 30)
    code = "wallet:card:9030"
    service.post(session=db, actor=finance, lines=[(CASH, 300), (code, -300)], description="t")
    db.commit()
    stale = time.monotonic() - service.MARK_LIFETIME - 1
    service._MARKS[aid] = (10**12, -1, stale)  # a wrong mark, but too old to be used
    assert service.current_balances(db, [aid]) == {aid: -300}
    service._MARKS[aid] = (10**12, -1, time.monotonic())  # a fresh one is (lines after: none)
    assert service.current_balances(db, [aid]) == {aid: -1}
