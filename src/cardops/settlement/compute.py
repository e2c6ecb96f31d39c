"""Set-based computation of one window's figures: two SQL aggregations over the journal's id
range, never a Python object per transaction.

Every fee is computed **per transaction**, rounded to the fen half up and capped, inside the
SUM: ``min((amount × bp + 5000) // 10000, cap)`` (amounts are positive fen, bp integer basis
points). For each transaction we compute the merchant fee, the cost at each provider level of
the terminal's chain (lowest first, at most :data:`MAX_LEVELS`) and the bank fee. A level
without a rate for the card type (or a missing level) passes the cost below it up unchanged, so
it earns nothing. The share of chain level *i* is ``cost[i-1] − cost[i]`` (``cost[0]`` is the
merchant fee) and HQ keeps ``cost[top] − bank fee``; these telescope, so the shares, HQ's margin
and the bank fee always add up to the merchant fee.

Rates are placed in two temporary tables keyed by (merchant, credit) and (terminal, credit),
joined to the journal; a level whose provider has no rate for the card type carries the rate
below it, and the levels above the top of a chain repeat the top's rate, so that
``cost[MAX_LEVELS]`` is always the top provider's cost.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import polars as pl
from sqlalchemy import text
from sqlalchemy.orm import Session

from cardops.settlement import columns
from cardops.settlement.snapshot import Writer

MAX_LEVELS = 4
NO_CAP = 10**15  # a cap nobody reaches
PASS = -1  # a level that passes the cost below it up
SALE_KINDS = ("purchase", "completion")
REFUND_KINDS = ("refund",)
CANCEL_KINDS = ("void", "reversal")
Method = Literal["columns", "sql"]

Rate = tuple[int, int]  # (bp, cap in fen; NO_CAP when uncapped)


@dataclass(frozen=True)
class RateSet:
    """Debit and credit (bp, cap)."""

    debit: Rate
    credit: Rate

    @classmethod
    def from_card(cls, card: dict[str, Any] | None) -> RateSet | None:
        """From a rate card ``{"debit": {"rate_bp": 38, "cap": 2000}, "credit": {...}}``;
        a card type without a rate gets PASS."""
        if not card:
            return None

        def one(kind: str) -> Rate:
            entry = card.get(kind) if isinstance(card, dict) else None
            if not isinstance(entry, dict) or not isinstance(entry.get("rate_bp"), int):
                return (PASS, NO_CAP)
            cap = entry.get("cap")
            return (int(entry["rate_bp"]), int(cap) if isinstance(cap, int) else NO_CAP)

        return cls(debit=one("debit"), credit=one("credit"))


PASS_RATES = RateSet(debit=(PASS, NO_CAP), credit=(PASS, NO_CAP))


@dataclass
class Group:
    """Aggregated figures of one (merchant, lowest provider, card type, flavour)."""

    merchant_id: int
    owner_id: int | None  # the lowest provider of the terminal's chain (None: no provider)
    credit: bool
    sign: int  # +1 sale, -1 refund or cancelled sale, +1 cancelled refund
    cancel: bool
    earlier: bool  # a cancel of a transaction of an earlier window
    count: int
    amount: int
    fee: int
    costs: list[int] = field(default_factory=list)  # per chain level, lowest first
    bank_fee: int = 0


def _fee(amount: str, bp: str, cap: str, least: str) -> str:
    return f"{least}(({amount} * {bp} + 5000) / 10000, {cap})"


def _cost_expressions(amount: str, least: str) -> list[str]:
    """SQL for the merchant fee, each chain level's cost, and the bank fee. A level whose bp is
    negative uses the merchant's rate (its provider has none of its own)."""
    exprs = [_fee(amount, "m.bp", "m.cap", least)]
    for level in range(1, MAX_LEVELS + 1):
        bp = f"(CASE WHEN t.bp{level} < 0 THEN m.bp ELSE t.bp{level} END)"
        cap = f"(CASE WHEN t.bp{level} < 0 THEN m.cap ELSE t.cap{level} END)"
        exprs.append(_fee(amount, bp, cap, least))
    exprs.append(_fee(amount, "m.bank_bp", "m.bank_cap", least))
    return exprs


