"""Default grants by holder kind, and a tenant's extra doors only after approval."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from cardops.access import service
from cardops.access.engine import decide
from cardops.access.models import Property
from cardops.approvals import service as approvals
from cardops.approvals.demo import install_defaults
from cardops.auth import service as auth
from cardops.core.errors import NotFound, PermissionDenied, ValidationFailed
from tests.access.conftest import make_card
from tests.factories import make_user


def _codes(pairs: list) -> list[tuple[str, str | None]]:  # type: ignore[type-arg]
    return [(g.code, s.code if s else None) for g, s in pairs]


def test_defaults_by_holder_kind(db: Session, sunny: Property) -> None:
    unit_1 = service.find_unit(db, sunny.id, "1-101")
    unit_2 = service.find_unit(db, sunny.id, "2-102")
    shop = service.find_unit(db, sunny.id, "S-01")
    for kind in ("owner", "family", "relative", "nanny", "tenant"):
        assert _codes(service.default_grants_for(db, sunny, kind, unit_1)) == [("B1", "ALWAYS")]
    assert _codes(service.default_grants_for(db, "SUNNY", "tenant", unit_2)) == [("B2", "ALWAYS")]
    assert _codes(service.default_grants_for(db, sunny, "merchant", shop)) == [("B2", "ALWAYS")]
    assert _codes(service.default_grants_for(db, sunny, "renovation", None)) == [
        ("RENO", "DAYTIME")
    ]
    for kind in ("staff", "cleaner", "lift_maintainer"):
        assert _codes(service.default_grants_for(db, sunny, kind, None)) == [("STAFF", "WORKHOURS")]
    with pytest.raises(ValidationFailed) as no_unit:
        service.default_grants_for(db, sunny, "owner", None)
    assert no_unit.value.field == "unit_id"
    with pytest.raises(ValidationFailed):
        service.default_grants_for(db, sunny, "alien", None)


def test_tenant_gets_more_doors_only_after_approval(db: Session, sunny: Property) -> None:
    system = auth.system_user(db)
    install_defaults(db, system)
    clerk = make_user(db, "front_desk_clerk")
    supervisor = make_user(db, "cs_supervisor")
    card = make_card(db, sunny, "TEN-1", holder_kind="tenant", unit="1-101", grants=[])
    service.grant(session=db, actor=clerk, card=card, group="B1", schedule="ALWAYS")
    with pytest.raises(ValidationFailed) as refused:
        service.grant(session=db, actor=clerk, card=card, group="B2", schedule="ALWAYS")
    assert "approval" in str(refused.value)
    db.commit()
    assert decide("TEN-1", "UNIT-1").allowed
    assert decide("TEN-1", "UNIT-2").reason == "door_not_in_group"

    request = service.request_extra_grant(
        session=db,
        actor=clerk,
        card=card,
        group="B2",
        schedule="ALWAYS",
        reason="works in building 2",
    )
    db.commit()
    assert decide("TEN-1", "UNIT-2").reason == "door_not_in_group"  # not before approval
    approvals.approve(session=db, actor=supervisor, request_id=request.id, comment="ok")
    db.commit()
    assert decide("TEN-1", "UNIT-2").allowed
    assert sorted(g.code for _, g, _ in service.grant_rows(db, card)) == ["B1", "B2"]


def test_granting_needs_the_permission(db: Session, sunny: Property) -> None:
    card = make_card(db, sunny, "PERM-1", grants=[])
    analyst = make_user(db, "data_analyst")
    with pytest.raises(PermissionDenied):
        service.grant(session=db, actor=analyst, card=card, group="B1")


def test_set_grants_replaces_them(db: Session, sunny: Property) -> None:
    system = auth.system_user(db)
    card = make_card(db, sunny, "SET-1", grants=[("B1", "ALWAYS")])
    service.set_grants(
        session=db, actor=system, card=card, grants=[("B2", None), ("RENO", "DAYTIME")]
    )
    db.commit()
    assert sorted((g.code, s.code if s else None) for _, g, s in service.grant_rows(db, card)) == [
        ("B2", None),
        ("RENO", "DAYTIME"),
    ]
    assert decide("SET-1", "LOBBY-1").reason == "door_not_in_group"
    assert decide("SET-1", "LOBBY-2").allowed
    with pytest.raises(NotFound):  # a group this property does not have
        service.set_grants(session=db, actor=system, card=card, grants=[("NOPE", None)])
