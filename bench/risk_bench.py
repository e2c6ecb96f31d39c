"""Risk benchmark: the gateway's throughput with 20 active rules against the same gateway with
risk off, in the same run, and the risk step's own latency (measured inside the gateway).

    python bench/risk_bench.py [--database sqlite|postgres] [--seconds 4] [--rounds 8] [--redis]
                               [--restart]

Reuses the gateway benchmark's machinery (lab seed, load generator, processes on this
machine). Two gateways run on the same database, one with risk off, one with it on; each
round sends the load to one then the other (the order alternating between rounds), so the
rounds' on/off ratios sample the same moments of the shared machine; STAN ranges never
overlap; each gateway first gets an unmeasured warm-up slice. ``--restart`` starts a fresh
gateway for every slice instead. Round pairs (off on on off) give drift-cancelled ratios.
Per slice: load averages, the gateway's CPU time per request and, with Redis, Redis's CPU
time per request. With ``--redis`` the aggregates live in the real Redis (127.0.0.1:6379, a
fresh key prefix). Prints a Markdown table; figures go into docs/benchmarks-risk.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gateway_bench import (
    PY,
    ROOT,
    drop_database,
    free_port,
    make_database,
    seed,
    wait_port,
)

# 20 rules in two scenarios, over every kind of field: velocity per card, terminal and
# merchant, declines and PIN failures, stop-listed attempts, first use, usual amount,
# off-hours, ratings. Thresholds are realistic for real traffic; the benchmark's closed-loop
# traffic (50 cards paying 1 fen non-stop) makes some of them hold, so scores are summed and
# compared every time, but no request reaches review or decline (an alert is an INSERT: that
# cost is the alert rate's, not the rules').
RULES = [
    ("velocity", "card_10m", "card.count_10m >= 5000", 10),
    ("velocity", "card_1h", "card.count_1h >= 20000", 10),
    ("velocity", "card_24h_sum", "card.sum_24h >= 50000000", 10),
    ("velocity", "card_declines", "card.declines_10m >= 50", 10),
    ("velocity", "pin_guess", "card.pin_failures_1h >= 3", 10),
    ("velocity", "terminal_burst", "terminal.count_10m >= 100000", 10),
    ("velocity", "terminal_declines", "terminal.declines_1h >= 5000", 10),
    ("velocity", "terminal_stoplisted", "terminal.stoplisted_1h >= 2", 10),
    ("velocity", "merchant_spike", "merchant.count_1h >= 1000000", 10),
    ("velocity", "merchant_stoplisted", "merchant.stoplisted_24h >= 5", 10),
    ("amount", "big", "txn.amount >= 2000000", 10),
    ("amount", "vs_usual", "has(txn.amount_ratio) && txn.amount_ratio >= 50.0", 10),
    ("amount", "night_big", "(txn.hour < 6 || txn.hour >= 23) && txn.amount >= 500000", 10),
    ("amount", "first_big", "txn.first_at_merchant && txn.amount >= 1000000", 10),
    ("amount", "credit_big", 'txn.card_type == "credit" && txn.amount >= 1500000', 10),
    ("amount", "rating_d", 'merchant.rating == "D" && txn.amount >= 100000', 10),
    ("amount", "day_total", "merchant.day_total >= 100000000000", 10),
    ("amount", "month_total", "merchant.month_total >= 1000000000000", 10),
    ("amount", "weekend_big", "txn.weekday >= 6 && txn.amount >= 3000000", 10),
    ("amount", "kinds", 'txn.kind == "preauth" && txn.amount >= 3000000', 10),
]

SETUP = """
from cardops.auth.service import system_user
from cardops.core.db import unit_of_work
from cardops.core.registry import load_models
from cardops.merchants.models import Merchant
from cardops.risk import service
from sqlalchemy import select
import json, sys
load_models()
rules = json.loads(sys.argv[1])
with unit_of_work() as s:
    actor = system_user(s)
    made = {}
    for code in ("velocity", "amount"):
        made[code] = service.create_scenario(session=s, actor=actor, code=code, name=code,
                                             review_threshold=100, decline_threshold=200)
    for scenario, code, expression, score in rules:
        service.create_rule(session=s, actor=actor, scenario_id=made[scenario].id, code=code,
                            name=code, expression=expression, score=score)
    service.set_rating_limit(session=s, actor=actor, rating="B", single_limit="50000",
                             daily_limit="100000000", monthly_limit="1000000000")
    for m in s.execute(select(Merchant).where(Merchant.state == "approved")).scalars():
        service.rate_merchant(session=s, actor=actor, merchant_id=m.id, rating="B")
