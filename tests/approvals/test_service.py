from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.orm import Session

from cardops.approvals import service
from cardops.approvals.models import ApprovalRequest, RequestState
from cardops.audit.service import history as audit_history
from cardops.auth.models import User
from cardops.core.demo_loader import DemoContext
from cardops.core.errors import (
    InvalidTransition,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from tests.approvals.helpers import ORDER_STEPS, approvers, define
from tests.factories import make_user


def test_request_walks_every_step_in_order_and_history_is_complete(db: Session) -> None:
    define(db, "distributor_order", ORDER_STEPS)
    people = approvers(db, ORDER_STEPS)
    specialist = make_user(db, "channel_specialist")
    request = service.submit(
        session=db,
        actor=specialist,
        kind="distributor_order",
        title="200 POS terminals for Acme",
        payload={"items": [{"sku": "POS-A920", "qty": 200}]},
    )
    assert request.number.startswith("AP")
    assert request.state == RequestState.PENDING
    assert request.current_step == 1

    for position, role in enumerate(ORDER_STEPS, start=1):
        assert request.current is not None
        assert request.current.role.code == role
        waiting = [p for r, p in people.items() if request in service.inbox(session=db, user=p)]
        assert waiting == [people[role]], f"only the {role} should see it at step {position}"
        service.approve(
            session=db, actor=people[role], request_id=request.id, comment=f"ok {position}"
        )

    assert request.state == RequestState.APPROVED
    assert request.current_step is None
    assert request.decided_at is not None
    assert all(service.inbox(session=db, user=p) == [] for p in people.values())

    rows = service.history(session=db, request_id=request.id, actor=specialist)
    assert [(r.action, r.step, r.actor_id) for r in rows] == [
        ("submit", None, specialist.id),
        *[("approve", i, people[role].id) for i, role in enumerate(ORDER_STEPS, start=1)],
    ]
    assert [r.comment for r in rows[1:]] == [f"ok {i}" for i in range(1, 6)]
    assert rows[3].role is not None and rows[3].role.code == "finance_manager"

    actions = [e.action for e in audit_history(db, "approval_requests", request.id)]
    assert actions == [
        "approval.submitted",
        *["approval.step_approved"] * 4,
        "approval.approved",
    ]


def test_reject_needs_a_comment_then_resubmit_starts_over(db: Session) -> None:
    define(db, "purchase_request", ["business_manager", "finance_manager"])
    people = approvers(db, ["business_manager", "finance_manager"])
    clerk = make_user(db, "cashier")
    request = service.submit(
        session=db, actor=clerk, kind="purchase_request", title="Paper", description="10 boxes"
    )
    service.approve(session=db, actor=people["business_manager"], request_id=request.id)

    with pytest.raises(ValidationFailed) as exc:
        service.reject(
            session=db, actor=people["finance_manager"], request_id=request.id, comment="  "
        )
    assert exc.value.field == "comment"
    assert request.state == RequestState.PENDING

    service.reject(
        session=db,
        actor=people["finance_manager"],
        request_id=request.id,
        comment="Quote missing",
    )
    assert request.state == RequestState.REJECTED
    assert request in service.my_requests(session=db, user=clerk, state="rejected")
    assert service.inbox(session=db, user=people["finance_manager"]) == []

    with pytest.raises(InvalidTransition):
        service.approve(session=db, actor=people["finance_manager"], request_id=request.id)
    with pytest.raises(PermissionDenied):
        service.resubmit(
            session=db, actor=people["business_manager"], request_id=request.id, title="X"
        )

    service.resubmit(
        session=db,
        actor=clerk,
        request_id=request.id,
        title="Paper (quote attached)",
        payload={"quote": "Q-17"},
        comment="Added the quote",
    )
    assert request.state == RequestState.PENDING
    assert request.round == 2
    assert request.current_step == 1
    assert request.decided_at is None
    assert request.title == "Paper (quote attached)"
    assert request.description == "10 boxes"  # None keeps a field
    assert request.payload == {"quote": "Q-17"}
    assert request in service.inbox(session=db, user=people["business_manager"])

    service.approve(session=db, actor=people["business_manager"], request_id=request.id)
    service.approve(session=db, actor=people["finance_manager"], request_id=request.id)
    assert request.state == RequestState.APPROVED
    rows = service.history(session=db, request_id=request.id)
    assert [(r.round, r.action, r.step) for r in rows] == [
        (1, "submit", None),
        (1, "approve", 1),
        (1, "reject", 2),
        (2, "resubmit", None),
        (2, "approve", 1),
        (2, "approve", 2),
    ]
    assert rows[2].comment == "Quote missing"
    assert rows[3].comment == "Added the quote"


def test_submitter_may_not_decide_on_own_request_even_with_the_role(db: Session) -> None:
    define(db, "general", ["department_manager"])
    manager = make_user(db, "department_manager")
    other_manager = make_user(db, "department_manager")
    request = service.submit(session=db, actor=manager, kind="general", title="Laptop")
    assert service.inbox(session=db, user=manager) == []
    assert service.inbox(session=db, user=other_manager) == [request]
    assert not service.can_decide(manager, request)
    with pytest.raises(PermissionDenied) as exc:
        service.approve(session=db, actor=manager, request_id=request.id)
    assert "someone else" in str(exc.value)
    with pytest.raises(PermissionDenied):
        service.reject(session=db, actor=manager, request_id=request.id, comment="no")


def test_only_the_current_step_role_decides(db: Session) -> None:
    define(db, "scrapping", ["warehouse_supervisor", "operations_director"])
    people = approvers(db, ["warehouse_supervisor", "operations_director"])
    request = service.submit(
        session=db, actor=make_user(db, "inbound_clerk"), kind="scrapping", title="Broken PIN pads"
    )
    with pytest.raises(PermissionDenied) as exc:
        service.approve(session=db, actor=people["operations_director"], request_id=request.id)
    assert "Step 1" in str(exc.value)
    assert request.current_step == 1


def test_chain_edits_do_not_change_requests_in_flight(db: Session) -> None:
    define(db, "staff_card", ["department_manager", "cs_supervisor"])
    request = service.submit(
        session=db, actor=make_user(db, "front_desk_clerk"), kind="staff_card", title="Card"
    )
    define(db, "staff_card", ["finance_manager"])
    db.expire_all()
    assert [s.role.code for s in request.steps] == ["department_manager", "cs_supervisor"]
    chain = service.get_chain(session=db, kind="staff_card")
    assert [s.role.code for s in chain.steps] == ["finance_manager"]
    service.approve(session=db, actor=make_user(db, "department_manager"), request_id=request.id)
    assert request.current is not None and request.current.role.code == "cs_supervisor"


def test_define_chain_checks_its_input(db: Session) -> None:
    admin = make_user(db, "sysadmin")
    clerk = make_user(db, "front_desk_clerk")

    def attempt(actor: User = admin, **kw: object) -> None:
        args: dict[str, object] = {
            "kind": "general",
            "name_en": "General",
            "name_zh": "通用",
            "steps": ["department_manager"],
        }
        args.update(kw)
        service.define_chain(session=db, actor=actor, **args)  # type: ignore[arg-type]

    with pytest.raises(PermissionDenied):
        attempt(clerk)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"kind": "Bad Kind"}, "kind"),
        ({"name_en": " "}, "name_en"),
        ({"name_zh": ""}, "name_zh"),
        ({"steps": []}, "steps"),
        ({"steps": ["no_such_role"]}, "steps"),
        ({"steps": ["cashier", "cashier"]}, "steps"),
        ({"steps": ["cashier"] * 21}, "steps"),
        ({"steps": [service.StepSpec("cashier", "x" * 129)]}, "steps"),
    ]
    for kw, field in cases:
        with pytest.raises(ValidationFailed) as exc:
            attempt(**kw)
        assert exc.value.field == field, kw


