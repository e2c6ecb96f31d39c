"""The risk participant of the gateway (``Engine.risk_hook``).

``evaluate`` runs after the stop list and before execution, inside the batch's transaction:
it enforces the merchant's rating limits (single, daily, monthly → ``61``), then builds one
flat CEL context from the request and the aggregates and runs every active scenario's
compiled rules. The scores of the rules that hold add up; the scenario's thresholds turn the
total into approve / review / decline. Review lets the request through and opens an alert;
decline answers the scenario's (or the highest-scoring fired rule's) code and opens an alert.

``prefetch`` (once per batch, before its first ``evaluate``) starts the batch: with Redis
aggregates it sends the read of every key the batch's requests will need (one script call),
and the first ``evaluate`` collects the answer, so no request makes a round trip of its own. In both modes, while a batch runs, each request also sees the batch's
earlier requests of the same card, terminal and merchant on top of the stored figures (they
are recorded only when the batch commits): each counts one request in every window, its
amount in the sums unless the risk step declined it (provisionally, as the rating limits
count pending amounts), and a risk decline as a decline.

``observe`` receives the committed outcomes, ends the batch and updates the aggregates.

The configuration (scenarios, rules, ratings, limits) is reloaded when the ``risk_config``
version changes (checked at most once a second), so an edit in the console reaches running
gateways within seconds; a rule is compiled once per version. A rule that fails at run time
(a null value, a type mismatch) counts as not holding: it never declines by accident. The
failure is counted, logged and written to the rule (``error_count``, ``last_error``) where
the risk officer sees it. ``evaluate`` and ``observe`` never raise anything but ``Decline``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import cel
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from cardops.core.clock import utcnow
from cardops.core.config import get_settings
from cardops.core.db import session_factory
from cardops.core.models import current_version
from cardops.risk.aggregates import _NAMES, Event, MemoryStore, Probe, RedisStore
from cardops.risk.expressions import FIELDS, compile_rule
from cardops.risk.models import (
    CONFIG_VERSION,
    Alert,
    MerchantRating,
    RatingLimit,
    Rule,
    Scenario,
)

log = logging.getLogger("cardops.risk")

STOP_RCS = ("41", "43", "59")
PIN_RCS = ("55", "75")
# money taken (the merchant's totals, usual amount); a pre-authorization only holds it
DEBIT_KINDS = ("purchase", "completion")
LIMITED_KINDS = ("purchase", "preauth", "completion")  # checked against rating limits
COUNTED_KINDS = ("purchase", "preauth", "completion", "balance")  # in the aggregates
SCORED = (*COUNTED_KINDS, "refund")  # what a scenario may score


@dataclass
class RiskConfig:
    enabled: bool = field(
        default_factory=lambda: (
            get_settings().risk.strip().lower() not in ("off", "0", "false", "no")
        )
    )
    redis_url: str = field(default_factory=lambda: get_settings().redis_url)
    redis_prefix: str = field(default_factory=lambda: get_settings().risk_redis_prefix)
    sla_minutes: int = field(default_factory=lambda: get_settings().risk_sla_minutes)
    # write the risk step's timings here every few seconds (benchmarks)
    stats_file: str = field(default_factory=lambda: get_settings().risk_stats_file)


@dataclass
class LoadedRule:
    id: int
    code: str
    score: int
    decline_code: str
    program: Any
    variables: tuple[str, ...] = ()  # the flat CEL variables it reads


@dataclass
class LoadedScenario:
    id: int
    code: str
    kinds: frozenset[str]
    review: int
    decline: int
    decline_code: str
    rules: list[LoadedRule]


@dataclass
class Verdict:
    scenario: LoadedScenario
    total: int
    fired: list[LoadedRule]
    decision: str

    def code(self) -> str:
        coded = [r for r in self.fired if r.decline_code]
        if coded:
            return max(coded, key=lambda r: r.score).decline_code
        return self.scenario.decline_code


def needed(scenarios: list[LoadedScenario]) -> tuple[str, ...] | None:
    """The variables the rules read, or ``None`` (all) when a rule does not say."""
    names: set[str] = set()
    for scenario in scenarios:
        for rule in scenario.rules:
            if not rule.variables and rule.program is not None:
                return None
            names.update(rule.variables)
    return tuple(sorted(names))


def decide(scenario: LoadedScenario, total: int) -> str:
    if total >= scenario.decline:
        return "decline"
    if total >= scenario.review:
        return "review"
    return "approve"


def run_scenario(scenario: LoadedScenario, context: Any, errors: Any | None = None) -> Verdict:
    """The rules of ``scenario`` over ``context``; a rule that fails counts as not holding
    (``errors(rule, message)`` is told)."""
    total = 0
    fired: list[LoadedRule] = []
    for rule in scenario.rules:
        try:
            result = rule.program.execute(context)
        except Exception as exc:
            if errors is not None:
                errors(rule, str(exc).split(". ")[0][:300] or type(exc).__name__)
            continue
        if result is True:
            total += rule.score
            fired.append(rule)
        elif result is not False and errors is not None:
            errors(rule, f"gave {type(result).__name__}, not true/false")
    return Verdict(scenario, total, fired, decide(scenario, total))


class Rating:
    __slots__ = ("daily", "monthly", "rating", "single")

    def __init__(self, rating: str, single: int | None, daily: int | None, monthly: int | None):
        self.rating, self.single, self.daily, self.monthly = rating, single, daily, monthly


def load_scenarios(
    session: Session,
    cache: dict[tuple[int, int], Any] | None = None,
    *,
    include_inactive: bool = False,
    scenario_id: int | None = None,
) -> list[LoadedScenario]:
    """Active scenarios with their active rules, compiled (once per rule version when a
    ``cache`` is given). A stored rule that no longer compiles is left out and logged."""
    query = select(Scenario).order_by(Scenario.id)
    if scenario_id is not None:
        query = query.where(Scenario.id == scenario_id)
    elif not include_inactive:
        query = query.where(Scenario.active.is_(True))
    scenarios = list(session.execute(query).scalars())
    rules_query = select(Rule).order_by(Rule.id)
    if not include_inactive:
        rules_query = rules_query.where(Rule.active.is_(True))
    by_scenario: dict[int, list[Rule]] = {}
    for rule in session.execute(rules_query).scalars():
        by_scenario.setdefault(rule.scenario_id, []).append(rule)
    out = []
    for scenario in scenarios:
        loaded = []
        for rule in by_scenario.get(scenario.id, []):
            key = (rule.id, rule.version)
            compiled = cache.get(key) if cache is not None else None
            if compiled is None:
                try:
                    compiled = compile_rule(rule.expression)
                except Exception:
                    log.warning("risk rule %s v%s does not compile", rule.code, rule.version)
                    continue
                if cache is not None:
                    cache[key] = compiled
            loaded.append(
                LoadedRule(
                    rule.id,
                    rule.code,
                    rule.score,
                    rule.decline_code,
                    compiled.program,
                    tuple(FIELDS[name].var for name in compiled.fields),
                )
            )
        out.append(
            LoadedScenario(
                scenario.id,
                scenario.code,
                frozenset(scenario.kind_list),
                scenario.review_threshold,
                scenario.decline_threshold,
                scenario.decline_code,
                loaded,
            )
        )
    return out


def load_ratings(session: Session) -> dict[int, Rating]:
    limits = {r.rating: r for r in session.execute(select(RatingLimit)).scalars()}
    out = {}
    for row in session.execute(select(MerchantRating)).scalars():
        limit = limits.get(row.rating)
        out[row.merchant_id] = Rating(
            row.rating,
            limit.single_limit if limit else None,
            limit.daily_limit if limit else None,
            limit.monthly_limit if limit else None,
        )
    return out


def make_store(config: RiskConfig) -> MemoryStore | RedisStore:
    if config.redis_url:
        return RedisStore(config.redis_url, config.redis_prefix)
    return MemoryStore()


class RiskRuntime:
    """Implements the gateway's ``RiskHook``."""

    def __init__(
        self,
        *,
        store: MemoryStore | RedisStore | None = None,
        config: RiskConfig | None = None,
        sessions: Any = None,
        stoplist: Any = None,
        clock: Any = None,
        onus_bin: str = "621234",
        hashes: Any = None,
    ) -> None:
        from cardops.core.config import get_settings

        self.config = config or RiskConfig()
        self.store = store if store is not None else make_store(self.config)
        self.sessions = sessions or session_factory
        # () -> the gateway's stop list (pan hash → reason), which it replaces when it reloads
        self.stoplist = stoplist if stoplist is not None else dict
        self.onus_bin = onus_bin
        # () -> the PAN hashes the gateway computed for the running batch (or None)
        self.hashes = hashes
        self.clock = clock or time.time
        self.tz = ZoneInfo(get_settings().timezone)
        self.scenarios: list[LoadedScenario] = []
        self.ratings: dict[int, Rating] = {}
        self.programs: dict[tuple[int, int], Any] = {}
        self.variables: tuple[str, ...] | None = None  # None: bind every declared field
        self.version = -1
        self.checked = 0.0
        self.pending: dict[int, int] = {}
        self.lock = threading.Lock()
        self.errors: dict[int, list[Any]] = {}  # rule id → [count, message]
        self.error_total = 0
        self.failures = 0  # evaluations that failed as a whole (aggregates unreachable …)
        self.timings: deque[float] = deque(maxlen=200_000)
        self.cpu_timings: deque[float] = deque(maxlen=200_000)
        self.prefetch_timings: deque[float] = deque(maxlen=50_000)
        self.prefetch_cpu_timings: deque[float] = deque(maxlen=50_000)
        self.flushed = time.monotonic()
        # the running batch's requests so far: (dimension, key) → [count, sum, declines];
        # None outside a batch (between ``prefetch`` and ``observe``)
        self.batch: dict[tuple[int, Any], list[int]] | None = None
        self.merchant_of: dict[str, int | None] = {}  # tid → merchant, learnt from traffic
        self._overlay: tuple[tuple[tuple[str, int], ...], ...] = ((), (), ())
        self._overlay_for: Any = ()  # the ``variables`` the overlay plan was made for
        self.evaluated = 0
        self.alerts = 0

    # --- configuration ---------------------------------------------------------------------

    def refresh(self, session: Session, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.checked < 1.0:
            return
        self.checked = now
        version = current_version(session, CONFIG_VERSION)
        if version == self.version and not force:
            return
        self.scenarios = load_scenarios(session, self.programs)
        self.variables = needed(self.scenarios)
        if isinstance(self.store, RedisStore):
            self.store.want(self.variables)  # read only what the active rules read
        self.ratings = load_ratings(session)
        self.version = version
        log.info(
            "risk configuration v%s: %d scenarios, %d rules, %d rated merchants",
            version,
            len(self.scenarios),
            sum(len(s.rules) for s in self.scenarios),
            len(self.ratings),
        )

    # --- the hook --------------------------------------------------------------------------

    def prefetch(self, session: Session, items: list[Any]) -> None:
        """Start a batch; with Redis aggregates, read what its requests need in one round
        trip (a failure here is logged and each request reads for itself)."""
        self.batch = {}
        store = self.store
        if not isinstance(store, RedisStore):
            return
        store.end_batch()
        if store.wanted is not self.variables:  # read only what the active rules read
            store.want(self.variables)
        started, cpu = time.perf_counter(), time.thread_time()
        try:
            self._prefetch(store, items)
        except Exception:
            log.exception("risk: batch prefetch failed (requests read one by one)")
        finally:
            # per batch: part of the risk step's cost, paid once for the batch's requests
            self.prefetch_timings.append(time.perf_counter() - started)
            self.prefetch_cpu_timings.append(time.thread_time() - cpu)

    def _prefetch(self, store: RedisStore, items: list[Any]) -> None:
        from cardops.gateway import crypto

        if not any(s.rules for s in self.scenarios) and not self.ratings:
            return
        now = self.clock()
        today = datetime.fromtimestamp(now, self.tz)
        local_day = today.strftime("%Y%m%d")
        probes: list[Probe] = []
        known = self.hashes() if self.hashes is not None else None
        if not isinstance(known, dict):
            known = {}
        hashes: dict[str, str] = {}  # those computed here (the engine's are left alone)
        for ctx in items:
            msg = ctx.msg
            if ctx.stage != "new" or ctx.preset or msg.get("t") not in ("0100", "0200"):
                continue
            tid = msg.get("41", "")
            pan = msg.get("2", "")
            card = None
            if pan:
                card = known.get(pan) or hashes.get(pan)
                if card is None:
                    card = hashes[pan] = crypto.pan_hash(pan)
            mmdd = msg.get("13", "")
            day = local_day
            if isinstance(mmdd, str) and len(mmdd) == 4 and mmdd.isdigit():
                year = today.year - 1 if int(mmdd[:2]) - today.month > 6 else today.year
                day = f"{year}{mmdd}"
            probes.append(Probe(now, card, tid or None, self.merchant_of.get(tid), day, day[:6]))
        store.prefetch(probes)

    def evaluate(self, session: Session, ctx: Any) -> None:
        from cardops.gateway.engine import Decline

        started, cpu = time.perf_counter(), time.thread_time()
        declined = False
        try:
            self._evaluate(session, ctx)
        except Decline:
            declined = True
            raise
        except Exception:
            self.failures += 1
            log.exception("risk evaluation failed (request let through)")
        finally:
            if self.batch is not None:
                self._add_to_batch(ctx, declined)
            # wall time (includes waiting for the GIL and the CPU on a busy machine) and
            # this thread's CPU time (the step's own cost)
            self.timings.append(time.perf_counter() - started)
            self.cpu_timings.append(time.thread_time() - cpu)

    def _add_to_batch(self, ctx: Any, declined: bool) -> None:
        """Count ``ctx`` for the batch's later requests (see the module's docstring)."""
        batch, terminal = self.batch, ctx.terminal
        kind = ctx.kind.value
        if batch is None or terminal is None or kind not in COUNTED_KINDS:
            return
        amount = ctx.amount if kind in DEBIT_KINDS and not declined else 0
        for key in ((0, ctx.pan_hash), (1, ctx.tid or None), (2, terminal.merchant_id)):
            if key[1] is None:
                continue
            entry = batch.get(key)
            if entry is None:
                batch[key] = [1, amount, int(declined)]
            else:
                entry[0] += 1
                entry[1] += amount
                entry[2] += int(declined)

    def _evaluate(self, session: Session, ctx: Any) -> None:
        from cardops.gateway.engine import Decline

        self.refresh(session)
        kind = ctx.kind.value
        terminal = ctx.terminal
        if kind not in SCORED or terminal is None:
            return
        merchant = terminal.merchant_id
        if ctx.tid:
            self.merchant_of[ctx.tid] = merchant
        day = ctx.local_date
        month = day[:6]
        now = self.clock()
        features: dict[str, Any] | None = None
        rating = self.ratings.get(merchant) if merchant is not None else None
        if rating is not None and kind in LIMITED_KINDS:
            if rating.single is not None and ctx.amount > rating.single:
                ctx.risk = {"limit": "single", "rating": rating.rating}
                raise Decline("61")
            if rating.daily is not None or rating.monthly is not None:
                features = self._features(ctx, now, merchant, day, month)
                pending = self.pending.get(merchant, 0)
                if (
                    rating.daily is not None
                    and features["merchant__day_total"] + pending + ctx.amount > rating.daily
                ):
                    ctx.risk = {"limit": "daily", "rating": rating.rating}
                    raise Decline("61")
                if (
                    rating.monthly is not None
                    and features["merchant__month_total"] + pending + ctx.amount > rating.monthly
                ):
                    ctx.risk = {"limit": "monthly", "rating": rating.rating}
                    raise Decline("61")
            with self.lock:
                self.pending[merchant] = self.pending.get(merchant, 0) + ctx.amount
            ctx.risk = {"pending": ctx.amount}
        scenarios = [s for s in self.scenarios if kind in s.kinds and s.rules]
        if not scenarios:
            return
        self.evaluated += 1
        if features is None:
            features = self._features(ctx, now, merchant, day, month)
        usual = features["merchant__usual_amount"]
        local_now = datetime.fromtimestamp(now, self.tz)
        features.update(
            txn__amount=ctx.amount,
            txn__kind=kind,
            txn__card_type=ctx.card_type or "",
            txn__onus=bool(ctx.pan) and ctx.pan.startswith(self.onus_bin),
            txn__hour=local_now.hour,
            txn__weekday=local_now.isoweekday(),
            txn__amount_ratio=ctx.amount / usual if usual else None,
            terminal__tid=ctx.tid,
            merchant__id=merchant if merchant is not None else 0,
            merchant__mid=terminal.mid or "",
            merchant__rating=rating.rating if rating is not None else "",
        )
        # bind only what the active rules read (a smaller context is cheaper to build)
        names = self.variables
        context = cel.Context(
            features if names is None else {name: features.get(name) for name in names}
        )
        worst: Verdict | None = None
        for scenario in scenarios:
            verdict = run_scenario(scenario, context, self._error)
            if verdict.decision == "approve":
                continue
            self._open_alert(session, ctx, verdict, now)
            if worst is None or (worst.decision == "review" and verdict.decision == "decline"):
                worst = verdict
        if worst is None:
            return
        risk = dict(ctx.risk or {})
        risk.update(
            decision=worst.decision,
            scenario=worst.scenario.code,
            score=worst.total,
            rules=[r.code for r in worst.fired],
        )
        ctx.risk = risk
        if worst.decision == "decline":
            raise Decline(worst.code())

    def _features(
        self, ctx: Any, now: float, merchant: int | None, day: str, month: str
    ) -> dict[str, Any]:
        card, tid = ctx.pan_hash, ctx.tid or None
        out = self.store.features(Probe(now, card, tid, merchant, day, month))
        batch = self.batch
        if batch:  # the batch's earlier requests, not recorded yet
            plan = self._overlay if self._overlay_for is self.variables else self._plan()
            for index, key in ((0, card), (1, tid), (2, merchant)):
                entry = batch.get((index, key)) if key is not None else None
                if entry is None:
                    continue
                for name, metric in plan[index]:
                    out[name] += entry[metric]
        return out

    def _plan(self) -> tuple[tuple[tuple[str, int], ...], ...]:
        """Per dimension, the window figures the batch overlay adds to (count, sum and
        declines in each window), limited to those the active rules read."""
        names = self.variables
        plan = tuple(
            tuple(
                (dim_names[w + metric], metric)
                for w in (0, 5, 10)  # 10 min, 1 h, 24 h
                for metric in (0, 1, 2)  # count, sum, declines
                if names is None or dim_names[w + metric] in names
            )
            for dim_names in _NAMES
        )
        self._overlay, self._overlay_for = plan, names
        return plan

    def _open_alert(self, session: Session, ctx: Any, verdict: Verdict, now: float) -> None:
        from cardops.gateway import crypto

        at = utcnow()
        terminal = ctx.terminal
        session.add(
            Alert(
                scenario_id=verdict.scenario.id,
                decision=verdict.decision,
                score=verdict.total,
                rules=[{"code": r.code, "score": r.score} for r in verdict.fired],
                kind=ctx.kind.value,
                tid=ctx.tid[:8],
                mid=(terminal.mid or "")[:15],
                merchant_id=terminal.merchant_id,
                pan_hash=ctx.pan_hash,
                pan_masked=crypto.mask_pan(ctx.pan)[:19] if ctx.pan else "",
                amount=ctx.amount,
                dup_key=ctx.dup_key,
                state="open",
                created_at=at,
                due_at=at + timedelta(minutes=self.config.sla_minutes),
            )
        )
        self.alerts += 1

    def _error(self, rule: LoadedRule, message: str) -> None:
        with self.lock:
            entry = self.errors.setdefault(rule.id, [0, ""])
            entry[0] += 1
            entry[1] = message
            self.error_total += 1
        log.warning("risk rule %s failed at run time: %s", rule.code, message)

    def observe(self, items: list[Any]) -> None:
        self.batch = None
        if isinstance(self.store, RedisStore):
            self.store.end_batch()
        try:
            self._observe(items)
        except Exception:
            self.failures += 1
            log.exception("risk aggregates not updated")
        try:
            self.flush()
        except Exception:
            log.exception("risk rule errors not written")

    def _observe(self, items: list[Any]) -> None:
        now = self.clock()
        events: list[Event] = []
        stoplist: dict[str, str] = self.stoplist()
        for ctx in items:
            kind = ctx.kind.value
            risk = ctx.risk or {}
            pending = risk.get("pending")
            terminal = ctx.terminal
            merchant = terminal.merchant_id if terminal is not None else None
            if pending and merchant is not None:
                with self.lock:
                    left = self.pending.get(merchant, 0) - pending
                    if left > 0:
                        self.pending[merchant] = left
                    else:
                        self.pending.pop(merchant, None)
            if kind in ("reversal", "void") and ctx.rc == "00":
                self._undo(ctx)
                continue
            if kind not in COUNTED_KINDS or terminal is None:
                continue
            rc = ctx.rc
            approved = rc == "00"
            stoplisted = rc in STOP_RCS and bool(ctx.pan_hash) and ctx.pan_hash in stoplist
            day = ctx.local_date
            events.append(
                Event(
                    ts=now,
                    card=ctx.pan_hash,
                    tid=ctx.tid or None,
                    merchant=merchant,
                    approved_amount=ctx.amount if approved and kind in DEBIT_KINDS else 0,
                    declined=not approved,
                    pin_failure=rc in PIN_RCS,
                    stoplisted=stoplisted,
                    day=day,
                    month=day[:6],
                )
            )
        if events:
            self.store.record(events)

    def _undo(self, ctx: Any) -> None:
        original = ctx.original
        if original is None or original.kind not in DEBIT_KINDS or original.merchant_id is None:
            return
        if not original.approved:
            return
        day = original.local_date or ""
        self.store.adjust(original.merchant_id, day, day[:6], -int(original.amount))

    # --- errors and statistics -------------------------------------------------------------

    def flush(self, *, force: bool = False) -> None:
        """Write the rules' run-time failures to the database (at most every 2 s) and the
        timings to the stats file."""
        now = time.monotonic()
        if not force and now - self.flushed < 2.0:
            return
        self.flushed = now
        with self.lock:
            errors, self.errors = self.errors, {}
        if errors:
            with self.sessions() as session:
                at = utcnow()
                for rule_id, (count, message) in errors.items():
                    session.execute(
                        update(Rule)
                        .where(Rule.id == rule_id)
                        .values(
                            error_count=Rule.error_count + count,
                            last_error=message[:500],
                            last_error_at=at,
                        )
                    )
                session.commit()
        if self.config.stats_file:
            Path(self.config.stats_file).write_text(json.dumps(self.stats()))

    def stats(self) -> dict[str, Any]:
        values = sorted(self.timings)
        cpu = sorted(self.cpu_timings)
        batch = sorted(self.prefetch_timings)
        batch_cpu = sorted(self.prefetch_cpu_timings)

        def pct(q: float, data: list[float] | None = None) -> float:
            data = values if data is None else data
            if not data:
                return 0.0
            return round(data[min(len(data) - 1, int(q * len(data)))] * 1e6, 1)

        return {
            "store": self.store.kind,
            "scenarios": len(self.scenarios),
            "rules": sum(len(s.rules) for s in self.scenarios),
            "evaluations": len(values),
            "scored": self.evaluated,
            "alerts": self.alerts,
            "rule_errors": self.error_total,
            "failures": self.failures,
            "p50_us": pct(0.50),
            "p95_us": pct(0.95),
            "p99_us": pct(0.99),
            "max_us": round(values[-1] * 1e6, 1) if values else 0.0,
            "cpu_p50_us": pct(0.50, cpu),
            "cpu_p99_us": pct(0.99, cpu),
            # the batch prefetch (Redis): per batch, and how many requests it served
            "batches": len(self.prefetch_timings),
            "prefetch_p50_us": pct(0.50, batch),
            "prefetch_p99_us": pct(0.99, batch),
            "prefetch_cpu_p50_us": pct(0.50, batch_cpu),
            "prefetch_cpu_p99_us": pct(0.99, batch_cpu),
            "prefetched": getattr(self.store, "prefetched", 0),
        }


def rebuild(
    runtime: RiskRuntime, session: Session, *, now: datetime | None = None
) -> dict[str, int]:
    """Fill the aggregates from the journal: the last 24 hours of requests (windows), 30 days
    of approved payments (usual amounts), 90 days of card/merchant pairs (first use), this
    month's approved totals. Run once at gateway start."""
    from cardops.gateway.models import Journal

    now = now or utcnow()
    store = runtime.store
    if isinstance(store, RedisStore):
        marker = f"{store.prefix}:built"
        if not store.client.set(marker, "1", nx=True):
            return {"requests": 0, "merchants": 0, "pairs": 0}
    start = now - timedelta(hours=24)
    stoplist: dict[str, str] = runtime.stoplist()
    counted = 0
    batch: list[Event] = []
    rows = session.execute(
        select(
            Journal.created_at,
            Journal.kind,
            Journal.pan_hash,
            Journal.tid,
            Journal.merchant_id,
            Journal.amount,
            Journal.response_code,
            Journal.reversed,
            Journal.voided,
            Journal.local_date,
        )
        .where(Journal.created_at >= start, Journal.kind.in_(COUNTED_KINDS))
        .order_by(Journal.id)
    )
    for row in rows:
        approved = row.response_code == "00" and not row.reversed and not row.voided
        stop = row.response_code in ("41", "43") or (
            row.response_code == "59" and row.pan_hash in stoplist
        )
        batch.append(
            Event(
                ts=_epoch(row.created_at),
                card=row.pan_hash,
                tid=row.tid or None,
                merchant=row.merchant_id,
                approved_amount=row.amount if approved and row.kind in DEBIT_KINDS else 0,
                declined=row.response_code != "00",
                pin_failure=row.response_code in PIN_RCS,
                stoplisted=stop,
                day=row.local_date,
                month=row.local_date[:6],
            )
        )
        counted += 1
        if len(batch) >= 5000:
            _seed_windows(store, batch)
            batch = []
    _seed_windows(store, batch)
    if isinstance(store, RedisStore):
        store.flush()  # written, or the start fails loudly
    # usual amounts, pairs and totals come from longer periods: seeded directly
    approved = (
        Journal.response_code == "00",
        Journal.reversed.is_(False),
        Journal.voided.is_(False),
        Journal.kind.in_(DEBIT_KINDS),
        Journal.merchant_id.is_not(None),
    )
    merchants = 0
    if isinstance(store, MemoryStore):
        store.usual.clear()
        store.pairs.clear()
        store.day_totals.clear()
        store.month_totals.clear()
        for merchant_id, n, total in session.execute(
            select(Journal.merchant_id, func.count(), func.sum(Journal.amount))
            .where(*approved, Journal.created_at >= now - timedelta(days=30))
            .group_by(Journal.merchant_id)
        ):
            store.seed_usual(int(merchant_id or 0), int(n), int(total or 0))
            merchants += 1
        for card, merchant_id in session.execute(
            select(Journal.pan_hash, Journal.merchant_id)
            .where(
                *approved,
                Journal.pan_hash.is_not(None),
                Journal.created_at >= now - timedelta(days=90),
            )
            .distinct()
        ):
            store.seed_pair(str(card), int(merchant_id or 0))
        month = now.astimezone(runtime.tz).strftime("%Y%m")
        for merchant_id, day, total in session.execute(
            select(Journal.merchant_id, Journal.local_date, func.sum(Journal.amount))
            .where(*approved, Journal.local_date.like(f"{month}%"))
            .group_by(Journal.merchant_id, Journal.local_date)
        ):
            store.seed_totals(int(merchant_id or 0), day, day[:6], int(total or 0))
    return {"requests": counted, "merchants": merchants, "pairs": len(getattr(store, "pairs", ()))}


def _seed_windows(store: MemoryStore | RedisStore, events: list[Event]) -> None:
    """Windows only: the long-period figures are seeded separately (no double count)."""
    if not events:
        return
    if isinstance(store, MemoryStore):
        for event in events:
            row = event.row()
            for index, key in enumerate((event.card, event.tid, event.merchant)):
                if key is None:
                    continue
                series = store.series[index].get(key)
                if series is None:
                    from cardops.risk.aggregates import Series

                    series = store.series[index][key] = Series()
                series.add(event.ts, row)
    else:
        store.record(events)


def _epoch(at: datetime) -> float:
    from cardops.core.clock import as_utc

    return as_utc(at).timestamp()


def install(engine: Any) -> RiskRuntime | None:
    """Plug the risk participant into a gateway engine (unless ``CARDOPS_RISK=off``):
    aggregates in memory (rebuilt from the journal) or in Redis, rules loaded now."""
    config = RiskConfig()
    if not config.enabled:
        log.info("risk: off (CARDOPS_RISK=off)")
        return None
    try:
        runtime = RiskRuntime(
            config=config,
            sessions=engine.sessions,
            stoplist=lambda: engine.stoplist,
            onus_bin=engine.config.onus_bin,
            # the batch's PAN hashes, computed by the engine's prefetch just before ours
            hashes=lambda: getattr(engine, "prefetched_hashes", None),
        )
        with engine.sessions() as session:
            engine.refresh_stoplist(session)
            counts = rebuild(runtime, session)
            runtime.refresh(session, force=True)
    except Exception:
        # the gateway keeps serving; without its risk participant, loudly
        log.exception("risk: NOT ACTIVE, the risk participant did not start")
        return None
    log.info(
        "risk: %s aggregates, rebuilt from %d journal rows", runtime.store.kind, counts["requests"]
    )
    engine.risk_hook = runtime
    return runtime
