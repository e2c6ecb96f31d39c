"""The gateway's SQLite connections never checkpoint the WAL inside a batch's commit; a
background thread copies the WAL back into the database instead."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from cardops.gateway import engine as gateway_engine


def test_the_wal_is_checkpointed_by_the_background_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gateway_engine, "CHECKPOINT_EVERY", 0.05)
    path = str(tmp_path / "checkpoint.db")
    db = create_engine(f"sqlite:///{path}")
    with db.connect() as conn:
        conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        conn.exec_driver_sql("CREATE TABLE t (x BLOB)")
        conn.commit()
    start = os.path.getsize(path)
    with Session(db) as session:
        gateway_engine._checkpoint_in_background(session, path)
        conn = session.connection()
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
        for _ in range(600):  # ≈ 2.4 MB: beyond the 1,000-page automatic checkpoint
            conn.exec_driver_sql("INSERT INTO t VALUES (randomblob(4000))")
        session.commit()
    assert os.path.getsize(f"{path}-wal") > 2_000_000
    deadline = time.monotonic() + 10
    while os.path.getsize(path) < start + 2_000_000 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert os.path.getsize(path) >= start + 2_000_000  # the pages are in the database now
    db.dispose()
