"""Every service desk permission: a user without it gets 403 on the API and the console, and
nothing changes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cardops.auth.service import has_permission
from cardops.servicedesk import service
from cardops.servicedesk.models import Ticket
from tests.factories import bearer, console, make_user

BODY = {
    "kind": "inquiry",
    "priority": "normal",
    "subject": "x",
    "contact": {"name": "a", "phone": "13800138000"},
}

# permission, a role that lacks it, API call (method, path, body) or None, console call
CASES: list[tuple[str, str, tuple[str, str, dict[str, Any] | None] | None, tuple[str, str]]] = [
    ("servicedesk.view", "front_desk_clerk", ("GET", "/api/v1/tickets", None), ("GET", "/tickets")),
    (
        "servicedesk.edit",
        "data_analyst",
        ("POST", "/api/v1/tickets", BODY),
        ("POST", "/tickets/new"),
    ),
    (
        "servicedesk.assign",
        "technician",
        ("POST", "/api/v1/tickets/{id}/assign", {"team_id": None}),
        ("POST", "/tickets/{id}/assign"),
    ),
    ("servicedesk.sla", "call_agent", None, ("POST", "/tickets/settings/holiday")),
    (
        "servicedesk.reports",
        "call_agent",
        ("GET", "/api/v1/servicedesk/report", None),
        ("GET", "/tickets/reports"),
    ),
]


@pytest.mark.parametrize(("permission", "role", "api", "page"), CASES, ids=[c[0] for c in CASES])
def test_without_the_permission_is_refused(
    app: FastAPI,
    client: TestClient,
    db: Session,
    monday: datetime,
    permission: str,
    role: str,
    api: tuple[str, str, dict[str, Any] | None] | None,
    page: tuple[str, str],
) -> None:
    agent = make_user(db, "call_agent")
    ticket = service.create_ticket(
        session=db,
        actor=agent,
        kind="fault",
        subject="x",
        contact_name="a",
        contact_phone="13800138000",
    )
    before = db.scalar(select(func.count(Ticket.id)))
    user = make_user(db, role)
    assert not has_permission(user, permission)
    if api is not None:
        method, path, body = api
        response = client.request(
            method, path.format(id=ticket.id), json=body, headers=bearer(db, user)
        )
        assert response.status_code == 403, (permission, response.text)
    method, path = page
    browser = console(app, db, role)
    url = path.format(id=ticket.id)
    form = {
        "day": "2026-12-01",
        "kind": "inquiry",
        "subject": "x",
        "contact_name": "a",
        "contact_phone": "13800138000",
    }
    response = browser.get(url) if method == "GET" else browser.post(url, form)
    assert response.status_code == 403, (permission, response.text[:300])
    assert db.scalar(select(func.count(Ticket.id))) == before
    assert service.holidays(db) == []
