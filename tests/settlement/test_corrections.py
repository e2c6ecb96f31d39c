"""Corrections across days: a cancellation of a purchase settled on an earlier day is taken
off once, however often it is journaled again on later days; a refund claws back fees and
profit shares at the rates of its sale's day."""

from __future__ import annotations

from datetime import timedelta

from cardops.core.clock import freeze
from cardops.settlement import service
from tests.settlement.conftest import DAY, World, at


def _settle(world: World, day):  # type: ignore[no-untyped-def]
    return service.settle_day(session=world.db, actor=world.finance, business_date=day)


def test_a_repeated_reversal_on_a_later_day_is_not_taken_off_again(world: World) -> None:
    day1, day2 = DAY + timedelta(days=1), DAY + timedelta(days=2)
    sale = world.journal("purchase", 10_000, when=at(DAY, 12))
    kept = world.journal("purchase", 2_000, when=at(DAY, 12, 5))
    assert _settle(world, DAY).window.gross == 12_000
    world.journal("reversal", 10_000, original_id=sale, when=at(day1, 10))
    freeze(at(day1 + timedelta(days=1), 9))
    first = _settle(world, day1)
    assert (first.window.gross, first.window.adjustments) == (-10_000, -10_000)
    # the acquirer repeats the reversal the next day (and a void of the same sale comes too)
    world.journal("reversal", 10_000, original_id=sale, when=at(day2, 10))
    world.journal("void", 10_000, original_id=sale, when=at(day2, 10, 1))
    world.journal("purchase", 500, when=at(day2, 11))
    freeze(at(day2 + timedelta(days=1), 9))
    second = _settle(world, day2)
    assert (second.window.gross, second.window.adjustments) == (500, 0)
    assert sum(t.cancels for t in second.computed.facts.values()) == 0
    # a first cancellation of another earlier sale on the same later day still counts once
    day3 = DAY + timedelta(days=3)
    world.journal("void", 2_000, original_id=kept, when=at(day3, 10))
    world.journal("void", 2_000, original_id=kept, when=at(day3, 10, 1))
    freeze(at(day3 + timedelta(days=1), 9))
    third = _settle(world, day3)
    assert (third.window.gross, third.window.adjustments) == (-2_000, -2_000)
    # the same sale cancelled within its own day and again the next day: taken off once
    day4, day5 = DAY + timedelta(days=4), DAY + timedelta(days=5)
    same_day = world.journal("purchase", 3_000, when=at(day4, 9))
    world.journal("reversal", 3_000, original_id=same_day, when=at(day4, 9, 1))
    freeze(at(day4 + timedelta(days=1), 9))
    assert _settle(world, day4).window.gross == 0
    world.journal("reversal", 3_000, original_id=same_day, when=at(day5, 9))
    freeze(at(day5 + timedelta(days=1), 9))
    assert _settle(world, day5).window.gross == 0


def test_a_refund_claws_back_at_the_rates_of_its_sale_day(world: World) -> None:
    """The merchant's rate goes from 0.6 % to 1.5 % the day after the sale; the refund on that
    day takes back the 0.6 % fee the sale paid, not 1.5 %."""
    day1 = DAY + timedelta(days=1)
    merchant = world.t_county.merchant_id
    sale = world.journal("purchase", 100_000, card_type="credit", when=at(DAY, 12))
    before = _settle(world, DAY)
    paid = before.window.fee
    assert paid == 600  # 0.6 % of 1 000.00
    service.set_merchant_rate(
        session=world.db,
        actor=world.finance,
        merchant_id=merchant,
        debit_bp=150,
        debit_cap=None,
        credit_bp=150,
        effective_from=day1,
    )
    world.journal("refund", 100_000, card_type="credit", original_id=sale, when=at(day1, 10))
    fresh = world.journal("purchase", 10_000, card_type="credit", when=at(day1, 11))
    world.journal("refund", 4_000, card_type="credit", original_id=fresh, when=at(day1, 12))
    freeze(at(day1 + timedelta(days=1), 9))
    window = service.close_window(session=world.db, actor=world.finance, business_date=day1)
    by_columns = service.compute_window(world.db, window, method="columns")
    by_sql = service.compute_window(world.db, window, method="sql")
    assert by_columns.facts == by_sql.facts and by_columns.shares == by_sql.shares
    after = _settle(world, day1)
    # −600 for the old sale's refund (its day's rate); today's sale and refund at 1.5 %
    assert after.window.fee == -600 + 150 - 60
    assert after.window.gross == -100_000 + 10_000 - 4_000
    assert after.window.shares + after.window.hq_margin + after.window.bank_fee == after.window.fee
    # the providers give back exactly what the old sale earned them (county 55 bp, city
    # 50 bp: 50 each), and earn on today's sale and refund at 1.5 %
    shares = {k: v.share for k, v in before.computed.shares.items()}
    assert shares == {(world.county.id, "credit"): 50, (world.city.id, "credit"): 50}
    shares = {k: v.share for k, v in after.computed.shares.items()}
    assert shares == {
        (world.county.id, "credit"): -50 + (150 - 55) - (60 - 22),
        (world.city.id, "credit"): -50 + (55 - 50) - (22 - 20),
    }
