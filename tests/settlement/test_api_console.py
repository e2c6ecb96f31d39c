"""The API and the console: settle, day page, payout file, rate cards with clear errors,
statements scoped to a provider's subtree, finance data export; 403 without each permission."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from cardops.channel.models import ProviderUser
from cardops.settlement import reports, service
from tests.factories import api_headers, console, field_error, make_user
from tests.settlement.conftest import DAY, World

D = DAY.isoformat()


def test_api_settle_and_read(world: World, client: TestClient) -> None:
    world.journal("purchase", 10_000)
    headers = api_headers(world.db, "finance_manager")
    r = client.post(f"/api/v1/settlement/windows/{D}/settle", headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["gross"] == 10_000 and r.json()["state"] == "settled"
    again = client.post(f"/api/v1/settlement/windows/{D}/settle", headers=headers)
    assert again.json()["unchanged"] is True and again.json()["postings"] == 0
    day = client.get(f"/api/v1/settlement/windows/{D}", headers=headers).json()
    assert day["merchants"][0]["net"] == 10_000 - 60
    csv = client.get(f"/api/v1/settlement/windows/{D}/payout.csv", headers=headers)
    assert csv.status_code == 200 and "TRAILER,1,99.40" in csv.text
    st = client.get(
        f"/api/v1/settlement/merchants/{world.merchants[0].id}/statement",
        params={"date_from": D, "date_to": D, "format": "pdf"},
        headers=headers,
    )
    assert st.status_code == 200 and st.content.startswith(b"%PDF")
    data = client.get(
        "/api/v1/settlement/data",
        params={"date_from": D, "date_to": D, "by": "card_type"},
        headers=headers,
    )
    assert data.json()[0]["volume"] == 10_000


def test_api_open_window_and_bad_input(world: World, client: TestClient) -> None:
    headers = api_headers(world.db, "finance_manager")
    r = client.post("/api/v1/settlement/windows/2026-03-12/settle", headers=headers)
    assert r.status_code == 409
    assert r.json()["errors"][0]["field"] == "business_date"
    r = client.post("/api/v1/settlement/windows/2026-3-1/settle", headers=headers)
    assert r.status_code == 422
    r = client.post(
        f"/api/v1/settlement/merchants/{world.merchants[0].id}/rates",
        json={"debit_bp": 60, "credit_bp": 60.5, "effective_from": "2026-04-01"},
        headers=headers,
    )
    assert r.status_code == 422


def test_console_settle_rates_and_errors(world: World, app: FastAPI) -> None:
    world.journal("purchase", 10_000)
    c = console(app, world.db, "finance_manager")
    assert c.get("/settlement").status_code == 200
    r = c.post("/settlement/settle", {"business_date": "2026-03-12"})
    assert r.status_code == 409 and field_error(r.text, "business_date")
    r = c.post("/settlement/settle", {"business_date": D})
    assert r.status_code == 303
    page = c.get(f"/settlement/day/{D}")
    assert page.status_code == 200 and "payout-file" in page.text
    r = c.post(
        "/settlement/rates/merchant",
        {
            "merchant_id": str(world.merchants[0].id),
            "debit_rate": "0.385",
            "debit_cap": "20",
            "credit_rate": "0.6",
            "effective_from": "2026-04-01",
        },
    )
    assert r.status_code == 422 and field_error(r.text, "debit_rate")
    r = c.post(
        "/settlement/rates/merchant",
        {
            "merchant_id": str(world.merchants[0].id),
            "debit_rate": "0.55",
            "debit_cap": "1e3",
            "credit_rate": "0.6",
            "effective_from": "2026-04-01",
        },
    )
    assert r.status_code == 422 and field_error(r.text, "debit_cap")
    r = c.post(
        "/settlement/rates/merchant",
        {
            "merchant_id": str(world.merchants[0].id),
            "debit_rate": "0.55",
            "debit_cap": "20.00",
            "credit_rate": "0.6",
            "effective_from": "2026-04-01",
        },
    )
    assert r.status_code == 303
    card = service.merchant_rate_history(world.db, world.merchants[0].id)[0]
    assert (card.debit_bp, card.debit_cap, card.credit_bp) == (55, 2000, 60)
    assert "0.55" in c.get("/settlement/rates").text
    r = c.post(
        "/settlement/rates/settings",
        {
            "cutoff": "25:00",
            "bank_debit_rate": "0.3",
            "bank_credit_rate": "0.45",
            "default_debit_rate": "0.5",
            "default_credit_rate": "0.6",
        },
    )
    assert r.status_code == 422 and field_error(r.text, "cutoff")
    r = c.post(
        "/settlement/rates/rule",
        {"name": "达标", "kind": "volume", "amount": "500", "level": "city", "threshold": "0.5e3"},
    )
    assert r.status_code == 422 and field_error(r.text, "threshold")
    r = c.post(
        "/settlement/rates/rule",
        {"name": "达标", "kind": "volume", "amount": "500", "level": "city", "threshold": "100000"},
    )
    assert r.status_code == 303
    rule = reports.list_rules(world.db)[-1]
    assert (rule.amount, rule.threshold, rule.level) == (50_000, 10_000_000, "city")
    assert c.post(f"/settlement/rates/rule/{rule.id}/toggle").status_code == 303
    world.db.expire_all()
    assert reports.list_rules(world.db)[-1].active is False
    data = c.get(f"/settlement/data?date_from={D}&date_to={D}&by=provider&format=xlsx")
    assert data.status_code == 200 and data.content[:2] == b"PK"
    st = c.get(
        f"/settlement/merchant-statement?merchant_id={world.merchants[0].id}&date_from={D}&date_to={D}"
    )
    assert st.status_code == 200 and "99.40" in st.text


def test_provider_staff_see_their_own_subtree_only(world: World, app: FastAPI) -> None:
    world.journal("purchase", 10_000)
    world.journal("purchase", 10_000, terminal=world.t_city)
    service.settle_day(session=world.db, actor=world.finance, business_date=DAY)
    staff = make_user(world.db, "channel_specialist")
    world.db.add(ProviderUser(user_id=staff.id, provider_id=world.county.id))
    world.db.flush()
    from tests.factories import ConsoleClient

    c = ConsoleClient(app, world.db, staff)
    own = c.get(f"/settlement/statements?provider_id={world.county.id}&month=2026-03")
    assert own.status_code == 200 and "100.00" in own.text
    other = c.get(f"/settlement/statements?provider_id={world.city.id}&month=2026-03")
    assert other.status_code == 403
    listing = c.get("/settlement/statements")
    assert world.county.code in listing.text and world.city.code not in listing.text


# permission -> (API method, path, console path or None)
CASES = {
    "settlement.view": ("GET", "/api/v1/settlement/windows", "/settlement"),
    "settlement.run": ("POST", f"/api/v1/settlement/windows/{D}/settle", None),
    "settlement.rates": ("GET", "/api/v1/settlement/rules", None),
    "settlement.statements": (
        "GET",
        "/api/v1/settlement/providers/{provider}/statement?month=2026-03",
        "/settlement/statements",
    ),
    "settlement.data": (
        "GET",
        f"/api/v1/settlement/data?date_from={D}&date_to={D}",
        "/settlement/data",
    ),
}
# console forms that need the permission (POST)
FORMS = {
    "settlement.run": ("/settlement/settle", {"business_date": D}),
    "settlement.rates": ("/settlement/rates/merchant", {"merchant_id": "1"}),
}


def _user_without(db, permission: str):  # type: ignore[no-untyped-def]
    from cardops.auth import service as auth
    from cardops.auth.permissions import PERMISSIONS

    system = auth.system_user(db)
    code = "no_" + permission.replace(".", "_")
    auth.create_role(session=db, actor=system, code=code, name_en=code, name_zh=code)
    auth.set_role_permissions(
        session=db,
        actor=system,
        role_code=code,
        permissions=[p for p in PERMISSIONS if p != permission],
    )
    return make_user(db, code)


@pytest.mark.parametrize("permission", sorted(CASES))
def test_permission_matrix(permission: str, world: World, client: TestClient, app: FastAPI) -> None:
    from tests.factories import ConsoleClient, bearer

    world.journal("purchase", 10_000)
    user = _user_without(world.db, permission)
    method, path, page = CASES[permission]
    path = path.format(provider=world.county.id)
    refused = client.request(method, path, headers=bearer(world.db, user))
    assert refused.status_code == 403, refused.text
    allowed = client.request(method, path, headers=api_headers(world.db, "sysadmin"))
    assert allowed.status_code < 400, allowed.text
    c = ConsoleClient(app, world.db, user)
    if page:
        assert c.get(page).status_code == 403
    if permission in FORMS:
        url, form = FORMS[permission]
        assert c.post(url, form).status_code == 403


def test_day_summary_in_excel(world: World, client: TestClient, app: FastAPI) -> None:
    import io

    from openpyxl import load_workbook

    world.journal("purchase", 10_000, terminal=world.t_county)
    world.journal("purchase", 2_500, terminal=world.t_city, card_type="credit")
    service.settle_day(session=world.db, actor=world.finance, business_date=DAY)
    headers = api_headers(world.db, "finance_manager")
    r = client.get(f"/api/v1/settlement/windows/{D}", params={"format": "xlsx"}, headers=headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/vnd.")
    book = load_workbook(io.BytesIO(r.content))
    assert book.sheetnames == ["summary", "merchants", "shares"]
    totals = {row[0]: row[1] for row in book["summary"].iter_rows(min_row=4, values_only=True)}
    assert totals["交易额 Gross"] == 125  # 100.00 + 25.00
    assert totals["手续费 Merchant fees"] == 0.75  # 60 + 15 fen
    merchants = list(book["merchants"].iter_rows(min_row=2, values_only=True))
    assert [(m[1], m[2], m[4], m[6]) for m in merchants] == [
        (world.merchants[0].name, 1, 100, 99.4),
        (world.merchants[1].name, 1, 25, 24.85),
    ]
    shares = list(book["shares"].iter_rows(min_row=2, values_only=True))
    assert {(s[0], s[2]) for s in shares} == {
        ("ST-COUNTY", "debit"),
        ("ST-CITY", "debit"),
        ("ST-CITY", "credit"),
    }
    c = console(app, world.db, "finance_manager")
    page = c.get(f"/settlement/day/{D}")
    assert f'href="/settlement/day/{D}/summary.xlsx"' in page.text
    download = c.get(f"/settlement/day/{D}/summary.xlsx")
    assert download.status_code == 200
    assert "settlement-2026-03-10.xlsx" in download.headers["content-disposition"]
    assert load_workbook(io.BytesIO(download.content)).sheetnames == book.sheetnames
