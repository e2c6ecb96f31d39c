"""Numbered service cards: generate, issue to branches and dealers, register, look up."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cardops.channel import service as channel
from cardops.core.clock import today as local_today
from cardops.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from cardops.warranty import service
from cardops.warranty.models import CardAllocation, CardRange, InstallerPoints, ServiceCard
from tests.factories import api_headers, bearer, make_user
from tests.warranty.conftest import World, issue, make_range, number, register, sale, stocked


def _count(db: Session, model: type) -> int:
    return db.execute(select(func.count()).select_from(model)).scalar_one()


def test_numbers_carry_a_check_character_that_catches_typos() -> None:
    good = number(17)
    assert good.startswith("JD00000017") and len(good) == 11
    assert service.parse_number(good)[0] is not None
    assert service.parse_number(good.lower())[0] is not None  # typed in lower case
    wrong_check = good[:-1] + ("A" if good[-1] != "A" else "B")
    assert service.parse_number(wrong_check) == (None, "check")
    swapped = good[:8] + good[9] + good[8] + good[10]  # …71 instead of …17
    assert service.parse_number(swapped) == (None, "check")
    assert service.parse_number("hello") == (None, "format")


@settings(derandomize=True, max_examples=50, deadline=None)
@given(
    seq=st.integers(min_value=0, max_value=99_999_999),
    pos=st.integers(0, 9),
    digit=st.integers(0, 9),
)
def test_any_single_digit_change_is_detected(seq: int, pos: int, digit: int) -> None:
    good = service.format_number("JD", 8, seq)
    body = list(good)
    index = 2 + pos if pos < 8 else len(good) - 1
    replacement = str(digit)
    if body[index] == replacement:
        return
    body[index] = replacement
    assert service.parse_number("".join(body))[0] is None


def test_generate_refuses_an_overlapping_range(db: Session, world: World) -> None:
    make_range(db, world, start=1, count=100)
    before = _count(db, CardRange)
    with pytest.raises(Conflict) as exc:
        make_range(db, world, start=100, count=10)
    assert exc.value.field == "start"
    assert _count(db, CardRange) == before
    make_range(db, world, start=101, count=10)  # adjacent is fine
    with pytest.raises(ValidationFailed) as bad:
        service.generate_range(
            session=db, actor=world.admin, prefix="J1", width=8, start=1, count=1
        )
    assert bad.value.field == "prefix"
    with pytest.raises(ValidationFailed) as too_wide:
        service.generate_range(
            session=db, actor=world.admin, prefix="KX", width=4, start=9990, count=20
        )
    assert too_wide.value.field == "count"


def test_issue_to_branch_then_dealer_only_within_the_branch_holding(
    db: Session, world: World
) -> None:
    make_range(db, world)
    issue(db, world, 1, 50, world.branch)
    with pytest.raises(Conflict) as clash:  # already at the 成都 branch
        issue(db, world, 40, 60, world.other_branch)
    assert clash.value.field == "first"
    issue(db, world, 51, 60, world.other_branch)
    issue(db, world, 1, 20, world.dealer)
    before = _count(db, CardAllocation)
    with pytest.raises(ValidationFailed) as outside:  # 成都 does not hold 51+
        issue(db, world, 45, 55, world.dealer)
    assert outside.value.field == "first"
    with pytest.raises(ValidationFailed):  # the 北京 dealer cannot get 成都's numbers
        issue(db, world, 30, 35, world.other_dealer)
    with pytest.raises(Conflict):  # already at the dealer
        issue(db, world, 20, 25, world.dealer)
    with pytest.raises(ValidationFailed) as unknown:
        service.issue(
            session=db,
            actor=world.admin,
            first=service.format_number("ZZ", 8, 1),
            last=service.format_number("ZZ", 8, 2),
            provider_id=world.branch.id,
        )
    assert unknown.value.field == "first"
    with pytest.raises(ValidationFailed) as typo:
        service.issue(
            session=db,
            actor=world.admin,
            first=number(1)[:-1] + "#",
            last=number(2),
            provider_id=world.branch.id,
        )
    assert typo.value.field == "first"
    assert _count(db, CardAllocation) == before


def test_branch_staff_issue_only_to_their_own_dealers(db: Session, world: World) -> None:
    stocked(db, world)
    issue(db, world, 51, 60, world.other_branch)
    staff = make_user(db, "channel_specialist")
    channel.link_user(session=db, actor=world.admin, user_id=staff.id, provider_id=world.branch.id)
    service.issue(
        session=db, actor=staff, first=number(21), last=number(30), provider_id=world.dealer.id
    )
    with pytest.raises(PermissionDenied):
        service.issue(
            session=db,
            actor=staff,
            first=number(55),
            last=number(56),
            provider_id=world.other_dealer.id,
        )
    with pytest.raises(PermissionDenied):  # branches get numbers from head office only
        service.issue(
            session=db, actor=staff, first=number(61), last=number(62), provider_id=world.branch.id
        )


def test_register_flags_cross_region_and_below_floor_and_accrues_points(
    db: Session, world: World
) -> None:
    stocked(db, world)
    ok = register(db, world, 3, sale_date=date(2026, 1, 31))
    assert ok.dealer_id == world.dealer.id and ok.branch_id == world.branch.id
    assert not ok.cross_region and not ok.below_floor
    assert ok.warranty_end == date(2027, 1, 31)  # 12 months by default
    assert ok.points == 15
    away = register(db, world, 4, province="广东省", city="广州")
    assert away.cross_region
    cheap = register(db, world, 5, price=30000)
    assert cheap.below_floor and cheap.floor_price == 39900
    branch_sale = register(db, world, 30)  # held by the branch itself
    assert branch_sale.dealer_id is None and not branch_sale.cross_region
    flagged = service.list_cards(session=db, actor=world.admin, flagged="any")
    assert {c.number for c in flagged} >= {away.number, cheap.number}
    assert ok.number not in {c.number for c in flagged}
    st_ = service.installer_statement(
        session=db, actor=world.admin, installer_id=world.installer.id
    )
    assert st_.total == 60 and st_.cards == 4


def test_register_refuses_bad_input_and_changes_nothing(db: Session, world: World) -> None:
    stocked(db, world)
    register(db, world, 1)
    cards, points = _count(db, ServiceCard), _count(db, InstallerPoints)
    with pytest.raises(Conflict) as again:
        register(db, world, 1)
    assert again.value.field == "number"
    with pytest.raises(NotFound) as fake:
        service.register(
            session=db,
            actor=world.admin,
            sale=sale(1, world, number=service.format_number("JD", 8, 5000)),
        )
    assert fake.value.field == "number"
    with pytest.raises(ValidationFailed) as made_up:
        service.register(session=db, actor=world.admin, sale=sale(1, world, number="JD000000019"))
    assert made_up.value.field == "number"
    with pytest.raises(ValidationFailed) as not_issued:
        register(db, world, 80)
    assert not_issued.value.field == "number"
    with pytest.raises(ValidationFailed) as many:
        register(db, world, 2, buyer_phone="12345", province="火星", price=-5)
    fields = {f["field"] for f in many.value.field_errors()}
    assert {"buyer_phone", "province", "price"} <= fields
    with pytest.raises(ValidationFailed) as future:
        register(db, world, 2, sale_date=local_today() + timedelta(days=3))
    assert future.value.field == "sale_date"
    assert (_count(db, ServiceCard), _count(db, InstallerPoints)) == (cards, points)


def test_lookup_api_tells_genuine_branch_dealer_and_warranty_end(
    client: TestClient, db: Session, world: World
) -> None:
    stocked(db, world)
    card = register(db, world, 7)
    db.commit()
    body = client.get(f"/api/v1/service-cards/{card.number}").json()  # no sign-in
    assert body["genuine"] is True
    assert body["branch"]["code"] == "W-CD" and body["dealer"]["code"] == "W-PX"
    assert body["warranty_end"] == card.warranty_end.isoformat()
    assert body["in_warranty"] is True and body["registration"] is None
    issued_only = client.get(f"/api/v1/service-cards/{number(8)}").json()
    assert issued_only["genuine"] is True and issued_only["registered"] is False
    assert issued_only["dealer"]["code"] == "W-PX" and issued_only["warranty_end"] is None
    made_up = client.get("/api/v1/service-cards/JD000000019")
    assert made_up.status_code == 200 and made_up.json()["genuine"] is False
    long_junk = client.get("/api/v1/service-cards/" + "X" * 300)
    assert long_junk.status_code == 200 and long_junk.json()["genuine"] is False
    unknown = client.get(f"/api/v1/service-cards/{service.format_number('JD', 8, 999)}")
    assert unknown.status_code == 200
    assert unknown.json() == {**unknown.json(), "genuine": False, "reason": "unknown"}
    staff = client.get(
        f"/api/v1/service-cards/{card.number}", headers=api_headers(db, "after_sales_specialist")
    ).json()
    assert staff["registration"]["buyer_phone"] == "13800138000"


def test_public_lookup_is_rate_limited_per_address_but_staff_are_not(
    client: TestClient, db: Session, world: World
) -> None:
    stocked(db, world)
    card = register(db, world, 9)
    db.commit()
    url = f"/api/v1/service-cards/{card.number}"
    for _ in range(service.PUBLIC_LOOKUPS_PER_MINUTE):
        assert client.get(url).status_code == 200
    refused = client.get(url)
    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited"
    page = client.get("/service-card", params={"number": card.number})
    assert page.status_code == 429 and 'id="lookup-error"' in page.text
    assert 'id="lookup-result"' not in page.text
    chinese = client.get(url, headers={"Accept-Language": "zh-CN"})
    assert "请" in chinese.json()["detail"] or "次数" in chinese.json()["detail"]
    staff = client.get(url, headers=api_headers(db, "after_sales_specialist"))
    assert staff.status_code == 200  # signed-in staff are not counted


def test_api_generate_issue_register(client: TestClient, db: Session, world: World) -> None:
    headers = bearer(db, world.admin)
    created = client.post(
        "/api/v1/service-card-ranges",
        headers=headers,
        json={"prefix": "jx", "width": 6, "start": 1, "count": 50},
    )
    assert created.status_code == 201, created.text
    rng = created.json()
    assert rng["first"] == service.format_number("JX", 6, 1) and rng["count"] == 50
    overlap = client.post(
        "/api/v1/service-card-ranges",
        headers=headers,
        json={"prefix": "JX", "width": 6, "start": 50, "count": 5},
    )
    assert overlap.status_code == 409
    assert overlap.json()["errors"][0]["field"] == "start"
    first, last = service.format_number("JX", 6, 1), service.format_number("JX", 6, 10)
    issued = client.post(
        "/api/v1/service-card-issues",
        headers=headers,
        json={"first": first, "last": last, "provider_id": world.branch.id},
    )
    assert issued.status_code == 201, issued.text
    to_dealer = client.post(
        "/api/v1/service-card-issues",
        headers=headers,
        json={"first": first, "last": last, "provider_id": world.other_dealer.id},
    )
    assert to_dealer.status_code == 422
    registered = client.post(
        "/api/v1/service-cards",
        headers=headers,
        json={
            "number": first,
            "model_id": world.model.id,
            "buyer_name": "张三",
            "buyer_phone": "13700137000",
            "province": "北京",
            "price": 30000,
            "installer_id": world.installer.id,
        },
    )
    assert registered.status_code == 201, registered.text
    card = registered.json()
    assert card["cross_region"] is True and card["below_floor"] is True
    twice = client.post(
        "/api/v1/service-cards",
        headers=headers,
        json={
            **{k: card[k] for k in ("number", "model_id", "buyer_name", "buyer_phone")},
            "province": "四川",
            "price": 50000,
        },
    )
    assert twice.status_code == 409 and twice.json()["errors"][0]["field"] == "number"
    detail = client.get(f"/api/v1/service-card-ranges/{rng['id']}", headers=headers).json()
    assert detail["issued_to_branches"] == 10 and detail["registered"] == 1
    flagged = client.get("/api/v1/service-cards?flagged=cross_region", headers=headers).json()
    assert [c["number"] for c in flagged] == [first]
    statement = client.get(
        f"/api/v1/warranty/installers/{world.installer.id}/statement", headers=headers
    ).json()
    assert statement["total"] == 15 and statement["entries"][0]["card"] == first
