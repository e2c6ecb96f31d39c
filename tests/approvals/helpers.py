"""Shared set-up for the approvals tests."""

from __future__ import annotations

from sqlalchemy.orm import Session

from cardops.approvals import service
from cardops.approvals.models import ApprovalChain
from cardops.auth.models import User
from tests.factories import make_user

ORDER_STEPS = [
    "channel_supervisor",
    "business_manager",
    "finance_manager",
    "operations_director",
    "warehouse_supervisor",
]


def define(db: Session, kind: str, steps: list[str], **kwargs: object) -> ApprovalChain:
    admin = make_user(db, "sysadmin")
    chain = service.define_chain(
        session=db,
        actor=admin,
        kind=kind,
        name_en=str(kwargs.get("name_en", kind.replace("_", " ").title())),
        name_zh=str(kwargs.get("name_zh", "测试流程")),
        steps=steps,
        active=bool(kwargs.get("active", True)),
    )
    db.flush()
    return chain


def approvers(db: Session, roles: list[str]) -> dict[str, User]:
    """One user per role."""
    return {role: make_user(db, role) for role in roles}
