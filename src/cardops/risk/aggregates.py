"""Aggregates the rules read: per card, terminal and merchant, over 10 min, 1 h and 24 h —
requests, approved amount, declines, wrong-PIN answers, stop-listed card attempts — plus each
merchant's usual amount, today's and this month's approved totals, and which cards it has
seen.

:class:`MemoryStore` (the default) keeps them in the gateway process: exact sliding windows
(a time-ordered event list per key with one running total and one pointer per window, so a
read costs a few steps whatever the traffic). At start the gateway rebuilds it from the
journal (:func:`cardops.risk.engine.rebuild`), so it survives a restart.

:class:`RedisStore` (``CARDOPS_REDIS_URL``) keeps them in Redis, shared by every gateway
process: per card, terminal and merchant one hash of plain counters per minute and per hour
(HINCRBY; a field per metric and period), summed in Python. A batch's reads are one script
call made of native HMGET / SMISMEMBER / MGET (:meth:`RedisStore.prefetch`), only for the
figures the active rules read; the periods that are over are summed once a minute per key
(one HGETALL), so a batch reads two minutes and two hours of each key. Its windows are the
current minute plus the previous 9 / 59 full minutes, and the current hour plus the
previous 23.
"""

from __future__ import annotations

import threading
from array import array
from dataclasses import dataclass
from typing import Any

from cardops.risk.expressions import METRICS, WINDOW_SECONDS, WINDOWS

SPANS = tuple(WINDOW_SECONDS[w] for w in WINDOWS)
DIMS = ("card", "terminal", "merchant")
USUAL_MIN = 5  # approved payments before a merchant has a usual amount


@dataclass(slots=True)
class Event:
    """One request's final outcome, as the aggregates count it."""

    ts: float  # epoch seconds
    card: str | None
    tid: str | None
    merchant: int | None
    approved_amount: int  # amount when approved (a debit), else 0
    declined: bool
    pin_failure: bool
    stoplisted: bool
    day: str  # YYYYMMDD, local
    month: str  # YYYYMM

    def row(self) -> tuple[int, int, int, int, int]:
        return (
            1,
            self.approved_amount,
            int(self.declined),
            int(self.pin_failure),
            int(self.stoplisted),
        )


@dataclass(slots=True)
class Probe:
    """What one request asks of the aggregates."""

    now: float
    card: str | None
    tid: str | None
    merchant: int | None
    day: str
    month: str


_NAMES = [[f"{dim}__{m}_{w}" for w in WINDOWS for m in METRICS] for dim in DIMS]


def _empty(out: dict[str, Any], dim_index: int) -> None:
    for name in _NAMES[dim_index]:
        out[name] = 0


class Series:
    """Exact sliding windows over one key's events (appended in time order).

    The events are kept in flat arrays (a time stamp, and five numbers per event), not as a
    tuple per event in lists: a day of traffic is millions of events, and as objects every
    one of them passed through the garbage collector (collections of 15–37 ms every few
    seconds under load, and each full collection walked them all)."""

    __slots__ = ("ptr", "rows", "tot", "ts")

    def __init__(self) -> None:
        self.ts = array("d")
        self.rows = array("q")  # five numbers per event, in the order of Event.row
        self.ptr = [0, 0, 0]
        self.tot = [[0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]]

    def add(self, ts: float, row: tuple[int, int, int, int, int]) -> None:
        self.ts.append(ts)
        self.rows.extend(row)
        for tot in self.tot:
            for j in range(5):
                tot[j] += row[j]

    def advance(self, now: float) -> None:
        ts, rows, n = self.ts, self.rows, len(self.ts)
        for w in range(3):
            p, limit, tot = self.ptr[w], now - SPANS[w], self.tot[w]
            while p < n and ts[p] <= limit:
                at = 5 * p
                tot[0] -= rows[at]
                tot[1] -= rows[at + 1]
                tot[2] -= rows[at + 2]
                tot[3] -= rows[at + 3]
                tot[4] -= rows[at + 4]
                p += 1
            self.ptr[w] = p
        gone = self.ptr[2]
        if gone > 64 and gone * 2 > n:
            del ts[:gone]
            del rows[: 5 * gone]
            self.ptr = [p - gone for p in self.ptr]

    def empty(self) -> bool:
        return self.ptr[2] >= len(self.ts)

    def write(self, out: dict[str, Any], dim_index: int) -> None:
        names = _NAMES[dim_index]
        i = 0
        for w in range(3):
            tot = self.tot[w]
            for j in range(5):
                out[names[i]] = tot[j]
                i += 1


