"""The double-entry core: balanced postings, derived balances, reversals, idempotency."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cardops.auth.models import User
from cardops.core import clock
from cardops.core.errors import Conflict, PermissionDenied, ValidationFailed
from cardops.ledger import service
from cardops.ledger.chart import BANK, CARD_FEE_INCOME, CASH, EQUITY, WALLET_FLOAT
from cardops.ledger.models import ImmutableRecord, Posting
from tests.factories import make_user


def _post(actor: User, db: Session, lines: list[tuple[str, int]], **kw: object) -> Posting:
    return service.post(
        session=db, actor=actor, lines=lines, description=str(kw.pop("description", "test")), **kw
    )  # type: ignore[arg-type]


def test_balanced_posting_is_accepted_and_balances_are_derived(db: Session, finance: User) -> None:
    before_cash = service.balance(db, CASH)
    before_income = service.balance(db, CARD_FEE_INCOME)
    posting = _post(finance, db, [(CASH, 2000), (CARD_FEE_INCOME, -2000)])
    assert posting.number.startswith("JV")
    assert [(line.account.code, line.amount) for line in posting.lines] == [
        (CASH, 2000),
        (CARD_FEE_INCOME, -2000),
    ]
    assert service.balance(db, CASH) == before_cash + 2000
    assert service.balance(db, CARD_FEE_INCOME) == before_income - 2000
    income = service.get_account_by_code(db, CARD_FEE_INCOME)
    assert income.natural(service.balance(db, income)) == -before_income + 2000


def test_unbalanced_posting_is_refused_naming_the_difference(db: Session, finance: User) -> None:
    count = db.execute(select(func.count()).select_from(Posting)).scalar_one()
    with pytest.raises(ValidationFailed) as exc:
        _post(finance, db, [(CASH, 1250), (CARD_FEE_INCOME, -1249)])
    assert exc.value.field == "lines"
    assert "0.01" in str(exc.value)
    assert db.execute(select(func.count()).select_from(Posting)).scalar_one() == count


@pytest.mark.parametrize(
    "lines",
    [
        [],
        [(CASH, 100)],
        [(CASH, 0), (CARD_FEE_INCOME, 0)],
        [(CASH, 100), (CARD_FEE_INCOME, -100), (BANK, 0)],
        [(CASH, 1.5), (CARD_FEE_INCOME, -1.5)],
        [(CASH, 100), ("9999-nope", -100)],
    ],
    ids=["empty", "single", "zeros", "one-zero", "float", "unknown-account"],
)
def test_malformed_postings_are_refused(
    db: Session, finance: User, lines: list[tuple[str, int]]
) -> None:
    with pytest.raises(ValidationFailed) as exc:
        _post(finance, db, lines)
    assert exc.value.field == "lines"


def test_closed_account_refuses_postings_and_closing_needs_zero_balance(
    db: Session, finance: User
) -> None:
    service.create_account(
        session=db, actor=finance, code="1009", name_en="Petty cash", name_zh="备用金", type="asset"
    )
    posting = _post(finance, db, [("1009", 500), (CASH, -500)])
    with pytest.raises(Conflict) as exc:
        service.update_account(session=db, actor=finance, code="1009", is_active=False)
    assert exc.value.field == "is_active"
    service.reverse(session=db, actor=finance, posting_id=posting.id, reason="test")
    service.update_account(session=db, actor=finance, code="1009", is_active=False)
    with pytest.raises(ValidationFailed, match="closed"):
        _post(finance, db, [("1009", 500), (CASH, -500)])


def test_each_currency_must_balance(db: Session, finance: User) -> None:
    for code, kind in (("1101", "asset"), ("6101", "income")):
        service.create_account(
            session=db,
            actor=finance,
            code=code,
            name_en=f"USD {kind}",
            name_zh="美元",
            type=kind,
            currency="USD",
        )
    with pytest.raises(ValidationFailed) as exc:
        _post(finance, db, [(CASH, 700), ("6101", -700)])
    assert "CNY" in str(exc.value)
    posting = _post(
        finance, db, [(CASH, 700), (CARD_FEE_INCOME, -700), ("1101", 100), ("6101", -100)]
    )
    assert {line.currency for line in posting.lines} == {"CNY", "USD"}
    assert service.balance(db, "1101") == 100


def test_reversal_cancels_the_effect_once(db: Session, finance: User) -> None:
    before = service.balance(db, BANK), service.balance(db, EQUITY)
    original = _post(finance, db, [(BANK, 1_000_000), (EQUITY, -1_000_000)])
    reversal = service.reverse(session=db, actor=finance, posting_id=original.id, reason="typo")
    assert reversal.reversal_of is original
    assert original.reversed_by is reversal
    assert [line.amount for line in reversal.lines] == [-1_000_000, 1_000_000]
    assert (service.balance(db, BANK), service.balance(db, EQUITY)) == before
    with pytest.raises(Conflict):
        service.reverse(session=db, actor=finance, posting_id=original.id, reason="again")
    with pytest.raises(Conflict):
        service.reverse(session=db, actor=finance, posting_id=reversal.id, reason="undo")


def test_idempotency_key_returns_the_first_posting(db: Session, finance: User) -> None:
    first = _post(finance, db, [(CASH, 300), (CARD_FEE_INCOME, -300)], idempotency_key="k-1")
    again = _post(finance, db, [(CASH, 300), (CARD_FEE_INCOME, -300)], idempotency_key="k-1")
    assert again.id == first.id
    count = db.execute(
        select(func.count()).select_from(Posting).where(Posting.idempotency_key == "k-1")
    ).scalar_one()
    assert count == 1
    with pytest.raises(Conflict) as exc:
        _post(finance, db, [(CASH, 301), (CARD_FEE_INCOME, -301)], idempotency_key="k-1")
    assert exc.value.field == "idempotency_key"


def test_postings_are_immutable(db: Session, finance: User) -> None:
    posting = _post(finance, db, [(CASH, 100), (CARD_FEE_INCOME, -100)])
    posting.description = "edited"
    with pytest.raises(ImmutableRecord):
        db.flush()
    db.rollback()


def test_trial_balance_balances_and_rolls_up_sub_accounts(db: Session, finance: User) -> None:
    wallet = service.ensure_account(
        session=db,
        actor=finance,
        code="wallet:card:42",
        name_en="Wallet of card 42",
        name_zh="卡42钱包",
        type="liability",
        parent_code=WALLET_FLOAT,
        owner_type="card",
        owner_id=42,
    )
    assert (
        service.ensure_account(
            session=db,
            actor=finance,
            code="wallet:card:42",
            name_en="x",
            name_zh="x",
            type="liability",
        ).id
        == wallet.id
    )
    _post(finance, db, [(CASH, 5000), ("wallet:card:42", -5000)])
    rolled = service.trial_balance(db)
    assert rolled.balanced
    codes = {row.account.code: row for row in rolled.rows}
    assert "wallet:card:42" not in codes
    assert codes[WALLET_FLOAT].credit >= 5000
    flat = service.trial_balance(db, rollup=False)
    assert {row.account.code: row.credit for row in flat.rows}["wallet:card:42"] == 5000
    assert flat.balanced


def test_statement_has_a_running_balance(db: Session, finance: User) -> None:
    service.create_account(
        session=db, actor=finance, code="1010", name_en="Till 2", name_zh="二号收银台", type="asset"
    )
    today = service.today()
    _post(finance, db, [("1010", 1000), (CASH, -1000)], business_date=today - timedelta(days=2))
    _post(finance, db, [("1010", 250), (CASH, -250)], business_date=today - timedelta(days=1))
    _post(finance, db, [(CASH, 400), ("1010", -400)])
    result = service.statement(db, "1010")
    assert [line.balance for line in result.lines] == [1000, 1250, 850]
    assert result.closing == 850 == service.balance(db, "1010")
    later = service.statement(db, "1010", since=today - timedelta(days=1))
    assert later.opening == 1000
    assert [line.balance for line in later.lines] == [1250, 850]
    assert service.balance(db, "1010", as_of=today - timedelta(days=2)) == 1000


def test_no_overdraft_protects_a_wallet(db: Session, finance: User) -> None:
    service.ensure_account(
        session=db,
        actor=finance,
        code="wallet:card:7",
        name_en="Wallet 7",
        name_zh="钱包7",
        type="liability",
        parent_code=WALLET_FLOAT,
    )
    _post(finance, db, [(CASH, 1000), ("wallet:card:7", -1000)])
    _post(
        finance,
        db,
        [("wallet:card:7", 600), (CARD_FEE_INCOME, -600)],
        no_overdraft=["wallet:card:7"],
    )
    with pytest.raises(ValidationFailed, match=r"4\.00"):
        _post(
            finance,
            db,
            [("wallet:card:7", 600), (CARD_FEE_INCOME, -600)],
            no_overdraft=["wallet:card:7"],
        )


def test_posting_needs_the_permission(db: Session) -> None:
    clerk = make_user(db, "front_desk_clerk")
    with pytest.raises(PermissionDenied):
        _post(clerk, db, [(CASH, 100), (CARD_FEE_INCOME, -100)])
    # A domain can authorise a movement with its own permission.
    posting = _post(clerk, db, [(CASH, 100), (CARD_FEE_INCOME, -100)], permission="receipts.issue")
    assert posting.created_by_id == clerk.id


def test_account_codes_are_validated(db: Session, finance: User) -> None:
    with pytest.raises(ValidationFailed) as exc:
        service.create_account(
            session=db, actor=finance, code="bad code", name_en="x", name_zh="x", type="asset"
        )
    assert exc.value.field == "code"
    with pytest.raises(Conflict):
        service.create_account(
            session=db, actor=finance, code=CASH, name_en="x", name_zh="x", type="asset"
        )
    with pytest.raises(ValidationFailed) as exc:
        service.create_account(
            session=db, actor=finance, code="7001", name_en="x", name_zh="x", type="revenue"
        )
    assert exc.value.field == "type"


def test_post_many_numbers_postings_gap_free_and_keeps_balances_derived(
    db: Session, finance: User
) -> None:
    from cardops.audit.models import AuditEntry

    cash, bank = service.balance(db, CASH), service.balance(db, BANK)
    single = _post(finance, db, [(CASH, 1), (EQUITY, -1)])
    outcomes = service.post_many(
        session=db,
        actor=finance,
        postings=[
            service.NewPosting([(CASH, 500), (EQUITY, -500)], "one", idempotency_key="pm-1"),
            service.NewPosting([(BANK, 300), (CASH, -300)], "two", no_overdraft=[CASH]),
            service.NewPosting([(BANK, 10**9), (CASH, -(10**9))], "big", no_overdraft=[CASH]),
        ],
    )
    assert outcomes[2].refused == "overdraft" and outcomes[2].number is None
    year, last = single.number[2:6], int(single.number[-6:])
    numbers = [o.number for o in outcomes if o.refused is None]
    assert numbers[:2] == [f"JV{year}-{last + 1:06d}", f"JV{year}-{last + 2:06d}"]
    assert outcomes[1].balances == {CASH: cash + 1 + 500 - 300}
    posting = service.get_posting_by_number(db, numbers[1])
    assert [(line.account.code, line.amount) for line in posting.lines] == [
        (BANK, 300),
        (CASH, -300),
    ]
    assert service.balance(db, BANK) == bank + 300
    assert posting.business_date == clock.today()
    assert abs((posting.posted_at - clock.utcnow()).total_seconds()) < 60
    # the batch advanced the same counter a single posting takes its number from
    assert _post(finance, db, [(CASH, 1), (EQUITY, -1)]).number == f"JV{year}-{last + 3:06d}"
    entry = db.execute(
        select(AuditEntry)
        .where(AuditEntry.action == "ledger.posted_batch")
        .order_by(AuditEntry.seq.desc())
        .limit(1)
    ).scalar_one()
    assert [p["number"] for p in entry.after["postings"]] == numbers


def test_post_many_refuses_a_key_used_before_and_malformed_batches(
    db: Session, finance: User
) -> None:
    first = _post(finance, db, [(CASH, 5), (EQUITY, -5)], idempotency_key="pm-used")
    [outcome] = service.post_many(
        session=db,
        actor=finance,
        postings=[
            service.NewPosting([(CASH, 5), (EQUITY, -5)], "again", idempotency_key="pm-used")
        ],
    )
    assert (outcome.refused, outcome.number) == ("duplicate", first.number)
    with pytest.raises(ValidationFailed):
        service.post_many(
            session=db, actor=finance, postings=[service.NewPosting([(CASH, 5), (EQUITY, -4)], "x")]
        )
    with pytest.raises(ValidationFailed):
        service.post_many(
            session=db,
            actor=finance,
            postings=[
                service.NewPosting([(CASH, 1), (EQUITY, -1)], "a", idempotency_key="same"),
                service.NewPosting([(CASH, 1), (EQUITY, -1)], "b", idempotency_key="same"),
            ],
        )
    assert service.post_many(session=db, actor=finance, postings=[]) == []
