"""The runtime without a gateway: what counts in a merchant's totals, and a failing store
never stops a request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cardops.gateway.models import Kind
from cardops.risk.aggregates import MemoryStore, Probe
from cardops.risk.runtime import RiskConfig, RiskRuntime


@dataclass
class Term:
    merchant_id: int = 7
    mid: str = "M"


@dataclass
class Req:
    kind: Kind
    amount: int
    rc: str = "00"
    terminal: Term = field(default_factory=Term)
    tid: str = "T1"
    pan: str = "6212340000000001"
    pan_hash: str = "h1"
    local_date: str = "20261123"
    card_type: str = "debit"
    risk: dict[str, Any] | None = None
    dup_key: str | None = None
    original: Any = None


def _runtime(store: Any) -> RiskRuntime:
    runtime = RiskRuntime(store=store, config=RiskConfig(redis_url=""), clock=lambda: 1000.0)
    runtime.checked = float("inf")  # no database: configuration left empty
    return runtime


def test_preauth_holds_but_only_payments_count() -> None:
    store = MemoryStore()
    runtime = _runtime(store)
    runtime.observe([Req(Kind.PREAUTH, 5000), Req(Kind.COMPLETION, 4000), Req(Kind.PURCHASE, 100)])
    got = store.features(Probe(1001.0, "h1", "T1", 7, "20261123", "202611"))
    assert got["merchant__day_total"] == 4100
    assert got["card__count_10m"] == 3 and got["card__sum_10m"] == 4100


def test_a_broken_store_lets_the_request_through() -> None:
    class Broken(MemoryStore):
        def features(self, probe: Probe) -> dict[str, Any]:
            raise ConnectionError("redis down")

    runtime = _runtime(Broken())
    from cardops.risk.runtime import LoadedRule, LoadedScenario

    runtime.scenarios = [
        LoadedScenario(
            1, "s", frozenset({"purchase"}), 1, 2, "59", [LoadedRule(1, "r", 5, "", None)]
        )
    ]
    request = Req(Kind.PURCHASE, 100)
    runtime.evaluate(None, request)  # type: ignore[arg-type]  # no Decline, no exception
    assert runtime.failures == 1 and request.risk is None
