"""The window snapshot settle_day leaves for reconciliation: reconciliation's journal frame
read through it is identical to the one read from the database; a row changed after the
settlement (a late reversal) makes the snapshot unusable; a rolled-back settlement's files
are never used, and the next settlement deletes them once they are an hour old."""

from __future__ import annotations

import os
import time
from datetime import timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal
from sqlalchemy import update

from cardops.gateway.models import Journal
from cardops.reconciliation import journal as journal_columns
from cardops.settlement import service
from cardops.settlement import snapshot as snapshots
from tests.settlement.conftest import DAY, World, at


def _fill(world: World) -> list[int]:
    if not snapshots.supported(world.db):
        pytest.skip("the snapshot is SQLite's (PostgreSQL streams the journal with COPY)")
    # one row the day before (in the previous window, another terminal date)
    earlier = world.journal("purchase", 700, when=at(DAY - timedelta(days=1), 12))
    ids = []
    for n, (kind, amount, card) in enumerate(
        [
            ("purchase", 1_250, "debit"),
            ("purchase", 88_000, "credit"),
            ("refund", 1_250, "debit"),
            ("void", 88_000, "credit"),
            ("purchase", 999, "debit"),
            ("balance", 0, "debit"),
            ("reversal", 999, "debit"),
            ("completion", 5_000, "credit"),
        ]
    ):
        terminal = [world.t_county, world.t_city, world.t_none][n % 3]
        ids.append(world.journal(kind, amount, terminal=terminal, card_type=card))
    ids.append(earlier)
    # one after the cut-off (next window, same terminal date)
    ids.append(world.journal("purchase", 701, when=at(DAY, 23, 30)))
    world.db.execute(
        update(Journal).where(Journal.id.in_(ids)).values(local_date=DAY.strftime("%Y%m%d"))
    )
    world.db.execute(
        update(Journal)
        .where(Journal.id == ids[-2])
        .values(local_date=(DAY - timedelta(days=1)).strftime("%Y%m%d"))
    )
    world.db.execute(update(Journal).where(Journal.id == ids[1]).values(route="on-us"))
    return ids


def _from_database(world: World, monkeypatch: pytest.MonkeyPatch) -> pl.DataFrame:
    with monkeypatch.context() as m:
        m.setattr(snapshots, "usable", lambda *_a, **_k: [])
        return journal_columns.load_day(world.db, DAY)


def test_reconciliation_reads_the_same_rows_through_the_snapshot(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = _fill(world)
    result = service.settle_day(session=world.db, actor=world.finance, business_date=DAY)
    window = result.window
    assert window.first_id is not None and window.last_id is not None
    usable = snapshots.usable(world.db, window.first_id, window.last_id + 5)
    assert [(s.first_id, s.last_id) for s in usable] == [(window.first_id, window.last_id)]
    used: list[int] = []
    real_frame = snapshots.Snapshot.frame

    def spy(self: snapshots.Snapshot, local_date: str, lo: int, hi: int) -> pl.DataFrame:
        out = real_frame(self, local_date, lo, hi)
        used.append(out.height)
        return out

    monkeypatch.setattr(snapshots.Snapshot, "frame", spy)
    through = journal_columns.load_day(world.db, DAY)
    assert used and used[0] > 0  # the window's rows came from the snapshot
    expected = _from_database(world, monkeypatch)
    # the same rows (the database's own order follows whatever index SQLite picks)
    assert_frame_equal(through.sort("id"), expected.sort("id"))
    # the row after the cut-off is not in the window but is in the day: read from the database
    assert ids[-1] in through["id"].to_list() and ids[-1] > window.last_id
    assert ids[1] not in through["id"].to_list()  # on-us
    assert ids[-2] not in through["id"].to_list()  # another terminal date


def test_a_row_changed_after_settlement_makes_the_snapshot_unusable(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = _fill(world)
    window = service.settle_day(session=world.db, actor=world.finance, business_date=DAY).window
    assert window.first_id is not None and window.last_id is not None
    # a late reversal flags the purchase reversed: it is no longer SUCCESS for the bank
    world.db.execute(update(Journal).where(Journal.id == ids[4]).values(reversed=True))
    assert snapshots.usable(world.db, window.first_id, window.last_id) == []
    frame = journal_columns.load_day(world.db, DAY)
    assert_frame_equal(frame.sort("id"), _from_database(world, monkeypatch).sort("id"))
    assert frame.filter(pl.col("id") == ids[4])["ok"].to_list() == [False]


def test_a_rolled_back_settlement_leaves_nothing_usable(world: World) -> None:
    _fill(world)
    nested = world.db.begin_nested()
    window = service.settle_day(session=world.db, actor=world.finance, business_date=DAY).window
    first, last = window.first_id, window.last_id
    assert first is not None and last is not None
    assert len(snapshots.usable(world.db, first, last)) == 1
    nested.rollback()
    assert snapshots.usable(world.db, first, last) == []


def test_the_next_settlement_deletes_a_rolled_back_settlements_folder(world: World) -> None:
    _fill(world)
    before = set(snapshots.root().iterdir()) if snapshots.root().is_dir() else set()
    nested = world.db.begin_nested()
    service.settle_day(session=world.db, actor=world.finance, business_date=DAY)
    nested.rollback()
    (orphan,) = set(snapshots.root().iterdir()) - before
    assert snapshots.sweep(world.db) == 0  # young: a settlement still running may own it
    assert orphan.is_dir()
    an_hour_ago = time.time() - snapshots.ORPHAN_AGE - 60
    os.utime(orphan, (an_hour_ago, an_hour_ago))
    window = service.settle_day(session=world.db, actor=world.finance, business_date=DAY).window
    assert not orphan.exists()
    assert window.first_id is not None and window.last_id is not None
    (kept,) = snapshots.usable(world.db, window.first_id, window.last_id)
    assert kept.directory.is_dir()
    snapshots.sweep(world.db, older_than=0)  # a folder a window names stays, whatever its age
    assert kept.directory.is_dir()
