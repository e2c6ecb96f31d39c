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

Rates are placed in two temporary tables (per merchant, per terminal) joined to the journal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

MAX_LEVELS = 4
NO_CAP = 10**15  # a cap nobody reaches
PASS = -1  # a level that passes the cost below it up
SALE_KINDS = ("purchase", "completion")
REFUND_KINDS = ("refund",)
CANCEL_KINDS = ("void", "reversal")

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
    """Aggregated figures of one (merchant, terminal chain, card type, flavour)."""

    merchant_id: int
    terminal_id: int | None
    credit: bool
    sign: int  # +1 sale, -1 refund or cancelled sale, +1 cancelled refund
    cancel: bool
    earlier: bool  # a cancel of a transaction of an earlier window
    count: int
    amount: int
    fee: int
    costs: list[int] = field(default_factory=list)  # per chain level, lowest first
    bank_fee: int = 0


def _fee(amount: str, bp: str, cap: str) -> str:
    raw = f"(({amount} * {bp} + 5000) / 10000)"
    return f"(CASE WHEN {raw} > {cap} THEN {cap} ELSE {raw} END)"


def _pick(column: str) -> str:
    """The debit or credit variant of a rate column by the row's card type."""
    return f"(CASE WHEN j.card_type = 'credit' THEN {column}_c ELSE {column}_d END)"


def _cost_expressions(amount: str) -> list[str]:
    """SQL for the merchant fee, then each chain level's cost (pass-through coalesced)."""
    merchant = _fee(amount, _pick("m.bp"), _pick("m.cap"))
    exprs = [merchant]
    below = merchant
    for level in range(1, MAX_LEVELS + 1):
        bp = f"COALESCE({_pick(f't.bp{level}')}, {PASS})"
        cap = f"COALESCE({_pick(f't.cap{level}')}, {NO_CAP})"
        cost = f"(CASE WHEN {bp} < 0 THEN {below} ELSE {_fee(amount, bp, cap)} END)"
        exprs.append(cost)
        below = cost
    return exprs


def _create_rate_tables(session: Session) -> None:
    conn = session.connection()
    levels = ", ".join(
        f"bp{n}_d BIGINT, cap{n}_d BIGINT, bp{n}_c BIGINT, cap{n}_c BIGINT"
        for n in range(1, MAX_LEVELS + 1)
    )
    conn.execute(text("DROP TABLE IF EXISTS st_tmp_m"))
    conn.execute(text("DROP TABLE IF EXISTS st_tmp_t"))
    conn.execute(
        text(
            "CREATE TEMPORARY TABLE st_tmp_m (merchant_id BIGINT PRIMARY KEY, "
            "bp_d BIGINT, cap_d BIGINT, bp_c BIGINT, cap_c BIGINT)"
        )
    )
    conn.execute(
        text(f"CREATE TEMPORARY TABLE st_tmp_t (terminal_id BIGINT PRIMARY KEY, {levels})")
    )


def _drop_rate_tables(session: Session) -> None:
    conn = session.connection()
    conn.execute(text("DROP TABLE IF EXISTS st_tmp_m"))
    conn.execute(text("DROP TABLE IF EXISTS st_tmp_t"))


