"""Gateway CPU per on-us purchase, in process: the engine's batch (pipeline, wallet debits,
ledger postings, journal, commit, response encoding + MAC) timed with ``time.process_time``
for batches of a fixed size, so that neither the load generator nor a busy machine changes
the batch sizes being compared (the socket benchmark's CPU figure depends on both).

    python bench/gateway_cpu.py [--batch 50] [--batches 60] [--database sqlite|postgres]

Prints the median CPU ms per request over the batches (after a warm-up). Run it with
``PYTHONPATH`` pointing at another checkout's ``src`` to compare two versions.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="gateway-cpu-"))
    pg_name = None
    if args.database == "sqlite":
        url = f"sqlite:///{tmp / 'cpu.db'}"
    else:
        from sqlalchemy import create_engine, make_url, text

        base = os.environ.get(
            "CARDOPS_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        )
        pg_name = f"cardops_cpu_{uuid.uuid4().hex[:8]}"
        admin = create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{pg_name}"'))
        admin.dispose()
        url = make_url(base).set(database=pg_name).render_as_string(hide_password=False)
    os.environ.update(
        CARDOPS_DATABASE_URL=url,
        CARDOPS_VAR_DIR=str(tmp),
        CARDOPS_SECRET_KEY="bench-secret",
        CARDOPS_MASTER_KEY="11" * 32,
    )
    try:
        print(f"{run(args):.3f}")
    finally:
        if pg_name:
            from sqlalchemy import create_engine, text

            from cardops.core.db import get_engine

            get_engine().dispose()
            admin = create_engine(
                os.environ.get(
                    "CARDOPS_BENCH_POSTGRES_URL",
                    "postgresql+psycopg://postgres@127.0.0.1:5432/test",
                ),
                isolation_level="AUTOCOMMIT",
            )
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)'))
            admin.dispose()


def run(args: argparse.Namespace) -> float:
    import cardops.gateway.models  # noqa: F401
    from cardops.auth.service import system_user
    from cardops.core.db import get_engine, unit_of_work
    from cardops.core.migrate import bootstrap
    from cardops.gateway import codec, lab
    from cardops.gateway.config import GatewayConfig
    from cardops.gateway.engine import Ctx, Engine
    from cardops.gateway.terminal import TerminalSession

    bootstrap(get_engine())
    with unit_of_work() as s:
        data = lab.seed(
            s, system_user(s), terminals=args.batch, cards=args.batch, balance=2_000_000
        )
    engine = Engine(GatewayConfig())
    terminals = [
        TerminalSession(t["tid"], t["mid"], bytes.fromhex(t["tmk"])) for t in data["terminals"]
    ]
    cards = [c for c in data["cards"] if c["route"] == "on-us" and c["expiry"] > "2700"]

    def ctx_of(session: TerminalSession, msg: codec.Message) -> Ctx:
        payload = session.encode(msg)[2:]
        return Ctx(raw=payload, msg=codec.decode(payload))

    for t in terminals:
        ctx = ctx_of(t, t.sign_on())
        engine.process_batch([ctx])
        t.accept_keys(codec.decode(ctx.out[2:]))
    samples = []
    for n in range(args.batches + 5):
        items = []
        for i, t in enumerate(terminals):
            card = cards[(i + n) % len(cards)]
            items.append(
                ctx_of(t, t.purchase(card["pan"], 1, pin=card["pin"], expiry=card["expiry"]))
            )
        started = time.process_time()
        engine.process_batch(items)
        used = time.process_time() - started
        codes = {codec.decode(c.out[2:]).get("39") for c in items}
        if codes != {"00"}:
            sys.exit(f"not all approved: {codes}")
        if n >= 5:  # warm-up: first PIN checks, caches
            samples.append(1000 * used / len(items))
    return statistics.median(samples)


if __name__ == "__main__":
    main()