class MemoryStore:
    """The aggregates in this process."""

    kind = "memory"

    def __init__(self) -> None:
        self.series: tuple[dict[Any, Series], ...] = ({}, {}, {})
        self.usual: dict[int, list[int]] = {}
        self.pairs: set[tuple[str, int]] = set()
        self.day_totals: dict[tuple[int, str], int] = {}
        self.month_totals: dict[tuple[int, str], int] = {}
        self.records = 0

    def features(self, probe: Probe) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for index, key in enumerate((probe.card, probe.tid, probe.merchant)):
            series = self.series[index].get(key) if key is not None else None
            if series is None:
                _empty(out, index)
                continue
            series.advance(probe.now)
            series.write(out, index)
        merchant = probe.merchant
        usual = self.usual.get(merchant) if merchant is not None else None
        out["merchant__usual_amount"] = (
            usual[1] // usual[0] if usual is not None and usual[0] >= USUAL_MIN else None
        )
        out["txn__first_at_merchant"] = (
            probe.card is not None
            and merchant is not None
            and (probe.card, merchant) not in self.pairs
        )
        out["merchant__day_total"] = (
            self.day_totals.get((merchant, probe.day), 0) if merchant is not None else 0
        )
        out["merchant__month_total"] = (
            self.month_totals.get((merchant, probe.month), 0) if merchant is not None else 0
        )
        return out

    def record(self, events: list[Event]) -> None:
        for event in events:
            row = event.row()
            for index, key in enumerate((event.card, event.tid, event.merchant)):
                if key is None:
                    continue
                series = self.series[index].get(key)
                if series is None:
                    series = self.series[index][key] = Series()
                series.add(event.ts, row)
            if event.approved_amount and event.merchant is not None:
                self.adjust(event.merchant, event.day, event.month, event.approved_amount)
                usual = self.usual.setdefault(event.merchant, [0, 0])
                usual[0] += 1
                usual[1] += event.approved_amount
                if event.card is not None:
                    self.pairs.add((event.card, event.merchant))
        self.records += len(events)
        if self.records > 50_000:
            self.records = 0
            self.forget(events[-1].ts if events else 0.0)

    def adjust(self, merchant: int, day: str, month: str, delta: int) -> None:
        self.day_totals[(merchant, day)] = self.day_totals.get((merchant, day), 0) + delta
        key = (merchant, month)
        self.month_totals[key] = self.month_totals.get(key, 0) + delta

    def forget(self, now: float) -> None:
        """Drop keys with nothing in the last 24 hours (memory stays bounded)."""
        for table in self.series:
            for key in [k for k, s in table.items() if s.ts and s.ts[-1] <= now - SPANS[2]]:
                del table[key]

    def seed_usual(self, merchant: int, count: int, total: int) -> None:
        self.usual[merchant] = [count, total]

    def seed_pair(self, card: str, merchant: int) -> None:
        self.pairs.add((card, merchant))

    def seed_totals(self, merchant: int, day: str, month: str, amount: int) -> None:
        self.adjust(merchant, day, month, amount)

    def close(self) -> None:
        pass


