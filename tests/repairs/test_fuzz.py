"""Property-based fuzzing of the repairs API's entry points: no input may cause a 500, and a
refused intake saves nothing."""

from __future__ import annotations

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from sqlalchemy import func, select

from cardops.repairs.models import RepairCase
from cardops.terminals.models import TerminalState
from tests.factories import bearer, make_user
from tests.repairs.conftest import World


@pytest.fixture
def repairs_schema(app: FastAPI) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture
def caller(world: World) -> dict[str, str]:
    world.unit(TerminalState.AT_PROVIDER)
    return bearer(world.db, make_user(world.db, "after_sales_specialist", "technician"))


schema = schemathesis.pytest.from_fixture("repairs_schema")


@pytest.mark.slow
@schema.include(path_regex=r"^/api/v1/(repairs|visits)(/\{[a-z_]+\})?$").parametrize()
@settings(max_examples=5, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_repairs_api_never_answers_500(
    case: schemathesis.Case, caller: dict[str, str], world: World
) -> None:
    before = world.db.scalar(select(func.count()).select_from(RepairCase))
    response = case.call(headers=caller)
    assert response.status_code < 500, (case.method, case.formatted_path, response.text)
    if response.status_code >= 400:
        world.db.expire_all()
        assert world.db.scalar(select(func.count()).select_from(RepairCase)) == before
