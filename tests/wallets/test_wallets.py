"""Card wallets: top-up, balance, statement, the gateway's debit and reversal, transfer."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cardops.auth.models import User
from cardops.cards.models import Card
from cardops.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from cardops.ledger import service as ledger
from cardops.ledger.chart import CASH, MERCHANT_PAYABLES, WALLET_FLOAT
from cardops.wallets import service
from tests.factories import make_user
from tests.parking.conftest import Estate, make_card, make_estate, make_person


@pytest.fixture
def estate(db: Session) -> Estate:
    return make_estate(db)


@pytest.fixture
def clerk(db: Session) -> User:
    return make_user(db, "front_desk_clerk")


def _wallet_card(db: Session, estate: Estate, clerk: User, amount: int = 0) -> Card:
    card = make_card(db, estate, make_person(db, "李娜"))
    service.enable_wallet(session=db, actor=clerk, card_number=card.number)
    if amount:
        service.top_up(session=db, actor=clerk, card_number=card.number, amount=amount)
    return card


def test_top_up_issues_a_receipt_and_credits_the_wallet(
    db: Session, estate: Estate, clerk: User
) -> None:
    card = _wallet_card(db, estate, clerk)
    cash = ledger.balance(db, CASH)
    float_before = ledger.rolled_up_balances(db).get(
        ledger.get_account_by_code(db, WALLET_FLOAT).id, 0
    )
    receipt = service.top_up(
        session=db, actor=clerk, card_number=card.number, amount=20000, method="cash"
    )
    assert receipt.amount == 20000 and receipt.payer_name == "李娜"
    assert service.balance(db, card) == 20000
    assert ledger.balance(db, CASH) == cash + 20000
    wallet_float = ledger.rolled_up_balances(db)[ledger.get_account_by_code(db, WALLET_FLOAT).id]
    assert wallet_float == float_before - 20000  # a liability grows on the credit side
    account = service.find_account(db, card)
    assert account is not None and account.parent is not None
    assert account.parent.code == WALLET_FLOAT


@pytest.mark.parametrize("amount", [0, -100])
def test_zero_or_negative_top_up_is_refused(
    db: Session, estate: Estate, clerk: User, amount: int
) -> None:
    card = _wallet_card(db, estate, clerk, 1000)
    with pytest.raises(ValidationFailed) as info:
        service.top_up(session=db, actor=clerk, card_number=card.number, amount=amount)
    assert info.value.field == "amount"
    assert "above zero" in str(info.value)
    assert service.balance(db, card) == 1000


def test_top_up_limits_and_card_state(db: Session, estate: Estate, clerk: User) -> None:
    card = _wallet_card(db, estate, clerk)
    with pytest.raises(ValidationFailed) as info:
        service.top_up(session=db, actor=clerk, card_number=card.number, amount=500_001)
    assert "5,000.00" in str(info.value)
    estate.property.card_policy = {"wallet_max_topup": 1_000_000}
    db.flush()
    service.top_up(session=db, actor=clerk, card_number=card.number, amount=800_000)
    card.state = "lost"
    db.flush()
    with pytest.raises(Conflict) as conflict:
        service.top_up(session=db, actor=clerk, card_number=card.number, amount=100)
    assert "lost" in str(conflict.value)
    plain = make_card(db, estate, make_person(db))
    with pytest.raises(Conflict) as conflict:
        service.top_up(session=db, actor=clerk, card_number=plain.number, amount=100)
    assert "enable the wallet" in str(conflict.value)
    with pytest.raises(NotFound):
        service.top_up(session=db, actor=clerk, card_number="NOPE", amount=100)
    assert service.balance(db, card) == 800_000


def test_debit_approves_declines_and_is_idempotent(
    db: Session, estate: Estate, clerk: User
) -> None:
    card = _wallet_card(db, estate, clerk, 5000)
    payables = ledger.balance(db, MERCHANT_PAYABLES)

    ok = service.debit(
        db, card_number=card.number, amount=3000, reference="T1/000001", idempotency_key="k1"
    )
    assert (ok.approved, ok.reason, ok.balance_after) == (True, "ok", 2000)
    assert ledger.balance(db, MERCHANT_PAYABLES) == payables - 3000

    again = service.debit(
        db, card_number=card.number, amount=3000, reference="T1/000001", idempotency_key="k1"
    )
    assert (again.approved, again.reason, again.balance_after) == (True, "duplicate", 2000)
    assert again.posting == ok.posting
    other = service.debit(
        db, card_number=card.number, amount=100, reference="x", idempotency_key="k1"
    )
    assert (other.approved, other.reason) == (False, "duplicate")

    poor = service.debit(
        db, card_number=card.number, amount=2001, reference="x", idempotency_key="k2"
    )
    assert (poor.approved, poor.reason, poor.balance_after) == (False, "insufficient_funds", 2000)
    exact = service.debit(
        db, card_number=card.number, amount=2000, reference="x", idempotency_key="k3"
    )
    assert (exact.approved, exact.balance_after) == (True, 0)

    unknown = service.debit(db, card_number="NOPE", amount=1, reference="", idempotency_key="k4")
    assert (unknown.approved, unknown.reason) == (False, "unknown_card")
    plain = make_card(db, estate, make_person(db))
    disabled = service.debit(
        db, card_number=plain.number, amount=1, reference="", idempotency_key="k5"
    )
    assert (disabled.approved, disabled.reason) == (False, "wallet_disabled")
    with pytest.raises(ValidationFailed):
        service.debit(db, card_number=card.number, amount=0, reference="", idempotency_key="k6")
    assert service.balance(db, card) == 0


def test_a_lost_card_is_declined_and_a_reversal_gives_the_money_back(
    db: Session, estate: Estate, clerk: User
) -> None:
    card = _wallet_card(db, estate, clerk, 5000)
    paid = service.debit(
        db, card_number=card.number, amount=1200, reference="", idempotency_key="p1"
    )
    assert paid.approved
    card.state = "lost"  # 挂失 (the cards service does this)
    db.flush()
    lost = service.debit(
        db, card_number=card.number, amount=100, reference="", idempotency_key="p2"
    )
    assert (lost.approved, lost.reason, lost.balance_after) == (False, "card_not_active", 3800)

    back = service.reverse_debit(db, idempotency_key="p1", reason="terminal timeout")
    assert (back.approved, back.reason, back.balance_after) == (True, "ok", 5000)
    twice = service.reverse_debit(db, idempotency_key="p1")
    assert (twice.approved, twice.reason, twice.balance_after) == (True, "duplicate", 5000)
    missing = service.reverse_debit(db, idempotency_key="never")
    assert (missing.approved, missing.reason) == (False, "not_found")


def test_statement_shows_top_ups_payments_and_running_balance(
    db: Session, estate: Estate, clerk: User
) -> None:
    card = _wallet_card(db, estate, clerk, 10000)
    service.debit(db, card_number=card.number, amount=2500, reference="shop", idempotency_key="s1")
    service.top_up(session=db, actor=clerk, card_number=card.number, amount=500)
    result = service.statement(session=db, actor=clerk, card_number=card.number)
    assert [e.amount for e in result.entries] == [10000, -2500, 500]
    assert [e.balance for e in result.entries] == [10000, 7500, 8000]
    assert result.entries[0].receipt and result.entries[1].receipt is None
    assert result.closing == 8000 == service.balance(db, card)


def test_transfer_moves_the_balance_to_the_reissued_card(
    db: Session, estate: Estate, clerk: User
) -> None:
    old = _wallet_card(db, estate, clerk, 4321)
    old.state = "lost"
    db.flush()
    new = make_card(db, estate, make_person(db))
    moved = service.transfer_wallet(db, clerk, old, new.number)
    assert moved == 4321
    assert service.balance(db, new) == 4321 and service.balance(db, old) == 0
    assert new.wallet_enabled and not old.wallet_enabled
    assert service.transfer_wallet(db, clerk, old, new) == 0  # nothing left: a no-op
    nothing = make_card(db, estate, make_person(db))
    assert service.transfer_wallet(db, clerk, nothing, make_card(db, estate, None)) == 0


def test_permissions(db: Session, estate: Estate, clerk: User) -> None:
    card = _wallet_card(db, estate, clerk, 100)
    analyst = make_user(db, "data_analyst")
    with pytest.raises(PermissionDenied):
        service.top_up(session=db, actor=analyst, card_number=card.number, amount=100)
    with pytest.raises(PermissionDenied):
        service.debit(
            db, card_number=card.number, amount=1, reference="", idempotency_key="z", actor=clerk
        )
    assert service.balance(db, card) == 100


def test_debit_many_answers_like_debit_one_after_the_other(
    db: Session, estate: Estate, clerk: User
) -> None:
    card = _wallet_card(db, estate, clerk, 5000)
    other = _wallet_card(db, estate, clerk, 100)
    plain = make_card(db, estate, make_person(db))
    paid = service.debit(
        db, card_number=card.number, amount=100, reference="before", idempotency_key="m0"
    )
    payables = ledger.balance(db, MERCHANT_PAYABLES)
    ask = service.DebitRequest
    results = service.debit_many(
        db,
        [
            ask(card.number, 3000, "T/1", "m1"),
            ask(card.number, 1500, "T/2", "m2"),
            ask(card.number, 1000, "T/3", "m3"),  # 400 left: declined, nothing written
            ask(card.number, 400, "T/4", "m4"),  # exactly what is left
            ask(other.number, 100, "T/5", "m5"),
            ask("NOPE", 1, "T/6", "m6"),
            ask(plain.number, 1, "T/7", "m7"),
            ask(card.number, 100, "before", "m0"),  # paid before: duplicate, not charged
            ask(card.number, 3000, "T/1", "m1"),  # repeated in the batch: duplicate
        ],
    )
    assert [(r.approved, r.reason, r.balance_after) for r in results] == [
        (True, "ok", 1900),
        (True, "ok", 400),
        (False, "insufficient_funds", 400),
        (True, "ok", 0),
        (True, "ok", 0),
        (False, "unknown_card", None),
        (False, "wallet_disabled", 0),
        (True, "duplicate", 0),
        (True, "duplicate", 0),
    ]
    assert results[7].posting == paid.posting
    assert results[8].posting == results[0].posting
    assert len({r.posting for r in results[:5] if r.reason == "ok"}) == 4
    assert service.balance(db, card) == 0 and service.balance(db, other) == 0
    assert ledger.balance(db, MERCHANT_PAYABLES) == payables - 3000 - 1500 - 400 - 100
    # each payment is its own posting: a reversal gives back exactly that one
    back = service.reverse_debit(db, idempotency_key="m2", reason="void")
    assert (back.approved, back.balance_after) == (True, 1500)
    assert service.debit_many(db, []) == []
    with pytest.raises(ValidationFailed):
        service.debit_many(db, [ask(card.number, 0, "", "m8")])


def test_debit_many_never_overdraws_and_records_an_audit_entry(
    db: Session, estate: Estate, clerk: User
) -> None:
    from cardops.audit.models import AuditEntry

    card = _wallet_card(db, estate, clerk, 1000)
    requests = [service.DebitRequest(card.number, 300, f"T/{i}", f"o{i}") for i in range(5)]
    results = service.debit_many(db, requests)
    assert [r.approved for r in results] == [True, True, True, False, False]
    assert service.balance(db, card) == 100
    entry = db.execute(
        select(AuditEntry)
        .where(AuditEntry.action == "ledger.posted_batch")
        .order_by(AuditEntry.seq.desc())
        .limit(1)
    ).scalar_one()
    covered = entry.after["postings"]
    assert [p["number"] for p in covered] == [r.posting for r in results[:3]]
    assert all([f"wallet:card:{card.id}", 300, "CNY"] in p["lines"] for p in covered)
