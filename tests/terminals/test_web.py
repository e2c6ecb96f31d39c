"""The REST contract and the console pages of the terminals domain."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cardops.auth.service import system_user
from cardops.terminals import service
from cardops.terminals.importer import import_file, sample_csv
from cardops.terminals.models import Terminal, TerminalState
from tests.factories import api_headers, console, field_error
from tests.terminals.helpers import model, provider, supplier, unit


def test_unit_api_contract_with_history(client: TestClient, db: Session) -> None:
    actor = system_user(db)
    terminal = unit(db, state=TerminalState.IN_STOCK, serial="API-CONTRACT-1")
    owner = provider(db)
    place = service.location_for(db, "provider", owner.id, owner.name)
    service.move(db, actor, terminal, "allocated", kind="allocate", document="PO2026-000001")
    service.move(db, actor, terminal, "shipped", kind="ship", document="PO2026-000001")
    service.move(db, actor, terminal, "at_provider", place, kind="receive")
    terminal.tid, terminal.mid = "T7654321", "898510000000001"
    db.flush()
    headers = api_headers(db, "channel_specialist")
    response = client.get("/api/v1/terminals/API-CONTRACT-1", headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["state"] == "at_provider"
    assert body["location"] == {"kind": "provider", "name": owner.name}
    assert body["provider"] == owner.name
    assert (body["tid"], body["mid"]) == ("T7654321", "898510000000001")
    assert "tmk" not in str({k: v for k, v in body.items() if k != "tmk_kcv"}).lower()
    assert [e["kind"] for e in body["history"]] == ["allocate", "ship", "receive"]
    last = body["history"][-1]
    assert last["from"] == {
        "state": "shipped",
        "location": {"kind": "warehouse", "name": service.warehouse(db).name},
    }
    assert last["to"]["state"] == "at_provider" and last["to"]["location"]["name"] == owner.name
    assert body["history"][0]["document"] == "PO2026-000001" and last["at"]

    missing = client.get("/api/v1/terminals/NO-SUCH-UNIT", headers=headers)
    assert missing.status_code == 404
    listing = client.get("/api/v1/terminals?q=API-CONTRACT", headers=headers).json()
    assert listing["total"] == 1 and listing["items"][0]["serial"] == "API-CONTRACT-1"
    summary = client.get("/api/v1/terminals/stock/summary", headers=headers).json()
    assert any(r["location"] == owner.name and r["count"] >= 1 for r in summary)
    anonymous = client.get("/api/v1/terminals/API-CONTRACT-1")
    assert anonymous.status_code == 401


def test_api_key_export_only_for_key_custodian(client: TestClient, db: Session) -> None:
    maker = supplier(db)
    mod = model(db, maker)
    import_file(
        session=db,
        actor=system_user(db),
        supplier=maker,
        filename="k.csv",
        data=sample_csv(2, model=mod.code, prefix="APIKEY", start=1),
    )
    body = {"serials": ["APIKEY00000001"]}
    refused = client.post(
        "/api/v1/terminals/keys/export", json=body, headers=api_headers(db, "warehouse_supervisor")
    )
    assert refused.status_code == 403
    ok = client.post(
        "/api/v1/terminals/keys/export", json=body, headers=api_headers(db, "key_custodian")
    )
    assert ok.status_code == 200, ok.text
    [key] = ok.json()
    assert key["serial"] == "APIKEY00000001" and len(key["tmk_hex"]) == 32
    page = client.get("/api/v1/terminals/APIKEY00000001", headers=api_headers(db, "sysadmin"))
    assert key["tmk_hex"] not in page.text


def test_api_import_reports_rows_and_imports_nothing(client: TestClient, db: Session) -> None:
    maker = supplier(db)
    mod = model(db, maker)
    headers = api_headers(db, "inbound_clerk")
    bad = f"serial,model\nAPIIMP-001,{mod.code}\nAPIIMP-001,{mod.code}\n".encode()
    response = client.post(
        "/api/v1/terminals/imports",
        data={"supplier": maker.name},
        files={"file": ("bad.csv", bad, "text/csv")},
        headers=headers,
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "row 3: serial"
    assert (
        db.execute(
            select(func.count()).select_from(Terminal).where(Terminal.serial == "APIIMP-001")
        ).scalar_one()
        == 0
    )
    good = client.post(
        "/api/v1/terminals/imports",
        data={"supplier": maker.name},
        files={
            "file": ("ok.csv", sample_csv(3, model=mod.code, prefix="APIIMP", start=1), "text/csv")
        },
        headers=headers,
    )
    assert good.status_code == 201, good.text
    assert good.json()["count"] == 3 and good.json()["batch"].startswith("IB")


def test_console_search_unit_page_and_stock(app: FastAPI, db: Session) -> None:
    terminal = unit(db, state=TerminalState.IN_STOCK, serial="WEB-UNIT-0001")
    terminal.imei = "356938035643809"
    db.flush()
    browser = console(app, db, "channel_specialist")
    found = browser.get("/terminals?q=356938035643809")
    assert (
        found.status_code == 303 and found.headers["location"] == "/terminals/units/WEB-UNIT-0001"
    )
    page = browser.get("/terminals/units/WEB-UNIT-0001")
    assert page.status_code == 200
    assert 'data-state="in_stock"' in page.text and "356938035643809" in page.text
    stock = browser.get("/terminals/stock")
    assert stock.status_code == 200 and "stock-chart" in stock.text
    assert browser.get("/terminals?q=WEB-UNIT").status_code == 200
    # no reports permission → no Excel export
    assert browser.get("/terminals/stock.xlsx").status_code == 403
    analyst = console(app, db, "data_analyst")
    excel = analyst.get("/terminals/stock.xlsx")
    assert excel.status_code == 200 and excel.content[:2] == b"PK"
    # permission refused
    outsider = console(app, db, "front_desk_clerk")
    assert outsider.get("/terminals/stock").status_code == 403
    assert outsider.get("/terminals/inbound").status_code == 403


def test_console_inbound_preview_then_confirm(app: FastAPI, db: Session) -> None:
    maker = supplier(db)
    mod = model(db, maker)
    clerk = console(app, db, "inbound_clerk")
    assert clerk.get("/terminals/inbound").status_code == 200
    bad = f"serial,model\nWEBIMP-001,{mod.code}\nWEBIMP-002,NOPE\n".encode()
    preview = clerk.post(
        "/terminals/inbound",
        data={"supplier_id": str(maker.id)},
        files={"file": ("bad.csv", bad, "text/csv")},
    )
    assert preview.status_code == 422
    assert 'data-row="3"' in preview.text and "confirm-form" not in preview.text
    good = sample_csv(4, model=mod.code, prefix="WEBIMP", start=1)
    preview = clerk.post(
        "/terminals/inbound",
        data={"supplier_id": str(maker.id)},
        files={"file": ("good.csv", good, "text/csv")},
    )
    assert preview.status_code == 200 and "confirm-form" in preview.text
    assert service.find(db, "WEBIMP00000001") == []  # preview imports nothing
    import hashlib

    done = clerk.post(
        "/terminals/inbound/confirm",
        data={
            "sha": hashlib.sha256(good).hexdigest(),
            "suffix": ".csv",
            "filename": "good.csv",
            "supplier_id": str(maker.id),
        },
    )
    assert done.status_code == 303, done.text
    assert service.get_by_serial(db, "WEBIMP00000001").state == "received"


def test_console_forms_keep_typed_values_on_error(app: FastAPI, db: Session) -> None:
    maker = supplier(db)
    boss = console(app, db, "business_manager")
    response = boss.post(
        "/terminals/suppliers",
        data={"what": "model", "supplier_id": str(maker.id), "code": "bad code!", "name": "X"},
    )
    assert response.status_code == 422
    assert field_error(response.text, "code")
    assert 'value="bad code!"' in response.text
    response = boss.post(
        "/terminals/purchases", data={"supplier_id": str(maker.id), "quantity": "0"}
    )
    assert response.status_code == 422 and field_error(response.text, "quantity")
    tech = console(app, db, "after_sales_specialist")
    terminal = unit(db, state=TerminalState.AT_PROVIDER)
    response = tech.post(
        f"/terminals/units/{terminal.serial}/upkeep",
        data={"action": "install", "test_reference": "", "notes": "left at shop"},
    )
    assert response.status_code == 422 and field_error(response.text, "test_reference")
    assert "left at shop" in response.text
    assert terminal.state == "at_provider"