def _create_rate_tables(session: Session) -> None:
    conn = session.connection()
    levels = ", ".join(f"bp{n} BIGINT, cap{n} BIGINT" for n in range(1, MAX_LEVELS + 1))
    _drop_rate_tables(session)
    conn.execute(
        text(
            "CREATE TEMPORARY TABLE st_tmp_m (k INTEGER PRIMARY KEY, bp BIGINT, "
            "cap BIGINT, bank_bp BIGINT, bank_cap BIGINT)"
        )
    )
    conn.execute(
        text(f"CREATE TEMPORARY TABLE st_tmp_t (k INTEGER PRIMARY KEY, owner_id BIGINT, {levels})")
    )


def _drop_rate_tables(session: Session) -> None:
    conn = session.connection()
    conn.execute(text("DROP TABLE IF EXISTS st_tmp_m"))
    conn.execute(text("DROP TABLE IF EXISTS st_tmp_t"))


def _levels(chain: list[RateSet], credit: bool) -> list[Rate]:
    """Each level's (bp, cap) for the temporary table: a provider without a rate takes the one
    below it (PASS at the lowest level: the merchant's), missing levels repeat the top one."""
    out: list[Rate] = []
    for rates in chain[:MAX_LEVELS]:
        rate = rates.credit if credit else rates.debit
        if rate[0] < 0:
            rate = out[-1] if out else (PASS, NO_CAP)
        out.append(rate)
    if not out:
        out.append((PASS, NO_CAP))
    while len(out) < MAX_LEVELS:
        out.append(out[-1])
    return out