def test_submit_refuses_unknown_inactive_or_bad_input(db: Session) -> None:
    clerk = make_user(db, "front_desk_clerk")
    picker = make_user(db, "picker")
    define(db, "general", ["department_manager"])
    define(db, "old_kind", ["department_manager"], active=False)

    def attempt(actor: User = clerk, **kw: object) -> ApprovalRequest:
        args: dict[str, object] = {"kind": "general", "title": "A title"}
        args.update(kw)
        return service.submit(session=db, actor=actor, **args)  # type: ignore[arg-type]

    with pytest.raises(PermissionDenied):
        attempt(picker)
    # another domain that checked its own permission may submit for any user
    assert attempt(picker, check_permission=False).submitter_id == picker.id
    cases: list[tuple[dict[str, Any], str]] = [
        ({"kind": "nope"}, "kind"),
        ({"kind": "old_kind"}, "kind"),
        ({"title": "   "}, "title"),
        ({"title": "x" * 201}, "title"),
        ({"title": "nul\x00byte"}, "title"),
        ({"description": "x" * 4001}, "description"),
        ({"payload": {"x": float("nan")}}, "payload"),
        ({"payload": {"x": "y" * 30_000}}, "payload"),
    ]
    for kw, field in cases:
        with pytest.raises(ValidationFailed) as exc:
            attempt(**kw)
        assert exc.value.field == field, kw


