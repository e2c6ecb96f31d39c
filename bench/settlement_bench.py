"""Settle a day and reconcile it against the bank's file: 10,000,000 journaled transactions
and a 10,000,000-line clearing file, end to end, with peak memory; a bare Polars full join +
diff of the same two tables, in the same run, is the floor.

    python bench/settlement_bench.py [--rows 10000000] [--database sqlite|postgres]

Three processes, so that each figure is its own: (1) generate the journal in the database
(INSERT … SELECT inside the database) and the bank file with the bank simulator
(``cardops journal export``'s code), with planted differences of every class; (2) the timed
part: ``settlement.service.settle_day`` when that exists (skipped and reported otherwise),
then ``reconciliation.service.import_file`` (read + check the GBK file, load the journal,
match, write the cases) and the commit, with its peak RSS; (3) the floor: the same two
tables already in memory, one bare Polars full join on TID + RRN and a diff filter.
Prints one Markdown row; the figures go into docs/benchmarks-settlement.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

PY = sys.executable
ROOT = Path(__file__).resolve().parent.parent
DAY = date(2026, 11, 20)
TERMINALS = 100_000
PER_MERCHANT = 5  # terminals per merchant


def _env(url: str, var_dir: str) -> None:
    os.environ["CARDOPS_DATABASE_URL"] = url
    os.environ["CARDOPS_VAR_DIR"] = var_dir
    os.environ.setdefault("CARDOPS_SECRET_KEY", "bench-secret-key")
    from cardops.core import config

    config.reset_settings()


# ------------------------------------------------------------------------------ generate


def _journal_sql(dialect: str, rows: int) -> str:
    """One INSERT … SELECT that writes ``rows`` journal rows of DAY (Asia/Shanghai)."""
    cols = (
        "created_at, node, mti, response_mti, kind, tid, mid, merchant_id, stan, local_date, "
        "dup_key, processing_code, amount, currency, pan_masked, card_type, rrn, auth_code, "
        "response_code, approved, route, reversed, voided, completed, batch_no, upstream_stan, "
        "transmitted, latency_us, request, response"
    )
    # deterministic mix: 2 % refunds, 1 % voids, 1.6 % completions, 2.7 % declined, 0.5 %
    # reversed purchases; amounts 1.00 … 5 000.99 yuan; card type by row
    if dialect == "sqlite":
        series = (
            f"WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {rows - 1}) "
        )
        src = "n"
        fmt = "printf"
        created = (
            "strftime('%Y-%m-%d %H:%M:%S', '2026-11-19 16:00:00', '+' || (i * 86399 / "
            f"{rows}) || ' seconds') || '.000000'"
        )
        true, false = "1", "0"
        cat = "||"
    else:
        series = ""
        src = f"generate_series(0::bigint, {rows - 1}) AS n(i)"
        fmt = "format"
        created = (
            f"timestamptz '2026-11-19 16:00:00+00' + (i * 86399 / {rows}) * interval '1 second'"
        )
        true, false = "true", "false"
        cat = "||"

    def pad(expr: str, width: int) -> str:
        if dialect == "sqlite":
            return f"printf('%0{width}d', {expr})"
        return f"lpad(({expr})::text, {width}, '0')"

    kind = (
        "CASE WHEN i % 50 = 7 THEN 'refund' WHEN i % 100 = 11 THEN 'void' "
        "WHEN i % 61 = 5 THEN 'completion' ELSE 'purchase' END"
    )
    del fmt
    select = (
        f"SELECT {created}, 'bench', '0200', '0210', {kind}, "
        f"'T' {cat} {pad(f'i % {TERMINALS}', 7)}, "
        f"'898510154' {cat} {pad(f'(i % {TERMINALS}) / {PER_MERCHANT}', 6)}, "
        f"(i % {TERMINALS}) / {PER_MERCHANT} + 1, "
        f"{pad(f'(i / {TERMINALS}) % 1000000', 6)}, '{DAY:%Y%m%d}', NULL, '000000', "
        f"100 + (i * 7919) % 500000, '156', "
        f"'622848******' {cat} {pad('i % 10000', 4)}, "
        "CASE WHEN i % 3 = 0 THEN 'credit' ELSE 'debit' END, "
        f"{pad('100000000000 + i', 12)}, {pad('i % 1000000', 6)}, "
        f"CASE WHEN i % 37 = 3 THEN '51' ELSE '00' END, "
        f"CASE WHEN i % 37 = 3 THEN {false} ELSE {true} END, 'upstream', "
        f"CASE WHEN i % 200 = 9 THEN {true} ELSE {false} END, {false}, {false}, '000001', '', "
        f"'1120100000', 0, '{{}}', '{{}}' FROM {src}"
    )
    return f"INSERT INTO gateway_journal ({cols}) {series}{select}"


def generate(url: str, var_dir: str, rows: int, bank_file: Path) -> dict[str, int]:
    _env(url, var_dir)
    import polars as pl

    from cardops.core.db import make_engine, session_factory
    from cardops.core.migrate import bootstrap
    from cardops.reconciliation.clearing import write_clearing_file
    from cardops.reconciliation.simulator import clearing_frame

    engine = make_engine(url)
    bootstrap(engine)
    dialect = engine.dialect.name
    merchants = TERMINALS // PER_MERCHANT
    started = time.perf_counter()
    with engine.begin() as conn:
        if dialect == "sqlite":
            conn.exec_driver_sql(
                "INSERT INTO merchants (id, mid, name, kind, bank_name, bank_account, "
                "bank_account_name, mcc, province, city, address, state, kyc_notes, risk_level, "
                "created_at, updated_at) WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 "
                f"FROM n WHERE i < {merchants - 1}) SELECT i + 1, '898510154' || printf('%06d', i), "
                "'蓉城商户' || i || '号便利店', 'corporate', '', '', '', '5411', '', '', '', "
                "'approved', '', 'normal', '2026-01-01 00:00:00.000000', "
                "'2026-01-01 00:00:00.000000' FROM n"
            )
        else:
            conn.exec_driver_sql(
                "INSERT INTO merchants (id, mid, name, kind, bank_name, bank_account, "
                "bank_account_name, mcc, province, city, address, state, kyc_notes, risk_level, "
                "created_at, updated_at) SELECT i + 1, '898510154' || lpad(i::text, 6, '0'), "
                "'蓉城商户' || i || '号便利店', 'corporate', '', '', '', '5411', '', '', '', "
                "'approved', '', 'normal', now(), now() "
                f"FROM generate_series(0, {merchants - 1}) AS n(i)"
            )
            conn.exec_driver_sql(f"SELECT setval('merchants_id_seq', {merchants})")
        raw = conn.connection.driver_connection
        assert raw is not None
        raw.cursor().execute(_journal_sql(dialect, rows))
        # mark the reversed purchases' reversal rows' originals: reversed rows stay FAILED
    if dialect == "postgresql":
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                "VACUUM ANALYZE gateway_journal"
            )
    journal_seconds = time.perf_counter() - started

    # the bank's file, by the bank simulator, with planted differences of every class
    started = time.perf_counter()
    k = max(3, rows // 20_000)
    with session_factory() as session:
        frame = clearing_frame(session, DAY, rate_ppm=2500).with_row_index("_i")
        ok = frame.filter(pl.col("status") == "SUCCESS")["_i"].shuffle(seed=7)
        drop = set(ok[0:k].to_list())
        more = set(ok[k : 2 * k].to_list())
        fail = set(ok[2 * k : 3 * k].to_list())
        dup = ok[3 * k : 4 * k].to_list()
        stranger = ok[4 * k : 5 * k].to_list()
        ours_dup = ok[5 * k : 6 * k].to_list()
        edited = frame.filter(~pl.col("_i").is_in(list(drop))).with_columns(
            pl.when(pl.col("_i").is_in(list(more)))
            .then(pl.col("amount") + 1)
            .otherwise(pl.col("amount"))
            .alias("amount"),
            pl.when(pl.col("_i").is_in(list(fail)))
            .then(pl.lit("FAILED"))
            .otherwise(pl.col("status"))
            .alias("status"),
        )
        extra_bank = frame.filter(pl.col("_i").is_in(dup))
        unknown = frame.filter(pl.col("_i").is_in(stranger)).with_columns(
            (pl.lit("2") + pl.col("rrn").str.slice(1)).alias("rrn"),
            pl.lit("999999").alias("stan"),
        )
        bank = pl.concat([edited, extra_bank, unknown]).drop("_i")
        lines, _total = write_clearing_file(bank, bank_file)
        # duplicates at our side: second journal rows carrying an RRN the bank has once
        twins = frame.filter(pl.col("_i").is_in(ours_dup)).select("tid", "rrn")
        conn = session.connection()
        conn.exec_driver_sql("CREATE TEMPORARY TABLE bench_twins (tid VARCHAR(8), rrn VARCHAR(12))")
        conn.exec_driver_sql(
            "INSERT INTO bench_twins (tid, rrn) VALUES (?, ?)"
            if dialect == "sqlite"
            else "INSERT INTO bench_twins (tid, rrn) VALUES (%s, %s)",
            list(twins.iter_rows()),
        )
        conn.exec_driver_sql(
            "INSERT INTO gateway_journal (created_at, node, mti, response_mti, kind, tid, mid, "
            "merchant_id, stan, local_date, processing_code, amount, currency, pan_masked, "
            "card_type, rrn, auth_code, response_code, approved, route, reversed, voided, "
            "completed, batch_no, upstream_stan, transmitted, latency_us, request, response) "
            "SELECT j.created_at, node, mti, response_mti, kind, j.tid, mid, merchant_id, '999998', "
            "local_date, processing_code, amount, currency, pan_masked, card_type, j.rrn, "
            "auth_code, response_code, approved, route, reversed, voided, completed, batch_no, "
            "upstream_stan, transmitted, latency_us, request, response FROM gateway_journal j "
            "JOIN bench_twins t ON t.tid = j.tid AND t.rrn = j.rrn"
        )
        session.commit()
    engine.dispose()
    return {
        "journal_rows": rows + k,
        "bank_lines": lines,
        "planted_per_class": k,
        "generate_journal_s": round(journal_seconds, 1),
        "generate_file_s": round(time.perf_counter() - started, 1),
        "file_bytes": bank_file.stat().st_size,
    }


# --------------------------------------------------------------------------------- timed


def timed(url: str, var_dir: str, bank_file: Path, settle: bool) -> dict[str, object]:
    _env(url, var_dir)
    from cardops.auth.service import system_user
    from cardops.core.db import session_factory
    from cardops.reconciliation import service

    phases: dict[str, float] = {}
    marks: dict[str, float] = {}

    def step(label: str, done: float) -> None:
        if done == 0.0:
            marks[label] = time.perf_counter()
        elif done >= 1.0 and label in marks:
            phases[label] = round(time.perf_counter() - marks[label], 2)

    settle_s: float | None = None
    started = time.perf_counter()
    with session_factory() as session:
        actor = system_user(session)
        try:
            from cardops.settlement.service import settle_day  # the settlement half
        except ImportError:
            settle_day = None  # type: ignore[assignment]
        if settle_day is not None and settle:
            t = time.perf_counter()
            settle_day(session=session, actor=actor, business_date=DAY)
            session.commit()
            settle_s = round(time.perf_counter() - t, 2)
        t = time.perf_counter()
        outcome = service.import_file(session=session, actor=actor, path=bank_file, progress=step)
        session.commit()
        reconcile_s = round(time.perf_counter() - t, 2)
        counts = outcome.counts()
    total = round(time.perf_counter() - started, 2)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB
    return {
        "end_to_end_s": total,
        "settle_s": settle_s,
        "reconcile_s": reconcile_s,
        "phases_s": phases,
        "peak_rss_mib": round(peak),
        "counts": counts,
    }


def floor(url: str, var_dir: str, bank_file: Path) -> dict[str, float]:
    _env(url, var_dir)
    from cardops.core.db import session_factory
    from cardops.reconciliation.clearing import read_clearing_file
    from cardops.reconciliation.journal import load_day
    from cardops.reconciliation.match import floor_join, match

    bank = read_clearing_file(bank_file).lines
    with session_factory() as session:
        ours = load_day(session, DAY)
    runs = []
    for _ in range(3):
        t = time.perf_counter()
        floor_join(bank, ours)
        runs.append(time.perf_counter() - t)
    t = time.perf_counter()
    match(bank, ours)
    match_s = time.perf_counter() - t
    return {"floor_s": round(sorted(runs)[1], 3), "match_only_s": round(match_s, 3)}


# ---------------------------------------------------------------------------------- main


def _child(phase: str, args: argparse.Namespace, url: str, var_dir: str, bank: Path) -> dict:
    out = subprocess.run(
        [
            PY,
            __file__,
            "--phase",
            phase,
            "--url",
            url,
            "--var-dir",
            var_dir,
            "--bank",
            str(bank),
            "--rows",
            str(args.rows),
            *(["--no-settle"] if args.no_settle else []),
        ],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _cached(args: argparse.Namespace, work: Path, var_dir: str, bank: Path) -> dict:
    """Generate once into ``--cache``/<rows>/, then copy the pristine database and file into
    the work directory (the copy is not timed)."""
    cache = Path(args.cache) / str(args.rows)
    meta = cache / "generated.json"
    if not meta.exists():
        cache.mkdir(parents=True, exist_ok=True)
        gen = _child(
            "generate", args, f"sqlite:///{cache / 'bench.db'}", var_dir, cache / bank.name
        )
        with sqlite3.connect(cache / "bench.db") as db:  # everything into the main file
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        meta.write_text(json.dumps(gen))
    shutil.copyfile(cache / "bench.db", work / "bench.db")
    shutil.copyfile(cache / bank.name, bank)
    return dict(json.loads(meta.read_text()))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument(
        "--no-settle", action="store_true", help="Time the reconciliation half only."
    )
    parser.add_argument("--workdir", default=None, help="Where the database and file go.")
    parser.add_argument(
        "--cache",
        default=None,
        help="SQLite only: keep the generated database and bank file in this directory and "
        "reuse them on the next run with the same --rows (the timed part runs on a copy).",
    )
    parser.add_argument(
        "--generate-only", action="store_true", help="With --cache: fill the cache and stop."
    )
    parser.add_argument("--phase", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--url", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--var-dir", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--bank", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        bank = Path(args.bank)
        result: object
        if args.phase == "generate":
            result = generate(args.url, args.var_dir, args.rows, bank)
        elif args.phase == "timed":
            result = timed(args.url, args.var_dir, bank, not args.no_settle)
        else:
            result = floor(args.url, args.var_dir, bank)
        print(json.dumps(result))
        return

    work = Path(tempfile.mkdtemp(prefix="settlement-bench-", dir=args.workdir))
    var_dir = str(work / "var")
    bank = work / f"CLR_BENCH01_{DAY:%Y%m%d}.csv"
    admin_url = None
    if args.database == "sqlite":
        url = f"sqlite:///{work / 'bench.db'}"
    else:
        from sqlalchemy import create_engine, make_url

        base = os.environ.get(
            "CARDOPS_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        )
        name = f"cardops_bench_{uuid.uuid4().hex[:10]}"
        admin_url = base
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        admin.dispose()
        url = make_url(base).set(database=name).render_as_string(hide_password=False)
    try:
        if args.cache and args.database == "sqlite":
            gen = _cached(args, work, var_dir, bank)
        else:
            gen = _child("generate", args, url, var_dir, bank)
        print(f"generated: {json.dumps(gen)}", file=sys.stderr)
        if args.generate_only:
            return
        run = _child("timed", args, url, var_dir, bank)
        print(f"timed: {json.dumps(run)}", file=sys.stderr)
        flo = _child("floor", args, url, var_dir, bank)
        print(f"floor: {json.dumps(flo)}", file=sys.stderr)
    finally:
        if admin_url:
            from sqlalchemy import create_engine

            admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.dispose()
        for path in sorted(work.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        work.rmdir()
    ratio = run["end_to_end_s"] / flo["floor_s"] if flo["floor_s"] else float("nan")
    k = gen["planted_per_class"]
    expected = {
        "missing_at_bank": k,
        "missing_at_ours": k,
        "amount_mismatch": k,
        "status_mismatch": k,
        "duplicate_at_bank": k,
        "duplicate_at_ours": k,
    }
    found = {key: run["counts"][key] for key in expected}
    print(
        "| database | journal rows | bank lines | settle s | reconcile s | end to end s "
        "| peak RSS MiB | floor s | × floor | planted found |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    print(
        f"| {args.database} | {gen['journal_rows']:,} | {gen['bank_lines']:,} | "
        f"{run['settle_s'] if run['settle_s'] is not None else 'n/a'} | {run['reconcile_s']} | "
        f"{run['end_to_end_s']} | {run['peak_rss_mib']} | {flo['floor_s']} | {ratio:.0f} | "
        f"{'exactly' if found == expected else found} |"
    )
    print(f"phases: {json.dumps(run['phases_s'])}; match alone {flo['match_only_s']} s")


if __name__ == "__main__":
    main()