def aggregate(
    session: Session,
    *,
    first_id: int,
    last_id: int,
    merchant_rates: dict[int, RateSet],
    terminal_chains: dict[int, tuple[int, list[RateSet]]],
    bank: RateSet,
    progress: Callable[[str], None] | None = None,
    method: Method = "columns",
    snapshot: Writer | None = None,
    refund_rates: list[tuple[int, int, dict[int, RateSet]]] | None = None,
) -> list[Group]:
    """Aggregate journal ids ``(first_id, last_id]``: sales and refunds of the range, and the
    voids / reversals of the range applied to their originals (once per original).

    ``method="columns"`` (the default) reads the sales and refunds of the range as five
    integer columns, slice by slice, and computes the fees in Polars (:func:`_sales_columns`);
    ``method="sql"`` computes them inside the database. Both give the same groups; the
    cancellations (a few per cent of the rows, with their originals possibly in earlier
    windows) are always aggregated in SQL. ``snapshot`` (SQLite, columns): also hand every
    row read to this :class:`~cardops.settlement.snapshot.Writer`. ``refund_rates``: ranges
    ``(a, b]`` of original ids (earlier windows) with the merchant rates of their day; a refund
    of an original in such a range is charged back at those rates, not at ``merchant_rates``."""
    _create_rate_tables(session)
    conn = session.connection()
    least = "least" if conn.dialect.name == "postgresql" else "min"
    bank_rates = {
        0: (max(bank.debit[0], 0), bank.debit[1]),
        1: (max(bank.credit[0], 0), bank.credit[1]),
    }
    try:

        def rows_of(rates: dict[int, RateSet]) -> list[dict[str, int]]:
            return [
                {
                    "k": m * 2 + cr,
                    "bp": max(rate[0], 0),
                    "cap": rate[1],
                    "bbp": bank_rates[cr][0],
                    "bcap": bank_rates[cr][1],
                }
                for m, r in rates.items()
                for cr, rate in ((0, r.debit), (1, r.credit))
            ]

        merchant_rows = rows_of(merchant_rates)
        late = refund_rates or []
        terminal_rows: list[dict[str, int]] = []
        for terminal_id, (owner_id, chain) in terminal_chains.items():
            for cr in (0, 1):
                row: dict[str, int] = {"k": terminal_id * 2 + cr, "o": owner_id}
                for n, (bp, cap) in enumerate(_levels(chain, bool(cr)), start=1):
                    row[f"b{n}"], row[f"c{n}"] = bp, cap
                terminal_rows.append(row)
        if merchant_rows:
            conn.execute(
                text("INSERT INTO st_tmp_m VALUES (:k, :bp, :cap, :bbp, :bcap)"), merchant_rows
            )
        if terminal_rows:
            names = ", ".join(f":b{n}, :c{n}" for n in range(1, MAX_LEVELS + 1))
            conn.execute(text(f"INSERT INTO st_tmp_t VALUES (:k, :o, {names})"), terminal_rows)
        amount = "CAST(j.amount AS BIGINT)"
        sums = ", ".join(f"SUM({expr})" for expr in _cost_expressions(amount, least))
        credit = "(CASE WHEN j.card_type = 'credit' THEN 1 ELSE 0 END)"
        joins = (
            # one integer key per (id, credit): a single rowid lookup per journal row
            f"JOIN st_tmp_m m ON m.k = j.merchant_id * 2 + {credit} "
            f"LEFT JOIN st_tmp_t t ON t.k = j.terminal_id * 2 + {credit}"
        )
        kinds = ", ".join(f"'{k}'" for k in SALE_KINDS + REFUND_KINDS)
        cancels = ", ".join(f"'{k}'" for k in CANCEL_KINDS)
        params = {"first": first_id, "last": last_id}
        sales_sql = (
            f"SELECT j.merchant_id, t.owner_id, {credit} AS cr, "
            "CASE WHEN j.kind = 'refund' THEN 1 ELSE 0 END AS rf, 0 AS early, "
            f"COUNT(*), SUM({amount}), {sums} "
            f"FROM gateway_journal j {joins} "
            # "|| ''" keeps SQLite on the id range (the kind index would mean a random read per row)
            f"WHERE j.id > :first AND j.id <= :last AND (j.kind || '') IN ({kinds}) "
            f"AND j.approved = :yes{_not_late('j.', late)} "
            "GROUP BY j.merchant_id, t.owner_id, cr, rf"
        )
        late_sql = (
            f"SELECT j.merchant_id, t.owner_id, {credit} AS cr, 1 AS rf, 0 AS early, "
            f"COUNT(*), SUM({amount}), {sums} "
            f"FROM gateway_journal j {joins} "
            "WHERE j.id > :first AND j.id <= :last AND j.kind = 'refund' AND j.approved = :yes "
            "AND j.original_id > :a AND j.original_id <= :b "
            "GROUP BY j.merchant_id, t.owner_id, cr"
        )
        cancel_sql = (
            f"SELECT j.merchant_id, t.owner_id, {credit} AS cr, "
            "CASE WHEN j.kind = 'refund' THEN 1 ELSE 0 END AS rf, "
            "CASE WHEN j.id <= :first THEN 1 ELSE 0 END AS early, "
            f"COUNT(*), SUM({amount}), {sums} "
            "FROM (SELECT MIN(c.id) AS id, c.original_id FROM gateway_journal c "
            f"WHERE c.id > :first AND c.id <= :last AND c.kind IN ({cancels}) "
            "AND c.approved = :yes AND c.original_id IS NOT NULL "
            # an original cancelled already in an earlier window was taken off there: a
            # repeated reversal or a later void of it is not taken off again. Earlier cancels
            # are looked for between the oldest original and the window (kind index + id).
            "AND c.original_id NOT IN (SELECT p.original_id FROM gateway_journal p "
            f"WHERE p.kind IN ({cancels}) AND p.approved = :yes AND p.original_id IS NOT NULL "
            "AND p.id <= :first AND p.id > (SELECT coalesce(MIN(o.original_id), :first) "
            f"FROM gateway_journal o WHERE o.id > :first AND o.id <= :last "
            f"AND o.kind IN ({cancels}))) "
            "GROUP BY c.original_id) x "
            f"JOIN gateway_journal j ON j.id = x.original_id {joins} "
            f"WHERE j.kind IN ({kinds}) AND j.approved = :yes AND j.id <= :last "
            "GROUP BY j.merchant_id, t.owner_id, cr, rf, early"
        )
        groups: list[Group] = []
        for label, sql, cancel in (
            ("sales", sales_sql, False),
            ("cancellations", cancel_sql, True),
        ):
            if progress:
                progress(label)
            results: Any
            if not cancel and method == "columns":
                results = _sales_columns(
                    session,
                    first_id=first_id,
                    last_id=last_id,
                    merchant_rows=merchant_rows,
                    terminal_rows=terminal_rows,
                    snapshot=snapshot,
                    late=late,
                )
            else:
                results = conn.execute(text(sql), {**params, "yes": True})
            groups.extend(_group(result, cancel) for result in results)
        # refunds of earlier days' sales, at the merchant rates of the sale's day (few rows)
        for a, b, rates in late:
            conn.execute(text("DELETE FROM st_tmp_m"))
            day_rows = rows_of(rates)
            if day_rows:
                conn.execute(
                    text("INSERT INTO st_tmp_m VALUES (:k, :bp, :cap, :bbp, :bcap)"), day_rows
                )
            for result in conn.execute(text(late_sql), {**params, "yes": True, "a": a, "b": b}):
                groups.append(_group(result, False))
        return groups
    finally:
        _drop_rate_tables(session)