"""


def load(env: dict[str, str], port: int, lab: Path, seconds: float, n: int, stan: int) -> dict:
    code = (
        "import asyncio, json\n"
        "from pathlib import Path\n"
        "from cardops.gateway.loadgen import run_load, load_lab\n"
        f"data = load_lab(Path({str(lab)!r}))\n"
        "cards = [c for c in data['cards'] if c['route'] == 'on-us' and c['balance'] > 0"
        " and c['expiry'] > '2700']\n"
        f"r = asyncio.run(run_load(host='127.0.0.1', port={port}, terminals=data['terminals'],"
        f" cards=cards, connections={n}, seconds={seconds}, stan_start={stan}))\n"
        "print(json.dumps(r.summary()))\n"
    )
    done = subprocess.run([PY, "-c", code], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_gateway(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [PY, "-m", "cardops.gateway.cli", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_port(port, 60)
    return proc


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def redis_usage(url: str) -> dict[str, float]:
    """Redis's CPU time so far (seconds) and its command statistics (calls, µs per command)."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        cpu = client.info("cpu")
        stats = client.info("commandstats")
    finally:
        client.close()
    out = {"cpu": float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"]), "calls": 0.0}
    for name, figures in stats.items():
        command = name.removeprefix("cmdstat_")
        out[f"usec:{command}"] = float(figures["usec"])
        out[f"calls:{command}"] = float(figures["calls"])
        out["calls"] += float(figures["calls"])
    return out


def redis_delta(before: dict[str, float], after: dict[str, float], requests: int) -> dict:
    """Redis's work during one run, per request: its process CPU (everything it did,
    including other clients) and the commands' own time, by command."""
    n = max(1, requests)
    commands = {
        key.removeprefix("usec:"): round((after[key] - before.get(key, 0.0)) / n, 2)
        for key in after
        if key.startswith("usec:") and after[key] - before.get(key, 0.0) > 0
    }
    return {
        "redis_cpu_us_per_request": round(1e6 * (after["cpu"] - before["cpu"]) / n, 1),
        "redis_commands_per_request": round((after["calls"] - before["calls"]) / n, 2),
        "redis_command_us_per_request": commands,
    }


def micro(redis_url: str | None, n: int = 20_000, size: int = 25) -> dict[str, float]:
    """The risk step alone, in this process: 20 compiled rules over the aggregates of 50
    cards on 50 terminals, ``n`` requests in batches of ``size`` as the gateway makes them
    (the batch prefetched, each request evaluated, the batch observed)."""
    from dataclasses import dataclass, field

    from cardops.gateway import crypto
    from cardops.gateway.models import Kind
    from cardops.risk.aggregates import MemoryStore, RedisStore
    from cardops.risk.expressions import compile_rule
    from cardops.risk.runtime import (
        LoadedRule,
        LoadedScenario,
        RiskConfig,
        RiskRuntime,
        needed,
    )

    @dataclass
    class Terminal:
        merchant_id: int
        mid: str

    @dataclass
    class Request:
        kind: Kind
        terminal: Terminal
        tid: str
        pan: str
        pan_hash: str
        amount: int
        local_date: str = "20261123"
        card_type: str = "debit"
        rc: str = "00"
        risk: dict | None = None
        dup_key: str | None = None
        original: None = None
        stage: str = "new"
        preset: str = ""
        msg: dict = field(default_factory=dict)

    prefix = f"bench:risk:micro:{uuid.uuid4().hex[:8]}"
    store = RedisStore(redis_url, prefix) if redis_url else MemoryStore()
    runtime = RiskRuntime(store=store, config=RiskConfig(redis_url=redis_url or ""))
    runtime.checked = float("inf")  # configuration given below, no database
    scenarios = {}
    for i, (scenario, code, expression, score) in enumerate(RULES):
        loaded = scenarios.setdefault(
            scenario,
            LoadedScenario(
                len(scenarios) + 1, scenario, frozenset({"purchase"}), 100, 200, "59", []
            ),
        )
        compiled = compile_rule(expression)
        variables = tuple(name.replace(".", "__") for name in compiled.fields)
        loaded.rules.append(LoadedRule(i, code, score, "", compiled.program, variables))
    runtime.scenarios = list(scenarios.values())
    runtime.variables = needed(runtime.scenarios)
    pans = [f"621234{i:013d}" for i in range(50)]
    hashes = [crypto.pan_hash(pan) for pan in pans]
    wall, cpu, batch_wall, observe_wall = [], [], [], []
    total = 0.0
    usage = redis_usage(redis_url) if redis_url else None
    try:
        for first in range(0, n, size):
            batch = []
            for i in range(first, min(n, first + size)):
                tid = f"{i % 50:08d}"
                ctx = Request(
                    Kind.PURCHASE,
                    Terminal(1 + i % 10, f"M{i % 10:014d}"),
                    tid,
                    pans[i % 50],
                    hashes[i % 50],
                    100 + i % 900,
                )
                ctx.msg = {"t": "0200", "3": "000000", "41": tid, "2": ctx.pan}
                batch.append(ctx)
            started = time.perf_counter()
            runtime.prefetch(None, batch)  # type: ignore[arg-type]
            batch_wall.append(time.perf_counter() - started)
            for ctx in batch:
                started, c0 = time.perf_counter(), time.thread_time()
                runtime.evaluate(None, ctx)  # type: ignore[arg-type]
                wall.append(time.perf_counter() - started)
                cpu.append(time.thread_time() - c0)
            total += sum(wall[-len(batch) :]) + batch_wall[-1]
            started = time.perf_counter()
            runtime.observe(batch)
            observe_wall.append(time.perf_counter() - started)
        wall.sort()
        cpu.sort()
        batch_wall.sort()
        observe_wall.sort()
        redis = redis_delta(usage, redis_usage(redis_url), n) if usage and redis_url else {}
        pick = lambda data, q: round(data[int(q * (len(data) - 1))] * 1e6, 1)  # noqa: E731
        return {
            "n": n,
            "wall_p50_us": pick(wall, 0.5),
            "wall_p95_us": pick(wall, 0.95),
            "wall_p99_us": pick(wall, 0.99),
            "cpu_p50_us": pick(cpu, 0.5),
            "cpu_p99_us": pick(cpu, 0.99),
            "batch": size,
            "prefetch_p50_us": pick(batch_wall, 0.5),
            "prefetch_p99_us": pick(batch_wall, 0.99),
            "per_request_us": round(total / n * 1e6, 1),  # prefetch included
            "observe_p50_us": pick(observe_wall, 0.5),
            "observe_p99_us": pick(observe_wall, 0.99),
            "prefetched": getattr(store, "prefetched", 0),
            "failures": runtime.failures,
            "rule_errors": runtime.error_total,
            **redis,
        }
    finally:
        if isinstance(store, RedisStore):
            store.clear()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--redis", action="store_true", help="aggregates in Redis")
    parser.add_argument("--micro", type=int, default=20_000, help="requests of the step alone")
    parser.add_argument(
        "--restart", action="store_true", help="a freshly started gateway for every slice"
    )
    parser.add_argument(
        "--warmup", type=float, default=2, help="seconds of unmeasured load per gateway first"
    )
    args = parser.parse_args()
    prefix = f"bench:risk:{uuid.uuid4().hex[:8]}"
    redis_url = os.environ.get("CARDOPS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    rows: list[tuple[int, str, dict, dict | None]] = []
    overall: dict | None = None
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        url, pg_name = make_database(args.database, tmp)
        env = dict(os.environ)
        env.update(
            CARDOPS_DATABASE_URL=url,
            CARDOPS_VAR_DIR=str(tmp),
            CARDOPS_SECRET_KEY="bench-secret",
            CARDOPS_MASTER_KEY="11" * 32,
            PYTHONPATH=str(ROOT / "src"),
        )
        lab = tmp / "lab.json"
        try:
            seed(env, lab, args.connections, args.connections)
            subprocess.run([PY, "-c", SETUP, json.dumps(RULES)], env=env, check=True, cwd=ROOT)
            stan = 1
            envs, stats = {}, {}
            for mode in ("off", "on"):
                stats[mode] = tmp / f"risk-{mode}.json"
                envs[mode] = dict(env, CARDOPS_RISK=mode, CARDOPS_RISK_STATS_FILE=str(stats[mode]))
                if args.redis and mode == "on":
                    envs[mode].update(CARDOPS_REDIS_URL=redis_url, CARDOPS_RISK_REDIS_PREFIX=prefix)
            # both gateways stay up (on the same database) and the load alternates between
            # them, slice after slice: drift on the shared machine hits both alike
            # (--restart: a fresh gateway for every slice, its start rebuilding the aggregates)
            gateways: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
            try:
                if not args.restart:
                    # a first, unmeasured slice for each gateway (caches, connections, the
                    # Redis keys' closed minutes), so round 1 compares warm gateways
                    for mode in ("off", "on"):
                        port = free_port()
                        gateways[mode] = (run_gateway(envs[mode], port), port)
                        load(envs[mode], port, lab, args.warmup, args.connections, stan)
                        stan += 60_000
                for round_no in range(1, args.rounds + 1):
                    # alternate the order so that drift on the shared machine cancels out
                    for mode in ("off", "on") if round_no % 2 else ("on", "off"):
                        if mode not in gateways:
                            port = free_port()
                            gateways[mode] = (run_gateway(envs[mode], port), port)
                        proc, port = gateways[mode]
                        load_before = os.getloadavg()[0]
                        usage = redis_usage(redis_url) if args.redis else None
                        before = cpu_seconds(proc.pid)
                        result = load(envs[mode], port, lab, args.seconds, args.connections, stan)
                        used = cpu_seconds(proc.pid) - before
                        if usage is not None:
                            # on the risk-off slices too: what the other clients cost Redis
                            done = redis_usage(redis_url)
                            result.update(redis_delta(usage, done, result["requests"]))
                        result["load"] = (round(load_before, 2), round(os.getloadavg()[0], 2))
                        # CPU time of the gateway per request: insensitive to the other
                        # agents' load, unlike requests per second
                        result["cpu_ms_per_request"] = round(
                            1000 * used / max(1, result["requests"]), 3
                        )
                        stan += 60_000
                        risk = None
                        if args.restart:
                            time.sleep(2.5)  # the stats file is written every 2 s
                            stop(gateways.pop(mode)[0])
                            if stats[mode].exists():
                                risk = json.loads(stats[mode].read_text())
                        rows.append((round_no, mode, result, risk))
                        print(round_no, mode, result, risk, flush=True)
                if "on" in gateways:
                    time.sleep(2.5)
                    if stats["on"].exists():  # the risk step over every slice
                        overall = json.loads(stats["on"].read_text())
            finally:
                for proc, _ in gateways.values():
                    stop(proc)
        finally:
            if pg_name:
                drop_database(pg_name)
            if args.redis:
                import redis

                client = redis.Redis.from_url(redis_url)
                for key in client.scan_iter(f"{prefix}:*", count=500):
                    client.delete(key)
    store = "Redis" if args.redis else "in-process"
    step = micro(redis_url if args.redis else None, args.micro)
    print(
        f"\nrisk step alone ({store} aggregates, 20 rules, {step['n']} requests):"
        f" wall p50 {step['wall_p50_us']} µs, p95 {step['wall_p95_us']} µs,"
        f" p99 {step['wall_p99_us']} µs;"
        f" CPU p50 {step['cpu_p50_us']} µs, p99 {step['cpu_p99_us']} µs;"
        f" failures {step['failures']}, rule errors {step['rule_errors']};"
        f" batches of {step['batch']}: prefetch p50 {step['prefetch_p50_us']} µs,"
        f" p99 {step['prefetch_p99_us']} µs, served {step['prefetched']} requests;"
        f" mean per request, prefetch included, {step['per_request_us']} µs;"
        f" observe per batch p50 {step['observe_p50_us']} µs, p99 {step['observe_p99_us']} µs"
    )
    if "redis_cpu_us_per_request" in step:
        print(
            f"Redis during the step alone: CPU {step['redis_cpu_us_per_request']} µs per request,"
            f" {step['redis_commands_per_request']} commands per request,"
            f" commands' own µs per request {step['redis_command_us_per_request']}"
        )
    print(
        f"\n{args.database}, aggregates {store}, {len(RULES)} active rules, "
        f"{args.connections} connections, {args.seconds:g} s per run, {args.rounds} rounds\n"
    )
    print(
        "| round | risk | approved/s | p50 ms | p99 ms | on/off | gateway CPU ms/request |"
        " risk step wall p50 / p99 µs | risk step CPU p50 / p99 µs | scored |"
        " prefetch per batch wall p50 / p99 µs (batches, requests served) |"
        " Redis CPU µs/request | load avg start / end |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    ratios: list[float] = []
    cpu_ratios: list[float] = []
    p99s: list[float] = []
    cpu_p99s: list[float] = []
    redis_cpu: dict[str, list[float]] = {"on": [], "off": []}
    for round_no, mode, r, risk in rows:
        ratio = ""
        if mode == "on":
            base = next(x for n, m, x, _ in rows if n == round_no and m == "off")
            value = r["approved_per_second"] / base["approved_per_second"]
            ratios.append(value)
            ratio = f"{value:.0%}"
            cpu_ratios.append(base["cpu_ms_per_request"] / r["cpu_ms_per_request"])
        wall = cpu = scored = pre = "-"
        if risk and mode == "on" and risk.get("batches"):
            pre = (
                f"{risk['prefetch_p50_us']} / {risk['prefetch_p99_us']}"
                f" ({risk['batches']}, {risk['prefetched']})"
            )
        if risk and mode == "on":
            p99s.append(risk["p99_us"])
            cpu_p99s.append(risk["cpu_p99_us"])
            wall = f"{risk['p50_us']} / {risk['p99_us']}"
            cpu = f"{risk['cpu_p50_us']} / {risk['cpu_p99_us']}"
            scored = str(risk["scored"])
        redis = "-"
        if "redis_cpu_us_per_request" in r:
            redis = str(r["redis_cpu_us_per_request"])
            redis_cpu[mode].append(r["redis_cpu_us_per_request"])
        load_avg = " / ".join(str(x) for x in r.get("load", ()))
        print(
            f"| {round_no} | {mode} | {r['approved_per_second']} | {r['p50_ms']} | {r['p99_ms']} |"
            f" {ratio} | {r['cpu_ms_per_request']} | {wall} | {cpu} | {scored} | {pre} |"
            f" {redis} | {load_avg} |"
        )
    if overall:
        print(
            f"\nrisk step in the gateway over every risk-on slice ({overall['evaluations']}"
            f" evaluations, {overall['scored']} scored, {overall['failures']} failures):"
            f" wall p50 {overall['p50_us']} µs, p99 {overall['p99_us']} µs;"
            f" CPU p50 {overall['cpu_p50_us']} µs, p99 {overall['cpu_p99_us']} µs;"
            f" prefetch per batch ({overall['batches']} batches) wall p50"
            f" {overall['prefetch_p50_us']} µs, p99 {overall['prefetch_p99_us']} µs,"
            f" CPU p50 {overall['prefetch_cpu_p50_us']} µs"
        )
    if ratios:
        print(
            f"\nrounds' on/off throughput ratios {', '.join(f'{x:.0%}' for x in ratios)}"
            f" (lowest {min(ratios):.0%}, {sum(x >= 0.8 for x in ratios)} of {len(ratios)}"
            " within the 20 % budget)"
        )
        # rounds 1+2, 3+4 …: off, on, on, off — a linear drift of the machine (or of the
        # growing database) during the block cancels out in the block's sums
        blocks = []
        for first in range(1, args.rounds, 2):
            got = {
                mode: sum(
                    r["approved_per_second"]
                    for n, m, r, _ in rows
                    if m == mode and n in (first, first + 1)
                )
                for mode in ("off", "on")
            }
            blocks.append(got["on"] / got["off"])
        if blocks:
            print(
                f"drift-cancelled blocks (rounds 1+2, 3+4 …: off on on off): "
                f"{', '.join(f'{x:.0%}' for x in blocks)}, median {statistics.median(blocks):.0%},"
                f" lowest {min(blocks):.0%}"
            )
        if redis_cpu["on"]:
            print(
                f"Redis CPU per request (INFO cpu, the whole server): median"
                f" {statistics.median(redis_cpu['on']):.1f} µs with risk on,"
                f" {statistics.median(redis_cpu['off']):.1f} µs with risk off (other clients)"
            )
        print(
            f"median on/off throughput ratio {statistics.median(ratios):.0%};"
            f" median CPU-bound ratio (off CPU per request / on) "
            f"{statistics.median(cpu_ratios):.0%}; "
            f"median risk-step p99: wall {statistics.median(p99s) if p99s else '-'} µs,"
            f" CPU {statistics.median(cpu_p99s) if cpu_p99s else '-'} µs"
        )


if __name__ == "__main__":
    main()
