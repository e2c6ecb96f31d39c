"""Suspending, reinstating and closing a merchant: who may, the reason in its history, and
closing refused while terminals are still installed."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from cardops.audit.models import AuditEntry
from cardops.auth.models import User
from cardops.core.errors import Conflict, InvalidTransition, PermissionDenied, ValidationFailed
from cardops.merchants import service
from cardops.merchants.models import Merchant
from cardops.terminals.models import TerminalState
from tests.factories import ConsoleClient, api_headers, bearer
from tests.merchants.conftest import World


def _actions(world: World, merchant_id: int) -> list[str]:
    return list(
        world.db.execute(
            select(AuditEntry.action)
            .where(AuditEntry.entity_type == "merchants", AuditEntry.entity_id == str(merchant_id))
            .order_by(AuditEntry.id)
        ).scalars()
    )


def _change(world: World, actor: User, merchant_id: int, action: str, reason: str) -> Merchant:
    return service.change_merchant_status(
        session=world.db, actor=actor, merchant_id=merchant_id, action=action, reason=reason
    )


def test_suspend_reinstate_close_with_reasons_in_the_history(world: World) -> None:
    merchant = world.approved_merchant()
    with pytest.raises(PermissionDenied):
        _change(world, world.specialist, merchant.id, "suspend", "x")
    with pytest.raises(ValidationFailed) as blank:
        _change(world, world.reviewer, merchant.id, "suspend", "  ")
    assert blank.value.field == "reason" and merchant.state == "approved"
    _change(world, world.reviewer, merchant.id, "suspend", "涉嫌套现，暂停交易")
    assert merchant.state == "suspended"
    # suspending again changes nothing; reinstating brings it back
    _change(world, world.reviewer, merchant.id, "suspend", "again")
    _change(world, world.reviewer, merchant.id, "reinstate", "核查无误")
    assert merchant.state == "approved"
    # an installed terminal blocks closing
    unit = world.unit()
    unit.state, unit.merchant_id = TerminalState.ACTIVATED.value, merchant.id
    world.db.flush()
    with pytest.raises(Conflict) as live:
        _change(world, world.reviewer, merchant.id, "close", "停业")
    assert live.value.params["count"] == 1 and merchant.state == "approved"
    unit.state, unit.merchant_id = TerminalState.AT_PROVIDER.value, None
    world.db.flush()
    _change(world, world.reviewer, merchant.id, "close", "停业")
    assert merchant.state == "closed"
    with pytest.raises(InvalidTransition):
        _change(world, world.reviewer, merchant.id, "reinstate", "x")
    history = _actions(world, merchant.id)
    assert history[-3:] == ["merchant.suspended", "merchant.reinstated", "merchant.closed"]


def test_api_and_console_suspend(app: FastAPI, client: TestClient, world: World) -> None:
    merchant = world.approved_merchant()
    world.db.commit()
    headers = bearer(world.db, world.reviewer)
    missing = client.post(f"/api/v1/merchants/{merchant.id}/suspend", json={}, headers=headers)
    assert missing.status_code == 422
    refused = client.post(
        f"/api/v1/merchants/{merchant.id}/suspend",
        json={"reason": "x"},
        headers=api_headers(world.db, "call_agent"),
    )
    assert refused.status_code == 403
    done = client.post(
        f"/api/v1/merchants/{merchant.id}/suspend", json={"reason": "风险"}, headers=headers
    )
    assert done.status_code == 200 and done.json()["state"] == "suspended"
    desk = ConsoleClient(app, world.db, world.reviewer)
    page = desk.get(f"/merchants/{merchant.id}")
    assert 'id="reinstate-merchant"' in page.text and 'id="suspend-merchant"' not in page.text
    blank = desk.post(f"/merchants/{merchant.id}/reinstate", {"reason": ""})
    assert blank.status_code == 422 and 'data-field="reason"' in blank.text
    back = desk.post(f"/merchants/{merchant.id}/reinstate", {"reason": "已整改"})
    assert back.status_code == 303
    world.db.expire_all()
    assert client.get(f"/api/v1/merchants/{merchant.id}", headers=headers).json()["state"] == (
        "approved"
    )