# One batch's reads, one command: a list of operations, each answering into one flat
# comma-separated string (no number is parsed or formatted in Lua, only native commands
# called), plus every field of the keys whose closed periods this process has not summed
# yet this minute.
#   H fields keys     HMGET the comma-separated fields of each ';'-separated key
#   S set members     SMISMEMBER
#   G keys            MGET
#   A keys            HGETALL of each key, answered in the second string
_READ = """
local out, full = {}, {}
local i = 1
while i <= #ARGV do
  local op = ARGV[i]
  if op == 'H' then
    local fields = {}
    for f in string.gmatch(ARGV[i + 1], '[^,]+') do fields[#fields + 1] = f end
    for key in string.gmatch(ARGV[i + 2], '[^;]+') do
      local values = redis.call('HMGET', key, unpack(fields))
      for j = 1, #fields do out[#out + 1] = values[j] or '' end
    end
    i = i + 3
  elseif op == 'S' then
    local members = {}
    for x in string.gmatch(ARGV[i + 2], '[^,]+') do members[#members + 1] = x end
    local found = redis.call('SMISMEMBER', ARGV[i + 1], unpack(members))
    for j = 1, #members do out[#out + 1] = found[j] end
    i = i + 3
  elseif op == 'G' then
    local keys = {}
    for x in string.gmatch(ARGV[i + 1], '[^;]+') do keys[#keys + 1] = x end
    local values = redis.call('MGET', unpack(keys))
    for j = 1, #keys do out[#out + 1] = values[j] or '' end
    i = i + 2
  else
    for key in string.gmatch(ARGV[i + 1], '[^;]+') do
      full[#full + 1] = table.concat(redis.call('HGETALL', key), ',')
    end
    i = i + 2
  end
end
return {table.concat(out, ','), table.concat(full, ';')}
"""

# One batch's writes, one command. ARGV[2]: ';'-separated records "key,renew,field,delta,…"
# (a delta of 'x' deletes the field, older than any window; renew '1' renews the key's TTL);
# ARGV[4]: ';'-separated merchant records "merchant,count,total,day,month,card,…" under the
# prefix ARGV[3] (usual amount, day and month totals, cards seen).
_WRITE = """
local ttl = ARGV[1]
for rec in string.gmatch(ARGV[2], '[^;]+') do
  local it = string.gmatch(rec, '[^,]+')
  local key = it()
  local renew = it()
  local gone = {}
  for f in it do
    local d = it()
    if d == 'x' then gone[#gone + 1] = f else redis.call('HINCRBY', key, f, d) end
  end
  if #gone > 0 then redis.call('HDEL', key, unpack(gone)) end
  if renew == '1' then redis.call('EXPIRE', key, ttl) end
end
local p = ARGV[3]
for rec in string.gmatch(ARGV[4], '[^;]+') do
  local it = string.gmatch(rec, '[^,]+')
  local m = it()
  local count = it()
  local amount = it()
  local day = it()
  local month = it()
  redis.call('HINCRBY', p .. ':usual', m .. ':c', count)
  redis.call('HINCRBY', p .. ':usual', m .. ':s', amount)
  local dk = p .. ':day:' .. m .. ':' .. day
  redis.call('INCRBY', dk, amount)
  redis.call('EXPIRE', dk, 259200)
  local mk = p .. ':month:' .. m .. ':' .. month
  redis.call('INCRBY', mk, amount)
  redis.call('EXPIRE', mk, 3456000)
  local cards = {}
  for card in it do cards[#cards + 1] = card end
  if #cards > 0 then redis.call('SADD', p .. ':seen:' .. m, unpack(cards)) end
end
return 1
"""

TTL = 90_000  # a series key outlives the 24-hour window by an hour
LETTERS = "cadps"  # the METRICS' letters in field names


