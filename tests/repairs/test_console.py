"""The faulty-terminal flow and a field visit through the console pages and the API."""

from __future__ import annotations

import base64
import re

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from cardops.repairs import service
from cardops.repairs.models import FieldVisit, RepairCase
from cardops.terminals.models import TerminalState
from tests.factories import ConsoleClient, bearer, field_error
from tests.repairs.conftest import PNG, World


class Client(ConsoleClient):
    """A console client after whose posts the test's session reads fresh rows."""

    def post(self, url: str, data: dict | None = None, **kwargs):  # type: ignore[no-untyped-def]
        response = super().post(url, data, **kwargs)
        self.db.expire_all()
        return response


def _client(app: FastAPI, db: Session, user) -> Client:  # type: ignore[no-untyped-def]
    client = Client(app, db, user)
    client.db = db
    return client


def _case_id(response) -> int:  # type: ignore[no-untyped-def]
    assert response.status_code == 303, response.text
    match = re.search(r"/repairs/(\d+)$", response.headers["location"])
    assert match
    return int(match.group(1))


def test_console_walks_a_case_from_intake_to_close(app: FastAPI, world: World) -> None:
    w, db = world, world.db
    broken = w.unit(TerminalState.ACTIVATED)
    loaner = w.unit(TerminalState.IN_STOCK)
    after_sales = _client(app, db, w.after_sales)
    technician = _client(app, db, w.technician)
    warehouse = _client(app, db, w.warehouse)

    form = after_sales.get("/repairs/new")
    assert form.status_code == 200 and 'name="fault_code"' in form.text
    bad = after_sales.post(
        "/repairs/new",
        {
            "serial": "NOPE00000",
            "fault_code": "printer",
            "fault_description": "x",
            "brought_by_name": "李四",
        },
    )
    assert bad.status_code == 422 and field_error(bad.text, "serial")
    created = after_sales.post(
        "/repairs/new",
        {
            "serial": broken.serial,
            "fault_code": "card_reader",
            "fault_description": "刷卡无反应",
            "brought_by_name": "李四",
            "brought_by_phone": "13800138000",
            "accessories": ["adapter", "sim"],
        },
    )
    case_id = _case_id(created)
    page = after_sales.get(f"/repairs/{case_id}")
    assert page.status_code == 200 and broken.serial in page.text
    assert 'id="inspect-form"' not in page.text  # inspection is the technician's

    bad = technician.post(
        f"/repairs/{case_id}/inspect",
        {
            "findings": "读卡头脏",
            "fault_code": "card_reader",
            "under_warranty": "yes",
            "estimate": "12.345",
        },
    )
    assert bad.status_code == 422 and field_error(bad.text, "estimate")
    ok = technician.post(
        f"/repairs/{case_id}/inspect",
        {
            "findings": "读卡头损坏",
            "fault_code": "card_reader",
            "under_warranty": "no",
            "estimate": "80.50",
        },
    )
    assert ok.status_code == 303
    case = db.get(RepairCase, case_id)
    assert case is not None and case.estimate == 8050 and case.under_warranty is False

    wrong = after_sales.post(f"/repairs/{case_id}/loaner", {"loaner_serial": broken.serial})
    assert wrong.status_code == 422 and field_error(wrong.text, "loaner_serial")
    assert (
        after_sales.post(f"/repairs/{case_id}/loaner", {"loaner_serial": loaner.serial}).status_code
        == 303
    )
    assert after_sales.post(f"/repairs/{case_id}/decide", {"route": "factory"}).status_code == 303
    assert case.rma_batch_id is not None
    batch_page = warehouse.get(f"/rma-batches/{case.rma_batch_id}")
    assert batch_page.status_code == 200 and case.number in batch_page.text
    missing = warehouse.post(f"/rma-batches/{case.rma_batch_id}/send", {"carrier": "顺丰"})
    assert missing.status_code == 422 and field_error(missing.text, "tracking_number")
    sent = warehouse.post(
        f"/rma-batches/{case.rma_batch_id}/send",
        {"carrier": "顺丰", "tracking_number": "SF100200300"},
    )
    assert sent.status_code == 303 and case.state == "at_factory"
    assert warehouse.post(f"/rma-batches/{case.rma_batch_id}/receive", {}).status_code == 303
    assert case.state == "ready"
    returned = after_sales.post(
        f"/repairs/{case_id}/return", {"return_to": "user", "loaner_returned": "yes"}
    )
    assert returned.status_code == 303
    assert broken.state == "activated" and loaner.state == "in_stock"
    assert after_sales.post(f"/repairs/{case_id}/close", {}).status_code == 303
    final = after_sales.get(f"/repairs/{case_id}")
    assert 'data-state="closed"' in final.text
    assert final.text.count("data-event=") == 9
    listing = after_sales.get("/repairs?q=" + broken.serial)
    assert case.number in listing.text


