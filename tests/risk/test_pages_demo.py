"""Every risk console page renders for a risk officer (with the demo data loaded), and a
rating review through the console reaches the history."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session

from cardops.auth.service import system_user
from cardops.core.demo_loader import DemoContext
from cardops.risk import demo
from cardops.risk.models import Alert, Rule, Scenario
from tests.factories import console, field_error
from tests.gateway.conftest import make_merchant


def test_demo_data_and_every_page(app: FastAPI, db: Session) -> None:
    merchant = make_merchant(db)
    demo.load(db, DemoContext(password="x", admin=system_user(db)))
    db.flush()
    scenarios = list(db.execute(select(Scenario)).scalars())
    assert {s.code for s in scenarios} == {"velocity", "amount"}
    rule = db.execute(select(Rule).where(Rule.code == "new_card_big")).scalar_one()
    assert not rule.active  # the draft
    alert = db.execute(select(Alert)).scalars().first()
    assert alert is not None
    officer = console(app, db, "risk_officer")
    pages = {
        "/risk/alerts": "card_burst",
        "/risk/alerts?overdue=1": "card_burst",
        f"/risk/alerts/{alert.id}": "close-form",
        "/risk/rules": "big_vs_usual",
        f"/risk/rules/{rule.id}": "rule-versions",
        "/risk/rules/new": "field-list",
        "/risk/scenarios/new": "scenario-form",
        f"/risk/scenarios/{scenarios[0].id}": "scenario-form",
        "/risk/ratings": "rating-limits",
        f"/risk/ratings/{merchant.id}": "rating-history",
        f"/risk/backtest?scenario_id={scenarios[0].id}": "backtest-rules",
        "/risk/reports": "alerts-by-rule",
    }
    for url, marker in pages.items():
        page = officer.get(url)
        assert page.status_code == 200, (url, page.text[:500])
        assert marker in page.text, url
    bad = officer.post(f"/risk/ratings/{merchant.id}", {"rating": "E", "note": ""})
    assert bad.status_code == 422 and field_error(bad.text, "rating")
    done = officer.post(f"/risk/ratings/{merchant.id}", {"rating": "D", "note": "new shop"})
    assert done.status_code == 303
    history = officer.get(f"/risk/ratings/{merchant.id}")
    assert "new shop" in history.text
    bad_dates = officer.get(f"/risk/backtest?scenario_id={scenarios[0].id}&start=2026-13-01")
    assert bad_dates.status_code == 422
