"""No overdraft under races: several connections pay from one wallet with ``debit_many`` at
the same time, each in its own transaction; the wallet never goes below zero and its balance
is its top-up minus exactly the approved payments. Runs in a subprocess against a fresh
database (SQLite file, or a new PostgreSQL database when CARDOPS_TEST_POSTGRES_URL is set)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, threading
from sqlalchemy import select
from cardops.core.db import get_engine, session_factory, unit_of_work
from cardops.core.migrate import bootstrap
import cardops.gateway.models
from cardops.gateway.models import OnusCard
from cardops.gateway import crypto, lab
from cardops.cards.models import Card
from cardops.auth.service import system_user
from cardops.wallets import service as wallets

bootstrap(get_engine())
with unit_of_work() as s:
    data = lab.seed(s, system_user(s), terminals=0, cards=1, balance=10_000)
pan = data["cards"][0]["pan"]
with unit_of_work() as s:
    number = s.execute(
        select(Card.number).join(OnusCard, OnusCard.card_id == Card.id)
        .where(OnusCard.pan_hash == crypto.pan_hash(pan))
    ).scalar_one()
results = []
start = threading.Barrier(6)

def pay(worker):
    start.wait()
    for round in range(5):
        session = session_factory()
        try:
            batch = [wallets.DebitRequest(number, 700, f"r{worker}", f"race-{worker}-{round}-{i}")
                     for i in range(3)]
            answers = wallets.debit_many(session, batch)
            session.commit()
            results.extend(a.approved for a in answers)
        finally:
            session.close()

threads = [threading.Thread(target=pay, args=(w,)) for w in range(6)]
for t in threads: t.start()
for t in threads: t.join()
with unit_of_work() as s:
    card = s.execute(select(Card).where(Card.number == number)).scalar_one()
    print(json.dumps({"approved": sum(results), "answers": len(results),
                      "balance": wallets.balance(s, card)}))
"""


def _database(tmp_path: Path) -> tuple[str, str | None]:
    base = os.environ.get("CARDOPS_TEST_POSTGRES_URL")
    if not base:
        return f"sqlite:///{tmp_path / 'race.db'}", None
    from sqlalchemy import create_engine, make_url, text

    name = f"cardops_race_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(base).set(database=name).render_as_string(hide_password=False), name


def _drop(name: str) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(os.environ["CARDOPS_TEST_POSTGRES_URL"], isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.mark.slow
def test_concurrent_batches_never_overdraw_a_wallet(tmp_path: Path) -> None:
    url, pg_name = _database(tmp_path)
    env = dict(os.environ)
    env.update(
        CARDOPS_DATABASE_URL=url,
        CARDOPS_VAR_DIR=str(tmp_path),
        CARDOPS_SECRET_KEY="race-test",
        CARDOPS_MASTER_KEY="33" * 32,
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, cwd=ROOT
        )
    finally:
        if pg_name:
            _drop(pg_name)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["answers"] == 6 * 5 * 3
    assert report["approved"] == 10_000 // 700  # 14 fit, every other one declined
    assert report["balance"] == 10_000 - 700 * report["approved"] >= 0
