"""Columnar matching of the bank's lines against our journal (Polars joins, no row loops).

1. Duplicates: on each side, a second line with the same TID + RRN is a duplicate (the first
   one takes part in matching, the others are ``duplicate_at_bank`` / ``duplicate_at_ours``).
2. Pass 1 pairs the rest by TID + RRN.
3. Pass 2 pairs what is left by TID + STAN + date + amount (the n-th with the n-th).
4. A pair whose status (SUCCESS/FAILED) or transaction type differs is a ``status_mismatch``;
   else one whose amounts differ is an ``amount_mismatch``; else it is matched.
5. What is left and SUCCESS on its side is missing on the other (``missing_at_ours``: the
   bank has it, we do not; ``missing_at_bank``: we have it, the bank does not). Unpaired
   FAILED lines moved no money and are not differences.

Bank frame columns: line, tid, stan, rrn, date, amount, ok, txn_type. Journal frame: id, tid,
stan, rrn, date, amount, ok, txn_type (see :mod:`cardops.reconciliation.journal`).
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from cardops.reconciliation.models import DIFF_CLASSES

KEY_COLUMNS = ("tid", "stan", "rrn", "date", "amount", "ok", "txn_type")
DIFF_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "kind": pl.String,
    "case_key": pl.String,
    "line": pl.Int64,
    "journal_id": pl.Int64,
    "tid": pl.String,
    "stan": pl.Int32,
    "rrn": pl.Int64,
    "txn_type": pl.String,
    "bank_amount": pl.Int64,
    "our_amount": pl.Int64,
    "bank_ok": pl.Boolean,
    "our_ok": pl.Boolean,
}


@dataclass
class MatchResult:
    figures: dict[str, dict[str, int]]  # class -> {"count", "amount"}
    differences: pl.DataFrame  # DIFF_SCHEMA, one row per difference

    def counts(self) -> dict[str, int]:
        return {name: value["count"] for name, value in self.figures.items()}


def _occurrence(frame: pl.DataFrame, keys: list[str], order: str) -> pl.DataFrame:
    """Number the rows sharing ``keys`` 0, 1, … in ``order`` (used on small leftovers)."""
    return frame.sort(order).with_columns(
        pl.int_range(pl.len(), dtype=pl.Int32).over(keys).alias("occ")
    )


def _split_duplicates(frame: pl.DataFrame, order: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(rows kept for matching, duplicates): of rows sharing TID + RRN the first stays.

    ``is_duplicated`` over the whole frame is cheap; the ordering work is done only on the
    (normally few) rows that share a key.
    """
    has_rrn = pl.col("rrn").is_not_null()
    shared = frame.select(has_rrn & pl.struct("tid", "rrn").is_duplicated()).to_series()
    if not shared.any():
        return frame, frame.clear().with_columns(pl.lit(0, dtype=pl.Int32).alias("occ"))
    ranked = _occurrence(frame.filter(shared), ["tid", "rrn"], order)
    duplicates = ranked.filter(pl.col("occ") > 0)
    kept = pl.concat([frame.filter(~shared), ranked.filter(pl.col("occ") == 0).drop("occ")])
    return kept, duplicates


def _diff(frame: pl.DataFrame, kind: str, key: pl.Expr) -> pl.DataFrame:
    columns = []
    for name, dtype in DIFF_SCHEMA.items():
        if name == "kind":
            columns.append(pl.lit(kind, dtype=pl.String).alias("kind"))
        elif name == "case_key":
            columns.append(key.alias("case_key"))
        elif name in frame.columns:
            columns.append(pl.col(name).cast(dtype))
        else:
            columns.append(pl.lit(None, dtype=dtype).alias(name))
    return frame.select(columns)


