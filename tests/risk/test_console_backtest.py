"""The console: a rule with an unknown field is refused with a caret under it and nothing
saved; backtest over the journal with per-rule counts and known outcomes; reports."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cardops.auth.service import system_user
from cardops.core.clock import local, utcnow
from cardops.risk import service
from cardops.risk.models import Alert, Rule
from cardops.risk.runtime import RiskRuntime
from tests.factories import api_headers, console, field_error
from tests.risk.conftest import World, pay, reload, scenario


def test_rule_form_shows_the_error_position_and_saves_nothing(app: FastAPI, db: Session) -> None:
    made, _ = scenario(db, [])
    officer = console(app, db, "risk_officer")
    page = officer.post(
        "/risk/rules/new",
        {
            "scenario_id": str(made.id),
            "code": "night",
            "name": "Night",
            "expression": "txn.hour < 6 &&\ncard.cnt_10m > 2",
            "score": "30",
            "active": "1",
        },
    )
    assert page.status_code == 422
    message = field_error(page.text, "expression")
    assert message and "card.cnt_10m" in message and "第 2 行第 1 列" in message
    assert 'id="expression-caret"' in page.text
    assert db.execute(select(func.count(Rule.id))).scalar_one() == 0
    saved = officer.post(
        "/risk/rules/new",
        {
            "scenario_id": str(made.id),
            "code": "night",
            "name": "Night",
            "expression": "txn.hour < 6 && card.count_10m > 2",
            "score": "30",
            "active": "1",
        },
    )
    assert saved.status_code == 303, saved.text
    rule = db.execute(select(Rule)).scalar_one()
    assert rule.version == 1 and rule.active
    listing = officer.get("/risk/rules")
    assert "night" in listing.text and listing.status_code == 200
    # a threshold out of order is refused next to its field
    bad = officer.post(
        f"/risk/scenarios/{made.id}",
        {
            "name": "V",
            "kinds": "purchase",
            "review_threshold": "90",
            "decline_threshold": "80",
            "decline_code": "59",
        },
    )
    assert bad.status_code == 422 and field_error(bad.text, "decline_threshold")
    # a negative limit is refused
    limit = officer.post(
        "/risk/limits/B", {"single_limit": "-5", "daily_limit": "", "monthly_limit": ""}
    )
    assert limit.status_code == 422 and field_error(limit.text, "single_limit")


def test_alert_pages_and_reports(
    app: FastAPI, client: TestClient, db: Session, world: World, pos, runtime: RiskRuntime
) -> None:
    scenario(db, [("big", "txn.amount >= 5000", 60)])
    reload(runtime)
    assert pay(pos, world, 6000)["39"] == "00"
    assert pay(pos, world, 100, pin="111111")["39"] == "55"
    db.expire_all()
    alert = db.execute(select(Alert)).scalar_one()
    officer = console(app, db, "risk_officer")
    queue = officer.get("/risk/alerts")
    assert queue.status_code == 200 and f"/risk/alerts/{alert.id}" in queue.text
    page = officer.get(f"/risk/alerts/{alert.id}")
    assert page.status_code == 200 and "big" in page.text and "00" in page.text
    bad = officer.post(f"/risk/alerts/{alert.id}/close", {"outcome": "", "note": ""})
    assert bad.status_code == 422 and field_error(bad.text, "outcome")
    done = officer.post(
        f"/risk/alerts/{alert.id}/close", {"outcome": "false_positive", "note": "regular buyer"}
    )
    assert done.status_code == 303
    headers = api_headers(db, "operations_director")
    today = local(utcnow()).date()
    report = client.get(
        f"/api/v1/risk/report?start={today - timedelta(days=1)}&end={today}", headers=headers
    ).json()
    assert report["alerts_by_rule"] == [["big", {"false_positive": 1}, 1]]
    assert ["55", 1] in report["declines_by_reason"]
    assert report["alerts_per_day"][-1] == 1
    html = officer.get("/risk/reports")
    assert html.status_code == 200 and "<svg" in html.text


def test_backtest_counts_rules_and_known_outcomes(
    db: Session, world: World, pos, runtime: RiskRuntime
) -> None:
    live, _ = scenario(db, [("big", "txn.amount >= 5000", 60)], name="live")
    reload(runtime)
    for amount in (100, 6000, 7000, 200):
        assert pay(pos, world, amount)["39"] == "00"
    db.expire_all()
    actor = system_user(db)
    first = db.execute(select(Alert).order_by(Alert.id)).scalars().first()
    assert first is not None
    service.close_alert(
        session=db, actor=actor, alert_id=first.id, outcome="fraud_confirmed", note="confirmed"
    )
    made = service.create_scenario(session=db, actor=actor, code="trial", name="Trial")
    service.create_rule(
        session=db,
        actor=actor,
        scenario_id=made.id,
        code="trial_big",
        name="Big",
        expression="txn.amount >= 6500",
        score=60,
        active=False,
    )
    service.create_rule(
        session=db,
        actor=actor,
        scenario_id=made.id,
        code="trial_repeat",
        name="Repeat",
        expression="card.count_24h >= 1",
        score=60,
    )
    db.commit()
    today = local(utcnow()).date()
    result = service.backtest(session=db, actor=actor, scenario_id=live.id, start=today, end=today)
    assert result.requests == 4
    (big,) = result.rules
    assert big.fired == 2 and big.outcomes == {"fraud_confirmed": 1}
    trial = service.backtest(session=db, actor=actor, scenario_id=made.id, start=today, end=today)
    fired = {r.code: r.fired for r in trial.rules}
    assert fired == {"trial_big": 1, "trial_repeat": 3}  # draft included; first use has no history
    assert trial.decisions == {"approve": 1, "review": 2, "decline": 1}
    active_only = service.backtest(
        session=db,
        actor=actor,
        scenario_id=made.id,
        start=today,
        end=today,
        include_inactive=False,
    )
    assert [r.code for r in active_only.rules] == ["trial_repeat"]
