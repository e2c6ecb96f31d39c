"""Console and API: transactions search with the chart, stop list with who and why, card
numbers and PINs, live operations, metrics."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from cardops.audit.models import AuditEntry
from cardops.gateway.models import StopEntry
from cardops.gateway.terminal import BlockingTerminal
from tests.factories import api_headers, console, field_error
from tests.gateway.conftest import PIN, Running, World


def test_transactions_search_by_masked_card_and_rrn(
    app: FastAPI, db: Session, world: World, pos: BlockingTerminal
) -> None:
    sale = pos.call(pos.session.purchase(world.pan, 1234, pin=PIN))
    pos.call(pos.session.purchase(world.pan, 10**6, pin=PIN))  # 51
    analyst = console(app, db, "data_analyst")
    page = analyst.get(f"/gateway/transactions?rrn={sale['37']}")
    assert page.status_code == 200
    assert sale["37"] in page.text and "12.34" in page.text and world.pan not in page.text
    assert "<svg" in page.text and "polyline" in page.text
    masked = world.pan[:6] + "******" + world.pan[-4:]
    both = analyst.get(f"/gateway/transactions?card={masked}")
    assert both.text.count(masked) >= 2
    declined = analyst.get(f"/gateway/transactions?card={world.pan}&result=declined")
    assert ">51<" in declined.text.replace(" ", "") or "51" in declined.text
    assert "12.34" not in declined.text
    bad = analyst.get("/gateway/transactions?day=notadate")
    assert bad.status_code == 200 and "YYYY-MM-DD" in bad.text


def test_stop_list_console_keeps_who_and_why(app: FastAPI, db: Session, world: World) -> None:
    officer = console(app, db, "risk_officer")
    wrong = officer.post("/gateway/stoplist", {"pan": "6212341234", "reason": "lost", "note": "x"})
    assert wrong.status_code == 422 and field_error(wrong.text, "pan")
    assert 'value="6212341234"' in wrong.text
    ok = officer.post(
        "/gateway/stoplist", {"pan": world.pan, "reason": "stolen", "note": "police report 17"}
    )
    assert ok.status_code == 303
    entry = db.execute(select(StopEntry)).scalars().one()
    assert entry.added_by_id == officer.user.id and entry.note == "police report 17"
    assert entry.pan_masked.endswith(world.pan[-4:]) and world.pan not in entry.pan_masked
    listing = officer.get("/gateway/stoplist")
    assert "police report 17" in listing.text and world.pan not in listing.text
    removed = officer.post(f"/gateway/stoplist/{entry.id}/remove", {"note": "card found"})
    assert removed.status_code == 303
    db.refresh(entry)
    assert not entry.active and entry.removal_note == "card found"
    actions = db.execute(select(AuditEntry.action).where(AuditEntry.action.like("gateway.%")))
    assert {"gateway.stop_added", "gateway.stop_removed"} <= set(actions.scalars())
    clerk = console(app, db, "front_desk_clerk")
    assert (
        clerk.post(
            "/gateway/stoplist", {"pan": world.pan, "reason": "lost", "note": "x"}
        ).status_code
        == 403
    )


def test_stop_list_api_and_pan_api(client: TestClient, db: Session, world: World) -> None:
    headers = api_headers(db, "risk_officer", "front_desk_clerk")
    created = client.post(
        "/api/v1/gateway/stoplist",
        json={"pan": world.pan, "reason": "counterfeit", "note": "skimmer found"},
        headers=headers,
    )
    assert created.status_code == 201 and created.json()["reason"] == "counterfeit"
    assert world.pan not in created.text
    again = client.post(
        "/api/v1/gateway/stoplist",
        json={"pan": world.pan, "reason": "lost", "note": "twice"},
        headers=headers,
    )
    assert again.status_code == 409
    pin = client.post(
        f"/api/v1/gateway/cards/{world.card.number}/pin", json={"pin": "1111"}, headers=headers
    )
    assert pin.status_code == 422
    assert (
        client.post(
            f"/api/v1/gateway/cards/{world.card.number}/pin",
            json={"pin": "135790"},
            headers=headers,
        ).status_code
        == 204
    )
    huge = client.post(
        "/api/v1/gateway/stoplist/99999999999/remove", json={"note": "x"}, headers=headers
    )
    assert huge.status_code == 422


def test_operations_page_and_metrics(
    app: FastAPI,
    client: TestClient,
    db: Session,
    world: World,
    gateway: Running,
    pos: BlockingTerminal,
) -> None:
    assert pos.call(pos.session.purchase(world.pan, 100, pin=PIN))["39"] == "00"
    gateway.engine.heartbeat()
    director = console(app, db, "operations_director")
    page = director.get("/gateway/operations")
    assert page.status_code == 200, page.text
    assert "test-node" in page.text and "00: 2" in page.text  # sign-on and purchase
    panel = director.get("/gateway/operations/panel")
    assert "test-node" in panel.text and "<html" not in panel.text.lower()[:200]
    text = client.get(
        "/api/v1/gateway/metrics", headers=api_headers(db, "operations_director")
    ).text
    assert 'cardops_gateway_requests_total{node="test-node",mti="0200",rc="00"} 1' in text
    assert 'cardops_gateway_latency_seconds_count{node="test-node",mti="0200"} 1' in text
    assert "cardops_gateway_upstream_up" in text and "cardops_gateway_saf_depth" in text
