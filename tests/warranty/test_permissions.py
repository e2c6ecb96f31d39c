"""Each warranty permission, taken away from an otherwise all-powerful role, is refused: the API
answers 403 and the console shows a 403 page, and nothing changes."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cardops.audit.models import AuditEntry
from cardops.auth import service as auth
from cardops.auth.permissions import PERMISSIONS
from cardops.warranty import service
from tests.factories import ConsoleClient, bearer, make_user
from tests.warranty.conftest import World, number, register, stocked


def _user_without(db: Session, permission: str) -> Any:
    system = auth.system_user(db)
    code = "all_but_" + permission.replace(".", "_")
    auth.create_role(session=db, actor=system, code=code, name_en=code, name_zh=code)
    auth.set_role_permissions(
        session=db,
        actor=system,
        role_code=code,
        permissions=[p for p in PERMISSIONS if p != permission],
    )
    return make_user(db, code)


def _received_return(db: Session, world: World) -> int:
    card = register(db, world, 11)
    item = service.create_return(
        session=db,
        actor=world.admin,
        data=service.ReturnInput(card_number=card.number, kind="return", reason="non_quality"),
    )
    service.accept(session=db, actor=world.admin, return_id=item.id)
    service.receive(session=db, actor=world.admin, return_id=item.id)
    return item.id


def _api_case(db: Session, world: World, permission: str) -> tuple[str, str, dict | None]:
    stocked(db, world)
    if permission == "warranty.view":
        return "GET", "/api/v1/service-card-ranges", None
    if permission == "warranty.manage":
        return "POST", "/api/v1/service-card-ranges", {"prefix": "PM", "start": 1, "count": 5}
    if permission == "warranty.issue":
        body = {"first": number(21), "last": number(25), "provider_id": world.dealer.id}
        return "POST", "/api/v1/service-card-issues", body
    if permission == "warranty.register":
        body = {
            "number": number(2),
            "model_id": world.model.id,
            "buyer_name": "周先生",
            "buyer_phone": "13600136000",
            "province": "四川",
            "price": 50000,
        }
        return "POST", "/api/v1/service-cards", body
    if permission == "warranty.returns":
        card = register(db, world, 3)
        body = {"card_number": card.number, "kind": "return", "reason": "non_quality"}
        return "POST", "/api/v1/returns", body
    assert permission == "warranty.settle"
    rid = _received_return(db, world)
    return "POST", f"/api/v1/returns/{rid}/complete", {"payment_method": "cash"}


def _console_case(db: Session, world: World, permission: str) -> tuple[str, str, dict | None]:
    stocked(db, world)
    if permission == "warranty.view":
        return "GET", "/warranty/ranges", None
    if permission == "warranty.manage":
        form = {"warranty_months": "12", "points_per_card": "5", "compensation_cap": "10"}
        return "POST", "/warranty/settings", {**form, "photo_hours": "24"}
    if permission == "warranty.issue":
        return "GET", "/warranty/issue", None
    if permission == "warranty.register":
        return "GET", "/warranty/cards/new", None
    if permission == "warranty.returns":
        return "GET", "/warranty/returns/new", None
    assert permission == "warranty.settle"
    rid = _received_return(db, world)
    return "POST", f"/warranty/returns/{rid}/complete", {"payment_method": "cash"}


WARRANTY_PERMISSIONS = sorted(p for p in PERMISSIONS if p.startswith("warranty."))


def _audit_count(db: Session) -> int:
    return db.execute(select(func.count()).select_from(AuditEntry)).scalar_one()


@pytest.mark.parametrize("permission", WARRANTY_PERMISSIONS)
def test_api_refuses_without_the_permission(
    client: TestClient, db: Session, world: World, permission: str
) -> None:
    method, path, body = _api_case(db, world, permission)
    headers = bearer(db, _user_without(db, permission))
    db.commit()
    audit = _audit_count(db)
    response = client.request(method, path, headers=headers, json=body)
    assert response.status_code == 403, response.text
    assert permission in response.json()["detail"]
    assert _audit_count(db) == audit
    allowed = client.request(method, path, headers=bearer(db, world.admin), json=body)
    assert allowed.status_code < 400, allowed.text


@pytest.mark.parametrize("permission", WARRANTY_PERMISSIONS)
def test_console_refuses_without_the_permission(
    app: FastAPI, db: Session, world: World, permission: str
) -> None:
    method, path, form = _console_case(db, world, permission)
    denied = ConsoleClient(app, db, _user_without(db, permission))
    page = denied.get(path) if method == "GET" else denied.post(path, form)
    assert page.status_code == 403
    admin = ConsoleClient(app, db, world.admin)
    ok = admin.get(path) if method == "GET" else admin.post(path, form)
    assert ok.status_code in (200, 303), ok.text[:500]


def test_every_warranty_permission_is_covered() -> None:
    assert WARRANTY_PERMISSIONS == [
        "warranty.issue",
        "warranty.manage",
        "warranty.register",
        "warranty.returns",
        "warranty.settle",
        "warranty.view",
    ]
