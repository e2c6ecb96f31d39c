"""Parking in the console and over the API."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cardops.core.clock import freeze
from cardops.ledger import service as ledger
from cardops.parking.models import ParkingPermit
from tests.factories import api_headers, console, field_error
from tests.parking.conftest import ALL_UPLOADS, PDF, Estate, make_card, make_person


def _files(*codes: str) -> dict[str, tuple[str, bytes, str]]:
    return {f"doc_{c}": (f"{c}.pdf", PDF + c.encode(), "application/pdf") for c in codes}


def _count(db: Session) -> int:
    return db.execute(select(func.count()).select_from(ParkingPermit)).scalar_one()


def test_console_issue_top_up_and_end(app: FastAPI, db: Session, estate: Estate) -> None:
    freeze(datetime(2026, 6, 9, 2, 0, tzinfo=UTC))
    card = make_card(db, estate, make_person(db, "赵强"))
    page = console(app, db, "front_desk_clerk")
    form = page.get(f"/parking/new?card={card.number}")
    assert form.status_code == 200
    assert 'data-requirement="driving_licence"' in form.text and "赵强" in form.text

    values = {
        "card_number": card.number,
        "plate": "川A 12345",
        "space": "B2-018",
        "kind": "monthly",
        "months": "1",
        "monthly_fee": "300",
        "payment_method": "cash",
    }
    before = _count(db)
    response = page.post("/parking/new", values, files=_files("id_copy", "agreement"))
    assert response.status_code == 422
    assert field_error(response.text, "doc_driving_licence")
    assert field_error(response.text, "doc_insurance_policy")
    assert field_error(response.text, "doc_id_copy") is None
    assert 'value="川A 12345"' in response.text  # what the clerk typed is kept
    assert _count(db) == before

    response = page.post(
        "/parking/new", {**values, "monthly_fee": "-3"}, files=_files(*ALL_UPLOADS)
    )
    assert response.status_code == 422 and field_error(response.text, "monthly_fee")

    response = page.post("/parking/new", values, files=_files(*ALL_UPLOADS))
    assert response.status_code == 303, response.text
    url = response.headers["location"]
    detail = page.get(url)
    assert detail.status_code == 200
    assert "川A12345" in detail.text and "2026-07-08" in detail.text
    permit = db.execute(select(ParkingPermit).where(ParkingPermit.card_id == card.id)).scalar_one()
    receipt_no = permit.periods[0].receipt_no
    assert receipt_no and receipt_no in detail.text
    assert 'id="documents-table"' in detail.text and "driving_licence.pdf" in detail.text

    response = page.post(f"{url}/top-up", {"months": "0", "payment_method": "cash"})
    assert response.status_code == 422 and field_error(response.text, "months")
    response = page.post(f"{url}/top-up", {"months": "2", "payment_method": "wechat"})
    assert response.status_code == 303
    assert "2026-09-08" in page.get(url).text

    response = page.post(f"{url}/end", {"reason": "lease ended", "confirmation": "phone"})
    assert response.status_code == 422 and field_error(response.text, "owner_confirmed")
    assert 'value="lease ended"' in response.text
    db.refresh(permit)
    assert permit.state == "active"
    response = page.post(
        f"{url}/end", {"reason": "lease ended", "owner_confirmed": "1", "confirmation": "phone"}
    )
    assert response.status_code == 303
    db.refresh(permit)
    assert permit.state == "ended"

    listing = page.get("/parking?state=ended")
    assert listing.status_code == 200 and f'data-permit="{permit.number}"' in listing.text


def test_list_highlights_permits_ending_soon(app: FastAPI, db: Session, estate: Estate) -> None:
    freeze(datetime(2026, 6, 9, 2, 0, tzinfo=UTC))
    card = make_card(db, estate, make_person(db))
    page = console(app, db, "front_desk_clerk")
    values = {"card_number": card.number, "plate": "粤BD12345", "months": "1", "monthly_fee": "0"}
    assert page.post("/parking/new", values, files=_files(*ALL_UPLOADS)).status_code == 303
    freeze(datetime(2026, 7, 3, 2, 0, tzinfo=UTC))
    listing = console(app, db, "cashier").get("/parking")
    permit = db.execute(select(ParkingPermit).where(ParkingPermit.card_id == card.id)).scalar_one()
    assert f'data-expiring="{permit.number}"' in listing.text
    assert not permit.periods[0].receipt_no  # a fee of 0 takes no payment


def test_console_permission_refused(app: FastAPI, db: Session, estate: Estate) -> None:
    page = console(app, db, "data_analyst")
    assert page.get("/parking").status_code == 200
    assert page.get("/parking/new").status_code == 403
    assert page.post("/parking/new", {"card_number": "x"}).status_code == 403
    assert console(app, db, "picker").get("/parking").status_code == 403


def test_api_issue_top_up_end(client: TestClient, db: Session, estate: Estate) -> None:
    freeze(datetime(2026, 1, 31, 2, 0, tzinfo=UTC))
    card = make_card(db, estate, make_person(db), kind="tenant")
    headers = api_headers(db, "front_desk_clerk")
    docs = [
        {
            "requirement": code,
            "filename": f"{code}.pdf",
            "content_base64": base64.b64encode(PDF + code.encode()).decode(),
        }
        for code in ALL_UPLOADS
    ]
    body = {
        "card_number": card.number,
        "plate": "川A12345",
        "monthly_fee": 30000,
        "documents": docs,
    }
    response = client.post("/api/v1/parking/permits", json=body, headers=headers)
    assert response.status_code == 422
    problem = response.json()
    assert "lease" in problem["detail"].lower() or "租赁" in problem["detail"]
    assert any(e["field"] == "doc_lease_contract" for e in problem["errors"])

    lease = {
        "requirement": "lease_contract",
        "filename": "lease.pdf",
        "content_base64": base64.b64encode(PDF + b"lease").decode(),
    }
    response = client.post(
        "/api/v1/parking/permits", json={**body, "documents": [*docs, lease]}, headers=headers
    )
    assert response.status_code == 201, response.text
    permit = response.json()
    assert permit["valid_until"] == "2026-02-27" and permit["current"] is True
    assert permit["periods"][0]["receipt"]
    assert all(d["satisfied"] for d in permit["documents"])
    receipt = ledger.get_receipt(db, permit["periods"][0]["receipt"])
    assert receipt.amount == 30000

    number = permit["number"]
    response = client.post(
        f"/api/v1/parking/permits/{number}/top-up", json={"months": 1}, headers=headers
    )
    assert response.status_code == 200 and response.json()["valid_until"] == "2026-03-27"
    response = client.post(
        f"/api/v1/parking/permits/{number}/end",
        json={"reason": "moved out", "owner_confirmed": False},
        headers=headers,
    )
    assert response.status_code == 422
    response = client.post(
        f"/api/v1/parking/permits/{number}/end",
        json={"reason": "moved out", "owner_confirmed": True, "confirmation": "owner signed"},
        headers=headers,
    )
    assert response.status_code == 200 and response.json()["state"] == "ended"
    listing = client.get("/api/v1/parking/permits?state=ended", headers=headers)
    assert number in [p["number"] for p in listing.json()]
    assert client.get("/api/v1/parking/permits/NOPE", headers=headers).status_code == 404


def test_api_permission_refused(client: TestClient, db: Session, estate: Estate) -> None:
    card = make_card(db, estate, make_person(db))
    headers = api_headers(db, "data_analyst")
    body = {"card_number": card.number, "plate": "川A12345", "monthly_fee": 1}
    assert client.post("/api/v1/parking/permits", json=body, headers=headers).status_code == 403
    assert client.get("/api/v1/parking/permits").status_code == 401
