"""Fresh databases for the restore drill, apart from the rolled-back test database: migrated
SQLite files under tmp_path, or (with CARDOPS_TEST_POSTGRES_URL) new PostgreSQL databases."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cardops.core.db import make_engine
from cardops.core.migrate import bootstrap
from tests.conftest import POSTGRES_URL, _create_postgres_database, _drop_postgres_database

NewDatabase = Callable[..., str]


@pytest.fixture
def new_database(tmp_path: Path) -> Iterator[NewDatabase]:
    """``new_database(migrated=True)`` → the URL of a database nobody else uses."""
    created: list[str] = []

    def make(migrated: bool = True) -> str:
        if POSTGRES_URL:
            url, name = _create_postgres_database(POSTGRES_URL)
            created.append(name)
        else:
            url = f"sqlite:///{tmp_path / f'db{len(created)}.sqlite'}"
            created.append(url)
        if migrated:
            engine = make_engine(url)
            bootstrap(engine)
            engine.dispose()
        return url

    yield make
    if POSTGRES_URL:
        for name in created:
            _drop_postgres_database(POSTGRES_URL, name)
