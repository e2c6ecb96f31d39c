"""Fixtures of the access tests: the SUNNY demo topology and cards inserted directly."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from cardops.access import demo, service
from cardops.access.credentials import touch_card
from cardops.access.engine import DecisionEngine, reset_engine
from cardops.access.events import event_log
from cardops.access.models import CardGrant, Property
from cardops.auth import service as auth
from cardops.cards.models import Card, card_class
from cardops.core.clock import today as local_today
from cardops.core.demo_loader import DemoContext


@pytest.fixture(autouse=True)
def fresh_engine() -> Iterator[DecisionEngine]:
    """A decision engine that starts from this test's database; no leftover log rows."""
    event_log.discard()
    engine = reset_engine(DecisionEngine(poll_interval=3600))
    yield engine
    event_log.discard()
    reset_engine()


@pytest.fixture
def sunny(db: Session) -> Property:
    system = auth.system_user(db)
    demo.load(db, DemoContext(password="x", admin=system))
    db.commit()
    prop = service.find_property(db, "SUNNY")
    assert prop is not None
    return prop


def make_card(
    db: Session,
    prop: Property,
    number: str,
    *,
    state: str = "active",
    holder_kind: str = "owner",
    unit: str | None = "1-101",
    grants: list[tuple[str, str | None]] | None = None,
    valid_from: date | None = None,
    valid_until: date | None = None,
    uid: str | None = None,
    wiegand: tuple[int, int] | None = None,
    person_id: int | None = None,
    commit: bool = True,
) -> Card:
    """A card row written directly (not through the cards service), with grants."""
    today = local_today()
    unit_obj = service.find_unit(db, prop.id, unit) if unit else None
    card = Card(
        number=number,
        uid=uid,
        wiegand_format=26 if wiegand else None,
        wiegand_facility=wiegand[0] if wiegand else None,
        wiegand_number=wiegand[1] if wiegand else None,
        property_id=prop.id,
        state=state,
        holder_kind=holder_kind,
        card_class=card_class(holder_kind),
        unit_id=unit_obj.id if unit_obj else None,
        person_id=person_id,
        valid_from=valid_from or today - timedelta(days=30),
        valid_until=valid_until or today + timedelta(days=365),
    )
    db.add(card)
    db.flush()
    for group_code, schedule_code in grants if grants is not None else [("B1", "ALWAYS")]:
        group = service.find_group(db, prop.id, group_code)
        schedule = service.find_schedule(db, prop.id, schedule_code) if schedule_code else None
        assert group is not None
        db.add(
            CardGrant(
                card_id=card.id,
                group_id=group.id,
                schedule_id=schedule.id if schedule else None,
            )
        )
    touch_card(db, card_id=card.id, property_id=prop.id, reason="test.card")
    if commit:
        db.commit()
    return card


def set_state(db: Session, card: Card, state: str, **changes: Any) -> None:
    """Change a card the way the cards service does: update, touch, commit."""
    card.state = state
    for key, value in changes.items():
        setattr(card, key, value)
    touch_card(db, card_id=card.id, property_id=card.property_id or 0, reason="test.changed")
    db.commit()
