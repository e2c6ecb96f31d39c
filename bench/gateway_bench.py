"""Gateway throughput: approved purchases over 50 terminal connections, on-us and via the
issuer simulator, against a bare pyiso8583 decode+encode echo server measured in the same run.

    python bench/gateway_bench.py [--database sqlite|postgres] [--seconds 10] [--connections 50]
        [--onus-rate 2000] [--upstream-rate 1000] [--gateway-src OTHER_CHECKOUT/src]

Each scenario runs twice: closed loop (each connection sends its next request as soon as the
answer came: the capacity, approved/s) and open loop paced at a fixed total rate (latency
from each request's scheduled send time: the p50/p95/p99 a terminal population sending at
that rate sees). ``--gateway-src`` runs the gateway and the simulator from another checkout
while the load generator stays this one, to compare two versions with the same client.

Every process (gateway, simulator, load generator) runs on this machine. Prints a Markdown
table row per scenario; the figures go into docs/benchmarks-gateway.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

PY = sys.executable
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 30) -> None:
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def echo_server(port: int) -> None:
    """A bare pyiso8583 server: decode, set 39 = 00, encode, send back. The ceiling."""
    import iso8583
    from iso8583.specs import default_ascii

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                length = int.from_bytes(await reader.readexactly(2), "big")
                doc, _ = iso8583.decode(await reader.readexactly(length), default_ascii)
                doc["t"] = "0210"
                doc["39"] = "00"
                raw, _ = iso8583.encode(doc, default_ascii)
                writer.write(len(raw).to_bytes(2, "big") + bytes(raw))
        except (asyncio.IncompleteReadError, OSError):
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def make_database(kind: str, tmp: Path) -> tuple[str, str | None]:
    if kind == "sqlite":
        return f"sqlite:///{tmp / 'bench.db'}", None
    from sqlalchemy import create_engine, make_url, text

    base = os.environ.get(
        "CARDOPS_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
    name = f"cardops_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(base).set(database=name).render_as_string(hide_password=False), name


def drop_database(name: str) -> None:
    from sqlalchemy import create_engine, text

    base = os.environ.get(
        "CARDOPS_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    )
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def seed(env: dict[str, str], lab: Path, terminals: int, cards: int) -> None:
    code = (
        "from cardops.core.db import get_engine, unit_of_work\n"
        "from cardops.core.migrate import bootstrap\n"
        "from cardops.core.registry import load_models\n"
        "import cardops.gateway.models\n"
        "from cardops.auth.service import system_user\n"
        "from cardops.gateway import lab\n"
        "from pathlib import Path\n"
        "bootstrap(get_engine())\n"
        "with unit_of_work() as s:\n"
        f"    data = lab.seed(s, system_user(s), terminals={terminals}, cards={cards},"
        " balance=2_000_000)\n"
        f"lab.write_lab(Path({str(lab)!r}), data)\n"
    )
    subprocess.run([PY, "-c", code], env=env, check=True, cwd=ROOT)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def loadgen(
    env: dict[str, str],
    port: int,
    lab: Path,
    route: str,
    seconds: float,
    n: int,
    *,
    rate: float | None = None,
    stan_start: int = 1,
) -> dict:
    code = (
        "import json, sys\n"
        "from cardops.gateway.aio import run_loop\n"
        "from cardops.gateway.loadgen import run_load, load_lab\n"
        f"data = load_lab(__import__('pathlib').Path({str(lab)!r}))\n"
        f"cards = [c for c in data['cards'] if c['route'] == {route!r} and c['balance'] >= 100_000 and c['expiry'] > '2700']\n"
        f"echo = {route == 'echo'}\n"
        "if echo: cards = [c for c in data['cards'] if c['route'] == 'on-us']\n"
        f"r = run_loop(run_load(host='127.0.0.1', port={port}, terminals=data['terminals'],"
        f" cards=cards, connections={n}, seconds={seconds}, echo=echo,"
        f" stan_start={stan_start}, rate={rate!r}))\n"
        "print(json.dumps(r.summary()))\n"
    )
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run([PY, "-c", code], env=env, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"load generator failed on {route}: {done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # the load generator's own CPU: what it leaves of the machine's two cores to the gateway
    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result["loadgen_cpu_ms"] = round(1000 * used / max(1, result["requests"]), 3)
    print(route, "closed" if rate is None else f"paced {rate:g}/s", result, flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--only", default="echo,on-us,upstream")
    parser.add_argument(
        "--processes", type=int, default=1, help="gateway processes sharing the port"
    )
    parser.add_argument("--onus-rate", type=float, default=2000, help="paced on-us (and echo)")
    parser.add_argument("--upstream-rate", type=float, default=1000, help="paced upstream")
    parser.add_argument("--gateway-src", help="run gateway and simulator from this src folder")
    parser.add_argument("--echo-server", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.echo_server:
        echo_server(args.echo_server)
        return
    wanted = args.only.split(",")
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
        procs: list[subprocess.Popen[bytes]] = []
        rows = []
        try:
            seed(env, lab, args.connections, args.connections)
            if "echo" in wanted:
                port = free_port()
                procs.append(subprocess.Popen([PY, __file__, "--echo-server", str(port)], env=env))
                wait_port(port)
                for rate in (None, args.onus_rate):
                    rows.append(
                        (
                            "bare pyiso8583 echo",
                            loadgen(
                                env, port, lab, "echo", args.seconds, args.connections, rate=rate
                            ),
                        )
                    )
                procs.pop().terminate()
            gw_env = dict(env)
            if args.gateway_src:
                gw_env["PYTHONPATH"] = str(Path(args.gateway_src).resolve())
            sim_port, gw_port = free_port(), free_port()
            procs.append(
                subprocess.Popen(
                    [PY, "-m", "cardops.gateway.cli", "issuer-sim", "--port", str(sim_port)],
                    env=gw_env,
                    stdout=subprocess.DEVNULL,
                )
            )
            wait_port(sim_port)
            for _ in range(max(1, args.processes)):  # SO_REUSEPORT: the kernel spreads them
                procs.append(
                    subprocess.Popen(
                        [
                            PY,
                            "-m",
                            "cardops.gateway.cli",
                            "--port",
                            str(gw_port),
                            "--upstream",
                            f"127.0.0.1:{sim_port}",
                        ],
                        env=gw_env,
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                )
                wait_port(gw_port)
            gateways = [p.pid for p in procs[1:]]
            # each run's STANs in their own range: no run replays another's TID + STAN + date
            runs = [
                ("on-us", None, 1),
                ("on-us", args.onus_rate, 250_000),
                ("upstream", None, 500_000),
                ("upstream", args.upstream_rate, 750_000),
            ]
            for route, rate, stan_start in runs:
                if route in wanted:
                    before = cpu_seconds(gateways)
                    result = loadgen(
                        env,
                        gw_port,
                        lab,
                        route,
                        args.seconds,
                        args.connections,
                        rate=rate,
                        stan_start=stan_start,
                    )
                    used = cpu_seconds(gateways) - before
                    # gateway CPU per request: the figure that a loaded machine does not bend
                    result["gateway_cpu_ms"] = round(1000 * used / max(1, result["requests"]), 3)
                    rows.append((f"gateway {route}", result))
        finally:
            for proc in procs:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
            if pg_name:
                drop_database(pg_name)
    ceiling = next(
        (
            r["approved_per_second"]
            for n, r in rows
            if n.startswith("bare") and r.get("mode") == "closed"
        ),
        0,
    )
    print(
        f"\n{args.database}, {args.connections} connections, {args.seconds:g} s each,"
        f" {args.processes} gateway process(es){', gateway from ' + args.gateway_src if args.gateway_src else ''}\n"
    )
    print(
        "| scenario | mode | approved/s | p50 ms | p95 ms | p99 ms | of echo ceiling"
        " | gateway CPU ms/request | load generator CPU ms/request | late sends | codes |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, r in rows:
        closed = r.get("mode") == "closed"
        mode = "closed loop" if closed else f"paced {r['rate']:g}/s"
        share = f"{r['approved_per_second'] / ceiling:.0%}" if ceiling and closed else "-"
        print(
            f"| {name} | {mode} | {r['approved_per_second']} | {r['p50_ms']} | {r['p95_ms']} |"
            f" {r['p99_ms']} | {share} | {r.get('gateway_cpu_ms', '-')}"
            f" | {r.get('loadgen_cpu_ms', '-')} | {r['late']} |"
            f" {r['codes']} |"
        )


if __name__ == "__main__":
    main()
