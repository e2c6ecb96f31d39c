"""Benchmark: the cost of the hash-chained audit log on every state change.

Measures, on a fresh SQLite (or CARDOPS_BENCH_DATABASE_URL) database:
* `record()`: appending N chained entries (read the previous hash, hash, insert), against a
  baseline of inserting the same N rows with a precomputed hash (no chain read) - the ratio
  is the overhead of chaining;
* `verify()`: entries verified per second.
Each figure is the median of --repeat runs. Usage: python bench/audit_chain.py [--n 2000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, delete, make_url, text
from sqlalchemy.orm import Session

from cardops.audit.models import AuditEntry
from cardops.audit.service import record, verify
from cardops.core.clock import utcnow
from cardops.core.db import make_engine
from cardops.core.migrate import upgrade


def run(n: int, repeat: int) -> None:
    server_url = os.environ.get("CARDOPS_BENCH_DATABASE_URL")
    tmp = tempfile.TemporaryDirectory()
    scratch = ""
    if server_url:  # a scratch database on that server, dropped afterwards
        scratch = f"cardops_bench_{uuid.uuid4().hex[:10]}"
        admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{scratch}"'))
        url = make_url(server_url).set(database=scratch).render_as_string(hide_password=False)
    else:
        url = f"sqlite:///{Path(tmp.name) / 'bench.db'}"
    engine = make_engine(url)
    upgrade(engine)
    chained, baseline, verified = [], [], []
    for _ in range(repeat):
        with Session(engine) as session:
            session.execute(delete(AuditEntry))
            session.commit()
            start = time.perf_counter()
            for i in range(n):
                record(session, None, "bench.changed", ("bench", i), after={"i": i, "state": "x"})
            session.commit()
            chained.append(n / (time.perf_counter() - start))

            start = time.perf_counter()
            verify(session)
            verified.append(n / (time.perf_counter() - start))

            session.execute(delete(AuditEntry))
            session.commit()
            start = time.perf_counter()
            for i in range(n):
                session.add(
                    AuditEntry(
                        seq=i + 1,
                        at=utcnow(),
                        actor_id=None,
                        actor_name="system",
                        action="bench.changed",
                        entity_type="bench",
                        entity_id=str(i),
                        after={"i": i, "state": "x"},
                        prev_hash="0" * 64,
                        hash=f"{i:064x}",
                    )
                )
                session.flush()
            session.commit()
            baseline.append(n / (time.perf_counter() - start))
    med_chain, med_base = statistics.median(chained), statistics.median(baseline)
    print(f"database: {engine.dialect.name}, entries per run: {n}, runs: {repeat}")
    print(f"plain insert (baseline):  {med_base:10.0f} rows/s")
    print(f"chained record():         {med_chain:10.0f} rows/s   ratio {med_chain / med_base:.2f}")
    print(f"verify():                 {statistics.median(verified):10.0f} rows/s")
    engine.dispose()
    tmp.cleanup()
    if scratch and server_url:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{scratch}" WITH (FORCE)'))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    run(args.n, args.repeat)
