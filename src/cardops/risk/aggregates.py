"""Aggregates the rules read: per card, terminal and merchant, over 10 min, 1 h and 24 h —
requests, approved amount, declines, wrong-PIN answers, stop-listed card attempts — plus each
merchant's usual amount, today's and this month's approved totals, and which cards it has
seen.

:class:`MemoryStore` (the default) keeps them in the gateway process: exact sliding windows
(a time-ordered event list per key with one running total and one pointer per window, so a
read costs a few steps whatever the traffic). At start the gateway rebuilds it from the
journal (:func:`cardops.risk.engine.rebuild`), so it survives a restart.

:class:`RedisStore` (``CARDOPS_REDIS_URL``) keeps them in Redis, shared by every gateway
process: minute slots (last 60 minutes) and hour slots (last 24 hours) per key in one hash,
read for a whole batch in one pipelined round trip (:meth:`RedisStore.prefetch`: one Lua
call summing every key's slots, the usual amounts, the card/merchant pairs and the totals),
then served from that batch cache (a request the prefetch did not foresee makes its own Lua
call), and written by one pipelined call per batch. Its
windows are the current minute plus the previous 9 / 59 full minutes, and the current hour
plus the previous 23.
"""

from __future__ import annotations

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
    """Exact sliding windows over one key's events (appended in time order)."""

    __slots__ = ("ptr", "rows", "tot", "ts")

    def __init__(self) -> None:
        self.ts: list[float] = []
        self.rows: list[tuple[int, int, int, int, int]] = []
        self.ptr = [0, 0, 0]
        self.tot = [[0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0]]

    def add(self, ts: float, row: tuple[int, int, int, int, int]) -> None:
        self.ts.append(ts)
        self.rows.append(row)
        for tot in self.tot:
            for j in range(5):
                tot[j] += row[j]

    def advance(self, now: float) -> None:
        ts, rows, n = self.ts, self.rows, len(self.ts)
        for w in range(3):
            p, limit, tot = self.ptr[w], now - SPANS[w], self.tot[w]
            while p < n and ts[p] <= limit:
                r = rows[p]
                tot[0] -= r[0]
                tot[1] -= r[1]
                tot[2] -= r[2]
                tot[3] -= r[3]
                tot[4] -= r[4]
                p += 1
            self.ptr[w] = p
        gone = self.ptr[2]
        if gone > 64 and gone * 2 > n:
            del ts[:gone]
            del rows[:gone]
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


_READ = """
local now_m = tonumber(ARGV[1])
local now_h = tonumber(ARGV[2])
local out = {}
for k = 1, 3 do
  local acc = {0,0,0,0,0, 0,0,0,0,0, 0,0,0,0,0}
  local all = redis.call('HGETALL', KEYS[k])
  for i = 1, #all, 2 do
    local f = all[i]
    local p = {}
    for x in string.gmatch(all[i + 1], '[^,]+') do p[#p + 1] = tonumber(x) end
    local id = p[1]
    if string.sub(f, 1, 1) == 'm' then
      if id > now_m - 10 then for j = 1, 5 do acc[j] = acc[j] + p[j + 1] end end
      if id > now_m - 60 then for j = 1, 5 do acc[5 + j] = acc[5 + j] + p[j + 1] end end
    elseif id > now_h - 24 then
      for j = 1, 5 do acc[10 + j] = acc[10 + j] + p[j + 1] end
    end
  end
  for j = 1, 15 do out[#out + 1] = acc[j] end
end
local u = redis.call('HMGET', KEYS[4], ARGV[3] .. ':c', ARGV[3] .. ':s')
out[#out + 1] = tonumber(u[1] or '0') or 0
out[#out + 1] = tonumber(u[2] or '0') or 0
out[#out + 1] = redis.call('SISMEMBER', KEYS[5], ARGV[4])
out[#out + 1] = tonumber(redis.call('GET', KEYS[6]) or '0') or 0
out[#out + 1] = tonumber(redis.call('GET', KEYS[7]) or '0') or 0
for j = 1, #out do out[j] = string.format('%d', out[j]) end
return table.concat(out, ',')
"""

