"""A batch's reads: with Redis aggregates one pipelined round trip per batch (the requests
then make none, and see exactly what a per-request read would), and in both modes a
request sees the batch's earlier requests of the same card before they are recorded."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

from cardops.gateway import crypto
from cardops.gateway.engine import Decline
from cardops.gateway.models import Kind
from cardops.risk.aggregates import Event, MemoryStore, Probe, RedisStore
from cardops.risk.expressions import FIELDS, compile_rule
from cardops.risk.runtime import LoadedRule, LoadedScenario, RiskConfig, RiskRuntime

NOW = 1_800_000_030.0  # 30 s into a minute
DAY, MONTH = "20270115", "202701"
PAN, OTHER = "6212340000000001", "6212340000000019"


@dataclass
class Term:
    merchant_id: int | None = 7
    mid: str = "M"


@dataclass
class Req:
    kind: Kind = Kind.PURCHASE
    amount: int = 100
    rc: str = "00"
    terminal: Term = field(default_factory=Term)
    tid: str = "T1"
    pan: str = PAN
    pan_hash: str = ""
    local_date: str = DAY
    card_type: str = "debit"
    risk: dict[str, Any] | None = None
    dup_key: str | None = None
    original: Any = None
    stage: str = "new"
    preset: str = ""
    msg: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.pan_hash = crypto.pan_hash(self.pan)
        self.msg = {"t": "0200", "3": "000000", "41": self.tid, "2": self.pan, "13": DAY[4:]}


class Alerts:
    """Stands in for the batch's session: the runtime only adds alerts to it here."""

    def __init__(self) -> None:
        self.added: list[Any] = []

    def add(self, row: Any) -> None:
        self.added.append(row)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def _velocity_runtime(store: Any, clock: Clock) -> RiskRuntime:
    """One scenario: a third request of the card within 10 minutes is declined."""
    runtime = RiskRuntime(store=store, config=RiskConfig(redis_url=""), clock=clock)
    runtime.checked = float("inf")  # no database: the configuration is set here
    compiled = compile_rule("card.count_10m >= 2")
    rule = LoadedRule(
        1,
        "velocity",
        10,
        "",
        compiled.program,
        tuple(FIELDS[name].var for name in compiled.fields),
    )
    runtime.scenarios = [LoadedScenario(1, "v", frozenset({"purchase"}), 5, 10, "59", [rule])]
    runtime.variables = rule.variables
    return runtime


def _batch(runtime: RiskRuntime, requests: list[Req]) -> list[str]:
    """Run ``requests`` as one gateway batch; each one's answer (``00`` or the decline)."""
    session = Alerts()
    runtime.prefetch(session, requests)  # type: ignore[arg-type]
    codes = []
    for request in requests:
        try:
            runtime.evaluate(session, request)  # type: ignore[arg-type]
            request.rc = "00"
        except Decline as exc:
            request.rc = exc.args[0] if exc.args else "05"
        codes.append(request.rc)
    runtime.observe(requests)
    return codes


def test_a_batch_sees_its_earlier_requests_of_the_same_card() -> None:
    runtime = _velocity_runtime(MemoryStore(), Clock())
    # one batch of four: two of the card, one of another card, a third of the card
    codes = _batch(runtime, [Req(), Req(), Req(pan=OTHER), Req()])
    assert codes == ["00", "00", "00", "59"]
    assert runtime.failures == 0
    # the batch's requests are recorded once, at commit: 4 on the terminal, 3 on the card
    # (the declined one counted as a request and a decline, without its amount)
    got = runtime.store.features(Probe(NOW + 1, crypto.pan_hash(PAN), "T1", 7, DAY, MONTH))
    assert got["card__count_10m"] == 3 and got["card__sum_10m"] == 200
    assert got["card__declines_10m"] == 1 and got["terminal__count_10m"] == 4
    # the next batch starts from the recorded figures, not twice from the overlay
    assert _batch(runtime, [Req(pan=OTHER)]) == ["00"]
    assert _batch(runtime, [Req(pan=OTHER)]) == ["59"]