def test_withdraw_by_submitter_only_and_final(db: Session) -> None:
    define(db, "compensation", ["call_supervisor"])
    agent = make_user(db, "call_agent")
    supervisor = make_user(db, "call_supervisor")
    request = service.submit(session=db, actor=agent, kind="compensation", title="Refund 20")
    with pytest.raises(PermissionDenied):
        service.withdraw(session=db, actor=supervisor, request_id=request.id)
    service.withdraw(session=db, actor=agent, request_id=request.id, comment="Customer happy")
    assert request.state == RequestState.WITHDRAWN
    assert service.inbox(session=db, user=supervisor) == []
    with pytest.raises(InvalidTransition):
        service.approve(session=db, actor=supervisor, request_id=request.id)
    with pytest.raises(InvalidTransition):
        service.withdraw(session=db, actor=agent, request_id=request.id)
    with pytest.raises(InvalidTransition):
        service.resubmit(session=db, actor=agent, request_id=request.id)


def test_transition_table_refuses_illegal_moves(db: Session) -> None:
    define(db, "general", ["department_manager"])
    request = service.submit(
        session=db, actor=make_user(db, "cashier"), kind="general", title="Chair"
    )
    service.approve(session=db, actor=make_user(db, "department_manager"), request_id=request.id)
    for target in RequestState:
        assert not request.can_become(target)
    with pytest.raises(InvalidTransition):
        request.transition(RequestState.PENDING)


@pytest.fixture
def decisions() -> Iterator[list[tuple[str, str, int]]]:
    seen: list[tuple[str, str, int]] = []

    def handler(*, session: Session, request: ApprovalRequest, actor: User) -> None:
        assert session.get(ApprovalRequest, request.id) is request  # same transaction
        seen.append((request.number, request.state, actor.id))

    service.on_decided("merchant_card", handler)
    service.on_decided("merchant_card", handler)  # registering twice calls it once
    yield seen
    service.remove_handler("merchant_card", handler)


