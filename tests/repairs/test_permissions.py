"""Each repairs permission, taken away from an otherwise all-powerful role, is refused: the API
answers 403 and the console shows a 403 page, and nothing changes."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from cardops.auth import service as auth
from cardops.auth.permissions import PERMISSIONS
from cardops.repairs import service
from cardops.terminals.models import TerminalState
from tests.factories import ConsoleClient, bearer, make_user
from tests.repairs.conftest import World


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


def _case(w: World, state: str = "received") -> Any:
    unit = w.unit(TerminalState.AT_PROVIDER)
    case = service.intake(
        session=w.db,
        actor=w.after_sales,
        serial=unit.serial,
        fault_code="screen",
        fault_description="黑屏",
        brought_by_name="张三",
    )
    if state == "inspected":
        service.inspect(
            session=w.db,
            actor=w.technician,
            case_id=case.id,
            findings="x",
            fault_code="screen",
            under_warranty=True,
        )
    return case


# permission -> (method, path template, JSON body, case state needed)
API_CASES: dict[str, tuple[str, str, dict[str, Any] | None, str]] = {
    "repairs.view": ("GET", "/api/v1/repairs/{case}", None, "received"),
    "repairs.intake": (
        "POST",
        "/api/v1/repairs",
        {
            "serial": "{serial}",
            "fault_code": "screen",
            "fault_description": "x",
            "brought_by_name": "y",
        },
        "received",
    ),
    "repairs.inspect": (
        "POST",
        "/api/v1/repairs/{case}/inspect",
        {"findings": "x", "fault_code": "screen", "under_warranty": True},
        "received",
    ),
    "repairs.manage": ("POST", "/api/v1/repairs/{case}/decide", {"route": "in_house"}, "inspected"),
    "repairs.rma": ("POST", "/api/v1/rma-batches/{batch}/receive", {}, "received"),
    "repairs.visits": (
        "POST",
        "/api/v1/visits",
        {"mode": "on_call", "customer_name": "客户"},
        "received",
    ),
}
CONSOLE_CASES: dict[str, str] = {
    "repairs.view": "/repairs",
    "repairs.intake": "/repairs/new",
    "repairs.visits": "/visits/new",
    "repairs.checklist": "/visits/checklist",
}


def _fill(value: Any, mapping: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**mapping)
    if isinstance(value, dict):
        return {k: _fill(v, mapping) for k, v in value.items()}
    return value


@pytest.mark.parametrize("permission", sorted(API_CASES))
def test_api_refuses_without_the_permission(
    client: TestClient, db: Session, world: World, permission: str
) -> None:
    method, path, body, state = API_CASES[permission]
    case = _case(world, state)
    batch = service.open_batch_for(db, world.after_sales, world.supplier.id)
    mapping = {
        "case": str(case.id),
        "batch": str(batch.id),
        "serial": world.unit(TerminalState.AT_PROVIDER).serial,
    }
    if permission == "repairs.rma":  # a sent batch to receive
        service.inspect(
            session=db,
            actor=world.technician,
            case_id=case.id,
            findings="x",
            fault_code="screen",
            under_warranty=True,
        )
        service.decide(session=db, actor=world.after_sales, case_id=case.id, route="factory")
        service.send_batch(
            session=db, actor=world.warehouse, batch_id=batch.id, carrier="SF", tracking_number="1"
        )
    url, payload = _fill(path, mapping), _fill(body, mapping)
    before = case.state
    response = client.request(
        method, url, headers=bearer(db, _user_without(db, permission)), json=payload
    )
    assert response.status_code == 403, response.text
    assert permission in response.json()["detail"]
    db.expire_all()
    assert case.state == before
    allowed = client.request(
        method, url, headers=bearer(db, make_user(db, "sysadmin")), json=payload
    )
    assert allowed.status_code < 400, allowed.text


@pytest.mark.parametrize("permission", sorted(CONSOLE_CASES))
def test_console_refuses_without_the_permission(app: FastAPI, db: Session, permission: str) -> None:
    page = ConsoleClient(app, db, _user_without(db, permission)).get(CONSOLE_CASES[permission])
    assert page.status_code == 403
    admin = ConsoleClient(app, db, make_user(db, "sysadmin")).get(CONSOLE_CASES[permission])
    assert admin.status_code == 200


def test_console_step_refused_without_the_permission(app: FastAPI, world: World) -> None:
    case = _case(world)
    agent = ConsoleClient(app, world.db, world.agent)  # may view, may not inspect
    assert agent.get(f"/repairs/{case.id}").status_code == 200
    refused = agent.post(
        f"/repairs/{case.id}/inspect",
        {"findings": "x", "fault_code": "screen", "under_warranty": "yes"},
    )
    assert refused.status_code == 403
    world.db.expire_all()
    assert case.state == "received"


def test_every_repairs_permission_is_covered() -> None:
    mine = {p for p in PERMISSIONS if p.startswith("repairs.")}
    assert mine == set(API_CASES) | set(CONSOLE_CASES)