def test_outside_a_batch_nothing_is_overlaid() -> None:
    runtime = _velocity_runtime(MemoryStore(), Clock())
    session = Alerts()
    for _ in range(3):  # never recorded, never in a batch: each sees an empty history
        runtime.evaluate(session, Req())  # type: ignore[arg-type]
    assert runtime.batch is None and not session.added


@pytest.fixture
def redis_store() -> Any:
    store = RedisStore("redis://127.0.0.1:6379/0", f"test:risk:{uuid.uuid4().hex}")
    yield store
    store.clear()
    store.close()


def _history(store: Any) -> None:
    card, other = crypto.pan_hash(PAN), crypto.pan_hash(OTHER)
    events = [
        Event(NOW - 3000, card, "T1", 7, 500, False, False, False, DAY, MONTH),
        Event(NOW - 200, card, "T1", 7, 0, True, True, False, DAY, MONTH),
        Event(NOW - 100, card, "T2", 8, 300, False, False, False, DAY, MONTH),
        Event(NOW - 50, other, "T2", 8, 0, True, False, True, DAY, MONTH),
    ]
    for _ in range(3):  # enough payments for merchant 8 to have a usual amount
        events.append(Event(NOW - 90_000, other, "T2", 8, 900, False, False, False, DAY, MONTH))
    store.record(sorted(events, key=lambda e: e.ts))  # in time order, as the gateway records


