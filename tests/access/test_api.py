"""The API contract: decisions, controller pulls and offline uploads."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cardops.access.events import flush_events
from cardops.access.models import AccessEvent, Controller, Property
from tests.access.conftest import make_card, set_state
from tests.factories import api_headers


def test_decision_contract(client: TestClient, db: Session, sunny: Property) -> None:
    make_card(db, sunny, "API-1", uid="04A1B2C3")
    headers = api_headers(db, "sysadmin")
    answer = client.post(
        "/api/v1/access/decisions", json={"card": "API-1", "door": "LOBBY-1"}, headers=headers
    )
    assert answer.status_code == 200
    assert answer.json()["allowed"] is True
    assert answer.json()["reason"] == "ok"
    by_uid = client.post(
        "/api/v1/access/decisions", json={"card": "04:a1:b2:c3", "door": "UNIT-2"}, headers=headers
    )
    assert (by_uid.json()["allowed"], by_uid.json()["reason"]) == (False, "door_not_in_group")
    # unknown card and door are decisions (200), not errors
    unknown = client.post(
        "/api/v1/access/decisions", json={"card": "NOPE", "door": "LOBBY-1"}, headers=headers
    )
    assert unknown.status_code == 200
    assert unknown.json() == {
        "allowed": False,
        "reason": "unknown_card",
        "card_id": None,
        "door_id": unknown.json()["door_id"],
    }
    no_door = client.post(
        "/api/v1/access/decisions", json={"card": "API-1", "door": "NOPE"}, headers=headers
    )
    assert (no_door.status_code, no_door.json()["reason"]) == (200, "unknown_door")


def test_every_attempt_is_logged(client: TestClient, db: Session, sunny: Property) -> None:
    card = make_card(db, sunny, "LOG-1")
    headers = api_headers(db, "sysadmin")
    for door in ("LOBBY-1", "UNIT-2", "NOPE"):
        client.post(
            "/api/v1/access/decisions", json={"card": "LOG-1", "door": door}, headers=headers
        )
    assert flush_events() == 3
    rows = (
        db.execute(
            select(AccessEvent).where(AccessEvent.presented == "LOG-1").order_by(AccessEvent.id)
        )
        .scalars()
        .all()
    )
    assert [(r.door_code, r.allowed, r.reason) for r in rows] == [
        ("LOBBY-1", True, "ok"),
        ("UNIT-2", False, "door_not_in_group"),
        ("NOPE", False, "unknown_door"),
    ]
    assert rows[0].card_id == card.id


def test_replayed_time_is_used(client: TestClient, db: Session, sunny: Property) -> None:
    make_card(
        db,
        sunny,
        "RENO-1",
        holder_kind="renovation",
        unit=None,
        grants=[("RENO", "DAYTIME")],
        valid_from=datetime(2026, 1, 1).date(),
        valid_until=datetime(2027, 1, 1).date(),
    )
    headers = api_headers(db, "sysadmin")
    body = {"card": "RENO-1", "door": "RENO-EAST"}
    night = client.post(
        "/api/v1/access/decisions",
        headers=headers,
        json={**body, "at": "2026-09-28T23:00:00+08:00"},
    )
    day = client.post(
        "/api/v1/access/decisions",
        headers=headers,
        json={**body, "at": "2026-09-28T09:00:00+08:00"},
    )
    local_naive = client.post(
        "/api/v1/access/decisions", headers=headers, json={**body, "at": "2026-09-28T09:00:00"}
    )
    assert night.json()["reason"] == "outside_schedule"
    assert day.json()["reason"] == "ok"
    assert local_naive.json()["reason"] == "ok"  # a controller's local time


def test_decisions_need_a_token_and_the_permission(
    client: TestClient, db: Session, sunny: Property
) -> None:
    body = {"card": "X", "door": "LOBBY-1"}
    assert client.post("/api/v1/access/decisions", json=body).status_code == 401
    clerk = api_headers(db, "front_desk_clerk")
    refused = client.post("/api/v1/access/decisions", json=body, headers=clerk)
    assert refused.status_code == 403
    assert refused.json()["code"] == "permission_denied"


def test_bad_input_is_422_not_500(client: TestClient, db: Session, sunny: Property) -> None:
    headers = api_headers(db, "sysadmin")
    for body in (
        {"card": "", "door": "LOBBY-1"},
        {"card": "x" * 65, "door": "LOBBY-1"},
        {"card": "A"},
        {"card": "A", "door": "LOBBY-1", "at": "yesterday"},
    ):
        assert (
            client.post("/api/v1/access/decisions", json=body, headers=headers).status_code == 422
        )
    assert (
        client.get(
            "/api/v1/access/controllers/CTRL-1/credentials?since=-1", headers=headers
        ).status_code
        == 422
    )
    assert (
        client.get("/api/v1/access/controllers/NOPE/credentials", headers=headers).status_code
        == 404
    )


def test_pull_full_then_only_changes(client: TestClient, db: Session, sunny: Property) -> None:
    headers = api_headers(db, "sysadmin")
    owner = make_card(db, sunny, "P-OWNER", uid="0A0B0C0D", wiegand=(5, 1234))
    make_card(
        db, sunny, "P-RENO", holder_kind="renovation", unit=None, grants=[("RENO", "DAYTIME")]
    )  # its door is on CTRL-GATE, not CTRL-1
    make_card(db, sunny, "P-B2", unit="2-101", grants=[("B2", "ALWAYS")])
    full = client.get("/api/v1/access/controllers/CTRL-1/credentials", headers=headers).json()
    assert full["full"] is True
    numbers = {c["card"] for c in full["credentials"]}
    assert numbers == {"P-OWNER", "P-B2"}
    owner_cred = next(c for c in full["credentials"] if c["card"] == "P-OWNER")
    assert owner_cred["uid"] == "0A0B0C0D"
    assert owner_cred["wiegand"] == "5:1234"
    assert owner_cred["active"] is True
    assert owner_cred["doors"] == [
        {"door": "LOBBY-1", "schedule": "ALWAYS"},
        {"door": "UNIT-1", "schedule": "ALWAYS"},
    ]
    assert full["schedules"]["ALWAYS"]["periods"][0] == {
        "weekday": 0,
        "start": "00:00",
        "end": "24:00",
    }
    version = full["version"]
    assert version > 0
    controller = db.execute(select(Controller).where(Controller.code == "CTRL-1")).scalar_one()
    assert controller.last_pulled_version == version
    assert controller.last_seen_at is not None

    nothing = client.get(
        f"/api/v1/access/controllers/CTRL-1/credentials?since={version}", headers=headers
    ).json()
    assert (nothing["full"], nothing["credentials"], nothing["version"]) == (False, [], version)

    set_state(db, owner, "lost")
    changes = client.get(
        f"/api/v1/access/controllers/CTRL-1/credentials?since={version}", headers=headers
    ).json()
    assert changes["full"] is False
    assert [(c["card"], c["active"], c["doors"]) for c in changes["credentials"]] == [
        ("P-OWNER", False, [])
    ]
    assert changes["removed"] == ["P-OWNER"]
    assert changes["version"] > version


def test_offline_upload_is_idempotent(client: TestClient, db: Session, sunny: Property) -> None:
    card = make_card(db, sunny, "OFF-1")
    headers = api_headers(db, "sysadmin")
    events = [
        {
            "external_id": "ev-1",
            "at": "2026-05-01T08:00:00+08:00",
            "card": "OFF-1",
            "door": "LOBBY-1",
            "allowed": True,
            "reason": "ok",
        },
        {
            "external_id": "ev-2",
            "at": "2026-05-01T08:05:00+08:00",
            "card": "GHOST",
            "door": "UNIT-1",
            "allowed": False,
            "reason": "unknown_card",
        },
    ]
    first = client.post(
        "/api/v1/access/controllers/CTRL-1/events", json={"events": events}, headers=headers
    )
    assert first.status_code == 200
    assert first.json() == {"accepted": 2, "duplicates": 0}
    again = client.post(
        "/api/v1/access/controllers/CTRL-1/events",
        json={"events": [*events, {**events[0], "external_id": "ev-3"}]},
        headers=headers,
    )
    assert again.json() == {"accepted": 1, "duplicates": 2}
    stored = (
        db.execute(
            select(AccessEvent).where(AccessEvent.source == "offline").order_by(AccessEvent.id)
        )
        .scalars()
        .all()
    )
    assert [e.external_id for e in stored] == ["ev-1", "ev-2", "ev-3"]
    assert stored[0].card_id == card.id
    assert stored[0].at == datetime(2026, 5, 1, 0, 0, tzinfo=UTC)
    bad = client.post(
        "/api/v1/access/controllers/CTRL-1/events",
        headers=headers,
        json={"events": [{**events[0], "external_id": "ev-9", "reason": "because"}]},
    )
    assert bad.status_code == 422
    count = db.execute(
        select(func.count()).select_from(AccessEvent).where(AccessEvent.external_id == "ev-9")
    ).scalar_one()
    assert count == 0


def test_topology_api(client: TestClient, db: Session, sunny: Property) -> None:
    headers = api_headers(db, "sysadmin")
    tree = client.get("/api/v1/access/properties/SUNNY", headers=headers).json()
    assert [b["code"] for b in tree["buildings"]] == ["1", "2"]
    assert {d["code"] for d in tree["doors"]} >= {"LOBBY-1", "GARAGE-IN", "RENO-EAST"}
    created = client.post(
        "/api/v1/access/properties/SUNNY/doors",
        headers=headers,
        json={
            "code": "LOBBY-3",
            "name": "Lobby 3",
            "kind": "lobby",
            "building": "1",
            "controller": "CTRL-1",
        },
    )
    assert created.status_code == 201
    assert created.json()["building"] == "1"
    dup = client.post(
        "/api/v1/access/properties/SUNNY/doors",
        headers=headers,
        json={"code": "LOBBY-3", "name": "Lobby 3", "kind": "lobby"},
    )
    assert dup.status_code == 409
    patched = client.patch(
        "/api/v1/access/doors/LOBBY-3", headers=headers, json={"is_active": False}
    )
    assert patched.json()["is_active"] is False
    schedule = client.post(
        "/api/v1/access/properties/SUNNY/schedules",
        headers=headers,
        json={
            "code": "NIGHT",
            "name": "Night",
            "periods": [{"weekday": 0, "start": "22:00", "end": "24:00"}],
        },
    )
    assert schedule.status_code == 201
    bad = client.post(
        "/api/v1/access/properties/SUNNY/schedules",
        headers=headers,
        json={
            "code": "BAD",
            "name": "Bad",
            "periods": [{"weekday": 0, "start": "18:00", "end": "08:00"}],
        },
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "periods"
