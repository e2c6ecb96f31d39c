"""Providers tree, rate cards, regions and the region helpers other domains call."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from cardops.channel import service
from cardops.core.errors import Conflict, PermissionDenied, ValidationFailed
from tests.channel.conftest import World, fields
from tests.factories import make_user


@pytest.mark.parametrize(
    ("card", "field"),
    [
        ({"debit": {"rate_bp": -1}}, "debit_rate_bp"),
        ({"debit": {"rate_bp": 1001}}, "debit_rate_bp"),
        ({"credit": {"rate_bp": "55"}}, "credit_rate_bp"),
        ({"debit": {"rate_bp": 38, "cap": 0}}, "debit_cap"),
        ({"debit": {"rate_bp": 38, "cap": 12.5}}, "debit_cap"),
        ({"amex": {"rate_bp": 38}}, "rate_card"),
    ],
)
def test_bad_rate_cards_are_refused_naming_the_field(
    db: Session, world: World, card: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationFailed) as exc:
        service.update_provider(
            session=db,
            actor=world.admin,
            provider_id=world.cd.id,
            fields=fields("成都地市服务商", world.hq, provinces=["四川"], rate_card=card),
        )
    assert exc.value.field == field
    assert world.cd.rate_card == {
        "debit": {"rate_bp": 38, "cap": 2000},
        "credit": {"rate_bp": 55},
    }


def test_tree_rules_provinces_and_contract(db: Session, world: World) -> None:
    admin = world.admin
    with pytest.raises(ValidationFailed) as exc:
        service.create_provider(
            session=db, actor=admin, code="X1", level="county", fields=fields("x", world.hq)
        )
    assert exc.value.field == "parent_id"
    with pytest.raises(ValidationFailed) as exc:
        service.create_provider(
            session=db, actor=admin, code="X2", level="city", fields=fields("x", world.cd)
        )
    assert exc.value.field == "parent_id"
    with pytest.raises(ValidationFailed) as exc:
        service.create_provider(
            session=db,
            actor=admin,
            code="X3",
            level="city",
            fields=fields("x", world.hq, provinces=["四川", "火星"]),
        )
    assert exc.value.field == "provinces" and "火星" in str(exc.value)
    with pytest.raises(Conflict):
        service.create_provider(
            session=db, actor=admin, code=world.cd.code, level="city", fields=fields("x", world.hq)
        )
    from datetime import date

    with pytest.raises(ValidationFailed) as exc:
        service.create_provider(
            session=db,
            actor=admin,
            code="X4",
            level="city",
            fields=fields(
                "x", world.hq, contract_start=date(2026, 5, 1), contract_end=date(2026, 4, 1)
            ),
        )
    assert exc.value.field == "contract_end"
    gz = service.create_provider(
        session=db,
        actor=admin,
        code="x5",
        level="city",
        fields=fields("广州", world.hq, provinces=["广东省", "广西壮族自治区"], cities=["广州市"]),
    )
    assert gz.code == "X5" and gz.provinces == ["广东", "广西"] and gz.cities == ["广州"]
    with pytest.raises(PermissionDenied):
        service.create_provider(
            session=db,
            actor=make_user(db, "channel_specialist"),
            code="X6",
            level="city",
            fields=fields("x", world.hq),
        )
    codes = [n.provider.code for n in service.provider_tree(session=db, actor=admin)]
    assert codes.index(world.cd.code) < codes.index(world.px.code)


def test_regions_defaults_edit_and_lookup(db: Session, world: World) -> None:
    service.install_default_regions(session=db, actor=world.admin)
    assert service.region_for_province(db, "四川省").code == "southwest"  # type: ignore[union-attr]
    assert service.region_for_province(db, "北京").code == "north"  # type: ignore[union-attr]
    assert service.region_for_province(db, "新疆") is None
    assert "新疆" in service.unassigned_provinces(db)
    reviewer = make_user(db, "user_mgmt_reviewer")
    region = service.set_region(
        session=db,
        actor=world.admin,
        code="north",
        provinces=["北京", "天津", "新疆维吾尔自治区"],
        reviewer_id=reviewer.id,
    )
    assert region.provinces == ["北京", "天津", "新疆"] and region.reviewer_id == reviewer.id
    assert service.region_for_province(db, "新疆").code == "north"  # type: ignore[union-attr]
    with pytest.raises(Conflict) as clash:
        service.set_region(session=db, actor=world.admin, code="east", provinces=["上海", "北京"])
    assert "北京" in str(clash.value)


def test_outside_region(db: Session, world: World) -> None:
    assert service.is_outside_region(world.cd, "北京", "北京")
    assert not service.is_outside_region(world.cd, "四川省", "成都市")
    assert service.is_outside_region(world.cd, "四川", "绵阳")
    # a county provider inherits its city provider's provinces
    assert not service.is_outside_region(world.px, "四川", "成都")
    assert service.is_outside_region(world.px, "北京", "成都")
    assert not service.is_outside_region(world.bj, "北京", "朝阳")
    assert not service.is_outside_region(world.hq, "新疆", "乌鲁木齐")
