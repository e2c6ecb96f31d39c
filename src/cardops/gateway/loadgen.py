"""``cardops loadgen``: N terminal connections, each signing on and then sending purchases
with a PIN block and a MAC; prints throughput and latency percentiles.

Two modes:

* **closed loop** (default, ``rate=None``): each connection sends its next purchase as soon as
  the previous answer arrived. This measures *capacity* (the most approved purchases per
  second); its latency is not a service figure, since with N connections and no think time
  the mean latency is N / throughput by construction.
* **open loop, paced** (``rate=R``): R requests per second in total, spread evenly over the
  connections (connection *i* of N sends at ``t0 + i/R + k·N/R``), each connection still with
  one request outstanding at a time. When an answer comes late, the next request goes out as
  soon as it arrives, but its latency is still counted from its *scheduled* send time, so a
  stall shows in the percentiles of every request it delayed (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cardops.core.errors import Conflict, NotFound, ValidationFailed
from cardops.gateway.terminal import AsyncTerminal, TerminalSession


@dataclass
class LoadResult:
    sent: int = 0
    seconds: float = 0.0
    codes: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    rate: float | None = None  # paced requests/s; None: closed loop
    late: int = 0  # paced: requests sent more than 1 ms after their scheduled time

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return 0.0
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    @property
    def approved_per_second(self) -> float:
        return self.codes.get("00", 0) / self.seconds if self.seconds else 0.0

    @property
    def per_second(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.sent,
            "seconds": round(self.seconds, 2),
            "per_second": round(self.per_second, 1),
            "approved_per_second": round(self.approved_per_second, 1),
            "p50_ms": round(self.percentile(50) * 1000, 2),
            "p95_ms": round(self.percentile(95) * 1000, 2),
            "p99_ms": round(self.percentile(99) * 1000, 2),
            "codes": dict(self.codes),
            "errors": self.errors,
            "mode": "closed" if self.rate is None else "paced",
            "rate": self.rate,
            "late": self.late,
        }


async def run_load(
    *,
    host: str,
    port: int,
    terminals: list[dict[str, str]],
    cards: list[dict[str, Any]],
    connections: int = 50,
    seconds: float = 10.0,
    amount: int = 1,
    warmup: float = 1.0,
    echo: bool = False,
    stan_start: int | None = None,
    rate: float | None = None,
) -> LoadResult:
    """Each connection has one request in flight at a time: closed loop, or paced at ``rate``
    requests/s in total (see the module). STANs start at ``stan_start`` (default: a random
    one), so that runs on the same day are unlikely to repeat each other's TID + STAN +
    date (a repeat is answered from the journal)."""
    if not terminals:
        raise ValidationFailed("The lab file lists no terminals.", field="lab")
    if not cards:
        raise ValidationFailed(
            "The lab file lists no cards with money for this route.", field="route"
        )
    if rate is not None and rate <= 0:
        raise ValidationFailed(
            "The rate must be a positive number of requests a second.", field="rate"
        )
    result = LoadResult(rate=rate)
    sessions: dict[str, TerminalSession] = {}
    clients: list[tuple[AsyncTerminal, int]] = []
    try:
        for i in range(connections):
            spec = terminals[i % len(terminals)]
            first = spec["tid"] not in sessions
            session = sessions.setdefault(
                spec["tid"], TerminalSession(spec["tid"], spec["mid"], bytes.fromhex(spec["tmk"]))
            )
            client = AsyncTerminal(session)
            try:
                await client.connect(host, port)
            except OSError as exc:
                raise Conflict(
                    "Cannot reach the gateway at {host}:{port} ({reason}). Is `cardops gateway` running?",
                    code="unreachable",
                    host=host,
                    port=port,
                    reason=exc.strerror or type(exc).__name__,
                ) from None
            clients.append((client, i))
            if first and echo:
                session.tpk, session.tak = bytes(range(16)), bytes(range(16, 32))
            elif first:
                # a random start: a start taken from the clock repeated the STANs of a run
                # made seconds before (each answered 94, a duplicate, from the journal)
                start = secrets.randbelow(900_000) + 1 if stan_start is None else stan_start
                session.stans = itertools.count(start)
                response = await client.sign_on()
                if response.get("39") != "00":
                    raise Conflict(
                        "Terminal {tid} did not sign on: response code {rc}.",
                        tid=spec["tid"],
                        rc=response.get("39", ""),
                    )
    except BaseException:
        for client, _ in clients:  # the connections opened so far
            await client.close()
        raise
    begin = time.perf_counter()
    stop_at = begin + warmup + seconds
    measure_from = begin + warmup
    count = len(clients)

    async def drive(client: AsyncTerminal, index: int) -> None:
        card_cycle = itertools.cycle(cards[index % len(cards) :] + cards[: index % len(cards)])
        interval = count / rate if rate else 0.0
        scheduled = begin + (index / rate if rate else 0.0)
        while True:
            if rate:
                if scheduled >= stop_at:
                    return
                if time.perf_counter() > stop_at + seconds:
                    # hopelessly behind: what is still scheduled counts as failed, not as absent
                    result.errors += int((stop_at - max(scheduled, measure_from)) / interval) + 1
                    return
                wait = scheduled - time.perf_counter()
                if wait > 0:
                    await asyncio.sleep(wait)
                elif wait < -0.001 and scheduled >= measure_from:
                    result.late += 1
            elif time.perf_counter() >= stop_at:
                return
            card = next(card_cycle)
            request = client.session.purchase(
                card["pan"], amount, pin=card.get("pin"), expiry=card.get("expiry")
            )
            # paced: latency from the scheduled send time (a late send counts its delay)
            started = scheduled if rate else time.perf_counter()
            scheduled += interval
            try:
                response = await client.call(request, timeout=10)
            except (TimeoutError, ConnectionError, OSError):
                if started >= measure_from:
                    result.errors += 1
                continue
            if started >= measure_from:
                result.latencies.append(time.perf_counter() - started)
                result.codes[response.get("39", "??")] += 1
                result.sent += 1

    await asyncio.gather(*(drive(c, i) for c, i in clients))
    # paced: the measured window is the scheduled one (the last answers may come after it)
    end = stop_at if rate else time.perf_counter()
    result.seconds = max(0.001, end - measure_from)
    for client, _ in clients:
        await client.close()
    return result


def load_lab(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise NotFound(
            "No lab file at {path}: `cardops demo` writes one.", field="lab", path=str(path)
        ) from None
    except (OSError, ValueError):
        raise ValidationFailed(
            "The lab file {path} cannot be read as JSON.", field="lab", path=str(path)
        ) from None
    if not isinstance(data, dict):
        raise ValidationFailed(
            "The lab file {path} cannot be read as JSON.", field="lab", path=str(path)
        )
    return data
