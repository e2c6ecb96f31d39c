"""Running Alembic from code: `cardops db upgrade`, `make run` and the tests use this."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations"


def alembic_config(url: str | None = None) -> Config:
    if not MIGRATIONS.is_dir():
        raise RuntimeError(f"migrations folder not found at {MIGRATIONS}")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def bootstrap(engine: Engine) -> None:
    """Migrate, then make sure the default roles and the system user exist."""
    from sqlalchemy.orm import Session

    from cardops.auth.service import sync_default_roles, system_user

    upgrade(engine)
    with Session(engine) as session:
        system_user(session)
        sync_default_roles(session)
        session.commit()
