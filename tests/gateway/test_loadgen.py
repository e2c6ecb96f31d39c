"""``cardops loadgen`` against a real gateway on a TCP port: it signs on, drives purchases
with PIN and MAC and reports throughput and latency; what it cannot do (no gateway, a
terminal the gateway refuses, no lab file) is a clear error, not a traceback."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from cardops.cli import app
from cardops.core.errors import Conflict, NotFound
from cardops.gateway.loadgen import load_lab, run_load
from tests.gateway.conftest import Running, World, make_terminal


def _lab(world: World, tmk: bytes | None = None, tid: str | None = None) -> dict:
    return {
        "terminals": [{"tid": tid or world.tid, "mid": world.mid, "tmk": (tmk or world.tmk).hex()}],
        "cards": [
            {
                "pan": world.pan,
                "expiry": world.expiry,
                "pin": "246810",
                "balance": 100_000,
                "route": "on-us",
            }
        ],
    }


def test_it_drives_purchases_and_reports_percentiles(gateway: Running, world: World) -> None:
    lab = _lab(world)
    result = asyncio.run(
        run_load(
            host="127.0.0.1",
            port=gateway.port,
            terminals=lab["terminals"],
            cards=lab["cards"],
            connections=2,
            seconds=0.5,
            warmup=0.1,
        )
    )
    summary = result.summary()
    assert summary["requests"] > 0 and summary["errors"] == 0
    assert set(summary["codes"]) == {"00"}
    assert 0 < summary["p50_ms"] <= summary["p95_ms"] <= summary["p99_ms"]


def test_what_it_cannot_do_is_a_clear_error(
    gateway: Running, world: World, db: Session, tmp_path: Path
) -> None:
    lab = _lab(world)
    with pytest.raises(Conflict) as exc:  # nothing listens on port 1
        asyncio.run(run_load(host="127.0.0.1", port=1, **lab, connections=1, seconds=0.5))
    assert exc.value.code == "unreachable"
    faulty, tmk = make_terminal(db, world.merchant, state="faulty")
    db.commit()
    refused = _lab(world, tmk=tmk, tid=faulty.tid)
    with pytest.raises(Conflict) as exc:
        asyncio.run(
            run_load(host="127.0.0.1", port=gateway.port, **refused, connections=1, seconds=0.5)
        )
    assert faulty.tid in str(exc.value) and "58" in str(exc.value)
    with pytest.raises(NotFound):
        load_lab(tmp_path / "missing.json")
    # on the command line: the message, exit code 2
    path = tmp_path / "lab.json"
    path.write_text(json.dumps(refused))
    done = CliRunner().invoke(
        app, ["loadgen", "--port", str(gateway.port), "--lab", str(path), "-n", "1"]
    )
    assert isinstance(done.exception, Conflict)
