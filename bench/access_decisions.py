"""Benchmark: door decisions with 1,000,000 cards and 10,000 doors.

On a scratch database (SQLite in a temporary directory, or a scratch database created on the
PostgreSQL server named by CARDOPS_BENCH_DATABASE_URL and dropped afterwards):

* bulk-loads the cards, grants, parking permits and doors (Core executemany);
* builds the in-memory decision index (time reported);
* (a) in-process ``decide()`` rate and p50/p99 latency against a bare dict lookup of the same
  keys (ratio);
* (b) HTTP ``POST /api/v1/access/decisions`` through a real uvicorn server on 127.0.0.1 with
  several keep-alive client processes: rate and p50/p99;
* (c) loss propagation: a loss committed in this process until ``decide()`` here denies it, and
  until the server (another process, following by polling) denies it.

Each figure is the median of --repeat runs. Usage:
    python bench/access_decisions.py [--cards 1000000] [--doors 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, insert, make_url, select, text, update

from cardops.core import config as config_module

N_BUILDINGS = 100


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def load(url: str, n_cards: int, n_doors: int) -> dict[str, Any]:
    """Bulk-load the scratch database; returns what the measurements need."""
    from cardops.access.models import (
        AccessGroup,
        AccessGroupDoor,
        Building,
        CardGrant,
        Controller,
        Door,
        Holiday,
        Property,
        SchedulePeriod,
        TimeSchedule,
    )
    from cardops.auth import service as auth
    from cardops.cards.models import Card
    from cardops.core.db import make_engine, unit_of_work
    from cardops.core.migrate import bootstrap
    from cardops.parking.models import ParkingPermit
    from cardops.parties.models import Person

    engine = make_engine(url)
    bootstrap(engine)
    started = time.perf_counter()
    today = date.today()
    rng = random.Random(7)
    with engine.begin() as conn:
        prop_id = conn.execute(
            insert(Property).values(code="BENCH", name="Bench estate", card_policy={})
        ).inserted_primary_key[0]
        conn.execute(
            insert(Building),
            [{"property_id": prop_id, "code": str(b), "name": f"B{b}"} for b in range(N_BUILDINGS)],
        )
        buildings = dict(conn.execute(select(Building.code, Building.id)).all())
        conn.execute(
            insert(Controller),
            [
                {"property_id": prop_id, "code": f"CTRL-{b}", "name": f"C{b}", "serial": ""}
                for b in range(N_BUILDINGS)
            ],
        )
        controllers = dict(conn.execute(select(Controller.code, Controller.id)).all())
        door_rows = []
        for i in range(n_doors):
            b = i % N_BUILDINGS
            kind = "carpark_gate" if i < 10 else ("lobby" if i % 2 else "unit_door")
            door_rows.append(
                {
                    "property_id": prop_id,
                    "code": f"D{i:05d}",
                    "name": f"Door {i}",
                    "kind": kind,
                    "building_id": None if kind == "carpark_gate" else buildings[str(b)],
                    "controller_id": controllers[f"CTRL-{b}"],
                    "is_active": True,
                }
            )
        conn.execute(insert(Door), door_rows)
        doors = dict(conn.execute(select(Door.code, Door.id)).all())
        conn.execute(
            insert(AccessGroup),
            [
                {"property_id": prop_id, "code": f"B{b}", "name": f"B{b}"}
                for b in range(N_BUILDINGS)
            ],
        )
        groups = dict(conn.execute(select(AccessGroup.code, AccessGroup.id)).all())
        members = [
            {"group_id": groups[f"B{i % N_BUILDINGS}"], "door_id": doors[f"D{i:05d}"]}
            for i in range(10, n_doors)
        ]
        conn.execute(insert(AccessGroupDoor), members)
        schedules = {}
        for code, mode, periods in (
            ("ALWAYS", "periods", [(d, 0, 1440) for d in range(8)]),
            ("DAYTIME", "deny", [(d, 480, 1080) for d in range(6)]),
        ):
            sid = conn.execute(
                insert(TimeSchedule).values(
                    property_id=prop_id, code=code, name=code, holiday_mode=mode
                )
            ).inserted_primary_key[0]
            schedules[code] = sid
            conn.execute(
                insert(SchedulePeriod),
                [
                    {"schedule_id": sid, "weekday": d, "start_minute": s, "end_minute": e}
                    for d, s, e in periods
                ],
            )
        conn.execute(insert(Holiday).values(property_id=prop_id, day=date(2027, 1, 1), name="NY"))
        person_id = conn.execute(insert(Person).values(name="Bench")).inserted_primary_key[0]
    chunk = 50_000
    states = ["active"] * 97 + ["lost", "cancelled", "returned"]
    with engine.begin() as conn:
        for start in range(0, n_cards, chunk):
            rows = []
            for i in range(start, min(n_cards, start + chunk)):
                rows.append(
                    {
                        "number": f"C{i:07d}",
                        "uid": f"{i * 2654435761 % (1 << 56):014X}",
                        "wiegand_format": 26,
                        "wiegand_facility": i >> 16,
                        "wiegand_number": i & 0xFFFF,
                        "property_id": prop_id,
                        "state": states[i % 100],
                        "holder_kind": "owner",
                        "card_class": "white",
                        "valid_from": today - timedelta(days=30),
                        "valid_until": today + timedelta(days=365 if i % 50 else -1),
                        "evidence": {},
                    }
                )
            conn.execute(insert(Card), rows)
        first_id = conn.execute(select(Card.id).where(Card.number == "C0000000")).scalar_one()
        for start in range(0, n_cards, chunk):
            grants = [
                {
                    "card_id": first_id + i,
                    "group_id": groups[f"B{i % N_BUILDINGS}"],
                    "schedule_id": schedules["ALWAYS" if i % 10 else "DAYTIME"],
                }
                for i in range(start, min(n_cards, start + chunk))
            ]
            conn.execute(insert(CardGrant), grants)
        permits = [
            {
                "number": f"P{i:07d}",
                "property_id": prop_id,
                "card_id": first_id + i,
                "person_id": person_id,
                "plate": "川A12345",
                "valid_from": today - timedelta(days=5),
                "valid_until": today + timedelta(days=25),
            }
            for i in range(0, n_cards, 20)
        ]
        for start in range(0, len(permits), chunk):
            conn.execute(insert(ParkingPermit), permits[start : start + chunk])
    with unit_of_work() as session:
        system = auth.system_user(session)
        user = auth.create_user(
            session=session,
            actor=system,
            username="benchgate",
            display_name="Bench gate",
            password="Bench-pass-2026",
            roles=["sysadmin"],
            must_change_password=False,
        )
        token, _ = auth.issue_token(session, user)
    load_seconds = time.perf_counter() - started
    # the workload: mostly cards at doors of their building, some by UID / Wiegand,
    # some at other buildings' doors, gates, unknown cards
    work = []
    for _ in range(200_000):
        i = rng.randrange(n_cards)
        r = rng.random()
        if r < 0.05:
            card = f"X{i:07d}"  # unknown
        elif r < 0.15:
            card = f"{i * 2654435761 % (1 << 56):014X}"  # by UID
        else:
            card = f"C{i:07d}"
        if r > 0.97:
            door = f"D{rng.randrange(10):05d}"  # a car-park gate
        else:
            b = i % N_BUILDINGS if r < 0.9 else rng.randrange(N_BUILDINGS)
            door = f"D{b + N_BUILDINGS * (1 + rng.randrange(n_doors // N_BUILDINGS - 1)):05d}"
        work.append((card, door))
    engine.dispose()
    return {"work": work, "token": token, "load_seconds": load_seconds, "first_id": first_id}


def in_process(work: list[tuple[str, str]]) -> dict[str, float]:
    from cardops.access.engine import get_engine

    engine = get_engine()
    decide = engine.decide
    cards, doors = engine.by_number, engine.doors
    start = time.perf_counter()
    for card, door in work:
        decide(card, door)
    rate = len(work) / (time.perf_counter() - start)
    start = time.perf_counter()
    for card, door in work:
        doors.get(door)
        cards.get(card)
    bare = len(work) / (time.perf_counter() - start)
    latencies = []
    clock = time.perf_counter_ns
    for card, door in work[:50_000]:
        t0 = clock()
        decide(card, door)
        latencies.append((clock() - t0) / 1000)
    allowed = sum(1 for c, d in work[:20_000] if decide(c, d).allowed)
    return {
        "rate": rate,
        "bare": bare,
        "p50_us": _percentile(latencies, 0.5),
        "p99_us": _percentile(latencies, 0.99),
        "allowed_share": allowed / 20_000,
    }


def _client(args: tuple[int, str, list[tuple[str, str]], float, Any]) -> None:
    """One keep-alive connection (the standard library's http.client: little client CPU)."""
    import http.client

    port, token, work, seconds, queue = args
    latencies = []
    conn = http.client.HTTPConnection("127.0.0.1", port)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    bodies = [json.dumps({"card": c, "door": d}) for c, d in work[:20_000]]
    deadline = time.perf_counter() + seconds
    i = 0
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        conn.request("POST", "/api/v1/access/decisions", bodies[i % len(bodies)], headers)
        response = conn.getresponse()
        payload = response.read()
        latencies.append(time.perf_counter() - t0)
        if response.status != 200:
            raise SystemExit(f"HTTP {response.status}: {payload!r}")
        i += 1
    conn.close()
    queue.put(latencies)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    env: dict[str, str], token: str, workers: int
) -> tuple[subprocess.Popen[bytes], int]:
    import httpx

    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "cardops.web.app:serve_app",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        env=env,
    )
    deadline = time.time() + 600
    while time.time() < deadline:
        try:
            response = httpx.post(
                f"http://127.0.0.1:{port}/api/v1/access/decisions",
                json={"card": "C0000001", "door": "D00101"},
                headers={"Authorization": f"Bearer {token}"},
                timeout=120,
            )
            if response.status_code == 200:
                # every worker builds its index: warm them all
                for _ in range(workers * 4):
                    httpx.post(
                        f"http://127.0.0.1:{port}/api/v1/access/decisions",
                        json={"card": "C0000001", "door": "D00101"},
                        headers={"Authorization": f"Bearer {token}"},
                        timeout=300,
                    )
                return proc, port
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise SystemExit("the server did not start")


