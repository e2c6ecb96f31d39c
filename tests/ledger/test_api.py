"""REST API of the ledger and receipts."""

from __future__ import annotations

import io

from fastapi.testclient import TestClient
from pypdf import PdfReader
from sqlalchemy.orm import Session

from cardops.ledger.chart import CARD_FEE_INCOME, CASH, DEPOSITS_HELD
from tests.factories import api_headers


def _posting(lines: list[tuple[str, int]], **extra: object) -> dict[str, object]:
    return {
        "description": "API test",
        "lines": [{"account": a, "amount": n} for a, n in lines],
        **extra,
    }


def test_unbalanced_posting_is_422_naming_lines(client: TestClient, db: Session) -> None:
    headers = api_headers(db, "finance_manager")
    response = client.post(
        "/api/v1/ledger/postings",
        json=_posting([(CASH, 1000), (CARD_FEE_INCOME, -900)]),
        headers=headers,
    )
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["errors"][0]["field"] == "lines"
    assert "1.00" in body["detail"]
    single = client.post("/api/v1/ledger/postings", json=_posting([(CASH, 1000)]), headers=headers)
    assert single.status_code == 422
    assert single.json()["errors"][0]["field"] == "lines"


def test_balanced_posting_changes_the_derived_balance(client: TestClient, db: Session) -> None:
    headers = api_headers(db, "finance_manager")
    before = client.get(f"/api/v1/ledger/accounts/{CASH}/balance", headers=headers).json()
    response = client.post(
        "/api/v1/ledger/postings",
        json=_posting([(CASH, 1250), (CARD_FEE_INCOME, -1250)], idempotency_key="api-1"),
        headers=headers,
    )
    assert response.status_code == 201, response.text
    posting = response.json()
    assert posting["number"].startswith("JV")
    assert [line["amount"] for line in posting["lines"]] == [1250, -1250]
    after = client.get(f"/api/v1/ledger/accounts/{CASH}/balance", headers=headers).json()
    assert after["balance"] == before["balance"] + 1250
    replay = client.post(
        "/api/v1/ledger/postings",
        json=_posting([(CASH, 1250), (CARD_FEE_INCOME, -1250)], idempotency_key="api-1"),
        headers=headers,
    )
    assert replay.json()["id"] == posting["id"]
    statement = client.get(f"/api/v1/ledger/accounts/{CASH}/statement", headers=headers).json()
    assert statement["closing_balance"] == after["balance"]
    assert statement["lines"][-1]["balance"] == after["balance"]

    reverse = client.post(
        f"/api/v1/ledger/postings/{posting['id']}/reverse",
        json={"reason": "entered by mistake"},
        headers=headers,
    )
    assert reverse.status_code == 201, reverse.text
    assert reverse.json()["reversal_of"] == posting["number"]
    again = client.post(
        f"/api/v1/ledger/postings/{posting['id']}/reverse", json={"reason": "x"}, headers=headers
    )
    assert again.status_code == 409
    final = client.get(f"/api/v1/ledger/accounts/{CASH}/balance", headers=headers).json()
    assert final["balance"] == before["balance"]

    trial = client.get("/api/v1/ledger/trial-balance", headers=headers).json()
    assert trial["balanced"] is True


