"""The day's journal as columns, loaded fast for reconciliation and for the bank simulator.

Only what the bank clears is read: purchase, completion, refund, void and reversal rows of
the business day (``local_date``, the terminal's date), not on-us (those are the operator's
own one-card wallets, which the bank never sees). A row's status, as the bank should report
it, is SUCCESS when it was approved and not reversed, otherwise FAILED.

SQLite: the database concatenates each slice of ids into one text blob (``group_concat``)
that Polars parses, so Python never builds an object per row. PostgreSQL: ``COPY (…) TO
STDOUT`` streamed into Polars. Both run on the session's own connection (same transaction).
On SQLite, id ranges that a settled window left a still-valid snapshot of (see
:mod:`cardops.settlement.snapshot`) are read from that snapshot instead of the database.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cardops.core.config import get_settings
from cardops.gateway.models import Journal
from cardops.settlement import columns as journal_columns
from cardops.settlement import snapshot as snapshots
from cardops.settlement.snapshot import Snapshot

KINDS: dict[str, str] = {
    "purchase": "PURCHASE",
    "completion": "COMPLETION",
    "refund": "REFUND",
    "void": "VOID",
    "reversal": "REVERSAL",
}
TXN_TYPE = pl.Enum(list(KINDS.values()))

_BASE: journal_columns.Columns = {
    "id": ("id", "%d", pl.Int64),
    "tid": ("tid", "%s", pl.String),
    "stan": ("stan", "%s", pl.String),
    "rrn": ("coalesce(rrn, '')", "%s", pl.String),
    "amount": ("amount", "%d", pl.Int64),
    "kind": ("kind", "%s", pl.String),
    "ok": ("(CASE WHEN approved AND NOT reversed THEN 1 ELSE 0 END)", "%d", pl.Int8),
    "merchant_id": ("coalesce(merchant_id, 0)", "%d", pl.Int64),
}
_EXPORT: journal_columns.Columns = {
    "mid": ("mid", "%s", pl.String),
    "auth_code": ("auth_code", "%s", pl.String),
    "pan_masked": ("pan_masked", "%s", pl.String),
    "card_type": ("card_type", "%s", pl.String),
    "created_at": ("{created}", "%s", pl.String),
}

Progress = Callable[[float], None]


def window(day: date) -> tuple[datetime, datetime]:
    """UTC bounds wide enough to hold every row whose terminal date is ``day``."""
    zone = ZoneInfo(get_settings().timezone)
    start = datetime.combine(day, time(0), tzinfo=zone) - timedelta(days=1)
    end = datetime.combine(day, time(0), tzinfo=zone) + timedelta(days=2)
    return start.astimezone(UTC), end.astimezone(UTC)


def _columns(export: bool) -> journal_columns.Columns:
    return {**_BASE, **(_EXPORT if export else {})}


def load_day(
    session: Session, day: date, *, export: bool = False, progress: Progress | None = None
) -> pl.DataFrame:
    """The bank-relevant journal rows of ``day`` with typed, compact columns.

    Columns: id, tid, stan (Int32), rrn (Int64, null when none), date (Int32 YYYYMMDD),
    amount (fen), txn_type (PURCHASE…), ok (SUCCESS expected), merchant_id; with ``export``
    also mid, auth_code, pan_masked, card_type, created_at (UTC text).
    """
    connection = session.connection()
    dialect = connection.dialect.name
    columns = _columns(export)
    local_date = day.strftime("%Y%m%d")
    lo, hi = window(day)
    kinds = ", ".join(f"'{k}'" for k in KINDS)
    where = f"local_date = '{local_date}' AND kind IN ({kinds}) AND route <> 'on-us'"
    created = (
        "substr(created_at, 1, 19)"
        if dialect == "sqlite"
        else "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS')"
    )
    exprs = [sql.format(created=created) for sql, _, _ in columns.values()]
    schema = journal_columns.schema_of(columns)
    raw: Any = session.connection().connection.driver_connection
    parts: list[pl.DataFrame] = []
    if dialect == "sqlite":
        # the id range of the window's rows, read from the created_at index (covering: the
        # rowid is in it); the day's rows are then read by ranges of ids, a sequential scan
        first, last = session.execute(
            select(func.min(Journal.id), func.max(Journal.id)).where(
                Journal.created_at >= lo, Journal.created_at < hi
            )
        ).one()
        if first is not None and last is not None and first <= last:
            # ids a settled window's snapshot still holds exactly are read from it
            ranges: list[tuple[int, int, Snapshot | None]] = []  # [start, end) of ids
            at = first
            for snap in [] if export else snapshots.usable(session, first, last):
                a, b = max(first, snap.first_id + 1), min(last, snap.last_id)
                if a > b or a < at:
                    continue
                if at < a:
                    ranges.append((at, a, None))
                ranges.append((a, b + 1, snap))
                at = b + 1
            if at <= last:
                ranges.append((at, last + 1, None))
            # one printf per row (no intermediate strings), one blob per slice of ids
            sql = journal_columns.blob_sql(columns, f"id >= ? AND id < ? AND {where}", exprs)
            cursor = raw.cursor()
            for a, b, piece in ranges:
                if piece is not None:
                    part = piece.frame(local_date, a, b - 1)
                    if part.height:
                        parts.append(part.select(list(schema)).cast(schema))  # type: ignore[arg-type]
                    continue
                start = a
                while start < b:
                    blob = cursor.execute(
                        sql, (start, min(start + journal_columns.SLICE, b))
                    ).fetchone()[0]
                    if blob:
                        parts.append(journal_columns.read(bytes(blob), schema))
                    start += journal_columns.SLICE
                    if progress:
                        progress(min(1.0, (start - first) / max(1, last - first + 1)))
            cursor.close()
    else:
        sql = (
            f"COPY (SELECT {', '.join(exprs)} FROM gateway_journal WHERE created_at >= %s "
            f"AND created_at < %s AND {where}) TO STDOUT WITH (FORMAT text, DELIMITER E'\\x1f')"
        )
        buffer = io.BytesIO()
        with raw.cursor() as cursor, cursor.copy(sql, (lo, hi)) as copy:
            for data in copy:
                buffer.write(data)
        if buffer.tell():
            parts.append(journal_columns.read(buffer.getvalue(), schema))
        if progress:
            progress(1.0)
    frame = pl.concat(parts) if parts else pl.DataFrame(schema=schema)
    return _shape(frame, local_date, export)


def _shape(frame: pl.DataFrame, local_date: str, export: bool) -> pl.DataFrame:
    extra = [pl.col(c) for c in _EXPORT] if export else []
    return frame.select(
        "id",
        "tid",
        pl.col("stan").cast(pl.Int32, strict=False),
        pl.when(pl.col("rrn").str.len_bytes() == 12)
        .then(pl.col("rrn").cast(pl.Int64, strict=False))
        .alias("rrn"),
        pl.lit(int(local_date), dtype=pl.Int32).alias("date"),
        "amount",
        pl.col("kind").replace_strict(KINDS, return_dtype=TXN_TYPE).alias("txn_type"),
        (pl.col("ok") == 1).alias("ok"),
        "merchant_id",
        *extra,
    )
