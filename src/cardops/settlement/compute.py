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
) -> list[Group]:
    """Aggregate journal ids ``(first_id, last_id]``: sales and refunds of the range, and the
    voids / reversals of the range applied to their originals (once per original)."""
    _create_rate_tables(session)
    conn = session.connection()
    least = "least" if conn.dialect.name == "postgresql" else "min"
    bank_rates = {
        0: (max(bank.debit[0], 0), bank.debit[1]),
        1: (max(bank.credit[0], 0), bank.credit[1]),
    }
    try:
        if merchant_rates:
            conn.execute(
                text("INSERT INTO st_tmp_m VALUES (:k, :bp, :cap, :bbp, :bcap)"),
                [
                    {
                        "k": m * 2 + cr,
                        "bp": max(rate[0], 0),
                        "cap": rate[1],
                        "bbp": bank_rates[cr][0],
                        "bcap": bank_rates[cr][1],
                    }
                    for m, r in merchant_rates.items()
                    for cr, rate in ((0, r.debit), (1, r.credit))
                ],
            )
        if terminal_chains:
            names = ", ".join(f":b{n}, :c{n}" for n in range(1, MAX_LEVELS + 1))
            rows = []
            for terminal_id, (owner_id, chain) in terminal_chains.items():
                for cr in (0, 1):
                    row: dict[str, int] = {"k": terminal_id * 2 + cr, "o": owner_id}
                    for n, (bp, cap) in enumerate(_levels(chain, bool(cr)), start=1):
                        row[f"b{n}"], row[f"c{n}"] = bp, cap
                    rows.append(row)
            conn.execute(text(f"INSERT INTO st_tmp_t VALUES (:k, :o, {names})"), rows)
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
            "AND j.approved = :yes "
            "GROUP BY j.merchant_id, t.owner_id, cr, rf"
        )
        cancel_sql = (
            f"SELECT j.merchant_id, t.owner_id, {credit} AS cr, "
            "CASE WHEN j.kind = 'refund' THEN 1 ELSE 0 END AS rf, "
            "CASE WHEN j.id <= :first THEN 1 ELSE 0 END AS early, "
            f"COUNT(*), SUM({amount}), {sums} "
            "FROM (SELECT MIN(c.id) AS id, c.original_id FROM gateway_journal c "
            f"WHERE c.id > :first AND c.id <= :last AND c.kind IN ({cancels}) "
            "AND c.approved = :yes AND c.original_id IS NOT NULL GROUP BY c.original_id) x "
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
            for result in conn.execute(text(sql), {**params, "yes": True}):
                merchant_id, owner_id, cr, rf, early, count, total, *rest = result
                refund = bool(rf)
                groups.append(
                    Group(
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