def match(bank: pl.DataFrame, ours: pl.DataFrame) -> MatchResult:
    bank = bank.select("line", *KEY_COLUMNS)
    ours = ours.select("id", *KEY_COLUMNS)
    bank, dup_bank = _split_duplicates(bank, "line")
    ours, dup_ours = _split_duplicates(ours, "id")

    # pass 1: TID + RRN. Joined on the RRN alone (one integer key is several times faster
    # than two columns) and then the TIDs compared; with duplicates gone a line pairs with at
    # most one row of the same TID + RRN, so this is exactly the join on both.
    pass1 = bank.join(
        ours.filter(pl.col("rrn").is_not_null()), on="rrn", how="inner", suffix="_o"
    ).filter(pl.col("tid") == pl.col("tid_o"))
    bank = bank.join(pass1.select("line"), on="line", how="anti")
    ours = ours.join(pass1.select("id"), on="id", how="anti")
    key2 = ["tid", "stan", "date", "amount"]
    bank = _occurrence(bank, key2, "line")
    ours = _occurrence(ours, key2, "id")
    pass2 = bank.join(ours, on=[*key2, "occ"], how="inner", suffix="_o").with_columns(
        pl.col("amount").alias("amount_o")
    )
    bank = bank.join(pass2.select("line"), on="line", how="anti")
    ours = ours.join(pass2.select("id"), on="id", how="anti")

    status_diff = (pl.col("bank_ok") != pl.col("our_ok")) | (
        pl.col("txn_type") != pl.col("txn_type_o")
    )
    differs = status_diff | (pl.col("bank_amount") != pl.col("our_amount"))
    matched_count = 0
    matched_amount = 0
    paired_diffs = []
    for p in (pass1, pass2):
        p = p.select(
            "line",
            pl.col("id").alias("journal_id"),
            "tid",
            "stan",
            "rrn",
            "txn_type",
            "txn_type_o",
            pl.col("amount").alias("bank_amount"),
            pl.col("amount_o").alias("our_amount"),
            pl.col("ok").alias("bank_ok"),
            pl.col("ok_o").alias("our_ok"),
        )
        # the matched pairs are only counted and summed, never kept
        summary = p.select(
            (~differs).sum().alias("n"),
            pl.col("bank_amount").filter(~differs).sum().alias("a"),
        )
        matched_count += int(summary.item(0, "n") or 0)
        matched_amount += int(summary.item(0, "a") or 0)
        paired_diffs.append(p.filter(differs))
    pairs = pl.concat(paired_diffs).with_columns(
        pl.when(status_diff)
        .then(pl.lit("status_mismatch"))
        .otherwise(pl.lit("amount_mismatch"))
        .alias("kind")
    )
    del pass1, pass2, paired_diffs
    journal_key = pl.col("journal_id").cast(pl.String)
    parts = [
        _diff(
            pairs.filter(pl.col("kind") == "status_mismatch"),
            "status_mismatch",
            pl.lit("sts:") + journal_key,
        ),
        _diff(
            pairs.filter(pl.col("kind") == "amount_mismatch"),
            "amount_mismatch",
            pl.lit("amt:") + journal_key,
        ),
        _diff(
            bank.filter(pl.col("ok")).rename({"amount": "bank_amount", "ok": "bank_ok"}),
            "missing_at_ours",
            pl.format(
                "mao:{}:{}:{}:{}:{}",
                pl.col("tid"),
                pl.col("rrn"),
                pl.col("stan"),
                pl.col("date"),
                pl.col("bank_amount"),
            ),
        ),
        _diff(
            ours.filter(pl.col("ok")).rename(
                {"amount": "our_amount", "ok": "our_ok", "id": "journal_id"}
            ),
            "missing_at_bank",
            pl.lit("mab:") + journal_key,
        ),
        _diff(
            dup_bank.rename({"amount": "bank_amount", "ok": "bank_ok"}),
            "duplicate_at_bank",
            pl.format("dub:{}:{}:{}", pl.col("tid"), pl.col("rrn"), pl.col("occ")),
        ),
        _diff(
            dup_ours.rename({"amount": "our_amount", "ok": "our_ok", "id": "journal_id"}),
            "duplicate_at_ours",
            pl.lit("duo:") + journal_key,
        ),
    ]
    differences = pl.concat(parts)
    figures = {"matched": {"count": matched_count, "amount": matched_amount}}
    amounts = differences.group_by("kind").agg(
        pl.len().alias("count"),
        pl.when(pl.col("kind") == "amount_mismatch")
        .then(pl.col("bank_amount") - pl.col("our_amount"))
        .otherwise(pl.coalesce("bank_amount", "our_amount"))
        .sum()
        .alias("amount"),
    )
    by_kind = {row["kind"]: row for row in amounts.iter_rows(named=True)}
    for name in DIFF_CLASSES:
        row = by_kind.get(name)
        figures[name] = {
            "count": int(row["count"]) if row else 0,
            "amount": int(row["amount"] or 0) if row else 0,
        }
    return MatchResult(figures=figures, differences=differences)


def floor_join(bank: pl.DataFrame, ours: pl.DataFrame) -> int:
    """The floor for the benchmark: one bare full join on TID + RRN and a diff filter."""
    joined = bank.select("tid", "rrn", "amount", "ok").join(
        ours.select("tid", "rrn", "amount", "ok"), on=["tid", "rrn"], how="full", suffix="_o"
    )
    diff = joined.filter(
        pl.col("rrn").is_null()
        | pl.col("rrn_o").is_null()
        | (pl.col("amount") != pl.col("amount_o"))
        | (pl.col("ok") != pl.col("ok_o"))
    )
    return diff.height
