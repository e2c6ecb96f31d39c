"""``cardops backup create / inspect / restore`` on a database of its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cardops.backup import service as backup
from cardops.cli import app
from cardops.core.config import reset_settings
from cardops.core.db import get_engine
from tests.backup.conftest import NewDatabase
from tests.backup.test_backup import add_users, read_documents, write_documents


@pytest.fixture
def cli_env(
    new_database: NewDatabase, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, Path]]:
    """CARDOPS_DATABASE_URL and CARDOPS_VAR_DIR pointing at a fresh database and folder."""
    url = new_database()
    var = tmp_path / "var"
    monkeypatch.setenv("CARDOPS_DATABASE_URL", url)
    monkeypatch.setenv("CARDOPS_VAR_DIR", str(var))
    reset_settings()
    get_engine.cache_clear()
    yield url, var
    monkeypatch.undo()
    reset_settings()
    get_engine.cache_clear()


def test_cli_create_inspect_restore(cli_env: tuple[str, Path], tmp_path: Path) -> None:
    url, var = cli_env
    add_users(url, "zhou.min")
    write_documents(var / "documents", {"a/scan.pdf": b"%PDF scan"})
    before = backup.database_state(url)
    runner = CliRunner()
    archive = tmp_path / "nightly.tar.gz"

    result = runner.invoke(app, ["backup", "create", str(archive)])
    assert result.exit_code == 0, result.output
    assert "backup written" in result.output
    assert archive.is_file()

    result = runner.invoke(app, ["backup", "inspect", "--deep", str(archive)])
    assert result.exit_code == 0, result.output
    assert "archive intact" in result.output and "users" in result.output

    add_users(url, "after.backup")
    (var / "documents" / "a" / "scan.pdf").unlink()

    result = runner.invoke(app, ["backup", "restore", str(archive)], input="n\n")
    assert result.exit_code == 1  # declined: nothing changed
    assert backup.database_state(url).tables["users"] == before.tables["users"] + 1

    result = runner.invoke(app, ["backup", "restore", "--yes", str(archive)])
    assert result.exit_code == 0, result.output
    assert "audit chain verified" in result.output
    assert "differs" not in result.output
    after = backup.database_state(url)
    assert after.tables == before.tables
    assert (after.audit_count, after.audit_head) == (before.audit_count, before.audit_head)
    assert read_documents(var / "documents") == {"a/scan.pdf": b"%PDF scan"}


def test_cli_restore_refuses_a_file_that_is_not_a_backup(
    cli_env: tuple[str, Path], tmp_path: Path
) -> None:
    junk = tmp_path / "photo.jpg"
    junk.write_bytes(b"\xff\xd8\xff not a backup")
    result = CliRunner().invoke(app, ["backup", "restore", "--yes", str(junk)])
    assert result.exit_code != 0
    assert "not a cardops backup" in str(result.exception)
