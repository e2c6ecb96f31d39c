"""Rules in the running gateway: velocity per card declines, review lets through and opens an
alert, a rule failing at run time never declines, edits take effect without a restart."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from cardops.auth.service import system_user
from cardops.risk import service
from cardops.risk.models import Alert, Rule
from cardops.risk.runtime import RiskRuntime
from tests.risk.conftest import Clock, World, pay, reload, scenario


def test_velocity_declines_and_review_opens_an_alert(
    db: Session, world: World, pos, runtime: RiskRuntime, clock: Clock
) -> None:
    scenario(
        db,
        [
            ("card_burst", "card.count_10m >= 2", 60),
            ("card_flood", "card.count_10m >= 3", 60, "65"),
        ],
    )
    reload(runtime)
    assert pay(pos, world, 1000)["39"] == "00"
    clock.advance(30)
    assert pay(pos, world, 1000)["39"] == "00"
    clock.advance(30)
    # third: count_10m == 2 → 60 points: review, let through, alert opened
    assert pay(pos, world, 1000)["39"] == "00"
    db.expire_all()
    alerts = list(db.execute(select(Alert)).scalars())
    assert [(a.decision, a.score) for a in alerts] == [("review", 60)]
    assert alerts[0].rules == [{"code": "card_burst", "score": 60}]
    assert alerts[0].tid == world.tid and alerts[0].amount == 1000 and alerts[0].state == "open"
    clock.advance(30)
    # fourth: both rules → 120 ≥ 100: declined with the highest-scoring coded rule's 65
    assert pay(pos, world, 1000)["39"] == "65"
    clock.advance(11 * 60)
    # the 10-minute window has moved on: approved again
    assert pay(pos, world, 1000)["39"] == "00"


def test_a_rule_failing_at_run_time_never_declines(
    db: Session, world: World, pos, runtime: RiskRuntime, clock: Clock
) -> None:
    # no usual amount yet (null): the comparison fails at run time
    _, (rule,) = scenario(db, [("big_vs_usual", "txn.amount_ratio > 3.0", 500)])
    reload(runtime)
    assert pay(pos, world, 1000)["39"] == "00"
    assert runtime.error_total == 1
    runtime.flush(force=True)
    db.expire_all()
    stored = db.get(Rule, rule.id)
    assert stored is not None and stored.error_count == 1
    assert "overload" in stored.last_error.lower() or stored.last_error


def test_an_edit_reaches_the_running_gateway(
    db: Session, world: World, pos, runtime: RiskRuntime, clock: Clock
) -> None:
    _, (rule,) = scenario(db, [("big", "txn.amount >= 5000", 200)])
    reload(runtime)
    assert pay(pos, world, 6000)["39"] == "59"
    actor = system_user(db)
    service.update_rule(
        session=db,
        actor=actor,
        rule_id=rule.id,
        name="big",
        expression="txn.amount >= 50000",
        score=200,
        note="too many false positives",
    )
    db.commit()
    reload(runtime)  # what one second does in a running gateway
    assert pay(pos, world, 6000)["39"] == "00"
    assert runtime.version >= 2


def test_rules_over_redis_aggregates(
    db: Session, world: World, pos, runtime: RiskRuntime, clock: Clock
) -> None:
    import uuid

    from cardops.risk.aggregates import RedisStore

    store = RedisStore("redis://127.0.0.1:6379/0", f"test:risk:{uuid.uuid4().hex}")
    runtime.store = store
    try:
        scenario(db, [("terminal_burst", "terminal.count_10m >= 2", 100, "65")])
        reload(runtime)
        assert pay(pos, world, 1000)["39"] == "00"
        assert pay(pos, world, 1000)["39"] == "00"
        assert pay(pos, world, 1000)["39"] == "65"
        # a second gateway process on the same Redis sees the same counts
        other = RiskRuntime(store=RedisStore("redis://127.0.0.1:6379/0", store.prefix))
        from cardops.risk.aggregates import Probe

        seen = other.store.features(Probe(clock(), None, world.tid, world.merchant.id, "", ""))
        assert seen["terminal__count_10m"] == 3 and seen["terminal__declines_10m"] == 1
    finally:
        store.clear()
