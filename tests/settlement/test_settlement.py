"""Business days, merchant settlement, profit sharing, ledger postings, repeatability."""

from __future__ import annotations

import io
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from cardops.core.clock import freeze
from cardops.core.errors import Conflict, ValidationFailed
from cardops.ledger import service as ledger
from cardops.ledger.beancount import export_text
from cardops.ledger.models import Posting, PostingLine
from cardops.settlement import reports, service
from cardops.settlement.compute import fee_of
from tests.settlement.conftest import DAY, World, at


def settle(world: World, day=DAY):  # type: ignore[no-untyped-def]
    return service.settle_day(session=world.db, actor=world.finance, business_date=day)


def test_fees_shares_and_rounding_per_transaction(world: World) -> None:
    # 125 fen at 0.6 % = 0.75 → 1 fen (half up); three of them pay 3, not round(2.25) = 2
    for _ in range(3):
        world.journal("purchase", 125)
    world.journal("purchase", 1_000_000)  # 0.6 % = 6000, capped at 2000
    world.journal("purchase", 20_000, card_type="credit", terminal=world.t_city)
    world.journal("purchase", 50_000, terminal=world.t_none)
    result = settle(world)
    facts = result.computed.facts
    county = facts[(world.merchants[0].id, world.county.id, "debit")]
    assert county.count == 4
    assert county.gross == 3 * 125 + 1_000_000
    assert county.fee == 3 * 1 + 2000
    # county 0.45 % cap 19, city 0.40 % cap 18, bank 0.30 % cap 15
    county_cost = 3 * fee_of(125, (45, 1900)) + 1900
    city_cost = 3 * fee_of(125, (40, 1800)) + 1800
    bank = 3 * fee_of(125, (30, 1500)) + 1500
    shares = result.computed.shares
    assert shares[(world.county.id, "debit")].share == county.fee - county_cost
    assert shares[(world.city.id, "debit")].share == county_cost - city_cost
    assert county.bank_fee == bank
    assert county.hq_margin == city_cost - bank
    # credit under the city directly: city earns 0.6 − 0.5 %, HQ 0.5 − 0.45 %
    credit = facts[(world.merchants[1].id, world.city.id, "credit")]
    assert (credit.fee, credit.bank_fee, credit.hq_margin) == (120, 90, 10)
    assert shares[(world.city.id, "credit")].share == 20
    # no provider: HQ keeps the fee minus the bank fee
    none = facts[(world.merchants[2].id, None, "debit")]
    assert (none.fee, none.hq_margin) == (300, 300 - 150)
    w = result.window
    assert w.state == "settled"
    assert w.net + w.fee == w.gross
    assert w.shares + w.hq_margin + w.bank_fee == w.fee


def test_refunds_voids_and_reversals(world: World) -> None:
    sale = world.journal("purchase", 10_000)
    world.journal("refund", 10_000, original_id=sale)
    voided = world.journal("purchase", 7_000)
    world.journal("void", 7_000, original_id=voided)
    reversed_ = world.journal("purchase", 3_000)
    world.journal("reversal", 3_000, original_id=reversed_)
    world.journal("reversal", 3_000, original_id=reversed_)  # a repeated reversal counts once
    world.journal("purchase", 9_999, approved=False)  # declined: nothing
    world.journal("preauth", 5_000)  # not money until completed
    world.journal("completion", 4_000)
    result = settle(world)
    fact = result.computed.facts[(world.merchants[0].id, world.county.id, "debit")]
    assert fact.gross == 4_000
    assert fact.fee == fee_of(4_000, (60, 2000))
    assert fact.cancels == 2
    # the refund clawed back exactly what its purchase paid at every level
    share = result.computed.shares[(world.county.id, "debit")]
    assert share.share == fee_of(4_000, (60, 2000)) - fee_of(4_000, (45, 1900))


def test_window_still_open_is_refused(world: World) -> None:
    freeze(at(DAY, 22, 59))
    with pytest.raises(Conflict) as exc:
        settle(world)
    assert exc.value.field == "business_date"
    assert (
        service.get_window(world.db, DAY) is None
        or service.get_window(world.db, DAY).state == "open"
    )  # type: ignore[union-attr]


def test_cutoff_and_late_rows_fall_into_the_next_window(world: World) -> None:
    world.journal("purchase", 1_000, when=at(DAY, 22, 59))
    world.journal("purchase", 2_000, when=at(DAY, 23, 1))  # after the cut-off: next day
    first = settle(world)
    assert first.window.gross == 1_000
    # journaled after the window closed, although stamped before its cut-off
    world.journal("purchase", 4_000, when=at(DAY, 22, 0))
    freeze(at(DAY + timedelta(days=2), 9))
    second = settle(world, DAY + timedelta(days=1))
    assert second.window.gross == 6_000
    assert second.window.first_id == first.window.last_id


def test_a_closed_day_is_adjusted_by_a_later_posting(world: World) -> None:
    sale = world.journal("purchase", 10_000, when=at(DAY, 12))
    first = settle(world)
    assert first.window.gross == 10_000
    world.journal("void", 10_000, original_id=sale, when=at(DAY + timedelta(days=1), 10))
    freeze(at(DAY + timedelta(days=2), 9))
    second = settle(world, DAY + timedelta(days=1))
    assert second.window.gross == -10_000
    assert second.window.adjustments == -10_000
    assert service.get_window(world.db, DAY).gross == 10_000  # type: ignore[union-attr]
    # the merchant's negative day is carried, not paid
    payout = reports.day_summary(session=world.db, actor=world.finance, day=DAY + timedelta(days=1))
    assert payout.merchants[0].payout == 0 and payout.merchants[0].carried < 0


