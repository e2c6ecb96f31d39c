"""The demo data: a card of every holder kind, and var/lab.json cases the decision API confirms."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from cardops.access import demo as access_demo
from cardops.approvals.demo import install_defaults
from cardops.auth.permissions import DEFAULT_ROLES
from cardops.cards import demo
from cardops.cards.models import Card, HolderKind
from cardops.core.config import get_settings
from cardops.core.demo_loader import DemoContext
from tests.factories import bearer, make_user


def test_demo_cards_and_lab_cases_match_the_decision_api(client: TestClient, db: Session) -> None:
    admin = make_user(db, *DEFAULT_ROLES)
    ctx = DemoContext(password="x", admin=admin)
    for role in ("front_desk_clerk", "department_manager", "cs_supervisor"):
        ctx.users[role] = make_user(db, role)
    install_defaults(db, admin)
    access_demo.load(db, ctx)
    lab_path = get_settings().var_dir / "lab.json"
    lab_path.write_text(json.dumps({"other": 1}))
    demo.load(db, ctx)
    db.commit()
    kinds = set(db.execute(select(Card.holder_kind).where(Card.holder_kind.is_not(None))).scalars())
    assert kinds == {k.value for k in HolderKind}
    states = set(db.execute(select(Card.state)).scalars())
    assert {"active", "lost", "returned", "cancelled", "office"} <= states

    data = json.loads(lab_path.read_text())
    assert data["other"] == 1  # merged into the existing object
    cases = data["access"]
    assert any(c["allowed"] for c in cases) and any(not c["allowed"] for c in cases)
    headers = bearer(db, admin)
    for case in cases:
        answer = client.post(
            "/api/v1/access/decisions",
            json={"card": case["card"], "door": case["door"]},
            headers=headers,
        )
        assert answer.status_code == 200
        assert answer.json()["allowed"] == case["allowed"], (case, answer.json())
