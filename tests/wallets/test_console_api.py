"""Wallets in the console and over the API."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from cardops.wallets import service
from tests.factories import api_headers, console, field_error, make_user
from tests.parking.conftest import make_card, make_estate, make_person


def test_console_enable_and_top_up(app: FastAPI, db: Session) -> None:
    card = make_card(db, make_estate(db), make_person(db, "周敏"))
    page = console(app, db, "front_desk_clerk")
    found = page.get(f"/wallets?card={card.number}")
    assert found.status_code == 303 and found.headers["location"] == f"/wallets/{card.number}"
    assert page.get("/wallets?card=NOPE").status_code == 404
    wallet = page.get(f"/wallets/{card.number}")
    assert 'id="enable-form"' in wallet.text and 'id="topup-form"' not in wallet.text
    assert page.post(f"/wallets/{card.number}/enable").status_code == 303

    for amount in ("0", "-5", "abc"):
        response = page.post(f"/wallets/{card.number}/top-up", {"amount": amount, "method": "cash"})
        assert response.status_code == 422, amount
        assert field_error(response.text, "amount")
    assert service.balance(db, card) == 0
    response = page.post(f"/wallets/{card.number}/top-up", {"amount": "200.50", "method": "wechat"})
    assert response.status_code == 303
    wallet = page.get(f"/wallets/{card.number}")
    assert "200.50" in wallet.text and 'id="wallet-statement"' in wallet.text
    assert service.balance(db, card) == 20050

    card.state = "lost"
    db.flush()
    response = page.post(f"/wallets/{card.number}/top-up", {"amount": "10", "method": "cash"})
    assert response.status_code == 409
    assert field_error(response.text, "card_number")
    assert service.balance(db, card) == 20050


def test_console_permission_refused(app: FastAPI, db: Session) -> None:
    card = make_card(db, make_estate(db), make_person(db))
    assert console(app, db, "picker").get("/wallets").status_code == 403
    reader = console(app, db, "finance_manager")
    assert reader.get(f"/wallets/{card.number}").status_code == 200
    response = reader.post(f"/wallets/{card.number}/top-up", {"amount": "10"})
    assert response.status_code == 403


def test_api_top_up_balance_statement_debit_reverse(client: TestClient, db: Session) -> None:
    card = make_card(db, make_estate(db), make_person(db))
    desk = api_headers(db, "front_desk_clerk")
    base = f"/api/v1/wallets/{card.number}"
    assert client.post(f"{base}/enable", headers=desk).json()["enabled"] is True
    response = client.post(f"{base}/top-up", json={"amount": 0}, headers=desk)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "amount"
    response = client.post(f"{base}/top-up", json={"amount": 10000, "method": "cash"}, headers=desk)
    assert response.status_code == 201 and response.json()["balance"] == 10000
    assert client.get(base, headers=desk).json()["balance"] == 10000

    gateway = api_headers(db, "sysadmin")
    pay = {"amount": 2500, "reference": "T01/000123", "idempotency_key": "T01-000123-20261123"}
    response = client.post(f"{base}/debit", json=pay, headers=desk)
    assert response.status_code == 403  # the desk cannot take wallet payments
    first = client.post(f"{base}/debit", json=pay, headers=gateway).json()
    assert (first["approved"], first["reason"], first["balance_after"]) == (True, "ok", 7500)
    again = client.post(f"{base}/debit", json=pay, headers=gateway).json()
    assert (again["approved"], again["reason"], again["balance_after"]) == (True, "duplicate", 7500)
    big = client.post(
        f"{base}/debit", json={**pay, "amount": 999999, "idempotency_key": "x2"}, headers=gateway
    ).json()
    assert (big["approved"], big["reason"]) == (False, "insufficient_funds")
    wrong_account = client.post(
        f"{base}/debit",
        json={**pay, "idempotency_key": "x3", "merchant_account": "1001"},
        headers=gateway,
    )
    assert wrong_account.status_code == 422

    statement = client.get(f"{base}/statement", headers=desk).json()
    assert [e["amount"] for e in statement["entries"]] == [10000, -2500]
    back = client.post(
        f"{base}/reverse", json={"idempotency_key": pay["idempotency_key"]}, headers=gateway
    ).json()
    assert (back["approved"], back["balance_after"]) == (True, 10000)
    assert client.get(f"{base}/nope", headers=desk).status_code == 404
    assert client.get("/api/v1/wallets/NOPE", headers=desk).status_code == 404
    unknown = client.post("/api/v1/wallets/NOPE/debit", json=pay, headers=gateway).json()
    assert unknown["reason"] in ("unknown_card", "duplicate")


def test_api_permission_refused(client: TestClient, db: Session) -> None:
    card = make_card(db, make_estate(db), make_person(db))
    headers = api_headers(db, "picker")
    assert client.get(f"/api/v1/wallets/{card.number}", headers=headers).status_code == 403
    make_user(db, "cashier")
    assert client.get(f"/api/v1/wallets/{card.number}").status_code == 401