class Plan:
    """Which figures of one dimension the active rules read: the metrics needed at minute
    granularity (10-minute and 1-hour windows) and at hour granularity (24 hours), and the
    feature names to answer with their index among the 15 figures."""

    __slots__ = ("hour", "minute", "names")

    def __init__(self, dim_index: int, variables: tuple[str, ...] | None) -> None:
        names = _NAMES[dim_index]
        wanted = [i for i, name in enumerate(names) if variables is None or name in variables]
        self.minute = tuple(sorted({i % 5 for i in wanted if i < 10}))
        self.hour = tuple(sorted({i % 5 for i in wanted if i >= 10}))
        self.names = tuple((names[i], i) for i in wanted)

    def fields(self, minute: int, hour: int) -> list[str]:
        out = [f"{m}{LETTERS[x]}" for m in (minute, minute - 1) for x in self.minute]
        return out + [f"h{h}{LETTERS[x]}" for h in (hour, hour - 1) for x in self.hour]


class Batch:
    """What :meth:`RedisStore.read` read for one batch, as of one minute and hour."""

    __slots__ = ("hour", "minute", "pairs", "plans", "series", "totals", "usual")

    def __init__(self, minute: int, hour: int, plans: tuple[Plan, ...]) -> None:
        self.minute, self.hour = minute, hour
        self.plans = plans  # what was read (a configuration change makes it unusable)
        self.series: dict[str, list[int]] = {}  # series key → its 15 window figures
        self.usual: dict[str, tuple[int, int]] = {}  # merchant → (count, total)
        self.pairs: dict[tuple[str, str], bool] = {}  # (merchant, card) → seen before
        self.totals: dict[str, int] = {}  # day / month key → approved total


class Asked:
    """A batch's read as sent: the command, where its answer goes, how to take it apart."""

    __slots__ = (
        "batch",
        "command",
        "merchants",
        "pairs",
        "reply",
        "series",
        "stale",
        "totals",
        "widths",
    )

    def __init__(
        self,
        batch: Batch,
        series: tuple[dict[str, None], ...],
        widths: list[int],
        merchants: list[str],
        pairs: list[tuple[str, list[str]]],
        totals: list[str],
        stale: list[str],
    ) -> None:
        self.batch, self.series, self.widths = batch, series, widths
        self.merchants, self.pairs, self.totals, self.stale = merchants, pairs, totals, stale
        self.command: tuple[Any, ...] | None = None
        self.reply: list[Any] = []


