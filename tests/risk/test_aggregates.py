"""Aggregates: exact sliding windows in memory (checked against a brute-force count), and
the same figures shared through the real Redis on 127.0.0.1."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cardops.risk.aggregates import Event, MemoryStore, Probe, RedisStore

DAY, MONTH = "20261123", "202611"


def _event(
    ts: float,
    *,
    card: str = "c1",
    amount: int = 100,
    declined: bool = False,
    pin: bool = False,
    tid: str = "T1",
    merchant: int = 7,
) -> Event:
    return Event(
        ts, card, tid, merchant, 0 if declined else amount, declined, pin, False, DAY, MONTH
    )


@settings(derandomize=True, max_examples=50, deadline=None)
@given(
    gaps=st.lists(st.integers(min_value=0, max_value=4000), min_size=1, max_size=40),
    probes=st.lists(st.integers(min_value=0, max_value=90_000), min_size=1, max_size=5),
)
def test_memory_windows_match_a_brute_force_count(gaps: list[int], probes: list[int]) -> None:
    store = MemoryStore()
    start = 1_000_000.0
    times, t = [], start
    for gap in gaps:
        t += gap
        times.append(t)
    for i, ts in enumerate(times):
        store.record([_event(ts, amount=100 + i, declined=i % 3 == 0)])
    last = times[-1]
    for offset in sorted(probes):  # reads move forward in time, as in the gateway
        now = last + offset
        got = store.features(Probe(now, "c1", "T1", 7, DAY, MONTH))
        for window, span in (("10m", 600), ("1h", 3600), ("24h", 86400)):
            inside = [i for i, ts in enumerate(times) if ts > now - span]
            assert got[f"card__count_{window}"] == len(inside)
            assert got[f"terminal__declines_{window}"] == sum(1 for i in inside if i % 3 == 0)
            assert got[f"merchant__sum_{window}"] == sum(100 + i for i in inside if i % 3)


def test_usual_amount_first_use_and_totals() -> None:
    store = MemoryStore()
    probe = Probe(10.0, "c1", "T1", 7, DAY, MONTH)
    first = store.features(probe)
    assert first["txn__first_at_merchant"] is True
    assert first["merchant__usual_amount"] is None  # no history: null
    store.record([_event(float(i), amount=1000) for i in range(5)])
    later = store.features(probe)
    assert later["txn__first_at_merchant"] is False
    assert later["merchant__usual_amount"] == 1000
    assert later["merchant__day_total"] == 5000 and later["merchant__month_total"] == 5000
    store.adjust(7, DAY, MONTH, -1000)  # a reversal
    assert store.features(probe)["merchant__day_total"] == 4000


@pytest.fixture
def redis_url() -> str:
    import redis

    url = "redis://127.0.0.1:6379/0"
    redis.Redis.from_url(url).ping()
    return url


def test_redis_aggregates_are_shared_between_processes(redis_url: str) -> None:
    prefix = f"test:risk:{uuid.uuid4().hex}"
    one, two = RedisStore(redis_url, prefix), RedisStore(redis_url, prefix)
    try:
        now = 1_800_000_000.0
        one.record([_event(now - 30), _event(now - 20, declined=True, pin=True)])
        two.record([_event(now - 10, card="c2")])
        got = two.features(Probe(now, "c1", "T1", 7, DAY, MONTH))
        assert got["card__count_10m"] == 2 and got["card__pin_failures_10m"] == 1
        assert got["terminal__count_10m"] == 3 and got["merchant__sum_1h"] == 200
        assert got["merchant__day_total"] == 200 and got["txn__first_at_merchant"] is False
        assert two.features(Probe(now, "c3", "T1", 7, DAY, MONTH))["txn__first_at_merchant"]
        # 2 hours on: the 10-minute and 1-hour windows are empty, the 24-hour one is not
        later = one.features(Probe(now + 7200, "c1", "T1", 7, DAY, MONTH))
        assert later["card__count_10m"] == 0 and later["card__count_1h"] == 0
        assert later["card__count_24h"] == 2
        gone = one.features(Probe(now + 25 * 3600, "c1", "T1", 7, DAY, MONTH))
        assert gone["card__count_24h"] == 0
    finally:
        one.clear()
        one.close()
        two.close()