def _group(result: Any, cancel: bool) -> Group:
    merchant_id, owner_id, cr, rf, early, count, total, *rest = result
    refund = bool(rf)
    return Group(
        merchant_id=int(merchant_id),
        owner_id=int(owner_id) if owner_id is not None else None,
        credit=bool(cr),
        sign=-1 if refund != cancel else 1,
        cancel=cancel,
        earlier=bool(early),
        count=int(count),
        amount=int(total or 0),
        fee=int(rest[0] or 0),
        costs=[int(v or 0) for v in rest[1 : 1 + MAX_LEVELS]],
        bank_fee=int(rest[1 + MAX_LEVELS] or 0),
    )


def _not_late(prefix: str, late: list[tuple[int, int, dict[int, RateSet]]]) -> str:
    """SQL leaving out the refunds of originals in the ``late`` ranges (ids are integers)."""
    if not late:
        return ""
    ranges = " OR ".join(
        f"({prefix}original_id > {int(a)} AND {prefix}original_id <= {int(b)})" for a, b, _ in late
    )
    return f" AND NOT ({prefix}kind = 'refund' AND {prefix}original_id IS NOT NULL AND ({ranges}))"


_COLUMNS = {"m": pl.Int64, "t": pl.Int64, "cr": pl.Int64, "rf": pl.Int64, "amount": pl.Int64}
# every row of a slice (SQLite): what settlement needs and what the snapshot keeps
_FULL: columns.Columns = {
    "id": ("id", "%d", pl.Int64),
    "m": ("merchant_id", "%s", pl.Int64),
    "t": ("terminal_id", "%s", pl.Int64),
    "o": ("original_id", "%s", pl.Int64),
    "cr": ("CASE WHEN card_type = 'credit' THEN 1 ELSE 0 END", "%d", pl.Int64),
    "kind": ("kind", "%s", pl.String),
    "approved": ("CASE WHEN approved THEN 1 ELSE 0 END", "%d", pl.Int8),
    "reversed": ("CASE WHEN reversed THEN 1 ELSE 0 END", "%d", pl.Int8),
    "amount": ("amount", "%d", pl.Int64),
    "tid": ("tid", "%s", pl.String),
    "stan": ("stan", "%s", pl.String),
    "rrn": ("coalesce(rrn, '')", "%s", pl.String),
    "local_date": ("local_date", "%s", pl.String),
    "route": ("route", "%s", pl.String),
}


def _sales_slices(
    session: Session,
    first_id: int,
    last_id: int,
    snapshot: Writer | None = None,
    late: list[tuple[int, int, dict[int, RateSet]]] | None = None,
) -> Any:
    """The approved sales and refunds of ids ``(first_id, last_id]`` with a merchant, as
    frames of (merchant id, terminal id or -1, credit 0/1, refund 0/1, amount), one slice of
    ids at a time. SQLite: every row of the slice in one ``group_concat`` text blob (no
    Python object per row), handed to ``snapshot`` when given, then narrowed; PostgreSQL:
    ``COPY … TO STDOUT`` of the narrow columns."""
    conn = session.connection()
    raw: Any = conn.connection.driver_connection
    kinds = ", ".join(f"'{k}'" for k in SALE_KINDS + REFUND_KINDS)
    if conn.dialect.name == "postgresql":
        select = (
            "merchant_id, coalesce(terminal_id, -1), "
            "CASE WHEN card_type = 'credit' THEN 1 ELSE 0 END, "
            "CASE WHEN kind = 'refund' THEN 1 ELSE 0 END, amount"
        )
        sql = (
            f"COPY (SELECT {select} FROM gateway_journal WHERE id > %s AND id <= %s "
            f"AND kind IN ({kinds}) AND approved AND merchant_id IS NOT NULL"
            f"{_not_late('', late or [])}) "
            "TO STDOUT WITH (FORMAT csv)"
        )
        buffer = io.BytesIO()
        with raw.cursor() as cursor, cursor.copy(sql, (first_id, last_id)) as copy:
            for data in copy:
                buffer.write(data)
        if buffer.tell():
            yield pl.read_csv(buffer.getvalue(), has_header=False, schema=_COLUMNS, quote_char=None)
        return
    sql = columns.blob_sql(_FULL, "id > ? AND id <= ?")
    schema = columns.schema_of(_FULL)
    sales = SALE_KINDS + REFUND_KINDS
    cursor = raw.cursor()
    try:
        start = first_id
        while start < last_id:
            end = min(start + columns.SLICE, last_id)
            blob = cursor.execute(sql, (start, end)).fetchone()[0]
            start = end
            if not blob:
                continue
            frame = columns.read(bytes(blob), schema)
            if snapshot is not None:
                snapshot.add(frame)
            keep = (
                pl.col("kind").is_in(sales) & (pl.col("approved") == 1) & pl.col("m").is_not_null()
            )
            for a, b, _rates in late or []:
                keep = keep & ~(
                    (pl.col("kind") == "refund")
                    & (pl.col("o") > a).fill_null(False)
                    & (pl.col("o") <= b).fill_null(False)
                )
            yield frame.filter(keep).select(
                "m",
                pl.col("t").fill_null(-1),
                "cr",
                (pl.col("kind") == "refund").cast(pl.Int64).alias("rf"),
                "amount",
            )
    finally:
        cursor.close()


