"""Fixtures of the cards tests: the SUNNY topology, default approval chains, blank office
cards and people with their evidence on file."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from cardops.access import demo as access_demo
from cardops.access import service as access
from cardops.access.engine import DecisionEngine, reset_engine
from cardops.access.events import event_log
from cardops.access.models import Property, Unit
from cardops.approvals.demo import install_defaults
from cardops.auth import service as auth
from cardops.auth.models import User
from cardops.cards import service
from cardops.cards.demo import PNG, resident_id
from cardops.cards.models import Card
from cardops.core.demo_loader import DemoContext
from cardops.parties import service as parties
from cardops.parties.models import Organisation, Person
from tests.factories import make_user


@pytest.fixture(autouse=True)
def fresh_engine() -> Iterator[DecisionEngine]:
    event_log.discard()
    engine = reset_engine(DecisionEngine(poll_interval=3600))
    yield engine
    event_log.discard()
    reset_engine()


@dataclass
class Desk:
    """The SUNNY property with people and the users who work its front desk."""

    db: Session
    prop: Property
    admin: User
    clerk: User
    supervisor: User
    manager: User
    cashier: User
    seq: int = 0
    numbers: list[str] = field(default_factory=list)

    def unit(self, code: str) -> Unit:
        found = access.find_unit(self.db, self.prop.id, code)
        assert found is not None
        return found

    def person(
        self,
        name: str = "测试人",
        *,
        docs: tuple[str, ...] = ("id_front", "photo"),
        mobile: str | None = None,
        email: str | None = None,
        owner_of: str | None = None,
    ) -> Person:
        self.seq += 1
        person = parties.create_person(
            session=self.db,
            actor=self.admin,
            name=name,
            id_number=resident_id("19800101", 500 + self.seq),
            mobile=mobile,
            email=email,
        )
        for doc_type in docs:
            parties.upload_document(
                session=self.db,
                actor=self.admin,
                owner_type="person",
                owner_id=person.id,
                doc_type=doc_type,
                filename=f"{doc_type}.png",
                data=PNG,
            )
        if owner_of:
            access.set_unit_owner(
                session=self.db,
                actor=self.admin,
                unit_id=self.unit(owner_of).id,
                owner_person_id=person.id,
            )
        self.db.flush()
        return person

    def merchant(self) -> Organisation:
        org = parties.create_organisation(
            session=self.db, actor=self.admin, name="测试便利店", kind="merchant"
        )
        parties.upload_document(
            session=self.db,
            actor=self.admin,
            owner_type="organisation",
            owner_id=org.id,
            doc_type="application_form",
            filename="application.png",
            data=PNG,
        )
        return org

    def blank(self) -> str:
        return self.numbers.pop(0)

    def issue(self, kind: str, person: Person, unit: str | None = None, **kwargs: object) -> Card:
        actor = kwargs.pop("actor", self.clerk)
        return service.issue_card(
            session=self.db,
            actor=actor,  # type: ignore[arg-type]
            card_number=self.blank(),
            holder_kind=kind,
            person_id=person.id,
            unit_id=self.unit(unit).id if unit else None,
            **kwargs,  # type: ignore[arg-type]
        )

    def approved(self, kind: str, person: Person, **kwargs: object) -> int:
        from cardops.approvals import service as approvals

        request = service.request_card_approval(
            session=self.db,
            actor=self.clerk,
            holder_kind=kind,
            person_id=person.id,
            property_id=self.prop.id,
            **kwargs,  # type: ignore[arg-type]
        )
        approvals.approve(session=self.db, actor=self.manager, request_id=request.id)
        return request.id

    def confirmation(self) -> service.OwnerConfirmation:
        return service.OwnerConfirmation(phoned_at=datetime.now(UTC) - timedelta(minutes=5))


def stock(db: Session, admin: User, prop: Property, first: str, quantity: int) -> list[str]:
    service.receive_batch(
        session=db,
        actor=admin,
        number=f"B-{first}",
        supplier="test",
        quantity=quantity,
        first_number=first,
    )
    req = service.request_cards(session=db, actor=admin, property_id=prop.id, quantity=quantity)
    return [
        c.number for c in service.fulfil_requisition(session=db, actor=admin, requisition_id=req.id)
    ]


@pytest.fixture
def desk(db: Session) -> Desk:
    system = auth.system_user(db)
    admin = make_user(db, "sysadmin")
    install_defaults(db, admin)
    access_demo.load(db, DemoContext(password="x", admin=system))
    prop = access.find_property(db, "SUNNY")
    assert prop is not None
    numbers = stock(db, admin, prop, "T000001", 30)
    db.flush()
    return Desk(
        db=db,
        prop=prop,
        admin=admin,
        clerk=make_user(db, "front_desk_clerk"),
        supervisor=make_user(db, "cs_supervisor"),
        manager=make_user(db, "department_manager"),
        cashier=make_user(db, "cashier"),
        numbers=numbers,
    )
