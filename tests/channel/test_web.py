"""The channel API and console: the order flow over HTTP, scoping (404), permissions (403),
forms that keep what was typed."""

from __future__ import annotations

import io

from fastapi import FastAPI
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from pypdf import PdfReader
from sqlalchemy.orm import Session

from cardops.approvals import service as approvals
from cardops.channel import service
from tests.channel.conftest import ORDER_STEPS, World, add_units, staff
from tests.factories import ConsoleClient, api_headers, bearer, console, field_error, make_user


def test_api_order_flow_scoping_and_downloads(
    client: TestClient, db: Session, world: World
) -> None:
    cd_staff = staff(db, world, world.cd)
    cd = bearer(db, cd_staff)
    response = client.post(
        "/api/v1/channel/orders",
        json={"lines": [{"model_id": world.model.id, "quantity": 2}], "note": "API"},
        headers=cd,
    )
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["kind"] == "to_hq" and order["buyer"] == world.cd.code and order["total"] == 60000
    oid = order["id"]
    response = client.post(f"/api/v1/channel/orders/{oid}/submit", headers=cd)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "payment_slip"
    response = client.post(
        f"/api/v1/channel/orders/{oid}/payment-slip",
        files={"file": ("slip.png", b"\x89PNG slip", "image/png")},
        data={"paid_amount": "60000", "reference": "BANK-9"},
        headers=cd,
    )
    assert response.status_code == 200, response.text
    assert client.post(f"/api/v1/channel/orders/{oid}/submit", headers=cd).json()["state"] == (
        "approving"
    )

    # another provider's staff and a county user do not see it at all
    px = bearer(db, staff(db, world, world.px))
    assert client.get(f"/api/v1/channel/orders/{oid}", headers=px).status_code == 404
    assert client.get("/api/v1/channel/orders", headers=px).json() == []
    # a user without channel permissions is refused
    nobody = api_headers(db, "call_agent")
    assert client.get("/api/v1/channel/orders", headers=nobody).status_code == 403
    assert client.post(f"/api/v1/channel/orders/{oid}/receive", headers=nobody).status_code == 403

    units = add_units(db, world, 2)
    serials = [u.serial for u in units]
    hq_specialist = api_headers(db, "channel_specialist")
    response = client.post(
        f"/api/v1/channel/orders/{oid}/serials", json={"serials": ["BAD-1"]}, headers=hq_specialist
    )
    assert response.status_code == 422 and "BAD-1" in response.text
    response = client.post(
        f"/api/v1/channel/orders/{oid}/serials", json={"serials": serials}, headers=hq_specialist
    )
    assert response.status_code == 200
    request_id = response.json()["approval_request_id"]
    for role in ORDER_STEPS:
        approvals.approve(session=db, actor=make_user(db, role), request_id=request_id)
    db.flush()
    picker = api_headers(db, "picker")
    # the checker may not pick, the picker may not dispatch
    assert (
        client.post(
            f"/api/v1/channel/orders/{oid}/pick",
            json={"serials": serials},
            headers=api_headers(db, "checker"),
        ).status_code
        == 403
    )
    assert (
        client.post(
            f"/api/v1/channel/orders/{oid}/pick", json={"serials": serials}, headers=picker
        ).json()["state"]
        == "picking"
    )
    assert (
        client.post(
            f"/api/v1/channel/orders/{oid}/check",
            json={"serials": serials},
            headers=api_headers(db, "checker"),
        ).json()["state"]
        == "checked"
    )
    assert (
        client.post(
            f"/api/v1/channel/orders/{oid}/dispatch",
            json={"carrier": "顺丰", "tracking_no": "SF9"},
            headers=picker,
        ).status_code
        == 403
    )
    response = client.post(
        f"/api/v1/channel/orders/{oid}/dispatch",
        json={"carrier": "顺丰", "tracking_no": "SF9"},
        headers=api_headers(db, "warehouse_supervisor"),
    )
    assert response.json()["state"] == "dispatched"
    pdf = client.get(f"/api/v1/channel/orders/{oid}/delivery-note.pdf", headers=cd)
    assert pdf.headers["content-type"] == "application/pdf"
    assert len(PdfReader(io.BytesIO(pdf.content)).pages) == 3
    response = client.post(f"/api/v1/channel/orders/{oid}/receive", headers=cd)
    assert response.json()["state"] == "received"
    assert {s["state"] for s in response.json()["serials"]} == {"at_provider"}
    xlsx = client.get(f"/api/v1/channel/orders/{oid}/serials.xlsx", headers=cd)
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == ("serial", "model", "imei", "iccid")
    assert {r[0] for r in rows[1:]} == set(serials)
    page = ConsoleClient(client.app, db, cd_staff)  # type: ignore[arg-type]
    html = page.get(f"/channel/orders/{oid}").text
    assert 'id="delivery-note"' in html and 'data-state="received"' in html
    assert serials[0] in html and 'id="documents"' in html
    report = client.get("/api/v1/channel/reports/purchases", headers=cd).json()
    assert [(r["provider"], r["orders"], r["quantity"], r["amount"]) for r in report] == [
        (world.cd.code, 1, 2, 60000)
    ]