_READ_MANY = """
local now_m = tonumber(ARGV[1])
local now_h = tonumber(ARGV[2])
local out = {}
for name in string.gmatch(ARGV[3], '[^;]+') do
  local acc = {0,0,0,0,0, 0,0,0,0,0, 0,0,0,0,0}
  local all = redis.call('HGETALL', name)
  for i = 1, #all, 2 do
    local f = all[i]
    local p = {}
    for x in string.gmatch(all[i + 1], '[^,]+') do p[#p + 1] = tonumber(x) end
    local id = p[1]
    if string.sub(f, 1, 1) == 'm' then
      if id > now_m - 10 then for j = 1, 5 do acc[j] = acc[j] + p[j + 1] end end
      if id > now_m - 60 then for j = 1, 5 do acc[5 + j] = acc[5 + j] + p[j + 1] end end
    elseif id > now_h - 24 then
      for j = 1, 5 do acc[10 + j] = acc[10 + j] + p[j + 1] end
    end
  end
  for j = 1, 15 do out[#out + 1] = string.format('%d', acc[j]) end
end
return table.concat(out, ',')
"""

_WRITE = """
for rec in string.gmatch(ARGV[1], '[^;]+') do
  local f = {}
  for x in string.gmatch(rec, '[^,]+') do f[#f + 1] = x end
  local key = f[1]
  local m = tonumber(f[2])
  local h = tonumber(f[3])
  local v = {tonumber(f[4]), tonumber(f[5]), tonumber(f[6]), tonumber(f[7]), tonumber(f[8])}
  for _, slot in ipairs({{'m' .. (m % 60), m}, {'h' .. (h % 24), h}}) do
    local cur = redis.call('HGET', key, slot[1])
    local acc = {slot[2], 0, 0, 0, 0, 0}
    local keep = true
    if cur then
      local p = {}
      for x in string.gmatch(cur, '[^,]+') do p[#p + 1] = tonumber(x) end
      if p[1] == slot[2] then acc = p elseif p[1] > slot[2] then keep = false end
    end
    if keep then
      for j = 1, 5 do acc[j + 1] = acc[j + 1] + v[j] end
      redis.call('HSET', key, slot[1], table.concat(acc, ','))
    end
  end
  redis.call('EXPIRE', key, 90000)
end
return 1
"""


_WRITE_MERCHANTS = """
local p = ARGV[1]
local i = 2
while i <= #ARGV do
  local m, day, month = ARGV[i], ARGV[i + 3], ARGV[i + 4]
  local amount = tonumber(ARGV[i + 2])
  local n = tonumber(ARGV[i + 5])
  redis.call('HINCRBY', p .. ':usual', m .. ':c', tonumber(ARGV[i + 1]))
  redis.call('HINCRBY', p .. ':usual', m .. ':s', amount)
  local dk = p .. ':day:' .. m .. ':' .. day
  redis.call('INCRBY', dk, amount)
  redis.call('EXPIRE', dk, 259200)
  local mk = p .. ':month:' .. m .. ':' .. month
  redis.call('INCRBY', mk, amount)
  redis.call('EXPIRE', mk, 3456000)
  if n > 0 then redis.call('SADD', p .. ':seen:' .. m, unpack(ARGV, i + 6, i + 5 + n)) end
  i = i + 6 + n
end
return 1
"""


def _fmt(value: int) -> str:
    return str(int(value))


class Batch:
    """What :meth:`RedisStore.prefetch` read for one batch, as of one minute and hour."""

    __slots__ = ("hour", "minute", "pairs", "series", "totals", "usual")

    def __init__(self, minute: int, hour: int) -> None:
        self.minute, self.hour = minute, hour
        self.series: dict[str, list[int]] = {}  # series key → its 15 window figures
        self.usual: dict[str, tuple[int, int]] = {}  # merchant → (count, total)
        self.pairs: dict[tuple[str, str], bool] = {}  # (merchant, card) → seen before
        self.totals: dict[str, int] = {}  # day / month key → approved total


