"""Benchmark: importing a manufacturer's serial list of 100,000 units (CSV and .xlsx).

For each format, on a fresh scratch database (SQLite, or a scratch database on the server
named by CARDOPS_BENCH_DATABASE_URL):
* baseline: reading the same file with the csv module / openpyxl read-only, nothing else
  (ratio = import / baseline);
* dry run: read + validate every row (serial, model, IMEI Luhn, ICCID Luhn, duplicates in the
  file and against the database), nothing written;
* import: the same + TMK generation (odd parity, KCV, AES-GCM sealing) + bulk insert of units
  and their movements + commit.
Each figure is the median of --repeat runs (the import runs against an emptied table each
time). "import cpu" is the process's CPU time for the import (the machine is shared; wall
time under load overstates it). Target: import <= 10 s. Usage: python bench/terminals_import.py [--n 100000]
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, delete, make_url, text
from sqlalchemy.orm import Session

from cardops.core.db import make_engine
from cardops.core.migrate import upgrade


def _xlsx(data: bytes) -> bytes:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    for row in csv.reader(io.StringIO(data.decode())):
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _baseline(name: str, data: bytes) -> int:
    if name.endswith(".xlsx"):
        from openpyxl import load_workbook

        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        sheet = book.active
        assert sheet is not None
        n = sum(1 for _ in sheet.iter_rows(values_only=True))
        book.close()
        return n
    return sum(1 for _ in csv.reader(io.StringIO(data.decode())))


def run(n: int, repeat: int) -> None:
    os.environ.setdefault("CARDOPS_MASTER_KEY", "00" * 32)
    from cardops.auth.service import system_user
    from cardops.terminals.importer import import_file, sample_csv
    from cardops.terminals.models import (
        InboundBatch,
        Supplier,
        Terminal,
        TerminalModel,
        TerminalMovement,
    )

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
    with Session(engine) as session:
        system_user(session)
        maker = Supplier(name="BENCH", kind="manufacturer")
        session.add(maker)
        session.flush()
        session.add(TerminalModel(code="BENCH-POS", name="bench", supplier_id=maker.id))
        session.commit()

    csv_data = sample_csv(n, model="BENCH-POS", prefix="BN", start=1)
    files = {"list.csv": csv_data, "list.xlsx": _xlsx(csv_data)}
    print(f"database: {make_url(url).get_backend_name()}, {n} rows per file")
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(
        f"{'file':<10} {'baseline s':>10} {'dry-run s':>10} {'import s':>10} "
        f"{'import cpu':>10} {'ratio':>7}"
    )
    try:
        for name, data in files.items():
            base, dry, real, cpu = [], [], [], []
            for _ in range(repeat):
                start = time.perf_counter()
                assert _baseline(name, data) == n + 1
                base.append(time.perf_counter() - start)
                with Session(engine) as session:
                    actor = system_user(session)
                    start = time.perf_counter()
                    import_file(
                        session=session,
                        actor=actor,
                        supplier="BENCH",
                        filename=name,
                        data=data,
                        dry_run=True,
                    )
                    dry.append(time.perf_counter() - start)
                    session.rollback()
                with Session(engine) as session:
                    actor = system_user(session)
                    start, started_cpu = time.perf_counter(), time.process_time()
                    outcome = import_file(
                        session=session, actor=actor, supplier="BENCH", filename=name, data=data
                    )
                    session.commit()
                    real.append(time.perf_counter() - start)
                    cpu.append(time.process_time() - started_cpu)
                    assert outcome.count == n
                with Session(engine) as session:
                    session.execute(delete(TerminalMovement))
                    session.execute(delete(Terminal))
                    session.execute(delete(InboundBatch))
                    session.commit()
            b, d, r, c = (statistics.median(x) for x in (base, dry, real, cpu))
            print(f"{name:<10} {b:>10.2f} {d:>10.2f} {r:>10.2f} {c:>10.2f} {r / b:>6.1f}x")
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
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    run(args.n, args.repeat)
