"""Fuzz every operation of the OpenAPI spec with schemathesis: bad input never gives a 500.

Requests are made as a user holding every role, so the fuzzer reaches the service code rather
than stopping at 401/403. Everything happens inside the test's rolled-back transaction.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from sqlalchemy.orm import Session

from cardops.auth.permissions import DEFAULT_ROLES
from tests.factories import api_headers

MAX_EXAMPLES = int(os.environ.get("CARDOPS_FUZZ_EXAMPLES", "6"))
# Operations that would disturb the shared test run rather than exercise input handling.
SKIP = {("POST", "/api/v1/notifications/dispatch")}


@pytest.fixture
def api_schema(app: FastAPI) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.mark.slow
@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors(case: Any, db: Session) -> None:
    if (case.method.upper(), case.path) in SKIP:
        pytest.skip("not fuzzed")
    headers = _headers(db)
    if case.path == "/api/v1/auth/token" or case.path == "/api/v1/auth/password":
        headers = {}
    response = case.call(headers={**(case.headers or {}), **headers})
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:500]}"
    )


_cache: dict[int, dict[str, str]] = {}


def _headers(db: Session) -> dict[str, str]:
    key = id(db)
    if key not in _cache:
        _cache.clear()
        _cache[key] = api_headers(db, *DEFAULT_ROLES)
    return _cache[key]
