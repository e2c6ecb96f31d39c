"""Each risk permission, taken away from an otherwise all-powerful role, is refused: the API
answers 403 and the console shows a 403 page."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from cardops.auth import service as auth
from cardops.auth.permissions import PERMISSIONS
from tests.factories import ConsoleClient, bearer, make_user

API_CASES: dict[str, tuple[str, str, dict[str, Any] | None]] = {
    "risk.view": ("GET", "/api/v1/risk/alerts", None),
    "risk.rules": (
        "POST",
        "/api/v1/risk/scenarios",
        {"code": "perm_matrix", "name": "Matrix"},
    ),
    "risk.ratings": (
        "PUT",
        "/api/v1/risk/rating-limits/B",
        {"single_limit": 100, "daily_limit": 1000, "monthly_limit": 10000},
    ),
}
CONSOLE_CASES: dict[str, str] = {
    "risk.view": "/risk/alerts",
    "risk.rules": "/risk/rules/new",
}


_roles = iter(range(1, 10_000))


def _user_without(db: Session, permission: str) -> Any:
    system = auth.system_user(db)
    code = f"risk_all_but_{permission.replace('.', '_')}_{next(_roles)}"
    auth.create_role(session=db, actor=system, code=code, name_en=code, name_zh=code)
    auth.set_role_permissions(
        session=db,
        actor=system,
        role_code=code,
        permissions=[p for p in PERMISSIONS if p != permission],
    )
    return make_user(db, code)


@pytest.mark.parametrize("permission", sorted(API_CASES))
def test_api_refuses_without_the_permission(
    client: TestClient, db: Session, permission: str
) -> None:
    method, path, body = API_CASES[permission]
    response = client.request(
        method, path, headers=bearer(db, _user_without(db, permission)), json=body
    )
    assert response.status_code == 403, response.text
    assert permission in response.json()["detail"]
    allowed = client.request(
        method, path, headers=bearer(db, make_user(db, "risk_officer")), json=body
    )
    assert allowed.status_code < 400, allowed.text


@pytest.mark.parametrize("permission", sorted(CONSOLE_CASES))
def test_console_refuses_without_the_permission(app: FastAPI, db: Session, permission: str) -> None:
    page = ConsoleClient(app, db, _user_without(db, permission)).get(CONSOLE_CASES[permission])
    assert page.status_code == 403
    officer = ConsoleClient(app, db, make_user(db, "risk_officer")).get(CONSOLE_CASES[permission])
    assert officer.status_code == 200


def test_alert_and_suspend_permissions(app: FastAPI, client: TestClient, db: Session) -> None:
    from cardops.core.clock import utcnow
    from cardops.risk.models import Alert
    from tests.gateway.conftest import make_merchant

    merchant = make_merchant(db)
    alert = Alert(
        decision="review",
        score=60,
        rules=[],
        kind="purchase",
        tid="T",
        mid=merchant.mid or "",
        merchant_id=merchant.id,
        amount=100,
        state="open",
        created_at=utcnow(),
        due_at=utcnow(),
    )
    db.add(alert)
    db.flush()
    # risk.alerts: API and console
    headers = bearer(db, _user_without(db, "risk.alerts"))
    assert client.post(f"/api/v1/risk/alerts/{alert.id}/take", headers=headers).status_code == 403
    page = ConsoleClient(app, db, _user_without(db, "risk.alerts")).post(
        f"/risk/alerts/{alert.id}/take"
    )
    assert page.status_code == 403
    # risk.suspend: closing with a suspension is refused, nothing changes
    headers = bearer(db, _user_without(db, "risk.suspend"))
    refused = client.post(
        f"/api/v1/risk/alerts/{alert.id}/close",
        headers=headers,
        json={"outcome": "merchant_suspended", "note": "laundering"},
    )
    assert refused.status_code == 403 and "risk.suspend" in refused.json()["detail"]
    db.expire_all()
    assert db.get(Alert, alert.id).state == "open"  # type: ignore[union-attr]
    page = ConsoleClient(app, db, _user_without(db, "risk.suspend")).post(
        f"/risk/alerts/{alert.id}/close", {"outcome": "merchant_suspended", "note": "x"}
    )
    assert page.status_code == 403
    done = client.post(
        f"/api/v1/risk/alerts/{alert.id}/close",
        headers=bearer(db, make_user(db, "operations_director")),
        json={"outcome": "merchant_suspended", "note": "laundering"},
    )
    assert done.status_code == 200, done.text
    assert done.json()["outcome"] == "merchant_suspended"


def test_every_risk_permission_is_covered() -> None:
    risk = {p for p in PERMISSIONS if p.startswith("risk.")}
    assert risk == set(API_CASES) | {"risk.alerts", "risk.suspend"}
