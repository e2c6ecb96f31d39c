"""Helpers for the ledger tests."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from cardops.auth.models import User
from tests.factories import make_user


@pytest.fixture
def finance(db: Session) -> User:
    return make_user(db, "finance_manager")


@pytest.fixture
def cashier(db: Session) -> User:
    return make_user(db, "cashier")
