"""Property-based fuzzing of the approvals API: no input may cause a 500."""

from __future__ import annotations

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from sqlalchemy.orm import Session

from cardops.auth.permissions import DEFAULT_ROLES
from tests.approvals.helpers import define
from tests.factories import bearer, make_user


@pytest.fixture
def approvals_schema(app: FastAPI) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture
def everyone(db: Session) -> dict[str, str]:
    """A caller holding every role, and a chain to submit to."""
    define(db, "general", ["department_manager"])
    return bearer(db, make_user(db, *DEFAULT_ROLES))


schema = schemathesis.pytest.from_fixture("approvals_schema")


@pytest.mark.slow
@schema.include(path_regex=r"^/api/v1/approvals/").parametrize()
@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_approvals_api_never_answers_500(case: schemathesis.Case, everyone: dict[str, str]) -> None:
    response = case.call(headers=everyone)
    assert response.status_code < 500, (case.method, case.formatted_path, response.text)