class RedisStore:
    """The aggregates in Redis, shared by every gateway process that uses the same prefix."""

    kind = "redis"

    def __init__(self, url: str, prefix: str = "cardops:risk") -> None:
        import redis

        self.client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=1)
        self.prefix = prefix
        self.read = self.client.register_script(_READ)
        self.read_many = self.client.register_script(_READ_MANY)
        self.write = self.client.register_script(_WRITE)
        self.write_merchants = self.client.register_script(_WRITE_MERCHANTS)
        self.scripts = (self.read, self.read_many, self.write, self.write_merchants)
        self.batch: Batch | None = None
        self.prefetched = 0  # requests served from a batch cache (statistics, tests)
        self.client.ping()
        self._load()

    def _load(self) -> None:
        for script in self.scripts:
            script.sha = self.client.script_load(script.script)

    def _execute(self, pipe: Any) -> list[Any]:
        """Run a pipeline of EVALSHA calls (and plain commands) without redis-py's SCRIPT
        EXISTS round trip before each pipeline that holds a script; a script Redis has
        forgotten (a restart, SCRIPT FLUSH) is loaded again and only that call is rerun."""
        import redis

        stack = [args for args, _ in pipe.command_stack]
        results = pipe.execute(raise_on_error=False)
        scripts = {s.sha: s.script for s in self.scripts}
        for i, result in enumerate(results):
            if isinstance(result, redis.exceptions.NoScriptError):
                args = stack[i]
                results[i] = self.client.execute_command("EVAL", scripts[args[1]], *args[2:])
                self._load()
            elif isinstance(result, Exception):
                raise result
        return results

    def _key(self, dim: str, key: Any) -> str:
        return f"{self.prefix}:s:{dim}:{key}"

    def prefetch(self, probes: list[Probe]) -> None:
        """Read what ``probes`` (the batch's requests, as far as known before parsing) need
        in one pipelined round trip; :meth:`features` then serves them from memory until
        :meth:`end_batch`. Raises what Redis raises (the caller logs it)."""
        self.batch = None
        if not probes:
            return
        p = self.prefix
        now = probes[0].now
        batch = Batch(int(now // 60), int(now // 3600))
        series: dict[str, None] = {}
        merchants: dict[str, None] = {}
        pairs: dict[str, dict[str, None]] = {}
        totals: dict[str, None] = {}
        for probe in probes:
            if probe.card:
                series[self._key("card", probe.card)] = None
            if probe.tid:
                series[self._key("terminal", probe.tid)] = None
            if probe.merchant is None:
                continue
            merchant = str(probe.merchant)
            series[self._key("merchant", merchant)] = None
            merchants[merchant] = None
            if probe.card:
                pairs.setdefault(merchant, {})[probe.card] = None
            totals[f"{p}:day:{merchant}:{probe.day}"] = None
            totals[f"{p}:month:{merchant}:{probe.month}"] = None
        series_keys, merchant_list, total_keys = list(series), list(merchants), list(totals)
        pipe = self.client.pipeline(transaction=False)
        if series_keys:
            # the keys as one argument: redis-py packs each argument separately, slowly
            joined = ";".join(series_keys)
            pipe.evalsha(self.read_many.sha, 0, batch.minute, batch.hour, joined)
        if merchant_list:
            fields = [f"{m}:{suffix}" for m in merchant_list for suffix in ("c", "s")]
            pipe.hmget(f"{p}:usual", fields)
        pair_list = [(m, list(cards)) for m, cards in pairs.items()]
        for merchant, cards in pair_list:
            pipe.smismember(f"{p}:seen:{merchant}", cards)
        if total_keys:
            pipe.mget(total_keys)
        replies = iter(self._execute(pipe))
        if series_keys:
            raw = next(replies)
            values = raw.split(b",") if isinstance(raw, bytes) else str(raw).split(",")
            for k, key in enumerate(series_keys):
                batch.series[key] = [int(v) for v in values[k * 15 : k * 15 + 15]]
        if merchant_list:
            usual = next(replies)
            for i, merchant in enumerate(merchant_list):
                batch.usual[merchant] = (int(usual[2 * i] or 0), int(usual[2 * i + 1] or 0))
        for merchant, cards in pair_list:
            for card, seen in zip(cards, next(replies), strict=True):
                batch.pairs[(merchant, card)] = bool(seen)
        if total_keys:
            for key, value in zip(total_keys, next(replies), strict=True):
                batch.totals[key] = int(value or 0)
        self.batch = batch

    def end_batch(self) -> None:
        self.batch = None

    def _cached(self, probe: Probe, merchant: str) -> dict[str, Any] | None:
        """``probe``'s features from the batch cache, or ``None`` if it lacks any of them
        (or the minute or hour has turned since the batch was read)."""
        batch = self.batch
        if batch is None or int(probe.now // 60) != batch.minute:
            return None
        if int(probe.now // 3600) != batch.hour:
            return None
        out: dict[str, Any] = {}
        for index, (dim, key) in enumerate(
            (("card", probe.card), ("terminal", probe.tid), ("merchant", merchant))
        ):
            names = _NAMES[index]
            if not key:
                for name in names:
                    out[name] = 0
                continue
            figures = batch.series.get(self._key(dim, key))
            if figures is None:
                return None
            for j in range(15):
                out[names[j]] = figures[j]
        if merchant:
            p = self.prefix
            usual = batch.usual.get(merchant)
            day = batch.totals.get(f"{p}:day:{merchant}:{probe.day}")
            month = batch.totals.get(f"{p}:month:{merchant}:{probe.month}")
            if usual is None or day is None or month is None:
                return None
            seen = True
            if probe.card:
                found = batch.pairs.get((merchant, probe.card))
                if found is None:
                    return None
                seen = found
            count, total = usual
            out["merchant__usual_amount"] = total // count if count >= USUAL_MIN else None
            out["txn__first_at_merchant"] = bool(probe.card) and not seen
            out["merchant__day_total"] = day
            out["merchant__month_total"] = month
        else:
            out["merchant__usual_amount"] = None
            out["txn__first_at_merchant"] = False
            out["merchant__day_total"] = 0
            out["merchant__month_total"] = 0
        self.prefetched += 1
        return out

    def features(self, probe: Probe) -> dict[str, Any]:
        p = self.prefix
        merchant = "" if probe.merchant is None else str(probe.merchant)
        if self.batch is not None:
            cached = self._cached(probe, merchant)
            if cached is not None:
                return cached
        keys = [
            self._key("card", probe.card) if probe.card else f"{p}:none",
            self._key("terminal", probe.tid) if probe.tid else f"{p}:none",
            self._key("merchant", merchant) if merchant else f"{p}:none",
            f"{p}:usual",
            f"{p}:seen:{merchant}",
            f"{p}:day:{merchant}:{probe.day}",
            f"{p}:month:{merchant}:{probe.month}",
        ]
        minute, hour = int(probe.now // 60), int(probe.now // 3600)
        # one round trip; the answer is one comma-separated string (cheaper to parse than
        # a 50-element reply)
        raw = self.read(keys=keys, args=[minute, hour, merchant, probe.card or ""])
        values = raw.split(b",") if isinstance(raw, bytes) else str(raw).split(",")
        out: dict[str, Any] = {}
        i = 0
        for index in range(3):
            names = _NAMES[index]
            for j in range(15):
                out[names[j]] = int(values[i + j])
            i += 15
        count, total, seen, day, month = (int(v) for v in values[45:50])
        out["merchant__usual_amount"] = total // count if count >= USUAL_MIN else None
        out["txn__first_at_merchant"] = bool(probe.card and merchant and not seen)
        out["merchant__day_total"] = day if merchant else 0
        out["merchant__month_total"] = month if merchant else 0
        return out

    def record(self, events: list[Event]) -> None:
        if not events:
            return
        pipe = self.client.pipeline(transaction=False)
        p = self.prefix
        # one slot update per key, minute and hour however many of the batch's events share it
        slots: dict[tuple[str, int, int], list[int]] = {}
        merchants: dict[tuple[int, str, str], list[Any]] = {}
        for event in events:
            row = event.row()
            minute, hour = int(event.ts // 60), int(event.ts // 3600)
            for dim, key in zip(DIMS, (event.card, event.tid, event.merchant), strict=True):
                if key is not None:
                    slot = (self._key(dim, key), minute, hour)
                    acc = slots.get(slot)
                    if acc is None:
                        slots[slot] = list(row)
                    else:
                        for j in range(5):
                            acc[j] += row[j]
            if event.approved_amount and event.merchant is not None:
                group = (event.merchant, event.day, event.month)
                sums = merchants.get(group)
                if sums is None:
                    sums = merchants[group] = [0, 0, {}]
                sums[0] += 1
                sums[1] += event.approved_amount
                if event.card is not None:
                    sums[2][event.card] = None
        records = [
            f"{key},{minute},{hour}," + ",".join(_fmt(v) for v in figures)
            for (key, minute, hour), figures in slots.items()
        ]
        # one script call for the slots (one argument: redis-py packs each argument
        # separately, slowly), one for the merchants' usual amounts, totals and cards seen
        # (a command per figure cost ~7 commands per approved payment)
        pipe.evalsha(self.write.sha, 0, ";".join(records))
        if merchants:
            margs: list[Any] = [p]
            for (merchant, day, month), (count, total, cards) in merchants.items():
                margs += [merchant, count, total, day, month, len(cards), *cards]
            pipe.evalsha(self.write_merchants.sha, 0, *margs)
        self._execute(pipe)

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
        pass  # keys expire by themselves

    def clear(self) -> None:
        """Delete every key under this prefix (tests, a benchmark's fresh start)."""
        for key in self.client.scan_iter(f"{self.prefix}:*", count=500):
            self.client.delete(key)

    def close(self) -> None:
        self.client.close()