def test_redis_prefetch_reads_once_and_answers_like_a_per_request_read(
    redis_store: RedisStore,
) -> None:
    _history(redis_store)
    redis_store.record([Event(NOW - 80, None, "T2", 8, 700, False, False, False, DAY, MONTH)] * 2)
    probes = [
        Probe(NOW, crypto.pan_hash(PAN), "T1", 7, DAY, MONTH),
        Probe(NOW, crypto.pan_hash(PAN), "T2", 8, DAY, MONTH),
        Probe(NOW, crypto.pan_hash(OTHER), "T2", 8, DAY, MONTH),
        Probe(NOW, crypto.pan_hash(OTHER), "T1", 7, DAY, MONTH),
        Probe(NOW, None, "T3", None, DAY, MONTH),
    ]
    expected = [redis_store.features(p) for p in probes]  # one Lua call each
    assert any(e["merchant__usual_amount"] for e in expected)
    assert any(e["txn__first_at_merchant"] for e in expected)
    assert any(not e["txn__first_at_merchant"] for e in expected)
    redis_store.prefetch(probes)

    def no_round_trip(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a request made its own Redis round trip")

    redis_store.read = no_round_trip  # type: ignore[method-assign]
    assert [redis_store.features(p) for p in probes] == expected
    assert redis_store.prefetched == len(probes)
    # a request the prefetch did not foresee, or a minute that has turned, reads for itself
    with pytest.raises(AssertionError):
        redis_store.features(Probe(NOW, "unforeseen", "T1", 7, DAY, MONTH))
    with pytest.raises(AssertionError):
        redis_store.features(Probe(NOW + 60, crypto.pan_hash(PAN), "T1", 7, DAY, MONTH))


def test_redis_batches_decide_like_the_in_process_store(redis_store: RedisStore) -> None:
    memory = MemoryStore()
    _history(memory)
    _history(redis_store)
    clock = Clock()
    in_process, shared = _velocity_runtime(memory, clock), _velocity_runtime(redis_store, clock)
    shared.merchant_of = {"T1": 7, "T2": 8}  # learnt from earlier traffic in a gateway
    batches = [
        [Req(pan=OTHER, tid="T2", terminal=Term(8)), Req(), Req(pan=OTHER)],
        [Req(pan=OTHER, tid="T2", terminal=Term(8)), Req(tid="T2", terminal=Term(8))],
        [Req(), Req(pan=OTHER)],
    ]
    for requests in batches:
        again = [Req(r.kind, r.amount, tid=r.tid, pan=r.pan, terminal=r.terminal) for r in requests]
        assert _batch(shared, requests) == _batch(in_process, again)
    assert [r.rc for r in batches[2]] == ["59", "59"]
    # one round trip per batch: no request read for itself
    assert redis_store.reads == len(batches) and shared.failures == 0
    assert redis_store.prefetched == sum(len(b) for b in batches)


def test_a_script_redis_has_forgotten_is_loaded_again(redis_store: RedisStore) -> None:
    """Pipelines call EVALSHA without checking first; a NOSCRIPT answer (Redis restarted)
    reruns that call once, so no write is lost or doubled."""
    redis_store.write.sha = "0" * 40  # as if Redis had forgotten the scripts
    redis_store.read_script.sha = "f" * 40
    _history(redis_store)
    card = crypto.pan_hash(PAN)
    probe = Probe(NOW, card, "T1", 7, DAY, MONTH)
    redis_store.prefetch([probe])
    redis_store.read_script.sha = "e" * 40
    redis_store.prefetch([probe])
    got = redis_store.features(probe)
    assert redis_store.prefetched == 1
    assert got["card__count_10m"] == 2 and got["card__count_1h"] == 3
    assert got["card__declines_10m"] == 1 and got["card__sum_24h"] == 800
    assert redis_store.write.sha != "0" * 40  # loaded again for the next calls


def test_writes_do_not_wait_and_the_next_read_collects_their_answer(
    redis_store: RedisStore,
) -> None:
    card = crypto.pan_hash(PAN)
    redis_store.record([Event(NOW - 5, card, "T1", 7, 100, False, False, False, DAY, MONTH)])
    assert len(redis_store.unread) == 1  # sent, the answer not read yet
    probe = Probe(NOW, card, "T1", 7, DAY, MONTH)
    redis_store.prefetch([probe])  # the batch's read is sent behind it, not waited for
    assert len(redis_store.unread) == 2 and redis_store.batch is None
    got = redis_store.features(probe)  # the first request collects both answers
    assert redis_store.unread == [] and got["card__count_10m"] == 1
    assert redis_store.reads == 1 and redis_store.prefetched == 1


def test_redis_going_away_never_declines_and_the_store_reconnects(
    redis_store: RedisStore,
) -> None:
    import socket

    clock = Clock()
    runtime = _velocity_runtime(redis_store, clock)
    _history(redis_store)  # the card has 2 requests in the last 10 minutes: the rule holds
    assert _batch(runtime, [Req()]) == ["59"]
    kwargs = redis_store.client.connection_pool.connection_kwargs
    port = kwargs["port"]
    with socket.socket() as free:  # a port nobody listens on: Redis is "down"
        free.bind(("127.0.0.1", 0))
        kwargs["port"] = free.getsockname()[1]
    redis_store.conn.disconnect()
    redis_store.conn = None
    try:
        # every read and write fails: logged and counted, the requests are let through
        assert _batch(runtime, [Req(), Req()]) == ["00", "00"]
        assert runtime.failures == 3  # two evaluations and the batch's write
    finally:
        kwargs["port"] = port
        redis_store.conn = None
    assert _batch(runtime, [Req()]) == ["59"]  # back: the figures are Redis's again


def test_the_prefetch_uses_the_gateways_pan_hashes(
    redis_store: RedisStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock()
    runtime = _velocity_runtime(redis_store, clock)
    _history(redis_store)
    # the engine's prefetch hashed the batch's PANs just before: none is hashed again
    runtime.merchant_of = {"T1": 7}  # learnt from earlier traffic in a gateway
    known = {PAN: crypto.pan_hash(PAN)}
    runtime.hashes = lambda: known
    requests = [Req(), Req()]

    def no_hash(pan: str) -> str:
        raise AssertionError("hashed again")

    monkeypatch.setattr(crypto, "pan_hash", no_hash)
    session = Alerts()
    runtime.prefetch(session, requests)  # type: ignore[arg-type]
    for request in requests:  # the card's history makes the velocity rule decline both
        with pytest.raises(Decline):
            runtime.evaluate(session, request)  # type: ignore[arg-type]
    assert redis_store.prefetched == 2 and redis_store.reads == 1 and runtime.failures == 0
