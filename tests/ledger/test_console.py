"""Console pages of the ledger and receipts."""

from __future__ import annotations

import re

from fastapi import FastAPI
from sqlalchemy.orm import Session

from cardops.ledger import service
from cardops.ledger.chart import CARD_FEE_INCOME, CASH, DEPOSITS_HELD
from tests.factories import console, field_error


def test_manual_posting_form_flow(app: FastAPI, db: Session) -> None:
    page = console(app, db, "finance_manager")
    assert page.get("/ledger/postings/new").status_code == 200
    cash_before = service.balance(db, CASH)
    form = {
        "description": "Till correction",
        "account_0": CASH,
        "debit_0": "12.50",
        "account_1": CARD_FEE_INCOME,
        "credit_1": "12.40",
    }
    response = page.post("/ledger/postings", form)
    assert response.status_code == 422
    assert field_error(response.text, "lines")
    assert "0.10" in response.text
    assert 'value="Till correction"' in response.text  # what the user typed is kept

    response = page.post("/ledger/postings", {**form, "credit_1": "12.345"})
    assert response.status_code == 422
    assert field_error(response.text, "credit_1")

    response = page.post("/ledger/postings", {**form, "credit_1": "12.50"})
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert re.fullmatch(r"/ledger/postings/\d+", location)
    assert service.balance(db, CASH) == cash_before + 1250
    detail = page.get(location)
    assert detail.status_code == 200
    assert "12.50" in detail.text
    assert 'id="reverse-form"' in detail.text

    response = page.post(f"{location}/reverse", {"reason": ""})
    assert response.status_code == 422
    assert field_error(response.text, "reason")
    response = page.post(f"{location}/reverse", {"reason": "typo"})
    assert response.status_code == 303
    assert service.balance(db, CASH) == cash_before


def test_accounts_and_trial_balance_pages(app: FastAPI, db: Session) -> None:
    page = console(app, db, "finance_manager")
    response = page.get("/ledger/accounts")
    assert response.status_code == 200
    assert f'data-account="{CASH}"' in response.text
    assert 'id="account-form"' in response.text
    response = page.post(
        "/ledger/accounts", {"code": "bad code", "name_en": "x", "name_zh": "x", "type": "asset"}
    )
    assert response.status_code == 422
    assert field_error(response.text, "code")
    response = page.post(
        "/ledger/accounts",
        {"code": "1013", "name_en": "Safe", "name_zh": "保险柜", "type": "asset"},
    )
    assert response.status_code == 303
    assert page.get("/ledger/accounts/1013").status_code == 200
    assert page.get(f"/ledger/accounts/{CASH}").status_code == 200
    response = page.get("/ledger/trial-balance")
    assert response.status_code == 200
    assert 'id="trial-balance"' in response.text
    assert page.get("/ledger/postings").status_code == 200


def test_take_a_payment_print_and_void(app: FastAPI, db: Session) -> None:
    clerk = console(app, db, "front_desk_clerk")
    assert clerk.get("/receipts/new").status_code == 200
    response = clerk.post(
        "/receipts",
        {
            "payer_name": "赵敏",
            "method": "cash",
            "item_0": "工本费",
            "amount_0": "abc",
            "account_0": CARD_FEE_INCOME,
        },
    )
    assert response.status_code == 422
    assert field_error(response.text, "amount_0")
    assert 'value="赵敏"' in response.text
    response = clerk.post(
        "/receipts",
        {
            "payer_name": "赵敏",
            "method": "cash",
            "item_0": "工本费",
            "amount_0": "20",
            "account_0": CARD_FEE_INCOME,
            "item_1": "押金",
            "amount_1": "50.00",
            "account_1": DEPOSITS_HELD,
        },
    )
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    number = location.rsplit("/", 1)[-1]
    assert re.fullmatch(r"RC\d{4}-\d{6}", number)
    detail = clerk.get(location)
    assert detail.status_code == 200
    assert f'href="/receipts/{number}/pdf"' in detail.text
    assert "柒拾元整" in detail.text
    assert 'id="void-form"' not in detail.text  # the clerk cannot void
    pdf = clerk.get(f"/receipts/{number}/pdf")
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert number in clerk.get("/receipts").text

    finance = console(app, db, "finance_manager")
    assert 'id="void-form"' in finance.get(location).text
    response = finance.post(f"/receipts/{number}/void", {"reason": "收错了"})
    assert response.status_code == 303
    assert service.get_receipt(db, number).is_voided
    response = finance.post(f"/receipts/{number}/void", {"reason": "again"})
    assert response.status_code == 409


def test_pages_refuse_roles_without_the_permission(app: FastAPI, db: Session) -> None:
    clerk = console(app, db, "front_desk_clerk")
    assert clerk.get("/ledger/accounts").status_code == 403
    assert clerk.get("/ledger/postings/new").status_code == 403
    analyst = console(app, db, "data_analyst")
    assert analyst.get("/ledger/accounts").status_code == 200
    assert analyst.get("/ledger/postings/new").status_code == 403
    response = analyst.post(
        "/ledger/postings",
        {
            "description": "x",
            "account_0": CASH,
            "debit_0": "1",
            "account_1": CARD_FEE_INCOME,
            "credit_1": "1",
        },
    )
    assert response.status_code == 403
    assert analyst.get("/receipts/new").status_code == 403
    assert analyst.get("/receipts").status_code == 403
    cashier = console(app, db, "cashier")
    assert cashier.post("/ledger/accounts", {"code": "1014"}).status_code == 403
