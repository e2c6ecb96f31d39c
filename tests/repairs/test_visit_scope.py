"""Field visits follow the provider scope, and the console books a technician."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session

from cardops.channel import service as channel
from cardops.channel.models import Provider
from cardops.core.errors import CardopsError, NotFound
from cardops.merchants.models import Merchant
from cardops.repairs import service
from cardops.repairs.models import FieldVisit
from tests.factories import ConsoleClient, make_user
from tests.repairs.conftest import World


def _provider_staff(db: Session, provider: Provider) -> object:
    admin = make_user(db, "sysadmin")
    user = make_user(db, "after_sales_specialist")
    channel.link_user(session=db, actor=admin, user_id=user.id, provider_id=provider.id)
    return user


def test_provider_staff_see_only_visits_of_their_merchants(db: Session, world: World) -> None:
    w = world
    other = Provider(code=f"{w.provider.code}-X", name="另一服务商", level="city")
    db.add(other)
    db.flush()
    foreign = Merchant(name="别家商户", kind="individual", state="approved", provider_id=other.id)
    db.add(foreign)
    db.flush()
    ours = service.schedule_visit(
        session=db, actor=w.after_sales, mode="on_call", merchant_id=w.merchant.id
    )
    theirs = service.schedule_visit(
        session=db, actor=w.after_sales, mode="on_call", merchant_id=foreign.id
    )
    staff = _provider_staff(db, w.provider)
    listed = {v.id for v in service.list_visits(session=db, actor=staff)}  # type: ignore[arg-type]
    assert ours.id in listed and theirs.id not in listed
    assert service.get_visit(session=db, visit_id=ours.id, actor=staff).id == ours.id  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        service.get_visit(session=db, visit_id=theirs.id, actor=staff)  # type: ignore[arg-type]
    # nor can they book a visit to the other provider's merchant
    with pytest.raises(CardopsError) as err:
        service.schedule_visit(
            session=db,
            actor=staff,  # type: ignore[arg-type]
            mode="on_call",
            merchant_id=foreign.id,
        )
    fields = [f for f, _ in err.value.errors] if err.value.errors else [err.value.field]
    assert "merchant_id" in fields
    # HQ staff see both
    every = {v.id for v in service.list_visits(session=db, actor=w.after_sales)}
    assert {ours.id, theirs.id} <= every


def test_console_books_a_visit_with_a_technician(app: FastAPI, db: Session, world: World) -> None:
    w = world
    clerk = ConsoleClient(app, db, w.after_sales)
    form = clerk.get("/visits/new")
    assert form.status_code == 200
    assert f'value="{w.technician.id}"' in form.text  # the technician is offered
    assert f'value="{w.agent.id}"' not in form.text  # a call agent is not
    booked = clerk.post(
        "/visits/new",
        {
            "mode": "on_call",
            "merchant_id": str(w.merchant.id),
            "technician_id": str(w.technician.id),
            "service_type": "repair",
            "warranty": "in",
            "problem": "屏幕不亮",
        },
    )
    assert booked.status_code == 303, booked.text
    visit_id = int(booked.headers["location"].rsplit("/", 1)[1])
    db.expire_all()
    visit = db.get(FieldVisit, visit_id)
    assert visit is not None and visit.technician_id == w.technician.id
    page = clerk.get(f"/visits/{visit_id}")
    assert w.technician.display_name in page.text
    # the technician sees the visit they are sent on
    assert visit_id in {v.id for v in service.list_visits(session=db, actor=w.technician)}
    # a made-up technician is refused on the field
    bad = clerk.post(
        "/visits/new",
        {
            "mode": "on_call",
            "merchant_id": str(w.merchant.id),
            "technician_id": "99999999",
            "service_type": "repair",
            "warranty": "in",
        },
    )
    assert bad.status_code == 422
    assert "technician_id" in bad.text
