"""Issuing by holder kind: evidence, approvals, policy limits, fees and deposits."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from cardops.cards import service
from cardops.core.errors import Conflict, PermissionDenied, ValidationFailed
from cardops.ledger import service as ledger
from cardops.ledger.chart import CARD_FEE_INCOME, DEPOSITS_HELD
from tests.cards.conftest import Desk
from tests.factories import bearer


def test_owner_card_white_with_policy_validity_fee_receipt_and_default_doors(desk: Desk) -> None:
    owner = desk.person("业主甲", owner_of="1-101")
    card = desk.issue("owner", owner, "1-101", acknowledged=True)
    assert card.state == "active" and card.card_class == "white"
    assert (card.valid_until - card.valid_from).days > 5 * 365 - 2  # 60 months by default
    assert card.fee == 2000 and card.deposit == 0 and card.fee_receipt_no
    receipt = ledger.get_receipt(desk.db, card.fee_receipt_no)
    assert receipt.amount == 2000 and receipt.items[0]["account"] == CARD_FEE_INCOME
    assert [g.code for g, _ in service.grants_of(desk.db, card)] == ["B1"]
    assert card.acknowledged_at is not None
    assert [e.kind for e in card.events] == ["requisitioned", "issued", "granted"]
    assert set(card.evidence["documents"]) == {"id_front", "photo"}


def test_missing_evidence_is_named_and_nothing_changes(desk: Desk) -> None:
    tenant = desk.person("租户甲", docs=("id_front",))
    number = desk.numbers[0]
    with pytest.raises(ValidationFailed) as exc:
        desk.issue("tenant", tenant, "1-102")
    assert "Lease contract" in str(exc.value)
    assert exc.value.field_errors()[0]["field"] == "doc_lease_contract"
    assert service.get_card(desk.db, number).state == "office"


def test_tenant_with_lease_pays_fee_and_deposit_on_one_receipt(desk: Desk) -> None:
    held = ledger.balance(desk.db, DEPOSITS_HELD)
    tenant = desk.person("租户乙", docs=("id_front", "lease_contract"))
    card = desk.issue("tenant", tenant, "1-102", payment_method="wechat")
    assert card.card_class == "grey"
    assert (card.fee, card.deposit) == (2000, 5000)
    assert card.fee_receipt_no == card.deposit_receipt_no
    assert ledger.get_receipt(desk.db, card.fee_receipt_no).amount == 7000
    assert ledger.balance(desk.db, DEPOSITS_HELD) == held - 5000  # a credit on the liability
    assert card.valid_until is not None and (card.valid_until - card.valid_from).days < 366


def test_family_without_record_needs_the_owners_phone_confirmation(desk: Desk) -> None:
    desk.person("业主乙", owner_of="1-201")
    child = desk.person("家属乙")
    with pytest.raises(ValidationFailed) as exc:
        desk.issue("family", child, "1-201")
    assert "phone confirmation" in str(exc.value)
    card = desk.issue("family", child, "1-201", owner_confirmation=desk.confirmation())
    confirmation = card.evidence["owner_confirmation"]
    assert confirmation["clerk"] == desk.clerk.username and confirmation["phoned_at"]
    assert card.card_class == "white"


def test_second_owner_card_beyond_policy_is_refused(desk: Desk) -> None:
    service.set_policy(
        session=desk.db,
        actor=desk.supervisor,
        property_id=desk.prop.id,
        policy={"owner": {"max_per_unit": 1}},
    )
    owner = desk.person("业主丙", owner_of="2-101")
    desk.issue("owner", owner, "2-101")
    with pytest.raises(Conflict) as exc:
        desk.issue("owner", owner, "2-101")
    assert "allows at most 1" in str(exc.value)


def test_owner_card_only_for_the_recorded_owner(desk: Desk) -> None:
    desk.person("业主丁", owner_of="2-102")
    stranger = desk.person("路人")
    with pytest.raises(ValidationFailed) as exc:
        desk.issue("owner", stranger, "2-102")
    assert exc.value.field == "person_id"


def test_validity_beyond_policy_is_refused(desk: Desk) -> None:
    worker = desk.person("工人", docs=("id_front", "application_form"))
    with pytest.raises(ValidationFailed) as exc:
        desk.issue("renovation", worker, "2-101", valid_months=12)
    assert exc.value.field == "valid_months" and "at most 3 months" in str(exc.value)
    card = desk.issue("renovation", worker, "2-101")
    assert card.deposit == 10000
    assert [(g.code, s.code if s else None) for g, s in service.grants_of(desk.db, card)] == [
        ("RENO", "DAYTIME")
    ]


def test_policy_rules_are_checked_on_save(desk: Desk) -> None:
    for policy, field in (
        ({"tenant": {"validity_months": 36}}, "tenant.validity_months"),
        ({"owner": {"validity_months": 36}}, "owner.validity_months"),
        ({"staff": {"fee": 1000}}, "staff.fee"),
    ):
        with pytest.raises(ValidationFailed) as exc:
            service.set_policy(
                session=desk.db, actor=desk.supervisor, property_id=desk.prop.id, policy=policy
            )
        assert [e["field"] for e in exc.value.field_errors()] == [field]
    with pytest.raises(PermissionDenied):
        service.set_policy(session=desk.db, actor=desk.clerk, property_id=desk.prop.id, policy={})


def test_staff_card_needs_approval_and_a_supervisor(desk: Desk) -> None:
    staff = desk.person("员工甲", docs=())
    request_id = desk.approved("staff", staff)
    with pytest.raises(PermissionDenied):
        desk.issue("staff", staff, approval_request_id=request_id)  # front-desk clerk
    with pytest.raises(ValidationFailed) as exc:
        desk.issue("staff", staff, actor=desk.supervisor)
    assert exc.value.field == "approval_request_id"
    card = desk.issue("staff", staff, actor=desk.supervisor, approval_request_id=request_id)
    assert card.is_free and card.fee == 0 and card.fee_receipt_no is None
    assert [(g.code, s.code if s else None) for g, s in service.grants_of(desk.db, card)] == [
        ("STAFF", "WORKHOURS")
    ]
    with pytest.raises(Conflict):  # one approval, one card
        desk.issue("staff", staff, actor=desk.supervisor, approval_request_id=request_id)
    other = desk.person("员工乙", docs=())
    with pytest.raises(ValidationFailed):  # and only for the person it was made for
        desk.issue("staff", other, actor=desk.supervisor, approval_request_id=request_id)


def test_merchant_card_needs_an_approved_request(desk: Desk) -> None:
    from cardops.approvals import service as approvals

    org = desk.merchant()
    clerk = desk.person("店员", docs=("id_front",))
    pending = service.request_card_approval(
        session=desk.db,
        actor=desk.clerk,
        holder_kind="merchant",
        person_id=clerk.id,
        property_id=desk.prop.id,
        organisation_id=org.id,
    )
    with pytest.raises(ValidationFailed) as exc:
        desk.issue(
            "merchant", clerk, "S-01", organisation_id=org.id, approval_request_id=pending.id
        )
    assert "not approved" in str(exc.value)
    approvals.approve(session=desk.db, actor=desk.manager, request_id=pending.id)
    card = desk.issue(
        "merchant", clerk, "S-01", organisation_id=org.id, approval_request_id=pending.id
    )
    assert card.organisation_id == org.id and card.evidence["approval"] == pending.number


def test_gifted_card_takes_no_money(desk: Desk) -> None:
    owner = desk.person("业主戊", owner_of="1-102")
    card = desk.issue("owner", owner, "1-102", is_gift=True)
    assert card.is_gift and card.fee == 0 and card.fee_receipt_no is None


def test_issue_api_names_missing_evidence(client: TestClient, db: Session, desk: Desk) -> None:
    owner = desk.person("业主己", docs=("id_front",), owner_of="1-101")
    headers = bearer(db, desk.clerk)
    body = {
        "card_number": desk.numbers[0],
        "holder_kind": "owner",
        "person_id": owner.id,
        "unit_id": desk.unit("1-101").id,
    }
    answer = client.post("/api/v1/cards/issue", json=body, headers=headers)
    assert answer.status_code == 422
    assert "Photo" in answer.json()["detail"]
    assert {"field": "doc_photo", "message": "Photo"} in answer.json()["errors"] or any(
        e["field"] == "doc_photo" for e in answer.json()["errors"]
    )
    assert (
        client.get(f"/api/v1/cards/{desk.numbers[0]}", headers=headers).json()["state"] == "office"
    )
    nobody = client.post(
        "/api/v1/cards/issue", json={**body, "person_id": 2_000_000_000}, headers=headers
    )
    assert nobody.status_code == 404
