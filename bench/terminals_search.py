"""Benchmark: serial search, the unit page and the stock page with 1,000,000 units.

Fills a scratch database (SQLite, or CARDOPS_BENCH_DATABASE_URL) with --n units spread over
the HQ warehouse and 50 provider locations, 3 models and every state (driver-level bulk
insert), then times --requests requests of each kind and reports p50 / p95 in ms:
* search: ``service.find`` for a random existing serial (exact), a random IMEI and a
  serial prefix;
* unit: ``get_by_serial`` + the movement history with names (what the unit page shows);
* stock: the stock page's context (kept counts by location × model × state, chart, first
  page of 100 rows) and rendering ``terminals/stock.html``;
* stock drill-down: one page of 50 units of a state, with the total.
Target: p95 < 200 ms. Usage: python bench/terminals_search.py [--n 1000000]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import create_engine, make_url, text
from sqlalchemy.orm import Session

from cardops.core.db import make_engine
from cardops.core.migrate import upgrade

STATES = ["in_stock", "allocated", "at_provider", "installed", "activated", "faulty"]


def _fill(session: Session, n: int) -> list[str]:
    from cardops.auth.service import system_user
    from cardops.terminals import service
    from cardops.terminals.importer import luhn_digit
    from cardops.terminals.models import Supplier, TerminalModel

    system_user(session)
    maker = Supplier(name="BENCH", kind="manufacturer")
    session.add(maker)
    session.flush()
    models = []
    for code in ("BENCH-A", "BENCH-B", "BENCH-C"):
        m = TerminalModel(code=code, name=code, supplier_id=maker.id)
        session.add(m)
        models.append(m)
    session.flush()
    places = [service.warehouse(session).id] + [
        service.location_for(session, "factory", i, f"Location {i}").id for i in range(1, 51)
    ]
    session.commit()
    connection = session.connection()
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    sql = (
        "INSERT INTO terminals (serial, model_id, supplier_id, imei, state, location_id, "
        "extra_codes, cross_region, created_at, updated_at) VALUES "
        f"({', '.join([mark] * 10)})"
    )
    now = "2026-01-01 00:00:00.000000" if mark == "?" else "2026-01-01T00:00:00+00:00"
    rng = random.Random(7)
    serials = []
    batch = []
    for i in range(n):
        serial = f"SN{i:010d}"
        body = f"86{i:012d}"
        serials.append(serial)
        batch.append(
            (
                serial,
                models[i % 3].id,
                maker.id,
                body + luhn_digit(body),
                STATES[rng.randrange(len(STATES))],
                places[rng.randrange(len(places))],
                "{}",
                False,
                now,
                now,
            )
        )
        if len(batch) == 20_000:
            connection.exec_driver_sql(sql, batch)
            batch = []
    if batch:
        connection.exec_driver_sql(sql, batch)
    session.commit()
    service.recount(session)  # the kept stock counts, as the movement service maintains them
    session.commit()
    if connection.dialect.name == "postgresql":
        session.execute(text("ANALYZE terminals"))
    else:
        session.execute(text("ANALYZE"))
    session.commit()
    return serials


def _time(fn: Callable[[], object], requests: int) -> tuple[float, float]:
    samples = []
    for _ in range(requests):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def run(n: int, requests: int) -> None:
    from cardops.terminals import service
    from cardops.terminals.views import stock_context
    from cardops.web.templating import render

    server_url = os.environ.get("CARDOPS_BENCH_DATABASE_URL")
    tmp = tempfile.TemporaryDirectory()
    scratch = ""
    if server_url:
        scratch = f"cardops_bench_{uuid.uuid4().hex[:10]}"
        admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{scratch}"'))
        url = make_url(server_url).set(database=scratch).render_as_string(hide_password=False)
    else:
        url = f"sqlite:///{Path(tmp.name) / 'bench.db'}"
    engine = make_engine(url)
    upgrade(engine)
    try:
        with Session(engine) as session:
            start = time.perf_counter()
            serials = _fill(session, n)
            print(
                f"database: {make_url(url).get_backend_name()}, {n} units "
                f"(filled in {time.perf_counter() - start:.0f} s); "
                f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
            )
            rng = random.Random(11)

            def search_serial() -> None:
                assert len(service.find(session, rng.choice(serials))) == 1

            def search_imei() -> None:
                unit = rng.randrange(n)
                body = f"86{unit:012d}"
                from cardops.terminals.importer import luhn_digit

                assert len(service.find(session, body + luhn_digit(body))) == 1

            def search_prefix() -> None:
                assert service.find(session, rng.choice(serials)[:9], limit=50)

            def unit_page() -> None:
                unit = service.get_by_serial(session, rng.choice(serials))
                service.history_events(session, unit)
                session.expunge(unit)

            def stock_page() -> None:
                render(
                    "terminals/stock.html",
                    request=None,
                    user=None,
                    can=lambda _p: True,
                    csrf_token="x",
                    nav=[],
                    flash=None,
                    **stock_context(session, None),
                )

            def stock_list() -> None:
                units, _total = service.list_terminals(
                    session, state=rng.choice(STATES), limit=50, offset=rng.randrange(0, 500) * 50
                )
                assert units

            print(f"{'request':<22} {'p50 ms':>8} {'p95 ms':>8}")
            for name, fn in [
                ("search serial", search_serial),
                ("search IMEI", search_imei),
                ("search prefix", search_prefix),
                ("unit page", unit_page),
                ("stock page", stock_page),
                ("stock drill-down list", stock_list),
            ]:
                fn()  # warm up
                p50, p95 = _time(fn, requests)
                print(f"{name:<22} {p50:>8.1f} {p95:>8.1f}")
    finally:
        engine.dispose()
        if scratch and server_url:
            admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))
            admin.dispose()
        tmp.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    run(args.n, args.requests)
