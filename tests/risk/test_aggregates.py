"""Aggregates: exact sliding windows in memory (checked against a brute-force count), and
the same figures shared through the real Redis on 127.0.0.1."""

from __future__ import annotations

import gc
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
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


def _assert_brute_force(store: MemoryStore, times: list[float], now: float) -> None:
    """The store's windows at ``now`` equal a count over the events (event i: amount
    100 + i, declined when i % 3 == 0)."""
    got = store.features(Probe(now, "c1", "T1", 7, DAY, MONTH))
    for window, span in (("10m", 600), ("1h", 3600), ("24h", 86400)):
        inside = [i for i, ts in enumerate(times) if ts > now - span]
        assert got[f"card__count_{window}"] == len(inside)
        assert got[f"terminal__declines_{window}"] == sum(1 for i in inside if i % 3 == 0)
        assert got[f"merchant__sum_{window}"] == sum(100 + i for i in inside if i % 3)


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
        _assert_brute_force(store, times, now)


def test_memory_windows_stay_exact_after_old_events_are_dropped() -> None:
    """A day's events are kept in flat arrays, nothing per event for the garbage collector;
    the events older than 24 h are cut off the front as reads move on."""
    store = MemoryStore()
    times = [1_000_000.0 + 600 * i for i in range(500)]  # three and a half days
    for i, ts in enumerate(times):
        store.record([_event(ts, amount=100 + i, declined=i % 3 == 0)])
        if i % 7 == 0:  # reads come in between, as in the gateway
            store.features(Probe(ts, "c1", "T1", 7, DAY, MONTH))
    series = store.series[0]["c1"]
    assert len(series.ts) < 250  # the oldest days are gone
    # the collector finds no object per event behind them (lists show one per event)
    assert len(gc.get_referents(series.ts, series.rows)) <= 2
    now = times[-1] + 1
    _assert_brute_force(store, times, now)


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
        one.flush()  # sent without waiting; Redis has run it once flush returns
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


def _minute_granular(times: list[float], now: float, window: str) -> list[int]:
    """Which events the Redis windows count at ``now``: this minute and the previous 9 / 59
    full minutes, or this hour and the previous 23."""
    if window == "24h":
        return [i for i, ts in enumerate(times) if int(now // 3600) - int(ts // 3600) < 24]
    minutes = 10 if window == "10m" else 60
    return [i for i, ts in enumerate(times) if int(now // 60) - int(ts // 60) < minutes]


# the fixture only gives the (constant) URL; each example uses its own key prefix
@settings(
    derandomize=True,
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    steps=st.lists(
        st.tuples(st.integers(min_value=0, max_value=5000), st.booleans()),
        min_size=1,
        max_size=30,
    )
)
def test_redis_windows_match_a_brute_force_count(redis_url: str, steps: list[Any]) -> None:
    """Writes and reads interleaved in time order, one process writing and another reading
    (its closed minutes summed once a minute, the live ones read every time)."""
    prefix = f"test:risk:{uuid.uuid4().hex}"
    writer, reader = RedisStore(redis_url, prefix), RedisStore(redis_url, prefix)
    try:
        now, times = 1_800_000_000.0, []
        for gap, write in steps:
            now += gap
            if write:
                i = len(times)
                writer.record([_event(now, amount=100 + i, declined=i % 3 == 0, pin=i % 5 == 0)])
                writer.flush()
                times.append(now)
                continue
            got = reader.features(Probe(now, "c1", "T1", 7, DAY, MONTH))
            for window in ("10m", "1h", "24h"):
                inside = _minute_granular(times, now, window)
                assert got[f"card__count_{window}"] == len(inside)
                assert got[f"card__pin_failures_{window}"] == sum(i % 5 == 0 for i in inside)
                assert got[f"terminal__declines_{window}"] == sum(i % 3 == 0 for i in inside)
                assert got[f"merchant__sum_{window}"] == sum(100 + i for i in inside if i % 3)
    finally:
        writer.clear()
        writer.close()
        reader.close()


def test_redis_reads_only_what_the_rules_read_and_deletes_old_fields(redis_url: str) -> None:
    store = RedisStore(redis_url, f"test:risk:{uuid.uuid4().hex}")
    try:
        now = 1_800_000_000.0
        store.record([_event(now - 7200), _event(now - 120, declined=True), _event(now - 5)])
        store.want(("card__count_10m", "merchant__sum_24h", "merchant__day_total"))
        got = store.features(Probe(now, "c1", "T1", 7, DAY, MONTH))
        assert got["card__count_10m"] == 2 and got["merchant__sum_24h"] == 200
        assert "card__count_1h" not in got and "terminal__count_10m" not in got
        assert got["merchant__day_total"] == 200 and got["merchant__usual_amount"] is None
        # the event two hours ago is in no minute window any more: the next write of the
        # key deletes its minute fields (its hour fields stay for the 24-hour window)
        key = store._key("card", "c1")
        old = f"{int((now - 7200) // 60)}c"
        assert store.client.hexists(key, old)
        store.record([_event(now)])
        assert not store.client.hexists(key, old)
        assert store.client.hexists(key, f"h{int((now - 7200) // 3600)}c")
        assert 0 < store.client.ttl(key) <= 90_000
        store.want(None)
        later = store.features(Probe(now + 1, "c1", "T1", 7, DAY, MONTH))
        assert later["card__count_24h"] == 4 and later["card__declines_10m"] == 1
        assert later["terminal__count_1h"] == 3
    finally:
        store.clear()
        store.close()
