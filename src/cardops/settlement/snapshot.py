"""A closed window's journal rows as columns on disk, left by ``settle_day`` for the bank
reconciliation of the same rows (so that 10 M rows are read out of SQLite once, not twice).

Settling a window reads every row of its id range ``(first_id, last_id]`` (see
:func:`cardops.settlement.compute.aggregate`); the rows the bank clears (purchase, completion,
refund, void, reversal; not on-us) are written as Parquet parts under
``var/settlement/snapshots/<token>/`` with a manifest holding the id range and a fingerprint
of the whole range (row count, Σ amount, Σ approved, Σ reversed). The token goes into the
window's ``snapshot`` event, in the same transaction as the settlement: a settlement that is
rolled back leaves no event, and its files are never used; :func:`sweep` (run by each
settlement) deletes such folders once they are an hour old.

:func:`usable` gives reconciliation the snapshots it may use for an id range: only those whose
fingerprint, recomputed from the database now, still matches (a reversal journaled after the
cut-off flips ``reversed`` on a row inside the range and so changes Σ reversed); anything
else is read from the database as before. SQLite only: PostgreSQL streams the journal with
``COPY`` and gains little from it.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from cardops.core.config import get_settings

log = logging.getLogger(__name__)

# a folder no window names is deleted once it is this old (seconds): a settlement still
# running (in another process, its event not committed yet) may be writing a younger one
ORPHAN_AGE = 3600

RECON_KINDS = ("purchase", "completion", "refund", "void", "reversal")
COLUMNS = ("id", "tid", "stan", "rrn", "amount", "kind", "ok", "merchant_id", "local_date")
FINGERPRINT = (
    "SELECT count(*), coalesce(sum(amount), 0), "
    "coalesce(sum(CASE WHEN approved THEN 1 ELSE 0 END), 0), "
    "coalesce(sum(CASE WHEN reversed THEN 1 ELSE 0 END), 0) "
    "FROM gateway_journal WHERE id > :first AND id <= :last"
)


def root() -> Path:
    return get_settings().var_dir / "settlement" / "snapshots"


def supported(session: Session) -> bool:
    return session.connection().dialect.name == "sqlite"


class Writer:
    """Collects a window's slices (all rows of the id range) into Parquet parts."""

    def __init__(self, first_id: int, last_id: int) -> None:
        self.token = uuid.uuid4().hex
        self.first_id = first_id
        self.last_id = last_id
        self.directory = root() / self.token
        self.directory.mkdir(parents=True, exist_ok=True)
        self.parts = 0
        self.fingerprint = [0, 0, 0, 0]

    def add(self, frame: pl.DataFrame) -> None:
        """One slice of rows: id, m, kind, approved, reversed, amount, tid, stan, rrn,
        local_date, route (every row of the slice, whatever its kind)."""
        sums = frame.select(
            pl.len().cast(pl.Int64),
            pl.col("amount").sum(),
            pl.col("approved").cast(pl.Int64).sum(),
            pl.col("reversed").cast(pl.Int64).sum(),
        ).row(0)
        self.fingerprint = [a + int(b or 0) for a, b in zip(self.fingerprint, sums, strict=True)]
        kept = frame.filter(
            pl.col("kind").is_in(RECON_KINDS) & (pl.col("route") != "on-us")
        ).select(
            "id",
            "tid",
            "stan",
            "rrn",
            "amount",
            "kind",
            ((pl.col("approved") == 1) & (pl.col("reversed") == 0)).cast(pl.Int8).alias("ok"),
            pl.col("m").fill_null(0).alias("merchant_id"),
            "local_date",
        )
        kept.write_parquet(self.directory / f"part-{self.parts:05d}.parquet", compression="lz4")
        self.parts += 1

    def finish(self, window_id: int) -> dict[str, Any]:
        manifest = {
            "token": self.token,
            "window_id": window_id,
            "first_id": self.first_id,
            "last_id": self.last_id,
            "parts": self.parts,
            "fingerprint": self.fingerprint,
        }
        (self.directory / "manifest.json").write_text(json.dumps(manifest))
        return manifest

    def discard(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def sweep(session: Session, *, older_than: float = ORPHAN_AGE) -> int:
    """Delete the snapshot folders that no window's ``snapshot`` event names (left by a
    settlement that was rolled back, or that failed after writing them) once they are
    ``older_than`` seconds old; returns how many went. A folder that cannot be deleted is
    logged and left for the next time: it never stops a settlement."""
    from cardops.settlement.models import WindowEvent

    base = root()
    if not base.is_dir():
        return 0
    named = {
        data.get("token")
        for data in session.execute(
            select(WindowEvent.data).where(WindowEvent.event == "snapshot")
        ).scalars()
        if isinstance(data, dict)
    }
    cutoff = time.time() - older_than
    removed = 0
    for directory in base.iterdir():
        if directory.name in named:
            continue
        try:
            if not directory.is_dir() or directory.stat().st_mtime > cutoff:
                continue
            shutil.rmtree(directory)
        except OSError:
            log.warning("could not delete the snapshot folder %s", directory, exc_info=True)
            continue
        removed += 1
    return removed


@dataclass(frozen=True)
class Snapshot:
    first_id: int
    last_id: int
    directory: Path
    parts: int

    def frame(self, local_date: str, lo: int, hi: int) -> pl.DataFrame:
        """The rows of terminal date ``local_date`` with ids in ``[lo, hi]`` (reconciliation's
        selection), columns as :mod:`cardops.reconciliation.journal` reads them."""
        if not self.parts:
            return pl.DataFrame()
        return (
            pl.scan_parquet(self.directory / "part-*.parquet")
            .filter(
                (pl.col("local_date") == local_date) & (pl.col("id") >= lo) & (pl.col("id") <= hi)
            )
            .drop("local_date")
            .collect()
        )


def usable(session: Session, lo: int, hi: int) -> list[Snapshot]:
    """Snapshots of settled windows overlapping ids ``[lo, hi]`` that still match the
    database (non-overlapping, lowest first)."""
    if not supported(session):
        return []
    from cardops.settlement.models import SettlementWindow, WindowEvent

    rows = session.execute(
        select(SettlementWindow.id, SettlementWindow.first_id, SettlementWindow.last_id)
        .where(
            SettlementWindow.first_id.is_not(None),
            SettlementWindow.last_id.is_not(None),
            SettlementWindow.first_id < hi,
            SettlementWindow.last_id >= lo,
        )
        .order_by(SettlementWindow.first_id)
    ).all()
    out: list[Snapshot] = []
    for window_id, first, last in rows:
        first_id, last_id = int(first or 0), int(last or 0)
        events = session.execute(
            select(WindowEvent.data)
            .where(WindowEvent.window_id == window_id, WindowEvent.event == "snapshot")
            .order_by(WindowEvent.id.desc())
            .limit(1)
        ).scalar_one_or_none()
        token = events.get("token") if isinstance(events, dict) else None
        if not isinstance(token, str) or not token.isalnum():
            continue
        directory = root() / token
        try:
            manifest = json.loads((directory / "manifest.json").read_text())
        except (OSError, ValueError):
            continue
        if (
            manifest.get("window_id") != window_id
            or manifest.get("first_id") != first_id
            or manifest.get("last_id") != last_id
        ):
            continue
        now = session.execute(text(FINGERPRINT), {"first": first_id, "last": last_id}).one()
        if [int(v) for v in now] != manifest.get("fingerprint"):
            continue
        if out and first_id < out[-1].last_id:
            continue  # overlapping ranges: keep the first
        out.append(Snapshot(first_id, last_id, directory, int(manifest.get("parts", 0))))
    return out