def test_on_decided_is_called_on_final_approval_rejection_and_withdrawal(
    db: Session, decisions: list[tuple[str, str, int]]
) -> None:
    define(db, "merchant_card", ["department_manager", "finance_manager"])
    define(db, "general", ["department_manager"])
    clerk = make_user(db, "front_desk_clerk")
    people = approvers(db, ["department_manager", "finance_manager"])
    merchant = ("merchants", 42)
    request = service.submit(
        session=db, actor=clerk, kind="merchant_card", title="Card for M42", subject=merchant
    )
    assert (request.subject_type, request.subject_id) == ("merchants", "42")
    assert service.find_for_subject(session=db, subject=merchant) == [request]

    service.approve(session=db, actor=people["department_manager"], request_id=request.id)
    assert decisions == []  # not final yet
    service.reject(
        session=db, actor=people["finance_manager"], request_id=request.id, comment="Wrong MCC"
    )
    assert decisions == [(request.number, "rejected", people["finance_manager"].id)]
    service.resubmit(session=db, actor=clerk, request_id=request.id)
    service.approve(session=db, actor=people["department_manager"], request_id=request.id)
    service.approve(session=db, actor=people["finance_manager"], request_id=request.id)
    assert decisions[-1] == (request.number, "approved", people["finance_manager"].id)

    other = service.submit(session=db, actor=clerk, kind="merchant_card", title="Another")
    service.withdraw(session=db, actor=clerk, request_id=other.id)
    assert decisions[-1] == (other.number, "withdrawn", clerk.id)

    general = service.submit(session=db, actor=clerk, kind="general", title="Unrelated")
    service.approve(session=db, actor=people["department_manager"], request_id=general.id)
    assert len(decisions) == 3  # handlers are per kind


def test_a_failing_handler_stops_the_decision(db: Session) -> None:
    define(db, "tenant_extra_doors", ["cs_supervisor"])

    def refuse(*, session: Session, request: ApprovalRequest, actor: User) -> None:
        raise ValidationFailed("Enter a title.", field="title")

    service.on_decided("tenant_extra_doors", refuse)
    try:
        request = service.submit(
            session=db,
            actor=make_user(db, "front_desk_clerk"),
            kind="tenant_extra_doors",
            title="T",
        )
        with pytest.raises(ValidationFailed):
            service.approve(session=db, actor=make_user(db, "cs_supervisor"), request_id=request.id)
    finally:
        service.remove_handler("tenant_extra_doors", refuse)


def test_visibility_of_a_request(db: Session) -> None:
    define(db, "general", ["department_manager"])
    clerk = make_user(db, "front_desk_clerk")
    request = service.submit(session=db, actor=clerk, kind="general", title="Desk")
    assert service.get_request(session=db, request_id=request.id, actor=clerk) is request
    service.get_request(
        session=db, request_id=request.id, actor=make_user(db, "department_manager")
    )
    service.get_request(session=db, request_id=request.id, actor=make_user(db, "risk_officer"))
    with pytest.raises(PermissionDenied):
        service.get_request(session=db, request_id=request.id, actor=make_user(db, "cashier"))
    with pytest.raises(NotFound):
        service.get_request(session=db, request_id=987654, actor=clerk)


def test_demo_data_puts_a_request_in_the_admin_inbox(db: Session) -> None:
    from cardops.approvals import demo
    from cardops.auth.permissions import DEFAULT_ROLES

    admin = make_user(db, *DEFAULT_ROLES)
    ctx = DemoContext(password="x", admin=admin)
    ctx.users = {code: make_user(db, code) for code in ("channel_specialist", "department_manager")}
    demo.load(db, ctx)
    kinds = {c.kind: [s.role.code for s in c.steps] for c in service.list_chains(session=db)}
    assert kinds["distributor_order"] == ORDER_STEPS
    assert set(demo.DEFAULT_CHAINS) <= set(kinds)
    pending = service.inbox(session=db, user=admin)
    assert len(pending) == 1
    assert pending[0].kind == "general"
    assert pending[0].submitter_id == ctx.users["channel_specialist"].id
    assert pending[0].current is not None
    assert pending[0].current.role.code == "department_manager"
    assert service.inbox(session=db, user=ctx.users["department_manager"]) == pending
