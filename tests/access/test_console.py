"""Console pages: permissions, forms that keep what was typed on errors, the access log."""

from __future__ import annotations

from fastapi import FastAPI
from sqlalchemy.orm import Session

from cardops.access import service
from cardops.access.engine import decide
from cardops.access.events import event_log, flush_events
from cardops.access.models import Property
from tests.access.conftest import make_card
from tests.factories import console, field_error


def test_pages_render_for_the_front_desk(app: FastAPI, db: Session, sunny: Property) -> None:
    clerk = console(app, db, "front_desk_clerk")
    tree = clerk.get(f"/access/properties/{sunny.id}")
    assert tree.status_code == 200
    assert 'data-unit="1-101"' in tree.text and 'data-door="GARAGE-IN"' in tree.text
    for url in (
        "/access/properties",
        "/access/doors",
        "/access/groups",
        "/access/schedules",
        "/access/log",
    ):
        page = clerk.get(url)
        assert page.status_code == 200, url
    assert "RENO-EAST" in clerk.get("/access/groups").text
    assert "DAYTIME" in clerk.get("/access/schedules").text
    # the front desk sees but does not edit the topology
    assert 'id="door-form"' not in clerk.get("/access/doors").text


def test_console_refuses_without_permission(app: FastAPI, db: Session, sunny: Property) -> None:
    picker = console(app, db, "picker")
    for url in ("/access/properties", "/access/doors", "/access/log", "/access/door-codes"):
        assert picker.get(url).status_code == 403, url
    clerk = console(app, db, "front_desk_clerk")
    refused = clerk.post(
        "/access/doors", {"property": "SUNNY", "code": "X-1", "name": "X", "kind": "lobby"}
    )
    assert refused.status_code == 403
    assert service.find_door(db, "X-1") is None


def test_door_form_errors_keep_the_typed_values(app: FastAPI, db: Session, sunny: Property) -> None:
    manager = console(app, db, "department_manager")
    bad = manager.post(
        "/access/doors",
        {"property": "SUNNY", "code": "LOBBY-1", "name": "Duplicate lobby", "kind": "lobby"},
    )
    assert bad.status_code == 409
    assert field_error(bad.text, "code")
    assert 'value="Duplicate lobby"' in bad.text
    no_kind = manager.post(
        "/access/doors", {"property": "SUNNY", "code": "NEW-1", "name": "New door", "kind": ""}
    )
    assert no_kind.status_code == 422
    assert field_error(no_kind.text, "kind")
    assert service.find_door(db, "NEW-1") is None
    ok = manager.post(
        "/access/doors",
        {
            "property": "SUNNY",
            "code": "NEW-1",
            "name": "New door",
            "kind": "unit_door",
            "is_active": "1",
        },
    )
    assert ok.status_code == 303
    assert service.find_door(db, "NEW-1") is not None


def test_schedule_form(app: FastAPI, db: Session, sunny: Property) -> None:
    manager = console(app, db, "department_manager")
    bad = manager.post(
        "/access/schedules",
        {
            "property": "SUNNY",
            "code": "EVE",
            "name": "Evening",
            "holiday_mode": "deny",
            "periods": "0-4 18:00-08:00",
        },
    )
    assert bad.status_code == 422
    assert field_error(bad.text, "periods")
    assert "18:00-08:00" in bad.text
    assert service.find_schedule(db, sunny.id, "EVE") is None
    ok = manager.post(
        "/access/schedules",
        {
            "property": "SUNNY",
            "code": "EVE",
            "name": "Evening",
            "holiday_mode": "deny",
            "periods": "0-4 18:00-22:00",
        },
    )
    assert ok.status_code == 303
    schedule = service.find_schedule(db, sunny.id, "EVE")
    assert schedule is not None
    assert [(p.weekday, p.start_minute, p.end_minute) for p in schedule.periods] == [
        (d, 1080, 1320) for d in range(5)
    ]


def test_access_log_search_and_per_card_view(app: FastAPI, db: Session, sunny: Property) -> None:
    card = make_card(db, sunny, "LOGC-1")
    for door in ("LOBBY-1", "UNIT-2"):
        decision = decide("LOGC-1", door)
        event_log.add(
            at=service.utcnow(),
            presented="LOGC-1",
            door_code=door,
            allowed=decision.allowed,
            reason=decision.reason,
            card_id=card.id,
            door_id=decision.door_id,
        )
    flush_events()
    clerk = console(app, db, "front_desk_clerk")
    denied = clerk.get("/access/log?card=LOGC-1&allowed=0")
    assert denied.status_code == 200
    assert "UNIT-2" in denied.text and "door_not_in_group" in denied.text
    assert "LOBBY-1</a>" not in denied.text
    per_card = clerk.get("/access/log/cards/LOGC-1", follow_redirects=True)
    assert per_card.status_code == 200 and "LOBBY-1" in per_card.text
    door = service.get_door(db, "UNIT-2")
    assert "door_not_in_group" in clerk.get(f"/access/doors/{door.id}").text


def test_card_grants_page(app: FastAPI, db: Session, sunny: Property) -> None:
    card = make_card(db, sunny, "GR-1", holder_kind="tenant", grants=[("B1", "ALWAYS")])
    clerk = console(app, db, "front_desk_clerk")
    page = clerk.get("/access/cards/GR-1/grants")
    assert page.status_code == 200 and 'data-group="B1"' in page.text
    b2 = service.find_group(db, sunny.id, "B2")
    assert b2 is not None
    refused = clerk.post("/access/cards/GR-1/grants", {"action": "grant", "group": str(b2.id)})
    assert refused.status_code == 422
    assert field_error(refused.text, "group")
    assert [g.code for _, g, _ in service.grant_rows(db, card)] == ["B1"]
