"""The gateway batch's SQL helpers, on SQLite and PostgreSQL alike: ``core.db.BulkInsert``
(the driver's executemany, or PostgreSQL's COPY, writes what the ORM reads back:
timestamps, JSON, booleans, NULLs; a broken constraint is an IntegrityError either way) and
``core.db.in_values`` (a list bound as one parameter)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cardops.core.db import BulkInsert, in_values
from cardops.core.models import Counter
from cardops.gateway import engine as gateway_engine
from cardops.gateway.models import Journal
from cardops.ledger import service as ledger
from cardops.ledger.models import Posting, PostingLine


def test_every_journal_column_is_written() -> None:
    # a column left out would silently get NULL (or its server default) instead of the
    # model's Python-side default
    table = Journal.__table__
    assert set(gateway_engine._JOURNAL_COLUMNS) == {c.name for c in table.columns} - {"id"}


def test_every_posting_column_that_a_batch_sets_is_written() -> None:
    left_out = {c.name for c in Posting.__table__.columns} - set(ledger._POSTINGS.columns)
    assert left_out == {"id", "reversal_of_id"}  # a batch posting is never a reversal
    assert set(ledger._LINES.columns) == {c.name for c in PostingLine.__table__.columns} - {"id"}


def _journal_rows(db: Session, insert: BulkInsert) -> list[dict[str, Any]]:
    connection = db.connection()
    at = datetime(2026, 11, 23, 16, 30, 5, 123456, tzinfo=UTC)
    as_json = insert.processor(connection, "request")
    blank = dict.fromkeys(insert.columns, "")
    blank.update(
        created_at=insert.processor(connection, "created_at")(at),
        amount=0,
        latency_us=0,
        approved=False,
        reversed=False,
        voided=False,
        completed=False,
        terminal_id=None,
        merchant_id=None,
        original_id=None,
        settled_batch_id=None,
        rrn=None,
        wallet_key=None,
    )
    rows = [
        blank
        | {
            "dup_key": "bulk-1",
            "amount": 1234,
            "approved": True,
            "pan_hash": None,
            "request": as_json({"t": "0200", "4": "000000001234"}),
            "response": as_json({"39": "00"}),
        },
        blank
        | {
            "dup_key": "bulk-2",
            "pan_hash": "h" * 64,
            "request": as_json({}),
            "response": as_json({"39": "05", "note": "中文"}),
        },
    ]
    return rows


def _tuples(insert: BulkInsert, rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [tuple(row[c] for c in insert.columns) for row in rows]


def test_rows_read_back_as_written(db: Session) -> None:
    # two rows: PostgreSQL writes them with COPY, SQLite with executemany
    insert = BulkInsert(Journal.__table__, gateway_engine._JOURNAL_COLUMNS)
    at = datetime(2026, 11, 23, 16, 30, 5, 123456, tzinfo=UTC)
    insert.run(db.connection(), _tuples(insert, _journal_rows(db, insert)))
    found = {
        j.dup_key: j
        for j in db.execute(select(Journal).where(Journal.dup_key.like("bulk-%"))).scalars()
    }
    first, second = found["bulk-1"], found["bulk-2"]
    assert first.created_at == at and second.created_at == at
    assert (first.amount, first.approved, first.reversed) == (1234, True, False)
    assert first.request == {"t": "0200", "4": "000000001234"}
    assert (second.approved, second.pan_hash) == (False, "h" * 64)
    assert second.response == {"39": "05", "note": "中文"}
    assert first.pan_hash is None and first.original_id is None and first.rrn is None


@pytest.mark.parametrize("many", [False, True], ids=["one row", "a batch"])
def test_a_broken_constraint_is_an_integrity_error(db: Session, many: bool) -> None:
    """As from an INSERT, also from PostgreSQL's COPY: the gateway retries a batch that
    conflicts with another process's row by row on SQLAlchemy's IntegrityError."""
    insert = BulkInsert(Journal.__table__, gateway_engine._JOURNAL_COLUMNS)
    first, second = _journal_rows(db, insert)
    insert.run(db.connection(), _tuples(insert, [first]))
    again = [first, second] if many else [first]
    savepoint = db.begin_nested()
    with pytest.raises(IntegrityError):
        insert.run(db.connection(), _tuples(insert, again))
    savepoint.rollback()
    assert db.scalar(select(func.count(Journal.id)).where(Journal.dup_key.like("bulk-%"))) == 1


def test_in_values_matches_like_in(db: Session) -> None:
    db.execute(
        Counter.__table__.insert(),
        [{"name": f"in-values-{n}", "value": n} for n in range(5)],
    )
    by_name = select(Counter.name).where(in_values(Counter.name, "names")).order_by(Counter.name)
    by_value = select(Counter.name).where(in_values(Counter.value, "values"))
    assert db.scalars(by_name, {"names": ["in-values-1", "in-values-3", "nope"]}).all() == [
        "in-values-1",
        "in-values-3",
    ]
    assert db.scalars(by_name, {"names": []}).all() == []
    # more values than SQLite once allowed placeholders in one statement, and a tuple
    wanted = tuple(f"in-values-{n}" for n in range(0, 5000, 2))
    assert len(db.scalars(by_name, {"names": wanted}).all()) == 3
    names = db.scalars(by_value.where(Counter.name.like("in-values-%")), {"values": [4]}).all()
    assert names == ["in-values-4"]
