"""Console flows: issuing with uploads, card actions, stock, policy, registers, report."""

from __future__ import annotations

import io

from fastapi import FastAPI
from openpyxl import load_workbook
from sqlalchemy.orm import Session

from cardops.cards import service
from cardops.cards.demo import PNG
from tests.cards.conftest import Desk
from tests.factories import ConsoleClient, field_error


def _as(app: FastAPI, db: Session, user) -> ConsoleClient:  # type: ignore[no-untyped-def]
    client = ConsoleClient(app, db, user)
    client.http.cookies.set("cardops_lang", "en")
    return client


def test_issue_form_shows_evidence_and_keeps_typed_values_on_error(
    app: FastAPI, db: Session, desk: Desk
) -> None:
    clerk = _as(app, db, desk.clerk)
    page = clerk.get("/cards/issue?kind=tenant")
    assert page.status_code == 200
    assert 'data-evidence="lease_contract"' in page.text and "Lease contract" in page.text
    tenant = desk.person("租户", docs=())
    number = desk.numbers[0]
    form = {
        "holder_kind": "tenant",
        "card_number": number,
        "person_id": str(tenant.id),
        "unit_id": str(desk.unit("1-102").id),
        "note": "typed note",
    }
    bad = clerk.post(
        "/cards/issue", data=form, files={"doc_id_front": ("id.png", PNG, "image/png")}
    )
    assert bad.status_code == 422
    assert field_error(bad.text, "doc_lease_contract") == "Lease contract"
    assert "typed note" in bad.text and number in bad.text
    assert service.get_card(db, number).state == "office"
    good = clerk.post(
        "/cards/issue",
        data={**form, "acknowledged": "1"},
        files={
            "doc_id_front": ("id.png", PNG, "image/png"),
            "doc_lease_contract": ("lease.png", PNG, "image/png"),
        },
    )
    assert good.status_code == 303 and good.headers["location"] == f"/cards/{number}"
    card = service.get_card(db, number)
    assert card.state == "active" and card.acknowledged_at is not None
    shown = clerk.get(f"/cards/{number}")
    assert shown.status_code == 200
    assert 'data-state="active"' in shown.text and 'id="documents-table"' in shown.text
    assert "lease.png" in shown.text and 'data-event="issued"' in shown.text


def test_card_actions_from_the_card_page(app: FastAPI, db: Session, desk: Desk) -> None:
    clerk = _as(app, db, desk.clerk)
    card = desk.issue("tenant", desk.person("租户", docs=("id_front", "lease_contract")), "1-102")
    lost = clerk.post(f"/cards/{card.number}/report-lost", data={"channel": "desk"})
    assert lost.status_code == 303
    page = clerk.get(f"/cards/{card.number}")
    assert 'data-state="lost"' in page.text and 'id="form-cancel-loss"' in page.text
    refused = clerk.post(f"/cards/{card.number}/cancel-loss", data={"note": "kept"})
    assert refused.status_code == 422 and field_error(refused.text, "id_checked")
    assert 'data-state="lost"' in refused.text
    new = desk.numbers[0]
    reissued = clerk.post(f"/cards/{card.number}/reissue", data={"new_card_number": new})
    assert reissued.status_code == 303 and reissued.headers["location"] == f"/cards/{new}"
    man = clerk.post(
        f"/cards/{new}/replace", data={"new_card_number": desk.numbers[1], "damage": "man_made"}
    )
    assert man.status_code == 422 and "buy a new card" in (field_error(man.text, "damage") or "")
    no_receipt = clerk.post(f"/cards/{new}/return", data={})
    assert no_receipt.status_code == 422 and field_error(no_receipt.text, "receipt_number")
    assert service.get_card(db, new).state == "active"


def test_permissions_are_refused(app: FastAPI, db: Session, desk: Desk) -> None:
    from tests.factories import make_user

    analyst = _as(app, db, make_user(db, "data_analyst"))
    assert analyst.get("/cards/issue").status_code == 403
    assert analyst.post("/cards/issue", data={"holder_kind": "owner"}).status_code == 403
    assert analyst.get("/cards/report").status_code == 200
    clerk = _as(app, db, desk.clerk)
    assert clerk.get("/cards/policy").status_code == 403
    assert clerk.post("/cards/stock/batches", data={"number": "X"}).status_code == 403
    card = desk.issue("tenant", desk.person("租户", docs=("id_front", "lease_contract")), "1-102")
    assert analyst.post(f"/cards/{card.number}/report-lost", data={}).status_code == 403
    assert service.get_card(db, card.number).state == "active"


def test_stock_policy_registers_and_report_pages(app: FastAPI, db: Session, desk: Desk) -> None:
    cashier = _as(app, db, desk.cashier)
    bad = cashier.post(
        "/cards/stock/batches", data={"number": "B-C", "first_number": "NODIGITS", "quantity": "2"}
    )
    assert bad.status_code == 422 and "NODIGITS" in bad.text
    ok = cashier.post(
        "/cards/stock/batches", data={"number": "B-C", "first_number": "K001", "quantity": "2"}
    )
    assert ok.status_code == 303 and service.get_card(db, "K002").state == "stock"
    supervisor = _as(app, db, desk.supervisor)
    page = supervisor.get(f"/cards/policy/{desk.prop.id}")
    assert page.status_code == 200 and 'name="tenant.validity_months"' in page.text
    refused = supervisor.post(
        f"/cards/policy/{desk.prop.id}", data={"tenant.validity_months": "36", "owner.fee": "15"}
    )
    assert refused.status_code == 422 and field_error(refused.text, "tenant.validity_months")
    assert 'value="36"' in refused.text
    assert service.get_policy(desk.prop)["tenant"]["validity_months"] == 12
    saved = supervisor.post(
        f"/cards/policy/{desk.prop.id}", data={"tenant.validity_months": "6", "owner.fee": "15"}
    )
    assert saved.status_code == 303
    db.expire_all()
    assert service.get_policy(desk.prop)["tenant"]["validity_months"] == 6
    assert service.get_policy(desk.prop)["owner"]["fee"] == 1500
    desk.issue("owner", desk.person("业主", owner_of="1-101"), "1-101")
    register = supervisor.get("/cards/registers/owner")
    assert register.status_code == 200 and 'data-event="issued"' in register.text
    excel = supervisor.get("/cards/registers/staff?format=xlsx")
    assert excel.status_code == 200 and load_workbook(io.BytesIO(excel.content)).active is not None
    rep = supervisor.get("/cards/report")
    assert rep.status_code == 200 and "<svg" in rep.text and 'id="anomaly-lost_used"' in rep.text
    xlsx = supervisor.get("/cards/report?format=xlsx")
    assert len(load_workbook(io.BytesIO(xlsx.content)).sheetnames) == 6
    assert supervisor.get("/cards/report?quarter=bad").status_code == 422
