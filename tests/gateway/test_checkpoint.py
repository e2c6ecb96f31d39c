"""The gateway's SQLite connections never checkpoint the WAL inside a batch's commit; a
background thread copies the WAL back into the database instead."""

from __future__ import annotations

import fcntl
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


def test_the_wal_starts_over_while_a_writer_keeps_committing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A passive checkpoint copies the WAL as it was when it began; with a writer committing
    all the time it never caught up, the WAL never started over and grew without end. The
    checkpoint thread now finishes under the writers' lock, so the WAL is written from its
    start again and cut back to its size limit."""
    monkeypatch.setattr(gateway_engine, "CHECKPOINT_EVERY", 0.02)
    monkeypatch.setattr(gateway_engine, "CHECKPOINT_FINISH_PAGES", 100)
    monkeypatch.setattr(gateway_engine, "WAL_SIZE_LIMIT", 1_000_000)
    path = str(tmp_path / "busy.db")
    db = create_engine(f"sqlite:///{path}")
    lock = gateway_engine._writers_lock(path)
    written, largest, commits = 0, 0, 0
    with db.connect() as conn:
        conn.exec_driver_sql("PRAGMA journal_mode=WAL")
        conn.exec_driver_sql("CREATE TABLE t (x BLOB)")
        conn.commit()
        gateway_engine._checkpoint_in_background(Session(bind=conn), path)
        conn.commit()
        assert conn.exec_driver_sql("PRAGMA journal_size_limit").scalar() == 1_000_000
        while written < 12_000_000:  # as the gateway's batches do: one after the other
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                for _ in range(10):
                    conn.exec_driver_sql("INSERT INTO t VALUES (randomblob(4000))")
                conn.commit()
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
            time.sleep(0.001)  # the gateway answers its batch and reads the next one here
            written += 40_000
            commits += 1
            largest = max(largest, os.path.getsize(f"{path}-wal"))
        assert conn.exec_driver_sql("SELECT count(*) FROM t").scalar() == 10 * commits
    os.close(lock)
    db.dispose()
    assert largest < written / 2, (
        largest,
        written,
    )  # without the locked pass: the WAL held all 12 MB