def test_api_rate_card_and_bounds(client: TestClient, db: Session, world: World) -> None:
    headers = api_headers(db, "channel_supervisor")
    body = {
        "code": "GZ",
        "level": "city",
        "name": "广州地市服务商",
        "parent_id": world.hq.id,
        "provinces": ["广东"],
        "rate_card": {"debit": {"rate_bp": 5000}},
    }
    response = client.post("/api/v1/channel/providers", json=body, headers=headers)
    assert response.status_code == 422
    body["rate_card"] = {"debit": {"rate_bp": 38, "cap": 2000}, "credit": {"rate_bp": 60}}
    response = client.post("/api/v1/channel/providers", json=body, headers=headers)
    assert response.status_code == 201, response.text
    assert response.json()["rate_card"]["debit"] == {"rate_bp": 38, "cap": 2000}
    specialist = api_headers(db, "channel_specialist")
    assert (
        client.post("/api/v1/channel/providers", json=body, headers=specialist).status_code == 403
    )
    assert client.get("/api/v1/channel/orders/99999999999", headers=headers).status_code == 422


def _console_as(app: FastAPI, db: Session, user: object) -> ConsoleClient:
    return ConsoleClient(app, db, user)  # type: ignore[arg-type]


def test_console_provider_form_keeps_typed_values(app: FastAPI, db: Session, world: World) -> None:
    page = console(app, db, "channel_supervisor")
    tree = page.get("/channel/providers")
    assert tree.status_code == 200
    assert f'data-provider="{world.px.code}" data-depth="2"' in tree.text
    form = {
        "code": "CQ",
        "level": "city",
        "name": "重庆地市服务商",
        "parent_id": str(world.hq.id),
        "provinces": "重庆 火星",
        "debit_rate_bp": "38",
        "debit_cap": "20",
        "is_active": "1",
    }
    response = page.post("/channel/providers/new", form)
    assert response.status_code == 422
    assert "火星" in (field_error(response.text, "provinces") or "")
    assert 'value="重庆地市服务商"' in response.text
    assert service.find_provider(db, "CQ") is None
    response = page.post(
        "/channel/providers/new", {**form, "debit_rate_bp": "abc", "provinces": "重庆"}
    )
    assert response.status_code == 422 and field_error(response.text, "debit_rate_bp")
    response = page.post("/channel/providers/new", {**form, "provinces": "重庆"})
    assert response.status_code == 303, response.text
    cq = service.find_provider(db, "CQ")
    assert cq is not None and cq.rate_card == {"debit": {"rate_bp": 38, "cap": 2000}}
    assert page.get(response.headers["location"]).status_code == 200

    regions = page.get("/channel/regions")
    assert regions.status_code == 200


def test_console_order_pages_scoping_and_permissions(
    app: FastAPI, db: Session, world: World
) -> None:
    cd_staff = staff(db, world, world.cd)
    page = _console_as(app, db, cd_staff)
    assert page.get("/channel/orders/new").status_code == 200
    response = page.post(
        "/channel/orders/new",
        {"model_0": str(world.model.id), "quantity_0": "0", "note": "试单"},
    )
    assert response.status_code == 422
    assert field_error(response.text, "quantity_0")
    assert "试单" in response.text
    response = page.post(
        "/channel/orders/new", {"model_0": str(world.model.id), "quantity_0": "2", "note": "试单"}
    )
    assert response.status_code == 303
    url = response.headers["location"]
    detail = page.get(url)
    assert detail.status_code == 200 and 'id="payment-form"' in detail.text
    response = page.post(f"{url}/submit")
    assert response.status_code == 422
    assert field_error(response.text, "payment_slip")
    response = page.http.post(
        f"{url}/payment-slip",
        data={"csrf_token": page.csrf, "paid_amount": "600", "reference": "B-1"},
        files={"file": ("slip.png", b"\x89PNG slip", "image/png")},
    )
    assert response.status_code == 303, response.text
    assert page.post(f"{url}/submit").status_code == 303
    assert 'data-state="approving"' in page.get(url).text

    px_page = _console_as(app, db, staff(db, world, world.px))
    assert px_page.get(url).status_code == 404
    assert px_page.post(f"{url}/receive").status_code == 404
    assert world.cd.code not in px_page.get("/channel/orders").text.split("orders-table")[1]

    nobody = console(app, db, "call_agent")
    for path in ("/channel/orders", "/channel/providers", "/channel/reports/purchases", url):
        assert nobody.get(path).status_code == 403, path
    assert nobody.post("/channel/providers/new", {"code": "Z"}).status_code == 403

    hq = console(app, db, "channel_specialist")
    assert 'id="select-form"' in hq.get(url).text
    filed = hq.get("/channel/county-orders")
    assert filed.status_code == 200
    report = hq.get("/channel/reports/purchases?format=xlsx")
    assert report.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert hq.get("/channel/cross-region").status_code == 200
