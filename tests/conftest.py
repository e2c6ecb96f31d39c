"""Test fixtures: a fresh migrated database per run (SQLite, or PostgreSQL when
``CARDOPS_TEST_POSTGRES_URL`` is set), and each test inside a transaction that is rolled back."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, make_url, text
from sqlalchemy.orm import Session, sessionmaker

from cardops.core import config as config_module
from cardops.core.clock import freeze
from cardops.core.db import make_engine, session_factory
from cardops.core.migrate import bootstrap

POSTGRES_URL = os.environ.get("CARDOPS_TEST_POSTGRES_URL")


def _create_postgres_database(base_url: str) -> tuple[str, str]:
    name = f"cardops_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(base_url).set(database=name).render_as_string(hide_password=False), name


def _drop_postgres_database(base_url: str, name: str) -> None:
    admin = create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def var_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("var")
    os.environ["CARDOPS_VAR_DIR"] = str(path)
    os.environ.setdefault("CARDOPS_SECRET_KEY", "test-secret-key")
    config_module.reset_settings()
    return path


@pytest.fixture(scope="session")
def database_url(var_dir: Path) -> Iterator[str]:
    if POSTGRES_URL:
        url, name = _create_postgres_database(POSTGRES_URL)
        os.environ["CARDOPS_DATABASE_URL"] = url
        config_module.reset_settings()
        yield url
        _drop_postgres_database(POSTGRES_URL, name)
    else:
        url = f"sqlite:///{var_dir / 'test.db'}"
        os.environ["CARDOPS_DATABASE_URL"] = url
        config_module.reset_settings()
        yield url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    bootstrap(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def db(engine: Engine) -> Iterator[Session]:
    """A session whose commits are savepoints inside one transaction rolled back at the end.
    The web app, when called through ``client``, shares the same connection."""
    connection = engine.connect()
    outer = connection.begin()
    maker = sessionmaker(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    session_factory.configure(maker)
    session = maker()
    try:
        yield session
    finally:
        session.close()
        session_factory.configure(None)
        freeze(None)
        if outer.is_active:
            outer.rollback()
        connection.close()


@pytest.fixture(scope="session")
def app(engine: Engine) -> FastAPI:
    from cardops.web.app import create_app

    return create_app()


@pytest.fixture
def client(app: FastAPI, db: Session) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    """Each test starts with empty in-process rate-limit counts."""
    from cardops.core.ratelimit import reset_all

    reset_all()


@pytest.fixture(autouse=True)
def _fresh_balance_marks() -> None:
    """Each test starts with no remembered ledger balance marks: a test's outer transaction
    is rolled back, so marks of its lines must not reach the next test."""
    from cardops.ledger.service import forget_balance_marks

    forget_balance_marks()