def _fee_expr(amount: pl.Expr, bp: pl.Expr, cap: pl.Expr) -> pl.Expr:
    """``min((amount × bp + 5000) // 10000, cap)`` with SQL's nulls (a null rate: null fee)."""
    fee = (amount * bp + 5000) // 10000
    return pl.when(fee > cap).then(cap).otherwise(fee)


def _sales_columns(
    session: Session,
    *,
    first_id: int,
    last_id: int,
    merchant_rows: list[dict[str, int]],
    terminal_rows: list[dict[str, int]],
    snapshot: Writer | None = None,
    late: list[tuple[int, int, dict[int, RateSet]]] | None = None,
) -> list[tuple[Any, ...]]:
    """The sales query's result rows, computed in Polars over the journal's columns: the same
    joins (merchant rate: inner; terminal chain: left), the same per-transaction fee rule and
    the same grouping as ``sales_sql``."""
    merchants = pl.DataFrame(
        merchant_rows,
        schema={"k": pl.Int64, "bp": pl.Int64, "cap": pl.Int64, "bbp": pl.Int64, "bcap": pl.Int64},
    )
    level_schema = {f"{p}{n}": pl.Int64 for n in range(1, MAX_LEVELS + 1) for p in ("b", "c")}
    terminals = pl.DataFrame(
        terminal_rows, schema={"k": pl.Int64, "o": pl.Int64, **level_schema}
    ).rename({"k": "tk"})
    amount = pl.col("amount")
    fees = [_fee_expr(amount, pl.col("bp"), pl.col("cap")).alias("f0")]
    for n in range(1, MAX_LEVELS + 1):
        own = pl.col(f"b{n}") < 0
        bp = pl.when(own).then(pl.col("bp")).otherwise(pl.col(f"b{n}"))
        cap = pl.when(own).then(pl.col("cap")).otherwise(pl.col(f"c{n}"))
        fees.append(_fee_expr(amount, bp, cap).alias(f"f{n}"))
    fees.append(_fee_expr(amount, pl.col("bbp"), pl.col("bcap")).alias("fb"))
    names = [f"f{n}" for n in range(MAX_LEVELS + 1)] + ["fb"]
    keys = ["m", "o", "cr", "rf"]
    partials: list[pl.DataFrame] = []
    for frame in _sales_slices(session, first_id, last_id, snapshot, late):
        partials.append(
            frame.lazy()
            .with_columns((pl.col("m") * 2 + pl.col("cr")).alias("k"))
            .join(merchants.lazy(), on="k", how="inner")
            .with_columns((pl.col("t") * 2 + pl.col("cr")).alias("tk"))
            .join(terminals.lazy(), on="tk", how="left")
            .with_columns(fees)
            .group_by(keys)
            .agg(
                pl.len().cast(pl.Int64).alias("n"),
                amount.sum(),
                *[pl.col(name).sum() for name in names],
            )
            .collect()
        )
    if not partials:
        return []
    total = (
        pl.concat(partials)
        .group_by(keys)
        .agg(pl.col("n").sum(), amount.sum(), *[pl.col(name).sum() for name in names])
        .sort(keys, nulls_last=False)
    )
    return [
        (m, o, cr, rf, 0, n, amt, *rest)
        for m, o, cr, rf, n, amt, *rest in total.select([*keys, "n", "amount", *names]).iter_rows()
    ]


def fee_of(amount: int, rate: Rate) -> int:
    """One transaction's fee in Python (the same rule as the SQL): half up, then capped."""
    bp, cap = rate
    if bp < 0:
        raise ValueError("pass-through rate has no fee of its own")
    return min((amount * bp + 5000) // 10000, cap)
