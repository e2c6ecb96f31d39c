"""The REST API and the console pages of merchants and activation cases."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from cardops.merchants import service
from tests.factories import ConsoleClient, api_headers, bearer, console, field_error
from tests.merchants.conftest import PNG, World, case_documents, make_id


def _files() -> dict[str, tuple[str, bytes, str]]:
    return {
        "application_form": ("form.pdf", b"%PDF-1.4 form", "application/pdf"),
        "id_front": ("front.png", PNG + b"f", "image/png"),
        "id_back": ("back.png", PNG + b"b", "image/png"),
    }


def test_api_merchant_errors_name_fields_and_permission_is_checked(
    client: TestClient, world: World
) -> None:
    body = world.merchant_fields(mcc="12", business_licence_no="bad")
    headers = bearer(world.db, world.specialist)
    response = client.post("/api/v1/merchants", json=body, headers=headers)
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert {"mcc", "business_licence_no"} <= fields
    refused = client.post(
        "/api/v1/merchants",
        json=world.merchant_fields(),
        headers=api_headers(world.db, "front_desk_clerk"),
    )
    assert refused.status_code == 403
    created = client.post("/api/v1/merchants", json=world.merchant_fields(), headers=headers)
    assert created.status_code == 201, created.text
    merchant = created.json()
    assert merchant["state"] == "draft" and "Business licence" in merchant["missing_documents"]
    bad_doc = client.post(
        f"/api/v1/merchants/{merchant['id']}/documents",
        data={"doc_type": "vehicle_licence"},
        files={"file": ("car.png", PNG, "image/png")},
        headers=headers,
    )
    assert bad_doc.status_code == 422
    assert bad_doc.json()["errors"][0]["field"] == "doc_type"
    assert "vehicle_licence" in bad_doc.json()["detail"]
    submit = client.post(f"/api/v1/merchants/{merchant['id']}/submit", headers=headers)
    assert submit.status_code == 422 and "Organisation code" in submit.json()["detail"]
    assert client.get("/api/v1/merchants/99999999999", headers=headers).status_code == 422


def test_api_activation_flow(client: TestClient, world: World) -> None:
    merchant = world.approved_merchant()
    unit = world.unit()
    specialist = bearer(world.db, world.specialist)
    reviewer = bearer(world.db, world.reviewer)
    north = bearer(world.db, world.north_reviewer)
    form = {
        "serial": unit.serial,
        "merchant_id": str(merchant.id),
        "applicant_name": "赵六",
        "applicant_id_number": make_id(),
        "install_province": "四川",
        "install_city": "成都",
        "install_address": "武侯区 3 号",
    }
    created = client.post("/api/v1/activations", data=form, files=_files(), headers=specialist)
    assert created.status_code == 201, created.text
    case = created.json()
    assert case["state"] == "submitted" and case["region_code"] == "southwest"
    url = f"/api/v1/activations/{case['id']}"
    assert client.post(f"{url}/review/start", headers=north).status_code == 403
    passed = client.post(
        f"{url}/review/pass",
        json={"platform": "富友", "platform_reference": "R1"},
        headers=reviewer,
    )
    assert passed.status_code == 200 and passed.json()["state"] == "with_platform"
    again = client.post(f"{url}/review/pass", json={"platform": "富友"}, headers=reviewer)
    assert again.status_code == 409
    verdict = client.post(f"{url}/verdict", json={"approved": True}, headers=reviewer)
    assert verdict.status_code == 200, verdict.text
    assert len(verdict.json()["tid"]) == 8 and verdict.json()["mid"] == merchant.mid
    called = client.post(f"{url}/callback", json={"note": "已通知"}, headers=reviewer)
    assert called.json()["state"] == "called_back"
    archived = client.post(f"{url}/archive", json={}, headers=reviewer)
    assert archived.json()["state"] == "archived"
    detail = client.get(url, headers=specialist).json()
    assert [e["kind"] for e in detail["events"]][-1] == "archived"
    second = dict(form, serial=world.unit().serial)
    refused = client.post("/api/v1/activations", data=second, files=_files(), headers=specialist)
    assert refused.status_code == 409
    assert unit.serial in refused.json()["detail"]
    report = client.get("/api/v1/activations/report", headers=reviewer).json()
    assert sum(report["totals"]) >= 1
    xlsx = client.get("/api/v1/activations/report.xlsx", headers=reviewer)
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"


def test_console_merchant_form_keeps_typed_values_on_error(app: FastAPI, world: World) -> None:
    web = console(app, world.db, "channel_specialist")
    page = web.get("/merchants/new?kind=individual")
    assert page.status_code == 200
    assert "Bank card or account proof" in page.text or "银行卡" in page.text
    values = {k: str(v) for k, v in world.merchant_fields("individual").items()}
    values["mcc"] = "abc"
    response = web.post("/merchants/new", data=values)
    assert response.status_code == 422
    assert field_error(response.text, "mcc")
    assert values["name"] in response.text and values["business_licence_no"] in response.text
    values["mcc"] = "5812"
    response = web.post("/merchants/new", data=values)
    assert response.status_code == 303
    detail = web.get(response.headers["location"])
    assert values["name"] in detail.text and 'id="missing-documents"' in detail.text


def test_console_case_pages_and_permissions(app: FastAPI, world: World) -> None:
    merchant = world.approved_merchant()
    case = service.apply(
        session=world.db,
        actor=world.specialist,
        serial=world.unit().serial,
        merchant_id=merchant.id,
        applicant_name="钱七",
        applicant_id_number=make_id(),
        install_province="四川",
        install_city="成都",
        documents=case_documents(),
    )
    mine = ConsoleClient(app, world.db, world.reviewer)
    queue = mine.get("/activations")
    assert queue.status_code == 200 and case.number in queue.text
    page = mine.get(f"/activations/{case.id}")
    assert 'id="pass-review"' in page.text
    empty = mine.post(f"/activations/{case.id}/return", data={"reason": ""})
    assert empty.status_code == 422 and field_error(empty.text, "reason")
    other = ConsoleClient(app, world.db, world.north_reviewer)
    assert case.number not in other.get("/activations").text
    assert 'id="pass-review"' not in other.get(f"/activations/{case.id}").text
    refused = other.post(f"/activations/{case.id}/start")
    assert refused.status_code == 403
    assert case.state == "submitted"
    sent = mine.post(f"/activations/{case.id}/pass", data={"platform": "富友"})
    assert sent.status_code == 303
    clerk = console(app, world.db, "front_desk_clerk")
    assert clerk.get("/merchants").status_code == 403
    assert clerk.get(f"/activations/{case.id}").status_code == 403
    reports = ConsoleClient(app, world.db, world.reviewer).get("/activations/reports")
    assert reports.status_code == 200 and "<svg" in reports.text
    overdue = mine.get("/activations/overdue")
    assert overdue.status_code == 200


def test_console_new_case_rerenders_with_values(app: FastAPI, world: World) -> None:
    merchant = world.approved_merchant()
    web = ConsoleClient(app, world.db, world.specialist)
    form = web.get(f"/activations/new?merchant_id={merchant.id}")
    assert form.status_code == 200 and merchant.name in form.text
    data = {
        "kind": "activation",
        "serial": world.unit().serial,
        "merchant_id": str(merchant.id),
        "applicant_name": "孙八",
        "applicant_id_number": "123",
        "install_province": "四川",
    }
    response = web.http.post(
        "/activations/new", data={**data, "csrf_token": web.csrf}, files=_files()
    )
    assert response.status_code == 422
    assert field_error(response.text, "applicant_id_number")
    assert data["serial"] in response.text and "孙八" in response.text
    data["applicant_id_number"] = make_id()
    response = web.http.post(
        "/activations/new", data={**data, "csrf_token": web.csrf}, files=_files()
    )
    assert response.status_code == 303, response.text
    page = web.get(response.headers["location"])
    assert "ACT-" in page.text and 'data-doc-type="id_back"' in page.text
