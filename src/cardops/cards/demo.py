"""Demo cards in the property SUNNY: a stock batch of 60 cards requisitioned by the office,
one card of every holder kind (with their evidence and approvals), a lost card, a reissued
card, a returned card and an expired card; then ``var/lab.json`` ``"access"`` cases.

The lab cases are only those whose outcome does not depend on the time of day: allowed ones
use grants with an always-open schedule; denied ones are denied by card state, validity or a
door outside the card's groups.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from stdnum.cn import ric

from cardops.access.credentials import touch_card
from cardops.access.models import (
    AccessGroup,
    AccessGroupDoor,
    Building,
    CardGrant,
    Door,
    DoorKind,
    Property,
    TimeSchedule,
    Unit,
)
from cardops.auth.models import User
from cardops.cards import service
from cardops.cards.models import Card, CardBatch, CardState
from cardops.core.clock import utcnow
from cardops.core.config import get_settings
from cardops.core.demo_loader import DemoContext
from cardops.parties import service as parties
from cardops.parties.models import Organisation, Person

PROPERTY = "SUNNY"
# A tiny valid PNG (1×1 pixel) as the stand-in for scanned documents.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)

PERSONS = [
    # key, name, birth (yyyymmdd), mobile, email
    ("owner1", "张伟", "19780412", "13800000101", "zhangwei@example.com"),
    ("family1", "李娜", "19800923", "13800000102", None),
    ("relative1", "张强", "19750101", "13800000103", None),
    ("nanny1", "王芳", "19700615", "13800000104", None),
    ("owner2", "刘洋", "19850220", "13800000105", "liuyang@example.com"),
    ("tenant1", "陈静", "19920708", "13800000106", "chenjing@example.com"),
    ("owner3", "杨磊", "19820303", "13800000107", None),
    ("reno1", "黄勇", "19881111", "13800000108", None),
    ("owner4", "赵丽", "19790505", "13800000109", None),
    ("tenant2", "周杰", "19950606", "13800000110", None),
    ("merchant1", "吴敏", "19870707", "13800000111", None),
    ("staff1", "徐涛", "19900808", "13800000112", "xutao@example.com"),
    ("cleaner1", "孙梅", "19680909", "13800000113", None),
    ("lift1", "马超", "19861010", "13800000114", None),
]


def resident_id(birth: str, seq: int) -> str:
    """A resident ID of Beijing Chaoyang district with a valid check digit."""
    body = f"110105{birth}{seq:03d}"
    return body + ric.calc_check_digit(body + "0")


def _person(
    session: Session, actor: User, n: int, name: str, birth: str, mobile: str, email: str | None
) -> Person:
    number = resident_id(birth, 100 + n)
    found = parties.find_person_by_id_number(session, number)
    if found is not None:
        return found
    return parties.create_person(
        session=session,
        actor=actor,
        name=name,
        id_number=number,
        mobile=mobile,
        email=email,
        address="阳光花园",
    )


def _docs(session: Session, actor: User, owner_type: str, owner_id: int, *types: str) -> None:
    for doc_type in types:
        parties.upload_document(
            session=session,
            actor=actor,
            owner_type=owner_type,
            owner_id=owner_id,
            doc_type=doc_type,
            filename=f"{doc_type}.png",
            data=PNG,
        )


def _unit(session: Session, prop: Property, code: str) -> Unit:
    return session.execute(
        select(Unit)
        .join(Building, Building.id == Unit.building_id)
        .where(Building.property_id == prop.id, Unit.code == code)
    ).scalar_one()


def load(session: Session, ctx: DemoContext) -> None:
    prop = session.execute(select(Property).where(Property.code == PROPERTY)).scalar_one_or_none()
    if prop is None or session.execute(select(CardBatch.id).limit(1)).first():
        return
    admin = ctx.admin
    clerk = ctx.users.get("front_desk_clerk", admin)
    manager = ctx.users.get("department_manager", admin)
    supervisor = ctx.users.get("cs_supervisor", admin)

    service.set_policy(
        session=session,
        actor=admin,
        property_id=prop.id,
        policy={"owner": {"validity_months": 60, "fee": 2000, "max_per_unit": 4}},
        replacement_warranty_days=30,
    )
    specs = [
        service.CardSpec(
            number=f"C{i:06d}",
            uid=f"04A1{i:04X}",
            wiegand_format=26,
            wiegand_facility=12,
            wiegand_number=1000 + i,
        )
        for i in range(1, 61)
    ]
    service.receive_batch(
        session=session,
        actor=admin,
        number="B2026-001",
        supplier="示例智能卡有限公司",
        cards=specs,
        unit_cost=350,
        note="Mifare 1K",
    )
    requisition = service.request_cards(
        session=session, actor=admin, property_id=prop.id, quantity=60
    )
    service.fulfil_requisition(session=session, actor=admin, requisition_id=requisition.id)

    people = {
        key: _person(session, admin, n, name, birth, mobile, email)
        for n, (key, name, birth, mobile, email) in enumerate(PERSONS)
    }
    for key, person in people.items():
        types = ["id_front", "photo"]
        if key.startswith("tenant"):
            types.append("lease_contract")
        if key.startswith("reno"):
            types.append("application_form")
        _docs(session, admin, "person", person.id, *types)

    from cardops.access import service as access

    owners = {
        "1-101": "owner1",
        "1-102": "owner2",
        "2-101": "owner3",
        "1-201": "owner4",
        "2-102": "owner4",
    }
    for unit_code, key in owners.items():
        unit = _unit(session, prop, unit_code)
        access.set_unit_owner(
            session=session, actor=admin, unit_id=unit.id, owner_person_id=people[key].id
        )

    org = session.execute(
        select(Organisation).where(Organisation.name == "阳光花园便利店")
    ).scalar_one_or_none() or parties.create_organisation(
        session=session,
        actor=admin,
        name="阳光花园便利店",
        kind="merchant",
        legal_person="吴敏",
        contact_name="吴敏",
        contact_mobile="13800000111",
        address="阳光花园商铺 S-01",
    )
    _docs(session, admin, "organisation", org.id, "application_form")

    numbers = iter(f"C{i:06d}" for i in range(1, 61))
    phoned = utcnow() - timedelta(minutes=30)
    issued: dict[str, Card] = {}

    def issue(key: str, kind: str, unit: str | None, *, actor: User = admin, **kwargs: Any) -> Card:
        card = service.issue_card(
            session=session,
            actor=actor,
            card_number=next(numbers),
            holder_kind=kind,
            person_id=people[key].id,
            unit_id=_unit(session, prop, unit).id if unit else None,
            acknowledged=True,
            **kwargs,
        )
        issued[key] = card
        return card

    confirmation = service.OwnerConfirmation(phoned_at=phoned, note="业主电话确认")
    issue("owner1", "owner", "1-101", is_gift=True)
    issue("family1", "family", "1-101", owner_confirmation=confirmation)
    issue("relative1", "relative", "1-101", owner_confirmation=confirmation)
    issue("nanny1", "nanny", "1-101", owner_confirmation=confirmation)
    issue("owner2", "owner", "1-102", payment_method="wechat")
    issue("tenant1", "tenant", "1-102")
    issue("owner3", "owner", "2-101")
    issue("reno1", "renovation", "2-101")
    issue("owner4", "owner", "1-201")
    issue("tenant2", "tenant", "2-102")

    merchant_request = service.request_card_approval(
        session=session,
        actor=clerk,
        holder_kind="merchant",
        person_id=people["merchant1"].id,
        property_id=prop.id,
        organisation_id=org.id,
        reason="便利店店员门禁卡（已盖公章申请表）",
    )
    _approve(session, manager, merchant_request.id)
    issue(
        "merchant1",
        "merchant",
        "S-01",
        organisation_id=org.id,
        approval_request_id=merchant_request.id,
    )
    staff_request = service.request_card_approval(
        session=session,
        actor=clerk,
        holder_kind="staff",
        person_id=people["staff1"].id,
        property_id=prop.id,
        reason="工程部新入职员工，申请员工卡",
    )
    _approve(session, manager, staff_request.id)
    issue("staff1", "staff", None, actor=supervisor, approval_request_id=staff_request.id)
    issue("cleaner1", "cleaner", None)
    issue("lift1", "lift_maintainer", None)

    # anomalies and lifecycle examples
    service.report_lost(
        session=session, actor=admin, card_number=issued["owner3"].number, channel="phone"
    )
    service.report_lost(session=session, actor=admin, card_number=issued["nanny1"].number)
    reissued = service.reissue(
        session=session,
        actor=admin,
        card_number=issued["nanny1"].number,
        new_card_number=next(numbers),
    )
    tenant2 = issued["tenant2"]
    service.return_card(
        session=session,
        actor=admin,
        card_number=tenant2.number,
        receipt_number=tenant2.deposit_receipt_no,
    )
    expired = issued["relative1"]
    expired.valid_from = service.today() - timedelta(days=400)
    expired.valid_until = service.today() - timedelta(days=35)
    service._event(
        session, expired, "validity_set", admin, valid_until=expired.valid_until.isoformat()
    )
    touch_card(session, card_id=expired.id, property_id=prop.id, reason="demo_expired")
    session.flush()

    cases: list[tuple[Card | str, str]] = [
        (issued["owner1"], "LOBBY-1"),
        (issued["owner1"], "UNIT-1"),
        (issued["owner1"], "LOBBY-2"),
        (issued["family1"], "UNIT-1"),
        (issued["owner2"], "UNIT-1"),
        (issued["tenant1"], "UNIT-1"),
        (issued["tenant1"], "UNIT-2"),
        (issued["merchant1"], "LOBBY-2"),
        (issued["merchant1"], "UNIT-1"),
        (issued["reno1"], "LOBBY-1"),
        (issued["owner3"], "LOBBY-2"),
        (issued["owner3"], "GARAGE-IN"),
        (issued["nanny1"], "UNIT-1"),
        (reissued, "UNIT-1"),
        (tenant2, "UNIT-2"),
        (expired, "LOBBY-1"),
        (expired, "GARAGE-IN"),
        (issued["reno1"], "UNIT-2"),
        ("NOPE-000000", "LOBBY-1"),
    ]
    lab = []
    for card, door in cases:
        outcome = expected_decision(session, card, door)
        if outcome is not None:
            number = card.number if isinstance(card, Card) else card
            lab.append({"card": number, "door": door, "allowed": outcome})
    write_lab(get_settings().var_dir / "lab.json", lab)


def _approve(session: Session, approver: User, request_id: int) -> None:
    from cardops.approvals import service as approvals

    approvals.approve(session=session, actor=approver, request_id=request_id, comment="同意")


def _always(schedule: TimeSchedule | None) -> bool:
    if schedule is None:
        return True
    days = {p.weekday for p in schedule.periods if p.start_minute == 0 and p.end_minute >= 1440}
    return days >= set(range(8)) or (days >= set(range(7)) and schedule.holiday_mode == "weekday")


def expected_decision(session: Session, card: Card | str, door_code: str) -> bool | None:
    """Whether ``card`` may open ``door_code`` at any time of day; ``None`` when the answer
    depends on the time (a schedule that is not always open) or on parking permits."""
    door = session.execute(select(Door).where(Door.code == door_code)).scalar_one_or_none()
    if door is None or not door.is_active:
        return False
    if not isinstance(card, Card):
        return False if service.find_card(session, card) is None else None
    if card.state != CardState.ACTIVE.value:
        return False
    today = service.today()
    if card.valid_until and card.valid_until < today:
        return False
    if card.valid_from and card.valid_from > today:
        return False
    if door.kind == DoorKind.CARPARK_GATE.value:
        return None
    rows = (
        session.execute(
            select(CardGrant)
            .join(AccessGroup, AccessGroup.id == CardGrant.group_id)
            .join(AccessGroupDoor, AccessGroupDoor.group_id == AccessGroup.id)
            .where(CardGrant.card_id == card.id, AccessGroupDoor.door_id == door.id)
        )
        .scalars()
        .all()
    )
    if not rows:
        return False
    for grant in rows:
        schedule = session.get(TimeSchedule, grant.schedule_id) if grant.schedule_id else None
        if _always(schedule):
            return True
    return None


def write_lab(path: Path, cases: list[dict[str, Any]]) -> None:
    """Merge ``{"access": cases}`` into the JSON object at ``path``."""
    data: dict[str, Any] = {}
    if path.exists():
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(loaded, dict):
                data = loaded
        except ValueError:
            data = {}
    data["access"] = cases
    data.setdefault("generated_at", datetime.now(UTC).isoformat())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