def test_accounts_api(client: TestClient, db: Session) -> None:
    headers = api_headers(db, "finance_manager")
    created = client.post(
        "/api/v1/ledger/accounts",
        json={"code": "1011", "name_en": "Till 3", "name_zh": "三号收银台", "type": "asset"},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    assert created.json()["currency"] == "CNY"
    taken = client.post(
        "/api/v1/ledger/accounts",
        json={"code": "1011", "name_en": "x", "name_zh": "x", "type": "asset"},
        headers=headers,
    )
    assert taken.status_code == 409
    listed = client.get("/api/v1/ledger/accounts", params={"q": "1011"}, headers=headers).json()
    assert [a["code"] for a in listed] == ["1011"]
    assert client.get("/api/v1/ledger/accounts/nope", headers=headers).status_code == 404


def test_permissions(client: TestClient, db: Session) -> None:
    clerk = api_headers(db, "front_desk_clerk")
    analyst = api_headers(db, "data_analyst")
    assert client.get("/api/v1/ledger/accounts", headers=clerk).status_code == 403
    assert client.get("/api/v1/ledger/accounts", headers=analyst).status_code == 200
    response = client.post(
        "/api/v1/ledger/postings",
        json=_posting([(CASH, 100), (CARD_FEE_INCOME, -100)]),
        headers=analyst,
    )
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    response = client.post(
        "/api/v1/ledger/accounts",
        json={"code": "1012", "name_en": "x", "name_zh": "x", "type": "asset"},
        headers=api_headers(db, "cashier"),
    )
    assert response.status_code == 403
    payment = {
        "payer_name": "王芳",
        "items": [{"item": "工本费", "amount": 2000}],
        "method": "cash",
        "credit_account": CARD_FEE_INCOME,
    }
    assert client.post("/api/v1/receipts", json=payment, headers=analyst).status_code == 403
    assert client.post("/api/v1/receipts", json=payment, headers=clerk).status_code == 201


def test_receipt_flow(client: TestClient, db: Session) -> None:
    clerk = api_headers(db, "front_desk_clerk")
    finance = api_headers(db, "finance_manager")
    response = client.post(
        "/api/v1/receipts",
        json={
            "payer_name": "王芳",
            "payer_type": "person",
            "payer_id": 5,
            "items": [
                {"item": "工本费 Card fee", "amount": 2000, "account": CARD_FEE_INCOME},
                {"item": "押金 Deposit", "amount": 10000, "account": DEPOSITS_HELD},
            ],
            "method": "alipay",
            "reference": "card:5",
        },
        headers=clerk,
    )
    assert response.status_code == 201, response.text
    receipt = response.json()
    number = receipt["number"]
    assert receipt["amount"] == 12000
    assert receipt["amount_in_words"] == "壹佰贰拾元整"
    assert receipt["pdf_url"] == f"/api/v1/receipts/{number}/pdf"

    pdf = client.get(receipt["pdf_url"], headers=clerk)
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert number in PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()

    listed = client.get("/api/v1/receipts", params={"reference": "card:5"}, headers=clerk).json()
    assert [r["number"] for r in listed] == [number]

    assert (
        client.post(
            f"/api/v1/receipts/{number}/void", json={"reason": "x"}, headers=clerk
        ).status_code
        == 403
    )
    void = client.post(
        f"/api/v1/receipts/{number}/void", json={"reason": "wrong card"}, headers=finance
    )
    assert void.status_code == 200, void.text
    assert void.json()["voided_at"] is not None
    assert void.json()["void_posting"]
    again = client.post(f"/api/v1/receipts/{number}/void", json={"reason": "x"}, headers=finance)
    assert again.status_code == 409
    assert client.get("/api/v1/receipts/RC1999-000001", headers=clerk).status_code == 404


def test_bad_input_is_422_not_500(client: TestClient, db: Session) -> None:
    headers = api_headers(db, "finance_manager")
    cases = [
        _posting([(CASH, 10**16), (CARD_FEE_INCOME, -(10**16))]),
        {
            "description": "a\x00b",
            "lines": [{"account": CASH, "amount": 1}, {"account": CARD_FEE_INCOME, "amount": -1}],
        },
        _posting([(CASH, 100), ("a\x00", -100)]),
        {"description": "x" * 300, "lines": []},
    ]
    for body in cases:
        response = client.post("/api/v1/ledger/postings", json=body, headers=headers)
        assert response.status_code == 422, (body, response.text)
    response = client.post(
        "/api/v1/receipts",
        json={"payer_name": "x", "items": [{"item": "x", "amount": 0}], "method": "cash"},
        headers=headers,
    )
    assert response.status_code == 422
    response = client.post(
        "/api/v1/receipts",
        json={"payer_name": "x", "items": [{"item": "x", "amount": 100}], "method": "cash"},
        headers=headers,
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "credit_account"
    assert client.get(
        "/api/v1/ledger/postings/99999999999999999999", headers=headers
    ).status_code in (404, 422)
    assert client.get("/api/v1/ledger/accounts/%00/balance", headers=headers).status_code == 404
    response = client.get(
        f"/api/v1/ledger/accounts/{CASH}/statement", params={"since": "0001-01-01"}, headers=headers
    )
    assert response.status_code == 200