def test_settling_again_is_idempotent(world: World) -> None:
    world.journal("purchase", 10_000)
    world.journal("purchase", 20_000, card_type="credit", terminal=world.t_city)
    first = settle(world)
    assert first.postings > 0
    postings = world.db.execute(select(func.count(Posting.id))).scalar_one()
    again = settle(world)
    assert again.unchanged and again.postings == 0
    assert world.db.execute(select(func.count(Posting.id))).scalar_one() == postings
    with pytest.raises(ValidationFailed) as exc:
        service.set_merchant_rate(
            session=world.db,
            actor=world.finance,
            merchant_id=world.merchants[0].id,
            debit_bp=10,
            debit_cap=None,
            credit_bp=10,
            effective_from=DAY,
        )
    assert exc.value.field == "effective_from"  # a closed day's rates never change


def test_ledger_balances_and_beancount_accepts_the_books(world: World, tmp_path: Path) -> None:
    world.journal("purchase", 10_000)
    sale = world.journal("purchase", 30_000, card_type="credit", terminal=world.t_city)
    world.journal("refund", 5_000, original_id=sale, terminal=world.t_city, card_type="credit")
    settle(world)
    total = world.db.execute(select(func.sum(PostingLine.amount))).scalar_one()
    assert total == 0
    fee_income = ledger.balance(world.db, "6002")
    assert -fee_income == service.get_window(world.db, DAY).fee  # type: ignore[union-attr]
    payable = ledger.balance(world.db, service.merchant_account(world.merchants[0].id))
    assert -payable == 10_000 - 60
    path = tmp_path / "books.beancount"
    path.write_text(export_text(world.db), encoding="utf-8")
    check = subprocess.run(
        [str(Path(sys.executable).parent / "bean-check"), str(path)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "Liabilities:C2203:C2203-merchant-" in path.read_text()


def test_payout_file_and_statements(world: World) -> None:
    world.journal("purchase", 10_000)
    world.journal("purchase", 10_000, terminal=world.t_city)
    settle(world)
    text = reports.payout_csv(session=world.db, actor=world.finance, day=DAY).decode()
    lines = text.strip().split("\r\n")
    assert lines[0].startswith("payout_date,business_date,mid")
    assert lines[-1] == "TRAILER,2,198.80"
    assert lines[1].split(",")[0] == (DAY + timedelta(days=1)).isoformat()
    statement = reports.merchant_statement(
        session=world.db,
        actor=world.finance,
        merchant_id=world.merchants[0].id,
        date_from=DAY,
        date_to=DAY,
    )
    assert statement.totals.net == 9_940
    sheet = load_workbook(io.BytesIO(reports.merchant_statement_xlsx(statement))).active
    assert sheet is not None and sheet.cell(row=5, column=3).value == 1
    assert reports.merchant_statement_pdf(statement).startswith(b"%PDF")
    # finance data agree with the statements
    rows = reports.finance_data(
        session=world.db, actor=world.finance, date_from=DAY, date_to=DAY, by="merchant"
    )
    by_merchant = {r.key: r for r in rows}
    assert by_merchant[str(world.merchants[0].id)].volume == statement.totals.gross
    assert by_merchant[str(world.merchants[0].id)].fee == statement.totals.fee
    city = reports.provider_statement(
        session=world.db, actor=world.finance, provider_id=world.city.id, month="2026-03"
    )
    assert city.volume == reports.subtree_volume(world.db, world.city.id, DAY, DAY) == 20_000
    levels = {
        r.key: r.volume
        for r in reports.finance_data(
            session=world.db,
            actor=world.finance,
            date_from=DAY,
            date_to=DAY,
            by="level",
            period="month",
        )
    }
    assert levels == {"county": 10_000, "city": 10_000}


def test_rewards(world: World) -> None:
    from cardops.terminals.models import Terminal

    reports.create_rule(
        session=world.db, actor=world.finance, name="激活返现", kind="activation", amount=0
    )
    reports.create_rule(
        session=world.db,
        actor=world.finance,
        name="达标奖励",
        kind="volume",
        amount=50_000,
        level="city",
        threshold=15_000,
    )
    unit = world.db.get(Terminal, world.t_city.id)
    assert unit is not None
    unit.activated_at = at(DAY, 10)
    world.db.flush()
    world.journal("purchase", 20_000, terminal=world.t_city)
    settle(world)
    granted = reports.volume_rewards(session=world.db, actor=world.finance, month="2026-03")
    assert [(r.provider_id, r.amount) for r in granted] == [(world.city.id, 50_000)]
    assert reports.volume_rewards(session=world.db, actor=world.finance, month="2026-03") == []
    statement = reports.provider_statement(
        session=world.db, actor=world.finance, provider_id=world.city.id, month="2026-03"
    )
    assert statement.reward_total == 5_000 + 50_000  # the provider's activation reward + target
    assert (
        -ledger.balance(world.db, service.provider_account(world.city.id))
        == statement.share + 55_000
    )


def test_bad_input(world: World) -> None:
    with pytest.raises(ValidationFailed) as exc:
        service.parse_percent("0.385", field="debit_rate")
    assert exc.value.field == "debit_rate"
    with pytest.raises(ValidationFailed):
        service.parse_percent("1e3", field="debit_rate")
    assert service.parse_percent("0.6", field="x") == 60
    with pytest.raises(ValidationFailed):
        service.parse_day("2026-02-30")
    with pytest.raises(ValidationFailed):
        service.parse_month("2026-13")
    with pytest.raises(ValidationFailed) as exc:
        service.set_merchant_rate(
            session=world.db,
            actor=world.finance,
            merchant_id=world.merchants[0].id,
            debit_bp=99999,
            debit_cap=-1,
            credit_bp=60,
            effective_from=DAY,
        )
    assert exc.value.field in (None, "debit_bp", "request") or exc.value.errors