def aggregate(
    session: Session,
    *,
    first_id: int,
    last_id: int,
    merchant_rates: dict[int, RateSet],
    terminal_chains: dict[int, list[RateSet]],
    bank: RateSet,
    progress: Callable[[str], None] | None = None,
) -> list[Group]:
    """Aggregate journal ids ``(first_id, last_id]``: sales and refunds of the range, and the
    voids / reversals of the range applied to their originals (once per original)."""
    _create_rate_tables(session)
    conn = session.connection()
    try:
        if merchant_rates:
            conn.execute(
                text("INSERT INTO st_tmp_m VALUES (:m, :bd, :cd, :bc, :cc)"),
                [
                    {
                        "m": m,
                        "bd": r.debit[0],
                        "cd": r.debit[1],
                        "bc": r.credit[0],
                        "cc": r.credit[1],
                    }
                    for m, r in merchant_rates.items()
                ],
            )
        if terminal_chains:
            names = ", ".join(f":b{n}d, :c{n}d, :b{n}c, :c{n}c" for n in range(1, MAX_LEVELS + 1))
            rows = []
            for terminal_id, chain in terminal_chains.items():
                row: dict[str, int] = {"t": terminal_id}
                padded = (chain + [PASS_RATES] * MAX_LEVELS)[:MAX_LEVELS]
                for n, rates in enumerate(padded, start=1):
                    row[f"b{n}d"], row[f"c{n}d"] = rates.debit
                    row[f"b{n}c"], row[f"c{n}c"] = rates.credit
                rows.append(row)
            conn.execute(text(f"INSERT INTO st_tmp_t VALUES (:t, {names})"), rows)
        amount = "CAST(j.amount AS BIGINT)"
        costs = _cost_expressions(amount)
        bank_fee = (
            f"(CASE WHEN j.card_type = 'credit' THEN {_fee(amount, ':bank_bp_c', ':bank_cap_c')} "
            f"ELSE {_fee(amount, ':bank_bp_d', ':bank_cap_d')} END)"
        )
        sums = ", ".join(f"SUM({expr})" for expr in [*costs, bank_fee])
        joins = (
            "LEFT JOIN st_tmp_m m ON m.merchant_id = j.merchant_id "
            "LEFT JOIN st_tmp_t t ON t.terminal_id = j.terminal_id"
        )
        kinds = ", ".join(f"'{k}'" for k in SALE_KINDS + REFUND_KINDS)
        cancels = ", ".join(f"'{k}'" for k in CANCEL_KINDS)
        params = {
            "first": first_id,
            "last": last_id,
            "bank_bp_d": bank.debit[0] if bank.debit[0] >= 0 else 0,
            "bank_cap_d": bank.debit[1],
            "bank_bp_c": bank.credit[0] if bank.credit[0] >= 0 else 0,
            "bank_cap_c": bank.credit[1],
        }
        sales_sql = (
            "SELECT j.merchant_id, j.terminal_id, "
            "CASE WHEN j.card_type = 'credit' THEN 1 ELSE 0 END AS cr, "
            "CASE WHEN j.kind = 'refund' THEN 1 ELSE 0 END AS rf, 0 AS early, "
            f"COUNT(*), SUM({amount}), {sums} "
            f"FROM gateway_journal j {joins} "
            f"WHERE j.id > :first AND j.id <= :last AND j.kind IN ({kinds}) "
            "AND j.approved = :yes AND j.merchant_id IS NOT NULL "
            "GROUP BY j.merchant_id, j.terminal_id, cr, rf"
        )
        cancel_sql = (
            "SELECT j.merchant_id, j.terminal_id, "
            "CASE WHEN j.card_type = 'credit' THEN 1 ELSE 0 END AS cr, "
            "CASE WHEN j.kind = 'refund' THEN 1 ELSE 0 END AS rf, "
            "CASE WHEN j.id <= :first THEN 1 ELSE 0 END AS early, "
            f"COUNT(*), SUM({amount}), {sums} "
            "FROM (SELECT MIN(c.id) AS id, c.original_id FROM gateway_journal c "
            f"WHERE c.id > :first AND c.id <= :last AND c.kind IN ({cancels}) "
            "AND c.approved = :yes AND c.original_id IS NOT NULL GROUP BY c.original_id) x "
            f"JOIN gateway_journal j ON j.id = x.original_id {joins} "
            f"WHERE j.kind IN ({kinds}) AND j.approved = :yes AND j.merchant_id IS NOT NULL "
            "AND j.id <= :last "
            "GROUP BY j.merchant_id, j.terminal_id, cr, rf, early"
        )
        groups: list[Group] = []
        for label, sql, cancel in (
            ("sales", sales_sql, False),
            ("cancellations", cancel_sql, True),
        ):
            if progress:
                progress(label)
            for result in conn.execute(text(sql), {**params, "yes": True}):
                merchant_id, terminal_id, cr, rf, early, count, total, *rest = result
                refund = bool(rf)
                sign = -1 if refund != cancel else 1
                groups.append(
                    Group(
                        merchant_id=int(merchant_id),
                        terminal_id=int(terminal_id) if terminal_id is not None else None,
                        credit=bool(cr),
                        sign=sign,
                        cancel=cancel,
                        earlier=bool(early),
                        count=int(count),
                        amount=int(total or 0),
                        fee=int(rest[0] or 0),
                        costs=[int(v or 0) for v in rest[1 : 1 + MAX_LEVELS]],
                        bank_fee=int(rest[1 + MAX_LEVELS] or 0),
                    )
                )
        return groups
    finally:
        _drop_rate_tables(session)


def fee_of(amount: int, rate: Rate) -> int:
    """One transaction's fee in Python (the same rule as the SQL): half up, then capped."""
    bp, cap = rate
    if bp < 0:
        raise ValueError("pass-through rate has no fee of its own")
    return min((amount * bp + 5000) // 10000, cap)
