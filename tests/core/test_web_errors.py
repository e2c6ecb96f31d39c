from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from cardops.core.config import get_settings
from tests.factories import api_headers


def test_health_reports_ok(client: TestClient) -> None:
    response = client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_unknown_api_path_is_a_problem_document(client: TestClient) -> None:
    response = client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_validation_errors_name_the_field(client: TestClient, db: Session) -> None:
    headers = api_headers(db, "sysadmin")
    response = client.post("/api/v1/users", headers=headers, json={"username": "x"})
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert {"display_name", "password"} <= fields


def test_absurd_path_id_is_422(client: TestClient, db: Session) -> None:
    headers = api_headers(db, "sysadmin")
    response = client.get("/api/v1/users/99999999999999999999", headers=headers)
    assert response.status_code == 422


def test_oversized_body_is_refused_with_413(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "max_request_bytes", 1024)
    response = client.post(
        "/api/v1/auth/token",
        content=b"x" * 5000,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 413
    assert response.json()["code"] == "too_large"
