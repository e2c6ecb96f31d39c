"""Risk fixtures: the gateway's world (merchant, terminal, on-us card, a gateway on a real
TCP port) with the risk runtime plugged in, a clock the test moves, and a scenario helper."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.orm import Session

from cardops.auth.service import system_user
from cardops.risk import service
from cardops.risk.aggregates import MemoryStore
from cardops.risk.models import Rule, Scenario
from cardops.risk.runtime import RiskConfig, RiskRuntime
from tests.gateway.conftest import (  # noqa: F401  (fixtures)
    PIN,
    Running,
    World,
    gateway,
    gateway_config,
    make_merchant,
    make_onus_card,
    make_terminal,
    pos,
    world,
)


class Clock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    import time

    return Clock(time.time())


@pytest.fixture
def runtime(gateway: Running, clock: Clock) -> Iterator[RiskRuntime]:  # noqa: F811
    hook = RiskRuntime(
        store=MemoryStore(),
        config=RiskConfig(enabled=True, redis_url="", sla_minutes=30),
        sessions=gateway.engine.sessions,
        stoplist=lambda: gateway.engine.stoplist,
        clock=clock,
    )
    gateway.engine.risk_hook = hook
    yield hook
    gateway.engine.risk_hook = None


def scenario(
    db: Session,
    rules: list[tuple[str, str, int]] | list[tuple[str, str, int, str]],
    *,
    review: int = 50,
    decline: int = 100,
    code: str = "59",
    kinds: str = "purchase,preauth,completion",
    name: str = "velocity",
) -> tuple[Scenario, list[Rule]]:
    actor = system_user(db)
    made = service.create_scenario(
        session=db,
        actor=actor,
        code=name,
        name=name.title(),
        kinds=kinds,
        review_threshold=review,
        decline_threshold=decline,
        decline_code=code,
    )
    out = []
    for item in rules:
        rule_code, expression, score = item[0], item[1], item[2]
        decline_code = item[3] if len(item) > 3 else ""  # type: ignore[misc]
        out.append(
            service.create_rule(
                session=db,
                actor=actor,
                scenario_id=made.id,
                code=rule_code,
                name=rule_code,
                expression=expression,
                score=score,
                decline_code=decline_code,
            )
        )
    db.commit()
    return made, out


def reload(runtime: RiskRuntime) -> None:
    runtime.checked = 0.0


def pay(terminal: Any, w: World, amount: int, *, pin: str = PIN) -> dict[str, str]:
    return dict(terminal.call(terminal.session.purchase(w.pan, amount, pin=pin, expiry=w.expiry)))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # psec reaches TripleDES through cryptography's deprecated path; not our concern here
    for item in items:
        if "tests/risk" in str(item.path):
            item.add_marker(
                pytest.mark.filterwarnings(
                    "ignore::cryptography.utils.CryptographyDeprecationWarning"
                )
            )
