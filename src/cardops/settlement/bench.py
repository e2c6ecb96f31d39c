"""Benchmark of ``settle_day`` on a generated journal (SQLite by default).

    .venv/bin/python -m cardops.settlement.bench --rows 1000000 --db /root/settlement-bench.db

Builds a fresh database: HQ, 20 city and 100 county providers with rate cards, 2,000 merchants
with rate cards, 20,000 terminals, then ``--rows`` journal rows in one business day (purchases,
completions, refunds, voids and reversals, debit and credit), and times ``settle_day``. The
baseline in the same run is one bare ``GROUP BY merchant_id, card_type`` SUM over the same rows
(no rates, no rounding, nothing written): the floor of a SQL pass over the day.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--db", default="/root/settlement-bench.db")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    path = Path(args.db)
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    os.environ["CARDOPS_DATABASE_URL"] = f"sqlite:///{path}"
    os.environ.setdefault("CARDOPS_SECRET_KEY", "bench-secret")

    from sqlalchemy import text

    from cardops.auth.service import system_user
    from cardops.core import config
    from cardops.core.clock import freeze
    from cardops.core.db import get_engine, unit_of_work
    from cardops.core.migrate import bootstrap
    from cardops.settlement import service

    config.reset_settings()
    bootstrap(get_engine())
    day = date(2026, 3, 10)
    rng = random.Random(7)
    with unit_of_work() as session:
        from sqlalchemy import insert, select

        from cardops.channel.models import Provider
        from cardops.merchants.models import Merchant
        from cardops.settlement.models import MerchantRateCard
        from cardops.terminals.models import Supplier, Terminal, TerminalModel
        from cardops.terminals.service import location_for

        hq = Provider(code="B-HQ", name="HQ", level="hq")
        session.add(hq)
        session.flush()
        city_card = {"debit": {"rate_bp": 38, "cap": 1800}, "credit": {"rate_bp": 50}}
        county_card = {"debit": {"rate_bp": 42, "cap": 1900}, "credit": {"rate_bp": 54}}
        cities = [
            Provider(
                code=f"B-C{i}", name=f"C{i}", level="city", parent_id=hq.id, rate_card=city_card
            )
            for i in range(20)
        ]
        session.add_all(cities)
        session.flush()
        counties = [
            Provider(
                code=f"B-K{i}",
                name=f"K{i}",
                level="county",
                parent_id=cities[i % 20].id,
                rate_card=county_card,
            )
            for i in range(100)
        ]
        session.add_all(counties)
        session.flush()
        providers = [p.id for p in cities + counties]
        session.execute(
            insert(Merchant),
            [
                {"mid": f"9{i:014d}", "name": f"M{i}", "kind": "corporate", "state": "approved"}
                for i in range(2000)
            ],
        )
        merchants = list(session.execute(select(Merchant.id)).scalars())
        session.execute(
            insert(MerchantRateCard),
            [
                {
                    "merchant_id": m,
                    "debit_bp": 55,
                    "debit_cap": 2000,
                    "credit_bp": 60,
                    "effective_from": date(2026, 1, 1),
                }
                for m in merchants
            ],
        )
        supplier = Supplier(name="S", kind="manufacturer")
        session.add(supplier)
        session.flush()
        model = TerminalModel(code="BM", name="BM", supplier_id=supplier.id)
        session.add(model)
        session.flush()
        location = location_for(session, "provider", hq.id, hq.name)
        session.execute(
            insert(Terminal),
            [
                {
                    "serial": f"BS{i:08d}",
                    "model_id": model.id,
                    "supplier_id": supplier.id,
                    "state": "activated",
                    "location_id": location.id,
                    "provider_id": providers[i % len(providers)],
                    "merchant_id": merchants[i % len(merchants)],
                    "tid": f"{i:08d}",
                }
                for i in range(20000)
            ],
        )
        terminals = [
            (r[0], r[1]) for r in session.execute(select(Terminal.id, Terminal.merchant_id))
        ]
    # the journal, written with sqlite3 directly (generation is not what is measured)
    import sqlite3

    start_local = datetime(2026, 3, 9, 23, 0) - timedelta(hours=8)
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("PRAGMA synchronous=OFF")
    batch = []
    next_id = 1
    sales: list[int] = []
    for n in range(args.rows):
        t_id, m_id = terminals[rng.randrange(len(terminals))]
        created = start_local + timedelta(microseconds=int(n * 86_000_000_000 / args.rows))
        r = rng.random()
        original = None
        if r < 0.90:
            kind = "purchase"
        elif r < 0.93:
            kind = "completion"
        elif r < 0.96 and sales:
            kind, original = "refund", sales[rng.randrange(len(sales))]
        elif r < 0.98 and sales:
            kind, original = "void", sales[rng.randrange(len(sales))]
        elif sales:
            kind, original = "reversal", sales[rng.randrange(len(sales))]
        else:
            kind = "purchase"
        amount = rng.choice((rng.randrange(100, 50_000), rng.randrange(50_000, 2_000_000)))
        if kind in ("purchase", "completion"):
            sales.append(next_id)
        batch.append(
            (
                next_id,
                created.strftime("%Y-%m-%d %H:%M:%S.%f"),
                kind,
                f"{t_id:08d}",
                t_id,
                m_id,
                f"{n % 1000000:06d}",
                amount,
                "credit" if rng.random() < 0.3 else "debit",
                1 if rng.random() < 0.97 else 0,
                original,
            )
        )
        next_id += 1
        if len(batch) >= 100_000:
            _flush(raw, batch)
            batch = []
    _flush(raw, batch)
    raw.commit()
    raw.close()
    freeze(datetime(2026, 3, 11, 1, 0, tzinfo=UTC))
    baseline: list[float] = []
    settle: list[float] = []
    for attempt in range(args.repeat):
        with unit_of_work() as session:
            t0 = time.perf_counter()
            session.execute(
                text(
                    "SELECT merchant_id, card_type, COUNT(*), SUM(amount) FROM gateway_journal "
                    "WHERE id > 0 AND id <= :n AND approved = 1 GROUP BY merchant_id, card_type"
                ),
                {"n": args.rows},
            ).all()
            baseline.append(time.perf_counter() - t0)
        with unit_of_work() as session:
            actor = system_user(session)
            t0 = time.perf_counter()
            result = service.settle_day(session=session, actor=actor, business_date=day)
            settle.append(time.perf_counter() - t0)
            first = attempt == 0
            print(
                f"settle {'(first, posts)' if first else '(repeat, unchanged)'}: "
                f"{settle[-1]:.2f} s, {result.window.count} transactions, "
                f"postings {result.postings}, unchanged={result.unchanged}"
            )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"rows {args.rows}: baseline GROUP BY median {statistics.median(baseline):.2f} s")
    print(
        f"settle_day first run {settle[0]:.2f} s; repeat median "
        f"{statistics.median(settle[1:] or settle):.2f} s; "
        f"ratio first/baseline {settle[0] / statistics.median(baseline):.1f}x; "
        f"peak RSS {peak:.0f} MB"
    )


def _flush(raw: Any, batch: list[Any]) -> None:
    raw.executemany(
        "INSERT INTO gateway_journal (id, created_at, node, mti, response_mti, kind, tid, mid, "
        "terminal_id, merchant_id, stan, local_date, processing_code, amount, currency, "
        "pan_masked, card_type, auth_code, response_code, approved, route, reversed, voided, "
        "completed, original_id, batch_no, upstream_stan, transmitted, latency_us, request, "
        "response) VALUES (?, ?, '', '0200', '0210', ?, ?, '', ?, ?, ?, '', '000000', ?, "
        "'156', '', ?, '', '00', ?, 'upstream', 0, 0, 0, ?, '', '', '', 0, '{}', '{}')",
        batch,
    )


if __name__ == "__main__":
    main()