def test_api_intake_and_inspection(client: TestClient, db: Session, world: World) -> None:
    w = world
    broken = w.unit(TerminalState.AT_PROVIDER)
    headers = bearer(db, w.after_sales)
    response = client.post(
        "/api/v1/repairs",
        headers=headers,
        json={
            "serial": broken.serial,
            "fault_code": "screen",
            "fault_description": "黑屏",
            "brought_by_name": "王五",
        },
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["state"] == "received" and body["serial"] == broken.serial
    assert body["provider_id"] == w.provider.id
    again = client.post(
        "/api/v1/repairs",
        headers=headers,
        json={
            "serial": broken.serial,
            "fault_code": "screen",
            "fault_description": "x",
            "brought_by_name": "y",
        },
    )
    assert again.status_code == 409
    assert again.json()["errors"][0]["field"] == "serial"
    inspected = client.post(
        f"/api/v1/repairs/{body['id']}/inspect",
        headers=bearer(db, w.technician),
        json={"findings": "屏幕排线松动", "fault_code": "screen", "under_warranty": True},
    )
    assert inspected.status_code == 200 and inspected.json()["state"] == "inspected"
    fetched = client.get(f"/api/v1/repairs/{body['id']}", headers=headers).json()
    assert [e["kind"] for e in fetched["events"]] == ["received", "inspected"]


def test_field_visit_with_swap_checklist_signature_and_pdf(
    app: FastAPI, client: TestClient, world: World
) -> None:
    w, db = world, world.db
    old = w.unit(TerminalState.ACTIVATED)
    new = w.unit(TerminalState.IN_STOCK)
    tech = _client(app, db, w.technician)
    booked = tech.post(
        "/visits/new",
        {
            "mode": "on_call",
            "merchant_id": str(w.merchant.id),
            "contact_name": "赵六",
            "contact_phone": "13900139000",
            "service_type": "repair",
            "warranty": "in",
            "serial": old.serial,
            "registration_number": "400-20261123-01",
            "problem": "不能打印",
        },
    )
    assert booked.status_code == 303, booked.text
    visit_id = int(booked.headers["location"].rsplit("/", 1)[1])
    visit = db.get(FieldVisit, visit_id)
    assert visit is not None and visit.customer_name == w.merchant.name
    assert visit.address == w.merchant.address
    assert tech.post(f"/visits/{visit_id}/arrive", {}).status_code == 303
    items = [i.code for i in service.checklist_items(db)]
    in_use = w.unit(TerminalState.INSTALLED)
    refused = tech.post(
        f"/visits/{visit_id}/complete",
        {
            "work_notes": "整机更换",
            "replacements.0.kind": "whole",
            "replacements.0.device_name": "POS",
            "replacements.0.old_serial": old.serial,
            "replacements.0.new_serial": in_use.serial,
        },
    )
    assert refused.status_code == 422
    assert field_error(refused.text, "replacements.0.new_serial")
    assert old.state == "activated" and visit.state == "on_site"
    done = tech.post(
        f"/visits/{visit_id}/complete",
        {
            "work_notes": "整机更换，测试交易成功",
            "device_ok": "yes",
            "replacements.0.kind": "whole",
            "replacements.0.device_name": "POS",
            "replacements.0.old_serial": old.serial,
            "replacements.0.new_serial": new.serial,
            "replacements.1.kind": "part",
            "replacements.1.device_name": "打印机胶辊",
            f"check.{items[0]}": "on",
            f"check_note.{items[0]}": "正常",
        },
    )
    assert done.status_code == 303, done.text
    assert old.state == "faulty" and new.state == "installed" and new.merchant_id == w.merchant.id
    checks = service.visit_checks(db, visit)
    assert len(checks) == len(items) and checks[0].checked and not checks[1].checked
    no_sig = tech.post(
        f"/visits/{visit_id}/sign", {"signed_name": "赵六", "satisfaction": "satisfied"}
    )
    assert no_sig.status_code == 422 and field_error(no_sig.text, "signature")
    url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    signed = tech.post(
        f"/visits/{visit_id}/sign",
        {"signed_name": "赵六", "satisfaction": "very_satisfied", "signature": url},
    )
    assert signed.status_code == 303 and visit.state == "signed"
    image = tech.get(f"/visits/{visit_id}/signature.png")
    assert image.status_code == 200 and image.content == PNG
    pdf = tech.get(f"/visits/{visit_id}/pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    assert b"FontFile2" in pdf.content or b"/FontFile" in pdf.content  # the CJK font is embedded
    api = client.get(f"/api/v1/visits/{visit_id}", headers=bearer(db, w.agent)).json()
    assert api["registration_number"] == "400-20261123-01"
    assert [r["kind"] for r in api["replacements"]] == ["whole", "part"]
    assert api["satisfaction"] == "very_satisfied"
