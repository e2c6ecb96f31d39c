"""Alerts worked to closure (stop-list the card, suspend the merchant in one action, SLA),
merchant ratings with limits enforced by the gateway at once, bad input refused with the
running configuration unchanged, aggregates rebuilt after a restart."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cardops.audit.models import AuditEntry
from cardops.auth.service import system_user
from cardops.core.clock import freeze, utcnow
from cardops.core.errors import Conflict, ValidationFailed
from cardops.gateway.models import StopEntry
from cardops.merchants.models import Merchant
from cardops.risk import service
from cardops.risk.aggregates import MemoryStore, Probe
from cardops.risk.models import Alert, RatingReview, Rule, RuleVersion
from cardops.risk.runtime import RiskConfig, RiskRuntime, rebuild
from tests.factories import make_user
from tests.risk.conftest import Clock, World, pay, reload, scenario


def _review_alert(db: Session, world: World, pos, runtime: RiskRuntime) -> Alert:  # type: ignore[no-untyped-def]
    scenario(db, [("big", "txn.amount >= 5000", 60)])
    reload(runtime)
    assert pay(pos, world, 6000)["39"] == "00"  # review: let through
    db.expire_all()
    return db.execute(select(Alert)).scalar_one()


def test_confirmed_fraud_stop_lists_the_card_and_suspends_the_merchant(
    db: Session, world: World, pos, runtime: RiskRuntime, gateway
) -> None:
    alert = _review_alert(db, world, pos, runtime)
    officer = make_user(db, "risk_officer")
    service.take_alert(session=db, actor=officer, alert_id=alert.id)
    service.add_note(session=db, actor=officer, alert_id=alert.id, text="cardholder denies it")
    with pytest.raises(ValidationFailed) as bad:
        service.close_alert(session=db, actor=officer, alert_id=alert.id, outcome="guess")
    assert bad.value.field == "outcome"
    service.close_alert(
        session=db,
        actor=officer,
        alert_id=alert.id,
        outcome="fraud_confirmed",
        note="cloned card used at night",
        stop_card=True,
        suspend_merchant=True,
    )
    db.commit()
    assert alert.state == "closed" and alert.outcome == "fraud_confirmed"
    stop = db.execute(select(StopEntry).where(StopEntry.pan_hash == alert.pan_hash)).scalar_one()
    assert stop.active and stop.pan_masked == alert.pan_masked
    assert db.get(Merchant, world.merchant.id).state == "suspended"  # type: ignore[union-attr]
    codes = [e.code for e in service.alert_events(session=db, actor=officer, alert_id=alert.id)]
    assert codes == ["taken", "note", "card_stoplisted", "merchant_suspended", "closed"]
    actions = set(db.execute(select(AuditEntry.action)).scalars())
    assert {"risk.alert_closed", "gateway.stop_added", "merchant.suspended"} <= actions
    with pytest.raises(Conflict):  # closed: reopen first
        service.take_alert(session=db, actor=officer, alert_id=alert.id)
    # the gateway now refuses the card (stop list refreshed from its version)
    gateway.engine.stoplist_checked = 0.0
    assert pay(pos, world, 100)["39"] in ("59", "03")


def test_first_look_sla(db: Session, world: World, pos, runtime: RiskRuntime) -> None:
    alert = _review_alert(db, world, pos, runtime)
    assert not service.is_overdue(alert)
    later = utcnow() + timedelta(minutes=31)
    assert service.is_overdue(alert, later)
    freeze(later)
    try:
        officer = make_user(db, "risk_officer")
        queue = service.list_alerts(
            session=db, actor=officer, filters=service.AlertFilter(overdue=True)
        )
        assert [a.id for a in queue] == [alert.id]
        service.take_alert(session=db, actor=officer, alert_id=alert.id)
        assert service.is_overdue(alert)  # looked at, but late: stays counted as a breach
    finally:
        freeze(None)


def test_rating_limits_are_enforced_at_once(
    db: Session, world: World, pos, runtime: RiskRuntime
) -> None:
    actor = system_user(db)
    for rating, limits in (("C", ("50", "80", "1000")), ("A", ("", "", ""))):
        service.set_rating_limit(
            session=db,
            actor=actor,
            rating=rating,
            single_limit=limits[0],
            daily_limit=limits[1],
            monthly_limit=limits[2],
        )
    service.rate_merchant(session=db, actor=actor, merchant_id=world.merchant.id, rating="C")
    db.commit()
    reload(runtime)
    assert pay(pos, world, 5001)["39"] == "61"  # single limit 50.00 yuan
    assert pay(pos, world, 5000)["39"] == "00"
    assert pay(pos, world, 3000)["39"] == "00"  # 80.00 today
    assert pay(pos, world, 1)["39"] == "61"  # daily limit reached
    with pytest.raises(ValidationFailed):
        service.rate_merchant(
            session=db, actor=actor, merchant_id=world.merchant.id, rating="A"
        )  # a change needs a reason
    service.rate_merchant(
        session=db, actor=actor, merchant_id=world.merchant.id, rating="A", note="reviewed"
    )
    db.commit()
    reload(runtime)
    assert pay(pos, world, 9000)["39"] == "00"
    history = db.execute(
        select(RatingReview.rating_from, RatingReview.rating_to).order_by(RatingReview.id)
    ).all()
    assert [tuple(h) for h in history] == [("", "C"), ("C", "A")]


def test_bad_input_is_refused_and_the_running_rules_stay(
    db: Session, world: World, pos, runtime: RiskRuntime
) -> None:
    actor = system_user(db)
    made, (rule,) = scenario(db, [("big", "txn.amount >= 5000", 200)])
    reload(runtime)
    version = runtime.version
    with pytest.raises(ValidationFailed) as bad:
        service.update_rule(
            session=db,
            actor=actor,
            rule_id=rule.id,
            name="big",
            expression="txn.amount >= 5000 && card.nope > 1",
            score=200,
        )
    assert bad.value.field == "expression"
    db.rollback()
    with pytest.raises(ValidationFailed) as bad:
        service.update_scenario(
            session=db,
            actor=actor,
            scenario_id=made.id,
            name="x",
            kinds=["purchase"],
            review_threshold=100,
            decline_threshold=50,
            decline_code="59",
            active=True,
        )
    assert bad.value.field == "decline_threshold"
    with pytest.raises(ValidationFailed) as bad:
        service.set_rating_limit(
            session=db,
            actor=actor,
            rating="B",
            single_limit="-1",
            daily_limit="",
            monthly_limit="",
        )
    assert bad.value.field == "single_limit"
    db.rollback()
    reload(runtime)
    assert runtime.version == version
    assert db.get(Rule, rule.id).version == 1  # type: ignore[union-attr]
    assert pay(pos, world, 6000)["39"] == "59"  # the old rule still runs
    service.update_rule(
        session=db,
        actor=actor,
        rule_id=rule.id,
        name="big",
        expression="txn.amount >= 7000",
        score=200,
        note="raise",
    )
    db.commit()
    versions = service.rule_versions(session=db, actor=actor, rule_id=rule.id)
    assert [(v.version, v.expression) for v in versions] == [
        (2, "txn.amount >= 7000"),
        (1, "txn.amount >= 5000"),
    ]
    assert db.execute(select(RuleVersion).where(RuleVersion.rule_id == rule.id)).all()


def test_aggregates_survive_a_restart(
    db: Session, world: World, pos, runtime: RiskRuntime, gateway
) -> None:
    for amount in (1000, 2000, 3000):
        assert pay(pos, world, amount)["39"] == "00"
    card = runtime.store
    assert isinstance(card, MemoryStore)
    import time

    probe = Probe(time.time(), None, world.tid, world.merchant.id, "", "")
    before = card.features(probe)
    fresh = RiskRuntime(
        store=MemoryStore(), config=RiskConfig(redis_url=""), sessions=gateway.engine.sessions
    )
    counts = rebuild(fresh, db)
    assert counts["requests"] >= 3
    after = fresh.store.features(probe)
    assert after["terminal__count_1h"] == before["terminal__count_1h"] == 3
    assert after["merchant__sum_24h"] == 6000


def test_decline_thresholds_with_clock(
    db: Session, world: World, pos, runtime: RiskRuntime, clock: Clock
) -> None:
    scenario(db, [("pin", "card.pin_failures_1h >= 1", 100)], code="59")
    reload(runtime)
    assert pay(pos, world, 100, pin="000000")["39"] == "55"
    assert pay(pos, world, 100)["39"] == "59"  # a wrong PIN in the last hour
    clock.advance(3601)
    assert pay(pos, world, 100)["39"] == "00"
