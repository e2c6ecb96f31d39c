"""Each reconciliation permission, taken away, is refused on the API and the console."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from cardops.auth.models import User
from cardops.reconciliation import service
from cardops.reconciliation.models import ReconCase
from cardops.reconciliation.simulator import export_day
from tests.factories import api_headers, console
from tests.reconciliation.conftest import DAY, Day, read_lines, standard_day, write_lines


@pytest.fixture
def case_id(db: Session, system: User, journal_day: Day, tmp_path: Path) -> int:
    standard_day(journal_day)
    path = tmp_path / f"CLR_ICBC01_{DAY:%Y%m%d}.csv"
    export_day(session=db, actor=system, business_date=DAY, path=path)
    lines = read_lines(path)[:-1]
    write_lines(path, [lines[0], *lines[2:]])  # the bank lost our first purchase
    service.import_file(session=db, actor=system, path=path)
    return int(db.execute(select(ReconCase.id)).scalar_one())


def test_view_needs_reconciliation_view(
    app: FastAPI, client: TestClient, db: Session, case_id: int
) -> None:
    headers = api_headers(db, "technician")
    assert client.get("/api/v1/reconciliation/files", headers=headers).status_code == 403
    assert client.get("/api/v1/reconciliation/cases", headers=headers).status_code == 403
    page = console(app, db, "technician")
    assert page.get("/reconciliation").status_code == 403
    assert page.get(f"/reconciliation/cases/{case_id}").status_code == 403
    assert page.get(f"/reconciliation/days/{DAY.isoformat()}").status_code == 403


def test_import_needs_reconciliation_import(
    app: FastAPI, client: TestClient, db: Session, case_id: int, tmp_path: Path
) -> None:
    headers = api_headers(db, "data_analyst")  # may view, may not import
    assert client.get("/api/v1/reconciliation/files", headers=headers).status_code == 200
    response = client.post(
        "/api/v1/reconciliation/files",
        files={"file": ("CLR_X_20261120.csv", b"x", "text/csv")},
        headers=headers,
    )
    assert response.status_code == 403
    assert (
        client.post(f"/api/v1/reconciliation/days/{DAY}/rerun", headers=headers).status_code == 403
    )
    page = console(app, db, "data_analyst")
    assert 'id="import-form"' not in page.get("/reconciliation").text
    refused = page.http.post(
        "/reconciliation/import",
        data={"csrf_token": page.csrf},
        files={"file": ("CLR_X_20261120.csv", b"x", "text/csv")},
    )
    assert refused.status_code == 403
    assert page.post(f"/reconciliation/days/{DAY}/rerun").status_code == 403


def test_work_needs_reconciliation_work(
    app: FastAPI, client: TestClient, db: Session, case_id: int
) -> None:
    headers = api_headers(db, "data_analyst")
    url = f"/api/v1/reconciliation/cases/{case_id}/investigate"
    assert client.post(url, json={"note": ""}, headers=headers).status_code == 403
    page = console(app, db, "data_analyst")
    assert page.post(f"/reconciliation/cases/{case_id}/investigate").status_code == 403
    assert 'id="investigate-form"' not in page.get(f"/reconciliation/cases/{case_id}").text


def test_adjustment_needs_reconciliation_adjust(
    app: FastAPI, client: TestClient, db: Session, case_id: int
) -> None:
    headers = api_headers(db, "cashier")  # may work cases, may not post adjustments
    base = f"/api/v1/reconciliation/cases/{case_id}"
    assert client.post(f"{base}/investigate", json={"note": ""}, headers=headers).status_code == 200
    response = client.post(
        f"{base}/resolve", json={"resolution": "adjustment", "note": "n"}, headers=headers
    )
    assert response.status_code == 403
    page = console(app, db, "cashier")
    refused = page.post(
        f"/reconciliation/cases/{case_id}/resolve", {"resolution": "adjustment", "note": "n"}
    )
    assert refused.status_code == 403
