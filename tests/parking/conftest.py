"""One-card rows made directly (no dependency on the access or cards services)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest
from sqlalchemy.orm import Session

from cardops.access.models import AccessGroup, AccessGroupDoor, Building, Door, Property, Unit
from cardops.auth.models import User
from cardops.cards.models import Card
from cardops.parking.service import Upload
from cardops.parties.models import Person
from tests.factories import make_user

_seq = itertools.count(1)
PDF = b"%PDF-1.4\n% placeholder\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
ALL_UPLOADS = ("id_copy", "driving_licence", "vehicle_licence", "insurance_policy", "agreement")


@dataclass
class Estate:
    property: Property
    building: Building
    unit: Unit
    gate: Door
    parking_group: AccessGroup


def make_estate(db: Session) -> Estate:
    n = next(_seq)
    prop = Property(code=f"PK{n}", name=f"Test estate {n}", card_policy={})
    db.add(prop)
    db.flush()
    building = Building(property_id=prop.id, code="1", name="Building 1")
    db.add(building)
    db.flush()
    unit = Unit(building_id=building.id, code="1-101")
    gate = Door(code=f"GATE-{n}", name="Car park gate", kind="carpark_gate", property_id=prop.id)
    db.add_all([unit, gate])
    db.flush()
    group = AccessGroup(property_id=prop.id, code="PARKING", name="Car park")
    db.add(group)
    db.flush()
    db.add(AccessGroupDoor(group_id=group.id, door_id=gate.id))
    db.flush()
    return Estate(prop, building, unit, gate, group)


def make_person(db: Session, name: str = "王芳") -> Person:
    person = Person(name=name, notes="")
    db.add(person)
    db.flush()
    return person


def make_card(
    db: Session,
    estate: Estate,
    person: Person | None,
    *,
    kind: str = "owner",
    state: str = "active",
) -> Card:
    n = next(_seq)
    card = Card(
        number=f"T{n:07d}",
        property_id=estate.property.id,
        state=state,
        holder_kind=kind,
        person_id=person.id if person else None,
        unit_id=estate.unit.id,
    )
    db.add(card)
    db.flush()
    return card


def uploads(*codes: str) -> dict[str, Upload]:
    return {code: Upload(f"{code}.pdf", PDF + code.encode(), "application/pdf") for code in codes}


@pytest.fixture
def estate(db: Session) -> Estate:
    return make_estate(db)


@pytest.fixture
def clerk(db: Session) -> User:
    return make_user(db, "front_desk_clerk")
