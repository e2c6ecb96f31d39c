"""Console pages: ranges, issuing, registration, lookup (also public), flagged sales, points,
returns; errors are shown next to their fields and nothing is saved."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cardops.warranty import service
from cardops.warranty.models import CardAllocation, ServiceCard, WarrantyReturn
from tests.factories import ConsoleClient, console, field_error
from tests.warranty.conftest import PNG, World, number, register, stocked


def _count(db: Session, model: type) -> int:
    return db.execute(select(func.count()).select_from(model)).scalar_one()


def test_generate_and_issue_in_the_console(app: FastAPI, db: Session, world: World) -> None:
    admin = ConsoleClient(app, db, world.admin)
    made = admin.post(
        "/warranty/ranges", {"prefix": "KA", "width": "6", "start": "1", "count": "100"}
    )
    assert made.status_code == 303, made.text
    page = admin.get(made.headers["location"])
    assert service.format_number("KA", 6, 1) in page.text
    overlap = admin.post(
        "/warranty/ranges", {"prefix": "KA", "width": "6", "start": "50", "count": "10"}
    )
    assert overlap.status_code == 409 and field_error(overlap.text, "start")
    first, last = service.format_number("KA", 6, 1), service.format_number("KA", 6, 30)
    issued = admin.post(
        "/warranty/issue", {"first": first, "last": last, "provider_id": str(world.branch.id)}
    )
    assert issued.status_code == 303, issued.text
    before = _count(db, CardAllocation)
    bad = admin.post(
        "/warranty/issue",
        {"first": first, "last": last, "provider_id": str(world.other_dealer.id)},
    )
    assert bad.status_code == 422 and field_error(bad.text, "first")
    assert _count(db, CardAllocation) == before
    assert "郫县经销商" in admin.get("/warranty/issue").text


def test_register_in_the_console_with_errors_next_to_fields(
    app: FastAPI, db: Session, world: World
) -> None:
    stocked(db, world)
    clerk = console(app, db, "channel_specialist")
    form = {
        "number": number(2),
        "model_id": str(world.model.id),
        "buyer_name": "赵先生",
        "buyer_phone": "138-0013-8000",
        "province": "广东",
        "city": "深圳",
        "price": "350.00",
        "installer_id": str(world.installer.id),
        "sale_date": "2026-03-01",
    }
    done = clerk.post("/warranty/cards/new", form)
    assert done.status_code == 303, done.text
    card_page = clerk.get(done.headers["location"])
    assert 'data-flag="cross_region"' in card_page.text
    assert 'data-flag="below_floor"' in card_page.text
    cards = _count(db, ServiceCard)
    again = clerk.post("/warranty/cards/new", form)
    assert again.status_code == 409 and field_error(again.text, "number")
    bad = clerk.post("/warranty/cards/new", {**form, "number": number(3), "price": "12.345"})
    assert bad.status_code == 422 and field_error(bad.text, "price")
    assert _count(db, ServiceCard) == cards
    flagged = clerk.get("/warranty/flagged")
    assert number(2) in flagged.text
    points = clerk.get("/warranty/points?since=2020-01-01")
    assert "王师傅" in points.text
    statement = clerk.get(f"/warranty/points/{world.installer.id}?since=2020-01-01")
    assert 'id="statement-total">15<' in statement.text


def test_public_lookup_page_needs_no_sign_in(
    client: TestClient, app: FastAPI, db: Session, world: World
) -> None:
    stocked(db, world)
    card = register(db, world, 9)
    db.commit()
    page = client.get(f"/service-card?number={card.number}")
    assert page.status_code == 200
    assert 'data-genuine="yes"' in page.text and "成都分公司" in page.text
    assert card.buyer_phone not in page.text  # the public page does not show the buyer
    fake = client.get("/service-card?number=JD000000019")
    assert 'data-genuine="no"' in fake.text
    staff = console(app, db, "call_agent").get(f"/warranty/lookup?number={card.number}")
    assert staff.status_code == 200 and card.buyer_name in staff.text


def test_return_in_the_console_from_request_to_refund(
    app: FastAPI, db: Session, world: World
) -> None:
    stocked(db, world)
    card = register(db, world, 4)
    agent = console(app, db, "after_sales_specialist")
    form = {"card_number": card.number, "kind": "return", "reason": "quality"}
    before = _count(db, WarrantyReturn)
    missing = agent.post("/warranty/returns/new", form)
    assert missing.status_code == 422 and field_error(missing.text, "photos")
    assert _count(db, WarrantyReturn) == before
    created = agent.http.post(
        "/warranty/returns/new",
        data={**form, "csrf_token": agent.csrf, "shipping_cost": "12"},
        files=[("photos", ("crack.png", PNG, "image/png"))],
    )
    assert created.status_code == 303, created.text
    url = created.headers["location"]
    assert "crack.png" in agent.get(url).text
    for action in ("accept", "receive"):
        assert agent.post(f"{url}/{action}", {"note": "ok"}).status_code == 303
    done = agent.post(f"{url}/complete", {"payment_method": "wechat"})
    assert done.status_code == 303, done.text
    page = agent.get(url)
    assert 'data-event="completed"' in page.text
    assert "/ledger/postings/" in page.text
    listing = agent.get("/warranty/returns?state=completed")
    assert card.number in listing.text


def test_every_page_renders_in_both_languages(app: FastAPI, db: Session, world: World) -> None:
    stocked(db, world)
    card = register(db, world, 5)
    item = service.create_return(
        session=db,
        actor=world.admin,
        data=service.ReturnInput(
            card_number=card.number, kind="exchange", reason="non_quality", price_difference=-100
        ),
    )
    admin = ConsoleClient(app, db, world.admin)
    pages = [
        "/warranty/ranges",
        f"/warranty/ranges/{service.list_ranges(session=db, actor=world.admin)[0].card_range.id}",
        "/warranty/issue",
        "/warranty/cards/new",
        "/warranty/cards",
        f"/warranty/cards/{card.number}",
        "/warranty/lookup?number=" + card.number,
        "/warranty/flagged",
        "/warranty/points",
        "/warranty/returns",
        "/warranty/returns/new",
        f"/warranty/returns/{item.id}",
        "/warranty/settings",
    ]
    for lang in ("en", "zh_CN"):
        admin.http.cookies.set("cardops_lang", lang)
        for url in pages:
            response = admin.get(url)
            assert response.status_code == 200, (url, response.text[:500])
    assert (
        "售后服务卡" in admin.get("/warranty/ranges").text
        or "服务卡" in admin.get("/warranty/ranges").text
    )