def http(
    port: int, token: str, work: list[tuple[str, str]], clients: int, seconds: float
) -> dict[str, float]:
    queue: Any = mp.get_context("spawn").Queue()
    ctx = mp.get_context("spawn")
    procs = [
        ctx.Process(target=_client, args=((port, token, work[i::clients], seconds, queue),))
        for i in range(clients)
    ]
    for p in procs:
        p.start()
    latencies: list[float] = []
    for _ in procs:
        latencies.extend(queue.get())
    for p in procs:
        p.join()
    return {
        "rate": len(latencies) / seconds,
        "p50_ms": _percentile(latencies, 0.5) * 1000,
        "p99_ms": _percentile(latencies, 0.99) * 1000,
    }


def report_loss(card_id: int) -> float:
    """Commit a loss the way the cards service does; returns the commit's end time."""
    from cardops.access.credentials import touch_card
    from cardops.cards.models import Card
    from cardops.core.db import unit_of_work

    with unit_of_work() as session:
        prop = session.execute(select(Card.property_id).where(Card.id == card_id)).scalar_one()
        session.execute(update(Card).where(Card.id == card_id).values(state="lost"))
        touch_card(session, card_id=card_id, property_id=prop, reason="card.lost")
    return time.perf_counter()


def propagation(first_id: int, n: int, port: int | None, token: str) -> dict[str, float]:
    import httpx

    from cardops.access.engine import get_engine

    engine = get_engine()
    local, remote = [], []
    for k in range(n):
        i = 1 + k * 100  # active, valid, ALWAYS schedule
        number = f"C{i:07d}"
        door = f"D{N_BUILDINGS + i % N_BUILDINGS:05d}"
        assert engine.decide(number, door).allowed, number
        done = report_loss(first_id + i)
        while engine.decide(number, door).allowed:
            pass
        local.append(time.perf_counter() - done)
        if port is not None:
            with httpx.Client(headers={"Authorization": f"Bearer {token}"}) as client:
                while client.post(
                    f"http://127.0.0.1:{port}/api/v1/access/decisions",
                    json={"card": number, "door": door},
                ).json()["allowed"]:
                    pass
            remote.append(time.perf_counter() - done)
    out = {"local_ms_median": statistics.median(local) * 1000, "local_ms_max": max(local) * 1000}
    if remote:
        out["remote_ms_median"] = statistics.median(remote) * 1000
        out["remote_ms_max"] = max(remote) * 1000
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cards", type=int, default=1_000_000)
    parser.add_argument("--doors", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--no-http", action="store_true")
    args = parser.parse_args()

    server_url = os.environ.get("CARDOPS_BENCH_DATABASE_URL")
    tmp = tempfile.TemporaryDirectory()
    scratch = ""
    if server_url:
        scratch = f"cardops_bench_{uuid.uuid4().hex[:10]}"
        admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{scratch}"'))
        admin.dispose()
        url = make_url(server_url).set(database=scratch).render_as_string(hide_password=False)
    else:
        url = f"sqlite:///{Path(tmp.name) / 'bench.db'}"
    env = {
        **os.environ,
        "CARDOPS_DATABASE_URL": url,
        "CARDOPS_VAR_DIR": tmp.name,
        "CARDOPS_SECRET_KEY": "bench-secret",
    }
    os.environ.update(env)
    config_module.reset_settings()
    results: dict[str, Any] = {
        "cards": args.cards,
        "doors": args.doors,
        "database": url.split(":")[0],
    }
    proc = None
    try:
        print(
            f"loading {args.cards} cards, {args.doors} doors into {results['database']} …",
            flush=True,
        )
        data = load(url, args.cards, args.doors)
        results["load_seconds"] = round(data["load_seconds"], 1)
        from cardops.access.engine import get_engine

        builds = []
        for _ in range(max(1, min(args.repeat, 2))):
            engine = get_engine()
            engine.rebuild()
            builds.append(engine.build_seconds)
        results["index_build_seconds"] = round(statistics.median(builds), 1)
        try:
            import resource

            results["process_max_rss_mb"] = round(
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            )
        except ImportError:
            pass
        runs = [in_process(data["work"]) for _ in range(args.repeat)]
        results["in_process"] = {
            key: round(statistics.median(r[key] for r in runs), 3) for key in runs[0]
        }
        results["in_process"]["ratio_to_bare_dict"] = round(
            results["in_process"]["rate"] / results["in_process"]["bare"], 4
        )
        print(json.dumps(results, indent=2), flush=True)
        port = None
        if not args.no_http:
            proc, port = start_server(env, data["token"], args.workers)
            hruns = [
                http(port, data["token"], data["work"], args.clients, args.seconds)
                for _ in range(args.repeat)
            ]
            results["http"] = {
                key: round(statistics.median(r[key] for r in hruns), 2) for key in hruns[0]
            }
            results["http"].update(clients=args.clients, workers=args.workers)
        results["loss_propagation"] = propagation(data["first_id"], 9, port, data["token"])
        results["poll_interval_ms"] = int(os.environ.get("CARDOPS_ACCESS_POLL_MS", "500"))
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        from cardops.core.db import get_engine as db_engine

        db_engine.cache_clear()
        if scratch and server_url:
            admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)'))
            admin.dispose()
        tmp.cleanup()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
