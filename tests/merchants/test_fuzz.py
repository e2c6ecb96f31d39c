"""Property-based fuzzing of the merchants and activations API: no input may cause a 500."""

from __future__ import annotations

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings

from cardops.auth.permissions import DEFAULT_ROLES
from tests.factories import bearer, make_user
from tests.merchants.conftest import World


@pytest.fixture
def merchants_schema(app: FastAPI) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture
def everyone(world: World) -> dict[str, str]:
    """A caller holding every role, with an approved merchant and a unit at a provider."""
    world.approved_merchant()
    world.unit()
    return bearer(world.db, make_user(world.db, *DEFAULT_ROLES))


schema = schemathesis.pytest.from_fixture("merchants_schema")


@pytest.mark.slow
@schema.include(path_regex=r"^/api/v1/(merchants|activations)").parametrize()
@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_merchants_api_never_answers_500(case: schemathesis.Case, everyone: dict[str, str]) -> None:
    response = case.call(headers=everyone)
    assert response.status_code < 500, (case.method, case.formatted_path, response.text)
