"""The API, the console pages and the CLI of reconciliation."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from cardops.auth.models import User
from cardops.reconciliation.models import ReconCase
from cardops.reconciliation.simulator import export_day
from tests.factories import api_headers, console
from tests.reconciliation.conftest import DAY, Day, read_lines, standard_day, write_lines


def _file(db: Session, system: User, journal_day: Day, tmp_path: Path) -> Path:
    standard_day(journal_day)
    path = tmp_path / f"CLR_ICBC01_{DAY:%Y%m%d}.csv"
    export_day(session=db, actor=system, business_date=DAY, path=path)
    lines = read_lines(path)[:-1]
    write_lines(path, [lines[0], *lines[2:]])  # the bank lost our first purchase
    return path


def test_api_import_day_and_cases(
    db: Session, client: TestClient, system: User, journal_day: Day, tmp_path: Path
) -> None:
    path = _file(db, system, journal_day, tmp_path)
    headers = api_headers(db, "finance_manager")
    with path.open("rb") as fh:
        response = client.post(
            "/api/v1/reconciliation/files",
            files={"file": (path.name, fh, "text/csv")},
            headers=headers,
        )
    assert response.status_code == 201, response.text
    assert response.json()["counts"]["missing_at_bank"] == 1
    with path.open("rb") as fh:
        again = client.post(
            "/api/v1/reconciliation/files",
            files={"file": (path.name, fh, "text/csv")},
            headers=headers,
        )
    assert again.status_code == 409 and again.json()["errors"][0]["field"] == "file"
    day = client.get(f"/api/v1/reconciliation/days/{DAY.isoformat()}", headers=headers)
    assert day.json()["counts"]["matched"] == 21
    cases = client.get(
        "/api/v1/reconciliation/cases", params={"date": DAY.isoformat()}, headers=headers
    ).json()
    assert cases["total"] == 1
    case_id = cases["items"][0]["id"]
    started = client.post(
        f"/api/v1/reconciliation/cases/{case_id}/investigate", json={"note": ""}, headers=headers
    )
    assert started.json()["state"] == "investigating"
    bad = client.post(
        f"/api/v1/reconciliation/cases/{case_id}/resolve",
        json={"resolution": "adjustment", "note": "late", "amount": "1e3"},
        headers=headers,
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "amount"
    done = client.post(
        f"/api/v1/reconciliation/cases/{case_id}/resolve",
        json={"resolution": "write_off", "note": "small"},
        headers=headers,
    )
    assert done.json()["state"] == "resolved"
    assert [e["kind"] for e in done.json()["history"]] == ["opened", "investigating", "resolved"]


def test_console_import_result_page_and_case_work(
    app: FastAPI, db: Session, system: User, journal_day: Day, tmp_path: Path
) -> None:
    path = _file(db, system, journal_day, tmp_path)
    page = console(app, db, "finance_manager")
    assert 'id="import-form"' in page.get("/reconciliation").text
    with path.open("rb") as fh:
        response = page.http.post(
            "/reconciliation/import",
            data={"csrf_token": page.csrf, "encoding": "gbk"},
            files={"file": (path.name, fh, "text/csv")},
        )
    assert response.status_code == 303, response.text
    result = page.get(f"/reconciliation/days/{DAY.isoformat()}").text
    assert 'id="differences-chart"' in result and 'data-count="21"' in result
    with path.open("rb") as fh:
        refused = page.http.post(
            "/reconciliation/import",
            data={"csrf_token": page.csrf},
            files={"file": (path.name, fh, "text/csv")},
        )
    assert refused.status_code == 409 and 'data-field="file"' in refused.text
    case = db.execute(select(ReconCase)).scalar_one()
    assert page.post(f"/reconciliation/cases/{case.id}/investigate").status_code == 303
    bad = page.post(
        f"/reconciliation/cases/{case.id}/resolve", {"resolution": "bank_claim", "note": "x"}
    )
    assert bad.status_code == 422 and 'data-field="claim_reference"' in bad.text
    ok = page.post(
        f"/reconciliation/cases/{case.id}/resolve",
        {"resolution": "bank_claim", "note": "x", "claim_reference": "C-1"},
    )
    assert ok.status_code == 303
    assert 'id="case-resolution"' in page.get(f"/reconciliation/cases/{case.id}").text
    listing = page.get(f"/reconciliation/cases?date={DAY.isoformat()}&state=resolved").text
    assert case.number in listing
    assert page.get("/reconciliation/cases?date=garbage").status_code == 422
    assert page.get("/reconciliation/days/2026-13-01").status_code == 422


def test_cli_reconcile_json_and_journal_export(
    db: Session, system: User, journal_day: Day, tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """The CLI commands, run in-process on the test session's transaction."""
    from contextlib import contextmanager

    from typer.testing import CliRunner

    import cardops.core.db as core_db
    from cardops.cli import app

    standard_day(journal_day)

    @contextmanager
    def shared():  # type: ignore[no-untyped-def]
        yield db
        db.flush()

    monkeypatch.setattr(core_db, "unit_of_work", shared)
    runner = CliRunner()
    path = tmp_path / f"CLR_ICBC01_{DAY:%Y%m%d}.csv"
    exported = runner.invoke(
        app, ["journal", "export", DAY.isoformat(), "--clearing-file", str(path)]
    )
    assert exported.exit_code == 0, exported.output
    assert read_lines(path)[-1].startswith("#TOTAL,22,")
    result = runner.invoke(app, ["reconcile", str(path), "--json"])
    assert result.exit_code == 0, result.output
    counts = json.loads(result.stdout.strip().splitlines()[-1])
    assert counts == {
        "matched": 22,
        "missing_at_bank": 0,
        "missing_at_ours": 0,
        "amount_mismatch": 0,
        "status_mismatch": 0,
        "duplicate_at_bank": 0,
        "duplicate_at_ours": 0,
    }
    refused = runner.invoke(app, ["reconcile", str(path), "--json"])
    assert refused.exit_code == 2
    assert refused.stdout.strip() == ""