class RedisStore:
    """The aggregates in Redis, shared by every gateway process that uses the same prefix.

    Each card, terminal and merchant has one hash of plain counters, one field per metric
    and minute (``<minute>c``) and per metric and hour (``h<hour>c``), incremented with
    HINCRBY. A read sums them in Python: the minutes and hours that are over ("closed": up to
    the minute before last, the hour before last) once per key and minute in this process
    (one HGETALL), and the live ones (this and the previous minute and hour, only the metrics
    the active rules read) with one HMGET per key and batch."""

    kind = "redis"

    def __init__(self, url: str, prefix: str = "cardops:risk") -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=1)
        self.prefix = prefix
        self.read_script = self.client.register_script(_READ)
        self.write = self.client.register_script(_WRITE)
        self.scripts = (self.read_script, self.write)
        # the store's own connection: a batch's writes are sent without waiting for the
        # answer, which the next read collects (Redis answers in order)
        self.io = threading.Lock()
        self.conn: Any = None
        # commands sent whose answers are not read yet, each with where its answer goes
        self.unread: list[tuple[tuple[Any, ...], list[Any] | None]] = []
        self.asked: Asked | None = None  # the batch's read, sent, its answer not read yet
        self.texts: dict[str, Any] = {}  # SHA → script
        self.batch: Batch | None = None
        self.prefetched = 0  # requests served from a batch cache (statistics, tests)
        self.reads = 0  # round trips made to read (statistics, tests)
        self.wanted: tuple[str, ...] | bool | None = False  # False: never told (everything)
        self.plans = tuple(Plan(i, None) for i in range(3))
        self.want_usual = self.want_seen = True
        # closed periods of each series key as of ``closed_minute``: 15 figures
        self.closed_minute = -1
        self.closed: dict[str, list[int]] = {}
        self.prune: dict[str, list[str]] = {}  # series key → fields older than every window
        self.renewed_minute = -1
        self.renewed: set[str] = set()  # series keys whose TTL was renewed this minute
        self.client.ping()
        self._load()

    def want(self, variables: tuple[str, ...] | None) -> None:
        """Read only the figures ``variables`` (the active rules' variables; ``None``: all)
        need. Every figure is still written."""
        self.wanted = variables
        self.plans = tuple(Plan(i, variables) for i in range(3))
        self.want_usual = variables is None or bool(
            {"merchant__usual_amount", "txn__amount_ratio"} & set(variables)
        )
        self.want_seen = variables is None or "txn__first_at_merchant" in variables

    def _load(self) -> None:
        for script in self.scripts:
            script.sha = self.client.script_load(script.script)

    def _connection(self) -> Any:
        if self.conn is None:
            pool = self.client.connection_pool
            self.conn = pool.connection_class(**pool.connection_kwargs)
        return self.conn

    def _send(
        self,
        commands: list[tuple[Any, ...]],
        *,
        wait: bool,
        sink: list[Any] | None = None,
    ) -> list[Any]:
        """Send ``commands`` on the store's connection, after those sent earlier. With
        ``wait``, read every answer still due (the earlier ones first, Redis answers in
        order) and return those of ``commands``; without, return at once (the answers are
        read later, at the latest after 32 unread; ``sink`` then receives the answer of the
        last command, an error included). A script Redis has forgotten (a restart, SCRIPT
        FLUSH) is loaded again and its calls rerun."""
        import redis

        with self.io:
            conn = self._connection()
            try:
                for script in self.scripts:  # the script of each SHA sent, for a rerun
                    self.texts[script.sha] = script.script
                if commands:  # one buffer, one system call
                    chunks = conn.pack_commands(commands)
                    conn.send_packed_command([b"".join(bytes(c) for c in chunks)])
                sent = self.unread + [(c, None) for c in commands]
                if sink is not None:
                    sent[-1] = (commands[-1], sink)
                if not wait and len(sent) < 32:
                    self.unread = sent
                    return []
                self.unread = []
                replies: list[Any] = []
                for _ in sent:
                    try:
                        replies.append(conn.read_response())
                    except redis.exceptions.ResponseError as exc:  # the connection is fine
                        replies.append(exc)
                scripts = self.texts
                forgotten = False
                for i, reply in enumerate(replies):
                    if isinstance(reply, redis.exceptions.NoScriptError):
                        args = sent[i][0]
                        conn.send_command("EVAL", scripts[args[1]], *args[2:])
                        try:
                            replies[i] = conn.read_response()
                        except redis.exceptions.ResponseError as exc:
                            replies[i] = exc
                        forgotten = True
                if forgotten:
                    self._load()
                failed = None
                for (_, to), reply in zip(sent, replies, strict=True):
                    if to is not None:
                        to.append(reply)  # its reader decides
                    elif isinstance(reply, Exception) and failed is None:
                        failed = reply
                if failed is not None:
                    raise failed
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError):
                self.unread = []  # written or not, their answers are lost with the connection
                conn.disconnect()
                raise
        return replies[len(sent) - len(commands) :]

    def flush(self) -> None:
        """Wait until Redis has run every write sent so far (raises what Redis raised)."""
        self._send([], wait=True)

    def _key(self, dim: str, key: Any) -> str:
        return f"{self.prefix}:s:{dim}:{key}"

    def prefetch(self, probes: list[Probe]) -> None:
        """Send the read of what ``probes`` (the batch's requests, as far as known before
        parsing) need, without waiting: the first :meth:`features` collects the answer (the
        gateway parses the first request meanwhile), then serves every request from memory
        until :meth:`end_batch`. Raises what Redis raises (the caller logs it)."""
        self.batch = self.asked = None
        if not probes:
            return
        asked = self._ask(probes)
        if asked.command is None:
            self.batch = asked.batch
            return
        self._send([asked.command], wait=False, sink=asked.reply)
        self.asked = asked

    def _collect(self) -> None:
        """The batch's read: its answer (waiting for it if it has not come yet)."""
        asked, self.asked = self.asked, None
        if asked is None:
            return
        if not asked.reply:
            self.flush()
        if not asked.reply:  # the connection broke in between
            raise ConnectionError("risk aggregates: the batch's read got no answer")
        reply = asked.reply[0]
        if isinstance(reply, Exception):
            raise reply
        self.reads += 1
        self.batch = self._take(asked, reply)

    def read(self, probes: list[Probe]) -> Batch:
        """One round trip (one script call) reading what ``probes`` need, as of the first
        one's minute and hour."""
        asked = self._ask(probes)
        if asked.command is None:
            return asked.batch
        reply = self._send([asked.command], wait=True)[0]
        self.reads += 1
        return self._take(asked, reply)

    def _ask(self, probes: list[Probe]) -> Asked:
        """The script call reading what ``probes`` need (``None``: nothing to read)."""
        p = self.prefix
        now = probes[0].now
        minute, hour = int(now // 60), int(now // 3600)
        batch = Batch(minute, hour, self.plans)
        if minute != self.closed_minute:
            self.closed, self.closed_minute = {}, minute
        plans = self.plans
        series: tuple[dict[str, None], ...] = ({}, {}, {})
        merchants: dict[str, None] = {}
        pairs: dict[str, dict[str, None]] = {}
        totals: dict[str, None] = {}
        for probe in probes:
            if probe.card and plans[0].names:
                series[0][self._key("card", probe.card)] = None
            if probe.tid and plans[1].names:
                series[1][self._key("terminal", probe.tid)] = None
            if probe.merchant is None:
                continue
            merchant = str(probe.merchant)
            if plans[2].names:
                series[2][self._key("merchant", merchant)] = None
            merchants[merchant] = None
            if probe.card and self.want_seen:
                pairs.setdefault(merchant, {})[probe.card] = None
            totals[f"{p}:day:{merchant}:{probe.day}"] = None
            totals[f"{p}:month:{merchant}:{probe.month}"] = None
        args: list[str] = []
        widths: list[int] = []
        for plan, keys in zip(plans, series, strict=True):
            fields = plan.fields(minute, hour)
            widths.append(len(fields))
            if keys and fields:
                args += ["H", ",".join(fields), ";".join(keys)]
        merchant_list = list(merchants) if self.want_usual else []
        if merchant_list:
            fields = [f"{m}:{suffix}" for m in merchant_list for suffix in ("c", "s")]
            args += ["H", ",".join(fields), f"{p}:usual"]
        pair_list = [(m, list(cards)) for m, cards in pairs.items()]
        for merchant, cards in pair_list:
            args += ["S", f"{p}:seen:{merchant}", ",".join(cards)]
        total_keys = list(totals)
        if total_keys:
            args += ["G", ";".join(total_keys)]
        stale = [key for keys in series for key in keys if key not in self.closed]
        if stale:
            args += ["A", ";".join(stale)]
        asked = Asked(batch, series, widths, merchant_list, pair_list, total_keys, stale)
        if args:
            asked.command = ("EVALSHA", self.read_script.sha, 0, *args)
        return asked

    def _take(self, asked: Asked, reply: Any) -> Batch:
        """The batch's figures from the read's answer."""
        batch, series, widths = asked.batch, asked.series, asked.widths
        minute, hour, stale, plans = batch.minute, batch.hour, asked.stale, batch.plans
        merchant_list, pair_list, total_keys = asked.merchants, asked.pairs, asked.totals
        live, full = reply
        if stale:
            self._close(stale, full.split(b";"), minute, hour)
        values = live.split(b",")
        i = 0
        for plan, keys, width in zip(plans, series, widths, strict=True):
            n = len(plan.minute)
            for key in keys:
                figures = list(self.closed[key])
                for j, x in enumerate(plan.minute):
                    now_value = int(values[i + j] or 0) + int(values[i + n + j] or 0)
                    figures[x] += now_value
                    figures[5 + x] += now_value
                k = i + 2 * n
                for j, x in enumerate(plan.hour):
                    figures[10 + x] += int(values[k + j] or 0) + int(
                        values[k + len(plan.hour) + j] or 0
                    )
                batch.series[key] = figures
                i += width
        for merchant in merchant_list:
            batch.usual[merchant] = (int(values[i] or 0), int(values[i + 1] or 0))
            i += 2
        for merchant, cards in pair_list:
            for card in cards:
                batch.pairs[(merchant, card)] = values[i] == b"1"
                i += 1
        for key in total_keys:
            batch.totals[key] = int(values[i] or 0)
            i += 1
        return batch

    def _close(self, keys: list[str], replies: list[bytes], minute: int, hour: int) -> None:
        """Sum the closed minutes and hours of ``keys`` (their HGETALL answers) into the
        cache for this minute; note the fields no window will read again, for deletion."""
        for key, reply in zip(keys, replies, strict=True):
            figures = [0] * 15
            gone: list[str] = []
            items = reply.split(b",") if reply else []
            for f in range(0, len(items) - 1, 2):
                name, value = items[f], int(items[f + 1])
                metric = LETTERS.find(chr(name[-1]))
                if name[:1] == b"h":
                    at = int(name[1:-1])
                    if at < hour - 23:
                        gone.append(name.decode())
                    elif at < hour - 1:
                        figures[10 + metric] += value
                    continue
                at = int(name[:-1])
                if at < minute - 59:
                    gone.append(name.decode())
                elif at < minute - 1:
                    figures[5 + metric] += value
                    if at >= minute - 9:
                        figures[metric] += value
            self.closed[key] = figures
            if gone:
                if len(self.prune) > 50_000:  # keys read but never written: forget them
                    self.prune.clear()
                self.prune[key] = gone

    def end_batch(self) -> None:
        self.batch = self.asked = None

    def _answer(self, batch: Batch, probe: Probe, merchant: str) -> dict[str, Any] | None:
        """``probe``'s features from ``batch``, or ``None`` if it lacks any of them
        (or the minute or hour has turned since the batch was read)."""
        if int(probe.now // 60) != batch.minute or int(probe.now // 3600) != batch.hour:
            return None
        if batch.plans is not self.plans:
            return None
        out: dict[str, Any] = {}
        for index, (dim, key) in enumerate(
            (("card", probe.card), ("terminal", probe.tid), ("merchant", merchant))
        ):
            names = self.plans[index].names
            if not names:
                continue
            if not key:
                for name, _ in names:
                    out[name] = 0
                continue
            figures = batch.series.get(self._key(dim, key))
            if figures is None:
                return None
            for name, i in names:
                out[name] = figures[i]
        if merchant:
            p = self.prefix
            day = batch.totals.get(f"{p}:day:{merchant}:{probe.day}")
            month = batch.totals.get(f"{p}:month:{merchant}:{probe.month}")
            if day is None or month is None:
                return None
            out["merchant__usual_amount"] = None
            if self.want_usual:
                usual = batch.usual.get(merchant)
                if usual is None:
                    return None
                count, total = usual
                out["merchant__usual_amount"] = total // count if count >= USUAL_MIN else None
            seen = True
            if probe.card and self.want_seen:
                found = batch.pairs.get((merchant, probe.card))
                if found is None:
                    return None
                seen = found
            out["txn__first_at_merchant"] = bool(probe.card) and not seen
            out["merchant__day_total"] = day
            out["merchant__month_total"] = month
        else:
            out["merchant__usual_amount"] = None
            out["txn__first_at_merchant"] = False
            out["merchant__day_total"] = 0
            out["merchant__month_total"] = 0
        return out

    def features(self, probe: Probe) -> dict[str, Any]:
        merchant = "" if probe.merchant is None else str(probe.merchant)
        if self.asked is not None:
            self._collect()
        if self.batch is not None:
            cached = self._answer(self.batch, probe, merchant)
            if cached is not None:
                self.prefetched += 1
                return cached
        # not foreseen by the batch's read (or no batch): a round trip of its own
        out = self._answer(self.read([probe]), probe, merchant)
        if out is None:  # cannot happen: read for this very probe, as of its minute
            raise RuntimeError("risk aggregates: a read did not answer its own request")
        return out

    def record(self, events: list[Event]) -> None:
        """Send the events' counters in one script call, without waiting for Redis's answer
        (:meth:`flush` waits; the next read collects it)."""
        if not events:
            return
        counters: dict[str, dict[str, int]] = {}
        merchants: dict[tuple[int, str, str], list[Any]] = {}
        names: dict[tuple[int, int], list[tuple[str, str]]] = {}  # a period's field names
        key = self._key
        for event in events:
            row = event.row()
            minute, hour = int(event.ts // 60), int(event.ts // 3600)
            period = names.get((minute, hour))
            if period is None:
                period = names[(minute, hour)] = [
                    (f"{minute}{letter}", f"h{hour}{letter}") for letter in LETTERS
                ]
            for dim, at in (
                ("card", event.card),
                ("terminal", event.tid),
                ("merchant", event.merchant),
            ):
                if at is None:
                    continue
                name = key(dim, at)
                fields = counters.get(name)
                if fields is None:
                    fields = counters[name] = {}
                for x, value in enumerate(row):
                    if value:
                        in_minute, in_hour = period[x]
                        fields[in_minute] = fields.get(in_minute, 0) + value
                        fields[in_hour] = fields.get(in_hour, 0) + value
            if event.approved_amount and event.merchant is not None:
                group = (event.merchant, event.day, event.month)
                sums = merchants.get(group)
                if sums is None:
                    sums = merchants[group] = [0, 0, {}]
                sums[0] += 1
                sums[1] += event.approved_amount
                if event.card is not None:
                    sums[2][event.card] = None
        # the TTL is renewed once a minute per key and process, not on every write
        minute = int(events[-1].ts // 60)
        if minute != self.renewed_minute:
            self.renewed, self.renewed_minute = set(), minute
        renewed = self.renewed
        records = []
        for name, fields in counters.items():
            parts = [name, "0" if name in renewed else "1"]
            renewed.add(name)
            for field, value in fields.items():
                parts += (field, str(value))
            for field in self.prune.pop(name, ()):
                parts += (field, "x")
            records.append(",".join(parts))
        shops = [
            ",".join([str(merchant), str(count), str(total), day, month, *cards])
            for (merchant, day, month), (count, total, cards) in merchants.items()
        ]
        # every argument one string: redis-py packs each argument separately, slowly
        command = ("EVALSHA", self.write.sha, 0, TTL, ";".join(records), self.prefix)
        self._send([(*command, ";".join(shops))], wait=False)

    def _totals(self, pipe: Any, merchant: int, day: str, month: str, delta: int) -> None:
        p = self.prefix
        pipe.incrby(f"{p}:day:{merchant}:{day}", delta)
        pipe.expire(f"{p}:day:{merchant}:{day}", 3 * 86400)
        pipe.incrby(f"{p}:month:{merchant}:{month}", delta)
        pipe.expire(f"{p}:month:{merchant}:{month}", 40 * 86400)

    def adjust(self, merchant: int, day: str, month: str, delta: int) -> None:
        pipe = self.client.pipeline(transaction=False)
        self._totals(pipe, merchant, day, month, delta)
        pipe.execute()

    def forget(self, now: float) -> None:
        pass  # keys expire by themselves, old fields are deleted as they are found

    def clear(self) -> None:
        """Delete every key under this prefix (tests, a benchmark's fresh start)."""
        for key in self.client.scan_iter(f"{self.prefix}:*", count=500):
            self.client.delete(key)

    def close(self) -> None:
        try:
            self.flush()
        finally:
            if self.conn is not None:
                self.conn.disconnect()
            self.client.close()
