"""The transaction pipeline (jPOS TransactionManager style) and the group-commit journal.

A request becomes a :class:`Ctx`. :meth:`Engine.process_batch` runs a batch of them in one
database transaction: each goes through the participants (format → sign-on → MAC →
terminal/merchant → duplicate → card → amount/limits → stop list → risk → route → PIN →
execute), each in its own savepoint, and gets a journal row; the batch is committed once
(group commit) and only then are the responses encoded. A participant declines by raising
:class:`Decline` with a response code. Requests routed upstream leave the batch with
``ctx.forward`` set and come back with the host's answer (``stage = "finish"``).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import logging
import os
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol, cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.engine import Engine as SAEngine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cardops.core.clock import local, utcnow
from cardops.core.db import BulkInsert, in_values, is_postgres, session_factory
from cardops.core.models import Counter, current_version
from cardops.gateway import codec, crypto
from cardops.gateway.config import GatewayConfig
from cardops.gateway.models import (
    Batch,
    Journal,
    Kind,
    OnusCard,
    SafEntry,
    SessionKey,
    StopEntry,
    StopReason,
)
from cardops.wallets.service import CardRef

log = logging.getLogger("cardops.gateway")

STOPLIST_VERSION = "gateway_stoplist"
STOP_CODES = {StopReason.LOST.value: "41", StopReason.STOLEN.value: "43"}
FINANCIAL = {
    Kind.PURCHASE,
    Kind.REFUND,
    Kind.VOID,
    Kind.BALANCE,
    Kind.PREAUTH,
    Kind.COMPLETION,
    Kind.REVERSAL,
    Kind.SETTLEMENT,
}
NEEDS_PAN = {Kind.PURCHASE, Kind.REFUND, Kind.BALANCE, Kind.PREAUTH}
NEEDS_AMOUNT = {Kind.PURCHASE, Kind.REFUND, Kind.VOID, Kind.PREAUTH, Kind.COMPLETION}
NEEDS_PIN = {Kind.PURCHASE, Kind.BALANCE, Kind.PREAUTH}
DEBITS = (Kind.PURCHASE.value, Kind.COMPLETION.value)
ECHO = ("3", "4", "7", "11", "12", "13", "25", "41", "42", "49", "60")


class Decline(Exception):
    def __init__(self, rc: str) -> None:
        super().__init__(rc)
        self.rc = rc


@dataclass
class TerminalInfo:
    id: int
    tid: str
    mid: str
    merchant_id: int | None
    active: bool
    merchant_active: bool
    merchant_daily_limit: int | None
    tmk: bytes | None
    loaded: float


@dataclass
class Keys:
    business_date: date
    tpk: bytes
    tak: bytes


@dataclass
class Ctx:
    raw: bytes
    received: float = field(default_factory=time.perf_counter)
    msg: codec.Message = field(default_factory=dict)
    stage: str = "new"  # new | finish
    kind: Kind = Kind.UNKNOWN
    mti: str = ""
    tid: str = ""
    stan: str = ""
    local_date: str = ""
    dup_key: str | None = None
    response: codec.Message = field(default_factory=dict)
    rc: str = ""
    tak: bytes | None = None  # MAC the response with this
    keys: Keys | None = None
    terminal: TerminalInfo | None = None
    pan: str = ""
    pan_hash: str | None = None
    card_type: str = ""  # debit | credit, from the card number (or the original's)
    amount: int = 0
    route: str = ""
    original: Journal | None = None
    wallet_key: str | None = None
    forward: codec.Message | None = None  # to the upstream host
    sent: codec.Message | None = None  # what went to the upstream host
    preset: str = ""  # a response code decided before the pipeline (30: undecodable)
    upstream_reply: codec.Message | None = None
    upstream_stan: str = ""
    close: bool = False  # undecodable: close the connection
    out: bytes = b""  # the framed response
    journal_id: int | None = None
    replay: bool = False
    debit: Any = None  # an on-us payment waiting for the batch's wallets.debit_many
    saf: dict[str, str] | None = None  # a reversal to store once the journal row exists
    risk: dict[str, Any] | None = None  # what the risk hook decided (scores, review), if any


class RiskHook(Protocol):
    """The risk participant plugged into the pipeline (``Engine.risk_hook``).

    Optional: ``prefetch(session, items)``, called once per batch right after the engine's
    own prefetch and before any ``evaluate`` (the items are not parsed yet), so the hook can
    read what the whole batch needs in one go; must never raise."""

    def evaluate(self, session: Session, ctx: Ctx) -> None:
        """Score a request about to be executed; raise :class:`Decline` to refuse it.
        Runs inside the batch's transaction; must never raise anything else."""

    def observe(self, items: list[Ctx]) -> None:
        """The final outcomes of a committed batch (aggregates, counters)."""


def _digits(value: str | None, n: int) -> bool:
    return isinstance(value, str) and len(value) == n and value.isdigit()


def _kind(msg: codec.Message) -> Kind:
    mti, pc = msg.get("t", ""), msg.get("3", "")
    if mti == "0800":
        return {"001": Kind.SIGN_ON, "002": Kind.SIGN_OFF, "301": Kind.ECHO}.get(
            msg.get("70", ""), Kind.UNKNOWN
        )
    if mti == "0100":
        return Kind.PREAUTH if pc == "000000" else Kind.UNKNOWN
    if mti == "0200":
        if pc == "000000":
            return Kind.COMPLETION if msg.get("25") == "06" else Kind.PURCHASE
        return {"200000": Kind.REFUND, "020000": Kind.VOID, "310000": Kind.BALANCE}.get(
            pc, Kind.UNKNOWN
        )
    if mti == "0400":
        return Kind.REVERSAL
    if mti == "0500":
        return Kind.SETTLEMENT
    return Kind.UNKNOWN


def sanitized(msg: codec.Message) -> dict[str, str]:
    """A request as the journal keeps it: PAN masked, no track 2, PIN block or MAC."""
    out = {k: v for k, v in msg.items() if k not in ("2", "35", "52", "64", "128")}
    if "2" in msg:
        out["2"] = crypto.mask_pan(msg["2"])
    return out


class Metrics:
    """Counters for the Prometheus exposition and the live operations page."""

    BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: dict[tuple[str, str], int] = {}
        self.latency: dict[str, list[int]] = {}
        self.latency_sum: dict[str, float] = {}
        self.recent: deque[tuple[float, bool]] = deque(maxlen=20000)
        self.journal_lag = 0.0
        self.upstream_up = 0
        self.saf_depth = 0
        self.connections = 0

    def observe(self, mti: str, rc: str, seconds: float, financial: bool) -> None:
        with self.lock:
            key = (mti, rc)
            self.requests[key] = self.requests.get(key, 0) + 1
            buckets = self.latency.setdefault(mti, [0] * (len(self.BUCKETS) + 1))
            for i, bound in enumerate(self.BUCKETS):
                if seconds <= bound:
                    buckets[i] += 1
            buckets[-1] += 1
            self.latency_sum[mti] = self.latency_sum.get(mti, 0.0) + seconds
            if financial:
                self.recent.append((time.monotonic(), rc == "00"))

    def decline_ratio(self, window: float = 60.0) -> tuple[int, float]:
        now = time.monotonic()
        with self.lock:
            items = [ok for at, ok in self.recent if now - at <= window]
        if not items:
            return 0, 0.0
        return len(items), 1 - sum(items) / len(items)

    def snapshot(self) -> dict[str, Any]:
        total, ratio = self.decline_ratio()
        with self.lock:
            return {
                "requests": {f"{m}:{rc}": n for (m, rc), n in self.requests.items()},
                "latency": {m: list(b) for m, b in self.latency.items()},
                "latency_sum": dict(self.latency_sum),
                "journal_lag": self.journal_lag,
                "upstream_up": self.upstream_up,
                "saf_depth": self.saf_depth,
                "connections": self.connections,
                "last_minute": total,
                "decline_ratio": round(ratio, 4),
            }

    def exposition(self, node: str) -> str:
        """The Prometheus text format (version 0.0.4)."""
        lines = [
            "# HELP cardops_gateway_requests_total Requests by message type and response code.",
            "# TYPE cardops_gateway_requests_total counter",
        ]
        with self.lock:
            for (mti, rc), n in sorted(self.requests.items()):
                lines.append(
                    f'cardops_gateway_requests_total{{node="{node}",mti="{mti}",rc="{rc}"}} {n}'
                )
            lines += [
                "# HELP cardops_gateway_latency_seconds Request latency by message type.",
                "# TYPE cardops_gateway_latency_seconds histogram",
            ]
            for mti, buckets in sorted(self.latency.items()):
                for bound, n in zip(self.BUCKETS, buckets, strict=False):
                    lines.append(
                        f'cardops_gateway_latency_seconds_bucket{{node="{node}",mti="{mti}",'
                        f'le="{bound}"}} {n}'
                    )
                lines.append(
                    f'cardops_gateway_latency_seconds_bucket{{node="{node}",mti="{mti}",'
                    f'le="+Inf"}} {buckets[-1]}'
                )
                lines.append(
                    f'cardops_gateway_latency_seconds_sum{{node="{node}",mti="{mti}"}} '
                    f"{self.latency_sum.get(mti, 0.0):.6f}"
                )
                lines.append(
                    f'cardops_gateway_latency_seconds_count{{node="{node}",mti="{mti}"}} '
                    f"{buckets[-1]}"
                )
            gauges = [
                ("upstream_up", "1 when the upstream link is connected.", self.upstream_up),
                (
                    "journal_lag_seconds",
                    "Age of the oldest request waiting for the journal.",
                    self.journal_lag,
                ),
                ("saf_depth", "Reversals waiting to be forwarded upstream.", self.saf_depth),
                ("connections", "Open terminal connections.", self.connections),
            ]
        for name, text, value in gauges:
            lines += [
                f"# HELP cardops_gateway_{name} {text}",
                f"# TYPE cardops_gateway_{name} gauge",
                f'cardops_gateway_{name}{{node="{node}"}} {value}',
            ]
        return "\n".join(lines) + "\n"


_DUPS = select(Journal.dup_key, Journal.request, Journal.response).where(
    in_values(Journal.dup_key, "keys")
)
_JOURNAL_COLUMNS = (
    "created_at",
    "node",
    "mti",
    "response_mti",
    "kind",
    "tid",
    "mid",
    "terminal_id",
    "merchant_id",
    "stan",
    "local_date",
    "dup_key",
    "processing_code",
    "amount",
    "currency",
    "pan_hash",
    "pan_masked",
    "card_type",
    "rrn",
    "auth_code",
    "response_code",
    "approved",
    "route",
    "reversed",
    "voided",
    "completed",
    "original_id",
    "batch_no",
    "settled_batch_id",
    "wallet_key",
    "upstream_stan",
    "transmitted",
    "latency_us",
    "request",
    "response",
)
_JOURNAL = BulkInsert(Journal.__table__, _JOURNAL_COLUMNS)

CHECKPOINT_EVERY = 0.5  # seconds between the background WAL checkpoints of a gateway
# WAL pages (4 KiB) beyond which a checkpoint is finished under the writers' lock, so that the
# WAL starts over; and the size its file is cut back to when it does
CHECKPOINT_FINISH_PAGES = 1000
WAL_SIZE_LIMIT = 64 * 1024 * 1024
CHECKPOINT_PASSES, CHECKPOINT_SHORT = 5, 0.002  # passes before the locked one; a short one
_checkpointers: dict[str, threading.Thread] = {}
_NO_AUTOCHECKPOINT = "cardops.gateway.no_autocheckpoint"


def _writers_lock(path: str) -> int:
    """The file the gateway processes' writers take turns on (``fcntl.flock``)."""
    return os.open(f"{path}.gateway-lock", os.O_RDWR | os.O_CREAT, 0o600)


def _checkpoint_in_background(session: Session, path: str) -> None:
    """SQLite copies the WAL back into the database (a checkpoint, with an fsync) in the
    commit that crosses 1,000 WAL pages: a 20–50 ms stall of the batch that happens to be
    committing, every few seconds under load. The gateway's connections switch that off
    and one thread per database does a passive checkpoint every half second instead,
    concurrently with the writers (WAL allows it), outside the event loop's time.

    A passive checkpoint copies the WAL as it was when the checkpoint began, and the writers
    go on appending meanwhile, so under sustained load the WAL was never wholly copied back,
    never started over, and grew without end (5.5 GB in 45 s of load, every page look-up
    slower as it grew). So once the WAL holds ``CHECKPOINT_FINISH_PAGES`` or more, the thread
    repeats its pass until one is short (each copies what came in during the one before),
    then copies the last remainder under the writers' lock, a pause of the batches of a few
    milliseconds; the next batch then writes the WAL from its start and cuts the file back
    to ``WAL_SIZE_LIMIT``."""
    connection = session.connection()
    if not connection.info.get(_NO_AUTOCHECKPOINT):
        connection.exec_driver_sql("PRAGMA wal_autocheckpoint=0")
        connection.exec_driver_sql(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        connection.info[_NO_AUTOCHECKPOINT] = True
    if path in _checkpointers:
        return

    def run() -> None:
        import sqlite3

        db, inode, lock = None, None, _writers_lock(path)
        while True:
            time.sleep(CHECKPOINT_EVERY)
            try:
                now = os.stat(path).st_ino
            except FileNotFoundError:  # the database is gone (a test's): so is this thread
                _checkpointers.pop(path, None)
                os.close(lock)
                return
            try:
                if db is None or now != inode:  # a new file under the same name: reopen
                    db, inode = sqlite3.connect(path, timeout=10, check_same_thread=False), now
                _, pages, _ = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                if pages >= CHECKPOINT_FINISH_PAGES:
                    # each pass copies what came in during the one before, so the passes get
                    # shorter; the last, under the lock, copies only a few milliseconds' worth
                    for _ in range(CHECKPOINT_PASSES):
                        started = time.perf_counter()
                        db.execute("PRAGMA wal_checkpoint(PASSIVE)")
                        if time.perf_counter() - started < CHECKPOINT_SHORT:
                            break
                    fcntl.flock(lock, fcntl.LOCK_EX)
                    try:
                        db.execute("PRAGMA wal_checkpoint(PASSIVE)")
                    finally:
                        fcntl.flock(lock, fcntl.LOCK_UN)
            except sqlite3.Error:
                log.warning("WAL checkpoint of %s failed; trying again", path, exc_info=True)

    thread = threading.Thread(target=run, name="gateway-checkpoint", daemon=True)
    _checkpointers[path] = thread
    thread.start()


@dataclass(slots=True)
class OnusRow:
    """An on-us card's PIN and expiry as the batch prefetch reads them (columns, not ORM
    objects: loading objects was a fifth of the batch's time). ``pin_tries`` is kept in
    step with the row by :func:`_set_pin_tries`."""

    id: int
    pan_hash: str
    expiry: str
    pin_verification: str | None
    pin_tries: int
    valid_until: date | None


@functools.cache
def _onus_statement() -> Any:
    from cardops.cards.models import Card

    return (
        select(
            OnusCard.id,
            OnusCard.pan_hash,
            OnusCard.expiry,
            OnusCard.pin_verification,
            OnusCard.pin_tries,
            Card.valid_until,
            Card.id,
            Card.number,
            Card.state,
            Card.wallet_enabled,
        )
        .join(Card, Card.id == OnusCard.card_id)
        .where(in_values(OnusCard.pan_hash, "hashes"))
    )


@functools.cache
def _terminal_statement() -> Any:
    from cardops.merchants.models import Merchant
    from cardops.terminals.models import Terminal

    return (
        select(
            Terminal.id,
            Terminal.serial,
            Terminal.state,
            Terminal.mid,
            Terminal.merchant_id,
            Terminal.tmk_encrypted,
            Merchant.mid,
            Merchant.state,
            Merchant.daily_limit,
        )
        .outerjoin(Merchant, Merchant.id == Terminal.merchant_id)
        .where(Terminal.tid == bindparam("tid"))
    )


def _onus_rows(session: Session, hashes: list[str]) -> list[tuple[OnusRow, CardRef]]:
    """The on-us cards under these PAN hashes with their one-card cards, in one query
    (a statement built once: building it per batch cost more than running it)."""
    rows = session.connection().execute(_onus_statement(), {"hashes": hashes})
    return [
        (OnusRow(oid, pan_hash, expiry, pin, tries, until), CardRef(cid, number, state, enabled))
        for oid, pan_hash, expiry, pin, tries, until, cid, number, state, enabled in rows
    ]


def _set_pin_tries(session: Session, onus: OnusRow) -> None:
    session.execute(
        update(OnusCard)
        .where(OnusCard.id == onus.id)
        .values(pin_tries=onus.pin_tries)
        .execution_options(synchronize_session=False)
    )


class Engine:
    """Hot-path state (terminals, keys, stop list, counters) and the pipeline."""

    def __init__(
        self,
        config: GatewayConfig | None = None,
        sessions: Callable[[], Session] | None = None,
    ) -> None:
        self.config = config or GatewayConfig()
        self.sessions = sessions or session_factory
        self.node = self.config.node or f"gw-{secrets.token_hex(3)}"
        self.metrics = Metrics()
        self.terminals: dict[str, TerminalInfo] = {}
        self.tmks: dict[tuple[str, str], bytes] = {}  # (serial, sealed TMK) → TMK
        self.batch_day: date | None = None  # set while a batch runs: see today()
        self.batch_yymm = ""
        self.auth_pool, self.auth_pool_at = b"", 0
        self.keys: dict[str, Keys] = {}
        self.stoplist: dict[str, str] = {}
        self.stoplist_version = -1
        self.stoplist_checked = 0.0
        self.recent: OrderedDict[str, tuple[str, dict[str, Any]]] = OrderedDict()
        self.pin_ok: set[str] = set()
        self.merchant_totals: dict[tuple[int, str], int] = {}
        self.terminal_totals: dict[tuple[str, str], int] = {}
        self.card_counts: dict[tuple[str, str], int] = {}
        self.rrn_block = 0
        self.rrn_next = 1_000_000
        self.zpk = bytes.fromhex(self.config.upstream_zpk)
        self.upstream_available: Callable[[], bool] = lambda: False
        self.actor_id: int | None = None
        self.actor: Any = None
        self.actor_loaded = 0.0
        self.prefetched_dups: dict[str, tuple[dict[str, Any], dict[str, Any]] | None] = {}
        self.prefetched_cards: dict[str, tuple[OnusRow, CardRef] | None] = {}
        self.prefetched_hashes: dict[str, str] = {}  # PAN → keyed hash, for one batch
        self.risk_hook: RiskHook | None = None
        self.lock_fds: dict[str, int] = {}  # SQLite: the writers' lock file, by database

    # --- helpers ---------------------------------------------------------------------------

    def uses_sqlite(self) -> bool:
        with self.sessions() as session:
            return not is_postgres(session)

    def today(self) -> date:
        """The operator's date: the batch's (one instant for the whole batch), or now."""
        return self.batch_day if self.batch_day is not None else local(utcnow()).date()

    def month(self) -> str:
        """YYMM of :meth:`today`, as card expiry dates are written."""
        if self.batch_day is not None:
            return self.batch_yymm
        return local(utcnow()).strftime("%y%m")

    def auth_code(self) -> str:
        """A random six-digit approval code, from a pool of random bytes (a system call per
        1,024 codes instead of one per code)."""
        if self.auth_pool_at + 4 > len(self.auth_pool):
            self.auth_pool, self.auth_pool_at = os.urandom(4096), 0
        at = self.auth_pool_at
        self.auth_pool_at = at + 4
        return f"{int.from_bytes(self.auth_pool[at : at + 4], 'big') % 1_000_000:06d}"

    def _actor(self, session: Session) -> Any:
        from cardops.auth.models import User
        from cardops.auth.service import system_user

        # The system user, loaded (with its permissions) at most every 30 s rather than per
        # batch: the pipeline only reads its id, name and permissions.
        if self.actor is not None and time.monotonic() - self.actor_loaded < 30:
            return self.actor
        user = session.get(User, self.actor_id) if self.actor_id is not None else None
        if user is None:
            user = system_user(session)
        self.actor_id = user.id
        from cardops.auth.service import has_permission
        from cardops.wallets.permissions import WALLETS_DEBIT

        has_permission(user, WALLETS_DEBIT)  # caches its permissions on the object
        self.actor, self.actor_loaded = user, time.monotonic()
        return user

    def reserve_rrns(self, count: int) -> None:
        """Make sure ``count`` RRNs are left in this process's block (a new block is taken
        in its own short transaction, never inside a batch)."""
        if self.rrn_next + count < 1_000_000:
            return
        with self.sessions() as session:
            row = session.get(Counter, "gateway_rrn_block", with_for_update=True)
            if row is None:
                row = Counter(name="gateway_rrn_block", value=0)
                session.add(row)
            row.value += 1
            self.rrn_block = row.value
            session.commit()
        self.rrn_next = 0

    def next_rrn(self) -> str:
        if self.rrn_next >= 1_000_000:
            with self.sessions() as session:
                row = session.get(Counter, "gateway_rrn_block", with_for_update=True)
                if row is None:
                    row = Counter(name="gateway_rrn_block", value=0)
                    session.add(row)
                row.value += 1
                self.rrn_block = row.value
                session.commit()
            self.rrn_next = 0
        value = self.rrn_block * 1_000_000 + self.rrn_next
        self.rrn_next += 1
        return f"{value % 10**12:012d}"

    def local_date_of(self, mmdd: str | None) -> str:
        """YYYYMMDD for a field 13 (MMDD): this year, or last year when MMDD is far ahead."""
        today = self.today()
        if not _digits(mmdd, 4) or mmdd is None:
            return today.strftime("%Y%m%d")
        year = today.year
        if int(mmdd[:2]) - today.month > 6:
            year -= 1
        return f"{year}{mmdd}"

    def load_terminal(
        self, session: Session, tid: str, *, fresh: bool = False
    ) -> TerminalInfo | None:
        """The terminal and its merchant as the pipeline needs them, kept for 10 s (one
        query; the TMK is unsealed again only when its sealed form changed)."""
        found = self.terminals.get(tid)
        if found is not None and not fresh and time.monotonic() - found.loaded < 10:
            return found
        row = session.connection().execute(_terminal_statement(), {"tid": tid}).first()
        if row is None:
            self.terminals.pop(tid, None)
            return None
        unit_id, serial, state, unit_mid, merchant_id, sealed, m_mid, m_state, m_limit = row
        tmk = None
        if sealed:
            tmk = self.tmks.get((serial, sealed))
            if tmk is None:
                from cardops.terminals.keys import Sealer

                try:
                    tmk = self.tmks[(serial, sealed)] = Sealer().open(serial, sealed)
                except Exception:  # a key sealed under another master key
                    log.warning("terminal %s: its TMK does not open", tid)
        info = TerminalInfo(
            id=unit_id,
            tid=tid,
            mid=unit_mid or m_mid or "",
            merchant_id=merchant_id,
            active=state == "activated",
            merchant_active=m_state == "approved",
            merchant_daily_limit=m_limit,
            tmk=tmk,
            loaded=time.monotonic(),
        )
        self.terminals[tid] = info
        return info

    def load_keys(self, session: Session, tid: str, *, fresh: bool = False) -> Keys | None:
        keys = self.keys.get(tid)
        if keys is not None and not fresh:
            return keys
        row = session.execute(select(SessionKey).where(SessionKey.tid == tid)).scalar_one_or_none()
        terminal = self.load_terminal(session, tid) if row is not None else None
        if row is None or terminal is None or terminal.tmk is None:
            return None
        keys = Keys(
            business_date=row.business_date,
            tpk=crypto.decrypt_key(terminal.tmk, row.tpk_under_tmk),
            tak=crypto.decrypt_key(terminal.tmk, row.tak_under_tmk),
        )
        self.keys[tid] = keys
        return keys

    def refresh_stoplist(self, session: Session) -> None:
        now = time.monotonic()
        if now - self.stoplist_checked < 1.0:
            return
        self.stoplist_checked = now
        version = current_version(session, STOPLIST_VERSION)
        if version == self.stoplist_version:
            return
        rows = session.execute(
            select(StopEntry.pan_hash, StopEntry.reason).where(StopEntry.active.is_(True))
        )
        self.stoplist = {h: r for h, r in rows}
        self.stoplist_version = version

    # --- the batch -------------------------------------------------------------------------

    def process_batch(self, items: list[Ctx]) -> None:
        """Run ``items`` through the pipeline in one transaction, journal them, commit once,
        then encode the responses. Never raises: a failure answers ``96``."""
        started = time.perf_counter()
        if items:
            self.metrics.journal_lag = max(0.0, started - min(c.received for c in items))
        now = local(utcnow())
        self.batch_day, self.batch_yymm = now.date(), now.strftime("%y%m")
        try:
            self.reserve_rrns(2 * len(items) + 2)
            self._run(items)
        except IntegrityError:
            # another gateway process journaled one of these keys first: one by one
            log.info("batch conflict, retrying %d requests singly", len(items))
            for ctx in items:
                ctx.response, ctx.rc, ctx.forward, ctx.original = {}, "", None, None
                ctx.debit, ctx.wallet_key, ctx.saf, ctx.replay = None, None, None, False
                try:
                    self._run([ctx])
                except Exception:
                    log.exception("request failed")
                    self._fail(ctx)
        except Exception:
            log.exception("batch failed")
            for ctx in items:
                self._fail(ctx)
        finally:
            self.batch_day = None
        for ctx in items:
            if ctx.forward is None and not ctx.out and not ctx.close:
                self.encode_response(ctx)

    def _fail(self, ctx: Ctx) -> None:
        ctx.forward = None
        ctx.rc = "96"
        ctx.response = self.base_response(ctx)
        ctx.response["39"] = "96"

    @contextlib.contextmanager
    def _writers(self, session: Session) -> Iterator[None]:
        """On SQLite, gateway processes take turns on a lock file next to the database
        (``fcntl.flock``, handed over at once) around their batch transactions, rather than
        meeting in SQLite's busy handler, which sleeps 1, 2, 5, 10 … ms between tries."""
        bind = session.get_bind()
        url = bind.url if isinstance(bind, SAEngine) else None  # not a test's outer connection
        path = url.database if url is not None and url.get_backend_name() == "sqlite" else None
        if not path or path == ":memory:" or path.startswith("file:"):
            yield
            return
        fd = self.lock_fds.get(path)
        if fd is None:
            fd = self.lock_fds[path] = _writers_lock(path)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            _checkpoint_in_background(session, path)
            yield
        finally:
            session.close()  # a transaction not committed ends before the next writer's turn
            fcntl.flock(fd, fcntl.LOCK_UN)

    def _run(self, items: list[Ctx]) -> None:
        with self.sessions() as session, self._writers(session):
            self.refresh_stoplist(session)
            actor = self._actor(session)
            self.prefetch(session, items)
            if self.risk_hook is not None and hasattr(self.risk_hook, "prefetch"):
                self.risk_hook.prefetch(session, items)
            waiting: list[Ctx] = []
            for ctx in items:
                # A purchase writes nothing before its debit (deferred to the batch below),
                # so it needs no savepoint of its own; everything else gets one.
                savepoint = None if self._plain(ctx) else session.begin_nested()
                try:
                    if ctx.stage == "finish":
                        self.finish_upstream(session, ctx, actor)
                    else:
                        self.pipeline(session, ctx, actor)
                    if savepoint is not None:
                        savepoint.commit()
                except Exception:
                    if savepoint is not None:
                        savepoint.rollback()
                    log.exception("request %s %s/%s failed", ctx.mti, ctx.tid, ctx.stan)
                    self._fail(ctx)
                    ctx.original = None
                    ctx.debit = None
                if ctx.debit is not None:
                    waiting.append(ctx)
            if waiting:
                self.debit_waiting(session, waiting, actor)
            self.journal(session, [c for c in items if c.forward is None and not c.replay])
            session.commit()
        self.prefetched_dups, self.prefetched_cards, self.prefetched_hashes = {}, {}, {}
        if self.risk_hook is not None:
            try:  # committed already: a failing hook must not turn the answers into 96
                self.risk_hook.observe([c for c in items if c.forward is None and not c.replay])
            except Exception:
                log.exception("risk observe failed; the batch is committed and answered")
        for ctx in items:
            if ctx.dup_key and ctx.forward is None:
                self.recent[ctx.dup_key] = (self._fingerprint(ctx.msg), ctx.response)
                if len(self.recent) > 50_000:
                    self.recent.popitem(last=False)

    @staticmethod
    def _plain(ctx: Ctx) -> bool:
        msg = ctx.msg
        return (
            not ctx.preset
            and msg.get("t") == "0200"
            and msg.get("3") == "000000"
            and msg.get("25") != "06"
        )

    def prefetch(self, session: Session, items: list[Ctx]) -> None:
        """Two queries for the whole batch instead of two per request: journal rows under
        the batch's duplicate keys, and the on-us cards of the batch's card numbers."""

        keys, hashes = [], set()
        self.prefetched_hashes = {}
        for ctx in items:
            msg = ctx.msg
            if ctx.stage != "new" or ctx.preset:
                continue
            key = f"{msg.get('41', '')}{self.local_date_of(msg.get('13'))}{msg.get('11', '')}"
            if key not in self.recent:
                keys.append(key)
            pan = msg.get("2", "")
            if pan and self.is_onus(pan) and crypto.luhn_ok(pan):
                self.prefetched_hashes[pan] = digest = crypto.pan_hash(pan)
                hashes.add(digest)
        dups: dict[str, tuple[dict[str, Any], dict[str, Any]] | None] = dict.fromkeys(keys)
        if keys:
            for key, request, response in session.connection().execute(_DUPS, {"keys": keys}):
                dups[key] = (request, response)
        cards: dict[str, tuple[OnusRow, CardRef] | None] = dict.fromkeys(hashes)
        if hashes:
            for row in _onus_rows(session, list(hashes)):
                cards[row[0].pan_hash] = row
        self.prefetched_dups, self.prefetched_cards = dups, cards

    def debit_waiting(self, session: Session, waiting: list[Ctx], actor: Any) -> None:
        """The batch's on-us payments in one ``wallets.debit_many``: those it declines lose
        the approval they were provisionally given."""
        from cardops.wallets import service as wallets

        results = wallets.debit_many(session, [c.debit for c in waiting], actor=actor)
        for ctx, result in zip(waiting, results, strict=True):
            request, ctx.debit = ctx.debit, None
            if result.approved:
                continue
            card = self.prefetched_cards.get(ctx.pan_hash or "")
            code = self._wallet_code(result.reason, card[1] if card else request)
            self._uncount_ctx(ctx)
            ctx.wallet_key = None
            ctx.rc = code
            ctx.response.pop("37", None)
            ctx.response.pop("38", None)
            ctx.response["39"] = code

    def base_response(self, ctx: Ctx) -> codec.Message:
        out: codec.Message = {"t": codec.response_mti(ctx.mti or ctx.msg.get("t", "0800"))}
        for key in ECHO:
            if key in ctx.msg:
                out[key] = ctx.msg[key]
        if ctx.msg.get("t") == "0800" and "70" in ctx.msg:
            out["70"] = ctx.msg["70"]
        if ctx.msg.get("t") == "0400" and "90" in ctx.msg:
            out["90"] = ctx.msg["90"]
        return out

    def encode_response(self, ctx: Ctx) -> None:
        try:
            payload = codec.encode_with_mac(ctx.response, ctx.tak)
        except Exception:
            log.exception("response does not encode")
            payload = codec.encode_with_mac(
                {k: v for k, v in self.base_response(ctx).items()} | {"39": "96"}, ctx.tak
            )
        ctx.out = codec.frame(payload)
        elapsed = time.perf_counter() - ctx.received
        self.metrics.observe(ctx.mti or "????", ctx.rc, elapsed, ctx.kind in FINANCIAL)

    def journal(self, session: Session, items: list[Ctx]) -> None:
        """The batch's journal rows in one executemany of the driver (``_JOURNAL``)."""
        if not items:
            return
        connection = session.connection()
        created_at = _JOURNAL.processor(connection, "created_at")(utcnow())
        as_json = _JOURNAL.processor(connection, "request")
        node = self.node
        rows = []
        for ctx in items:
            msg, resp = ctx.msg, ctx.response
            amount = int(msg["4"]) if _digits(msg.get("4"), 12) else 0
            terminal = ctx.terminal
            rc = ctx.rc
            # in _JOURNAL_COLUMNS' order
            rows.append(
                (
                    created_at,
                    node,
                    ctx.mti[:4],
                    resp.get("t", "")[:4],
                    ctx.kind.value,
                    ctx.tid[:8],
                    (msg.get("42") or (terminal.mid if terminal else ""))[:15],
                    terminal.id if terminal else None,
                    terminal.merchant_id if terminal else None,
                    ctx.stan[:6],
                    ctx.local_date,
                    ctx.dup_key,
                    msg.get("3", "")[:6],
                    amount,
                    msg.get("49", "")[:3],
                    ctx.pan_hash,
                    crypto.mask_pan(ctx.pan)[:19] if ctx.pan else "",
                    ctx.card_type,
                    resp.get("37"),
                    resp.get("38", ""),
                    rc,
                    rc == "00",
                    ctx.route,
                    False,
                    False,
                    False,
                    ctx.original.id if ctx.original is not None else None,
                    (msg.get("60", "") if _digits(msg.get("60"), 6) else "")[:6],
                    None,
                    ctx.wallet_key if rc == "00" else None,
                    ctx.upstream_stan,
                    msg.get("7", "")[:10],
                    int((time.perf_counter() - ctx.received) * 1e6),
                    as_json(sanitized(msg)),
                    as_json(dict(resp)),
                )
            )
        session.flush()  # ORM changes of the batch (originals, keys) go first
        table = cast(Table, Journal.__table__)
        # the driver's executemany (no RETURNING: with it SQLite inserts row by row); the
        # few rows that need their id (a reversal to store and forward) read it by their
        # unique key
        _JOURNAL.run(connection, rows)
        waiting = [c for c in items if c.saf is not None]
        saf = []
        if waiting:
            keys = [c.dup_key for c in waiting if c.dup_key]
            ids: dict[str, int] = {}
            if keys:
                ids = {
                    key: journal_id
                    for key, journal_id in connection.execute(
                        select(table.c.dup_key, table.c.id).where(table.c.dup_key.in_(keys))
                    )
                }
            for ctx in waiting:
                assert ctx.saf is not None
                ctx.journal_id = ids.get(ctx.dup_key or "")
                saf.append(SafEntry(journal_id=ctx.journal_id, message=ctx.saf))
                ctx.saf = None
        if saf:
            session.add_all(saf)
            session.flush()

    @staticmethod
    def _fingerprint(msg: codec.Message) -> str:
        parts = [msg.get(k, "") for k in ("t", "3", "4", "25", "90", "37")]
        parts.append(hashlib.sha256(msg.get("2", "").encode()).hexdigest()[:16])
        return "|".join(parts)

    # --- the participants -----------------------------------------------------------------

    def pipeline(self, session: Session, ctx: Ctx, actor: Any) -> None:
        msg = ctx.msg
        ctx.mti = msg.get("t", "")
        ctx.kind = _kind(msg)
        ctx.tid = msg.get("41", "")
        ctx.stan = msg.get("11", "")
        ctx.local_date = self.local_date_of(msg.get("13"))
        ctx.response = self.base_response(ctx)
        try:
            if ctx.preset:
                raise Decline(ctx.preset)
            self.check_format(ctx)
            if ctx.kind in (Kind.SIGN_ON, Kind.SIGN_OFF, Kind.ECHO):
                self.network(session, ctx)
                return
            self.check_signed_on(session, ctx)
            self.check_mac(session, ctx)
            if self.check_duplicate(session, ctx):
                return
            self.check_terminal(session, ctx)
            if ctx.kind == Kind.UNKNOWN:
                raise Decline("12")
            self.check_card(session, ctx)
            self.check_amount(session, ctx)
            self.check_stoplist(ctx)
            self.risk(session, ctx)
            self.execute(session, ctx, actor)
        except Decline as exc:
            ctx.rc = exc.rc
            ctx.forward = None
        if not ctx.forward:
            ctx.response["39"] = ctx.rc or "96"

    def check_format(self, ctx: Ctx) -> None:
        msg = ctx.msg
        if not _digits(msg.get("11"), 6) or len(msg.get("41", "")) != 8:
            raise Decline("30")
        for key, n in (("3", 6), ("4", 12), ("7", 10), ("12", 6), ("13", 4), ("14", 4)):
            if key in msg and not _digits(msg[key], n):
                raise Decline("30")
        if ctx.kind in FINANCIAL and len(msg.get("42", "")) != 15:
            raise Decline("30")
        if "2" in msg and not msg["2"].isdigit():
            raise Decline("30")
        if "52" in msg and not all(c in "0123456789ABCDEF" for c in msg["52"]):
            raise Decline("30")
        if ctx.kind in NEEDS_PAN and "2" not in msg:
            raise Decline("30")
        if ctx.kind in NEEDS_AMOUNT and "4" not in msg:
            raise Decline("30")
        if ctx.kind == Kind.REVERSAL and codec.parse_original(msg.get("90", "")) is None:
            raise Decline("30")
        if ctx.kind == Kind.COMPLETION and (
            codec.parse_original(msg.get("90", "")) is None or len(msg.get("38", "")) != 6
        ):
            raise Decline("30")
        if ctx.kind in (Kind.VOID, Kind.REFUND) and len(msg.get("37", "")) != 12:
            raise Decline("30")
        if ctx.kind == Kind.SETTLEMENT:
            for key, n in (("60", 6), ("74", 10), ("76", 10), ("86", 16), ("88", 16)):
                if not _digits(msg.get(key), n):
                    raise Decline("30")

    def network(self, session: Session, ctx: Ctx) -> None:
        """0800: sign-on hands out new TPK/TAK under the TMK; echo and sign-off answer 00."""
        terminal = self.load_terminal(session, ctx.tid, fresh=True)
        ctx.terminal = terminal
        if terminal is None or not terminal.active or terminal.tmk is None:
            raise Decline("58")
        if not terminal.merchant_active:
            raise Decline("03")
        if "42" in ctx.msg and ctx.msg["42"] != terminal.mid:
            raise Decline("03")
        if ctx.kind == Kind.SIGN_ON:
            tpk, tak = crypto.new_key(), crypto.new_key()
            row = session.execute(
                select(SessionKey).where(SessionKey.tid == ctx.tid)
            ).scalar_one_or_none()
            if row is None:
                row = SessionKey(tid=ctx.tid, terminal_id=terminal.id)
                session.add(row)
            row.terminal_id = terminal.id
            row.business_date = self.today()
            row.tpk_under_tmk = crypto.encrypt_key(terminal.tmk, tpk)
            row.tpk_kcv = crypto.kcv(tpk)
            row.tak_under_tmk = crypto.encrypt_key(terminal.tmk, tak)
            row.tak_kcv = crypto.kcv(tak)
            row.signed_on_at = utcnow()
            self.keys[ctx.tid] = Keys(self.today(), tpk, tak)
            ctx.response["62"] = row.tpk_under_tmk + row.tpk_kcv + row.tak_under_tmk + row.tak_kcv
        elif ctx.kind == Kind.SIGN_OFF:
            self.keys.pop(ctx.tid, None)
            session.execute(
                SessionKey.__table__.delete().where(SessionKey.tid == ctx.tid)  # type: ignore[attr-defined]
            )
        ctx.rc = "00"
        ctx.response["39"] = "00"

    def check_signed_on(self, session: Session, ctx: Ctx) -> None:
        keys = self.load_keys(session, ctx.tid)
        if keys is None or keys.business_date != self.today():
            keys = self.load_keys(session, ctx.tid, fresh=True)
        if keys is None or keys.business_date != self.today():
            raise Decline("Z1")
        ctx.keys = keys

    def check_mac(self, session: Session, ctx: Ctx) -> None:
        assert ctx.keys is not None
        where = codec.mac_of(ctx.raw, ctx.msg)
        if where is None:
            raise Decline("A0")
        data, given = where
        if not crypto.mac_ok(ctx.keys.tak, data, given):
            # another gateway process may have signed this terminal on again
            fresh = self.load_keys(session, ctx.tid, fresh=True)
            if fresh is None or not crypto.mac_ok(fresh.tak, data, given):
                raise Decline("A0")
            ctx.keys = fresh
        ctx.tak = ctx.keys.tak
        ctx.dup_key = f"{ctx.tid}{ctx.local_date}{ctx.stan}"

    def check_duplicate(self, session: Session, ctx: Ctx) -> bool:
        """A repeat of TID + STAN + local date: the stored response, nothing done again."""
        assert ctx.dup_key is not None
        found = self.recent.get(ctx.dup_key)
        if found is None:
            if ctx.dup_key in self.prefetched_dups:
                stored = self.prefetched_dups[ctx.dup_key]
            else:
                row = session.execute(
                    select(Journal.request, Journal.response).where(Journal.dup_key == ctx.dup_key)
                ).first()
                stored = (row.request, row.response) if row is not None else None
            if stored is None:
                return False
            fingerprint = self._fingerprint({**stored[0], "2": ""})
            found = (fingerprint, stored[1])
            same = self._fingerprint({**ctx.msg, "2": ""}) == fingerprint
        else:
            same = found[0] == self._fingerprint(ctx.msg)
        ctx.replay = True
        if same:
            ctx.response = dict(found[1])
            ctx.rc = ctx.response.get("39", "")
        else:
            ctx.rc = "94"
            ctx.response["39"] = "94"
        return True

    def check_terminal(self, session: Session, ctx: Ctx) -> None:
        terminal = self.load_terminal(session, ctx.tid)
        ctx.terminal = terminal
        if terminal is None or not terminal.active:
            raise Decline("58")
        if not terminal.merchant_active or ctx.msg.get("42", terminal.mid) != terminal.mid:
            raise Decline("03")

    def check_card(self, session: Session, ctx: Ctx) -> None:
        pan = ctx.msg.get("2", "")
        if not pan:
            return
        ctx.pan = pan
        if not crypto.luhn_ok(pan):
            raise Decline("14")
        ctx.pan_hash = self.prefetched_hashes.get(pan) or crypto.pan_hash(pan)
        ctx.card_type = self.card_type_of(pan)
        expiry = ctx.msg.get("14")
        if expiry and expiry < self.month():
            raise Decline("54")

    def check_amount(self, session: Session, ctx: Ctx) -> None:
        if "4" not in ctx.msg:
            return
        ctx.amount = int(ctx.msg["4"])
        if ctx.kind in NEEDS_AMOUNT and ctx.amount <= 0:
            raise Decline("13")
        if ctx.msg.get("49", "156") != "156":
            raise Decline("13")
        if ctx.kind in (Kind.PURCHASE, Kind.PREAUTH, Kind.COMPLETION):
            if ctx.amount > self.config.max_amount:
                raise Decline("61")
            terminal = ctx.terminal
            assert terminal is not None
            day = ctx.local_date
            if terminal.merchant_id is not None and terminal.merchant_daily_limit:
                spent = self._merchant_total(session, terminal.merchant_id, day)
                if spent + ctx.amount > terminal.merchant_daily_limit:
                    raise Decline("61")
            if self.config.terminal_daily_limit:
                spent = self._terminal_total(session, terminal.tid, day)
                if spent + ctx.amount > self.config.terminal_daily_limit:
                    raise Decline("61")
            limit = self.config.card_daily_count
            if ctx.pan_hash and limit and self._card_count(session, ctx.pan_hash, day) >= limit:
                raise Decline("65")

    def _day_start(self, day: str) -> datetime:
        from zoneinfo import ZoneInfo

        from cardops.core.config import get_settings

        parsed = datetime.strptime(day, "%Y%m%d").replace(tzinfo=ZoneInfo(get_settings().timezone))
        return parsed

    def _approved_today(self, session: Session, day: str) -> Any:
        return (
            select(func.coalesce(func.sum(Journal.amount), 0))
            .where(Journal.approved.is_(True), Journal.kind.in_(DEBITS))
            .where(Journal.reversed.is_(False), Journal.voided.is_(False))
            .where(Journal.local_date == day)
        )

    def _merchant_total(self, session: Session, merchant_id: int, day: str) -> int:
        key = (merchant_id, day)
        if key not in self.merchant_totals:
            query = self._approved_today(session, day).where(Journal.merchant_id == merchant_id)
            self.merchant_totals[key] = int(session.execute(query).scalar_one())
        return self.merchant_totals[key]

    def _terminal_total(self, session: Session, tid: str, day: str) -> int:
        key = (tid, day)
        if key not in self.terminal_totals:
            query = self._approved_today(session, day).where(Journal.tid == tid)
            self.terminal_totals[key] = int(session.execute(query).scalar_one())
        return self.terminal_totals[key]

    def _card_count(self, session: Session, pan_hash: str, day: str) -> int:
        key = (pan_hash, day)
        if key not in self.card_counts:
            query = select(func.count(Journal.id)).where(
                Journal.pan_hash == pan_hash,
                Journal.local_date == day,
                Journal.approved.is_(True),
                Journal.kind.in_(DEBITS),
            )
            self.card_counts[key] = int(session.execute(query).scalar_one())
        return self.card_counts[key]

    def _uncount_ctx(self, ctx: Ctx) -> None:
        """Take back what :meth:`_count_approved` added (a provisional approval declined)."""
        if ctx.kind.value not in DEBITS or ctx.terminal is None:
            return
        day = ctx.local_date
        if ctx.terminal.merchant_id is not None:
            key = (ctx.terminal.merchant_id, day)
            if key in self.merchant_totals:
                self.merchant_totals[key] -= ctx.amount
        if (ctx.tid, day) in self.terminal_totals:
            self.terminal_totals[(ctx.tid, day)] -= ctx.amount
        if ctx.pan_hash and (ctx.pan_hash, day) in self.card_counts:
            self.card_counts[(ctx.pan_hash, day)] -= 1

    def _count_approved(self, ctx: Ctx) -> None:
        if ctx.kind.value not in DEBITS or ctx.terminal is None:
            return
        day = ctx.local_date
        if ctx.terminal.merchant_id is not None:
            key = (ctx.terminal.merchant_id, day)
            if key in self.merchant_totals:
                self.merchant_totals[key] += ctx.amount
        if (ctx.tid, day) in self.terminal_totals:
            self.terminal_totals[(ctx.tid, day)] += ctx.amount
        if ctx.pan_hash and (ctx.pan_hash, day) in self.card_counts:
            self.card_counts[(ctx.pan_hash, day)] += 1

    def check_stoplist(self, ctx: Ctx) -> None:
        if ctx.pan_hash and ctx.pan_hash in self.stoplist:
            raise Decline(STOP_CODES.get(self.stoplist[ctx.pan_hash], "59"))

    def risk(self, session: Session, ctx: Ctx) -> None:
        """The risk participant: the plugged-in hook scores the request (or nothing)."""
        if self.risk_hook is not None:
            self.risk_hook.evaluate(session, ctx)

    # --- execution ------------------------------------------------------------------------

    def is_onus(self, pan: str) -> bool:
        return pan.startswith(self.config.onus_bin)

    def card_type_of(self, pan: str) -> str:
        """Credit when the card number starts with a configured credit BIN, else debit
        (on-us wallet cards are debit)."""
        if not self.is_onus(pan) and pan.startswith(self.config.credit_bins):
            return "credit"
        return "debit"

    def find_original(self, session: Session, ctx: Ctx) -> Journal | None:
        msg = ctx.msg
        if ctx.kind in (Kind.VOID, Kind.REFUND):
            query = select(Journal).where(
                Journal.rrn == msg["37"],
                Journal.tid == ctx.tid,
                Journal.kind.in_(DEBITS),
                Journal.approved.is_(True),
            )
        else:
            original = codec.parse_original(msg["90"])
            assert original is not None
            mti, stan, _ = original
            query = select(Journal).where(
                Journal.tid == ctx.tid,
                Journal.stan == stan,
                Journal.mti == mti,
                Journal.kind != Kind.REVERSAL.value,
            )
            if ctx.kind == Kind.COMPLETION:
                query = query.where(Journal.kind == Kind.PREAUTH.value, Journal.approved.is_(True))
        return session.execute(query.order_by(Journal.id.desc()).limit(1)).scalar_one_or_none()

    def execute(self, session: Session, ctx: Ctx, actor: Any) -> None:
        if ctx.kind == Kind.SETTLEMENT:
            self.settle(session, ctx)
            return
        if ctx.kind == Kind.REVERSAL:
            self.reverse(session, ctx, actor)
            return
        if ctx.kind in (Kind.VOID, Kind.REFUND, Kind.COMPLETION):
            original = self.find_original(session, ctx)
            if original is None:
                raise Decline("25")
            ctx.original = original
            if ctx.pan_hash and original.pan_hash and ctx.pan_hash != original.pan_hash:
                raise Decline("25")
            if not ctx.pan_hash:
                ctx.pan_hash = original.pan_hash
                ctx.pan = ""
            ctx.card_type = ctx.card_type or original.card_type
            self._check_original(session, ctx, original)
            ctx.route = original.route
        else:
            ctx.route = "on-us" if self.is_onus(ctx.pan) else "upstream"
        if ctx.route == "upstream":
            self.prepare_forward(ctx)
            return
        self.onus(session, ctx, actor)

    def _check_original(self, session: Session, ctx: Ctx, original: Journal) -> None:
        if original.reversed or original.voided:
            raise Decline("12")
        if ctx.kind == Kind.VOID:
            if ctx.amount != original.amount or original.settled_batch_id is not None:
                raise Decline("13" if ctx.amount != original.amount else "12")
        elif ctx.kind == Kind.REFUND:
            refunded = session.execute(
                select(func.coalesce(func.sum(Journal.amount), 0)).where(
                    Journal.original_id == original.id,
                    Journal.kind == Kind.REFUND.value,
                    Journal.approved.is_(True),
                    Journal.reversed.is_(False),
                )
            ).scalar_one()
            if ctx.amount + int(refunded) > original.amount:
                raise Decline("13")
        elif ctx.kind == Kind.COMPLETION:
            if original.completed:
                raise Decline("12")
            if ctx.msg.get("38") != original.auth_code:
                raise Decline("25")
            if ctx.amount > original.amount:
                raise Decline("13")

    def approve(self, ctx: Ctx, *, auth: bool = True) -> None:
        ctx.rc = "00"
        if "37" not in ctx.response:
            ctx.response["37"] = self.next_rrn()
        if auth:
            ctx.response["38"] = self.auth_code()
        self._count_approved(ctx)

    # on-us --------------------------------------------------------------------------------

    def onus_card(self, session: Session, ctx: Ctx) -> tuple[OnusRow, CardRef]:
        if ctx.pan_hash in self.prefetched_cards:
            row = self.prefetched_cards[ctx.pan_hash or ""]
        else:
            found = _onus_rows(session, [ctx.pan_hash or ""])
            row = found[0] if found else None
        if row is None:
            raise Decline("14")
        onus, card = row
        if ctx.kind in (Kind.PURCHASE, Kind.PREAUTH, Kind.BALANCE):
            if card.state == "lost":
                raise Decline("41")
            if card.state != "active":
                raise Decline("57")
            if onus.expiry < self.month() or (onus.valid_until and onus.valid_until < self.today()):
                raise Decline("54")
            if ctx.msg.get("14") and ctx.msg["14"] != onus.expiry:
                raise Decline("54")
        return onus, card

    def verify_pin(self, session: Session, ctx: Ctx, onus: OnusRow) -> None:
        block = ctx.msg.get("52")
        if onus.pin_tries >= self.config.pin_tries:
            raise Decline("75")
        assert ctx.keys is not None
        pin = crypto.decrypt_pin(ctx.keys.tpk, block, ctx.pan) if block else None
        stored = onus.pin_verification or ""
        ok = False
        if pin and stored:
            marker = hashlib.sha256(f"{stored}|{pin}".encode()).hexdigest()
            ok = marker in self.pin_ok or crypto.pin_matches(stored, pin, onus.pan_hash)
            if ok and len(self.pin_ok) < 100_000:
                self.pin_ok.add(marker)
        if ok:
            if onus.pin_tries:
                onus.pin_tries = 0
                _set_pin_tries(session, onus)
            return
        onus.pin_tries += 1
        _set_pin_tries(session, onus)
        raise Decline("75" if onus.pin_tries >= self.config.pin_tries else "55")

    def onus(self, session: Session, ctx: Ctx, actor: Any) -> None:
        from cardops.wallets import service as wallets

        onus, card = self.onus_card(session, ctx)
        if ctx.kind in NEEDS_PIN:
            self.verify_pin(session, ctx, onus)
        reference = f"gateway {ctx.tid}/{ctx.stan}"
        if ctx.kind == Kind.BALANCE:
            amount = wallets.balance(session, card)
            ctx.response["54"] = f"0002156{'C' if amount >= 0 else 'D'}{abs(amount):012d}"
            self.approve(ctx, auth=False)
        elif ctx.kind == Kind.PREAUTH:
            if wallets.balance(session, card) < ctx.amount:
                raise Decline("51")
            self.approve(ctx)
        elif ctx.kind == Kind.PURCHASE:
            # approved provisionally; the batch debits every payment at once (debit_waiting)
            ctx.wallet_key = f"gw:{ctx.dup_key}"
            ctx.debit = wallets.DebitRequest(
                card_number=card.number,
                amount=ctx.amount,
                reference=reference,
                idempotency_key=ctx.wallet_key,
                card=card,  # prefetched in this session: not read again
            )
            self.approve(ctx)
        elif ctx.kind == Kind.COMPLETION:
            key = f"gw:{ctx.dup_key}"
            result = wallets.debit(
                session,
                card_number=card.number,
                amount=ctx.amount,
                reference=reference,
                idempotency_key=key,
                actor=actor,
            )
            if not result.approved:
                raise Decline(self._wallet_code(result.reason, card))
            ctx.wallet_key = key
            self.approve(ctx)
            if ctx.original is not None:
                ctx.original.completed = True
        elif ctx.kind == Kind.VOID:
            assert ctx.original is not None
            if ctx.original.wallet_key:
                result = wallets.reverse_debit(
                    session,
                    idempotency_key=ctx.original.wallet_key,
                    reason=f"void {ctx.tid}/{ctx.stan}",
                    actor=actor,
                )
                if not result.approved and result.reason != wallets.DUPLICATE:
                    raise Decline("12")
            ctx.original.voided = True
            self.approve(ctx)
        elif ctx.kind == Kind.REFUND:
            key = f"gw-refund:{ctx.dup_key}"
            self.credit_wallet(session, card, ctx.amount, key, reference, actor)
            ctx.wallet_key = key
            self.approve(ctx)

    @staticmethod
    def _wallet_code(reason: str, card: Any) -> str:
        return {
            "insufficient_funds": "51",
            "unknown_card": "14",
            "card_not_active": "41" if card.state == "lost" else "57",
            "wallet_disabled": "57",
            "duplicate": "94",
        }.get(reason, "05")

    def credit_wallet(
        self, session: Session, card: Any, amount: int, key: str, reference: str, actor: Any
    ) -> None:
        """A refund back to the wallet: merchant payables debited, the wallet credited."""
        from cardops.ledger import service as ledger
        from cardops.ledger.chart import MERCHANT_PAYABLES
        from cardops.wallets import service as wallets
        from cardops.wallets.permissions import WALLETS_DEBIT

        account = wallets.find_account(session, card)
        if account is None:
            raise Decline("57")
        ledger.post(
            session=session,
            actor=actor,
            lines=[(MERCHANT_PAYABLES, amount), (account.code, -amount)],
            description=f"Wallet refund card {card.number}: {reference}",
            reference=reference,
            idempotency_key=key,
            permission=WALLETS_DEBIT,
        )

    def undo_onus(self, session: Session, original: Journal, actor: Any, why: str) -> None:
        from cardops.ledger import service as ledger
        from cardops.wallets import service as wallets
        from cardops.wallets.permissions import WALLETS_DEBIT

        if not original.wallet_key:
            return
        if original.kind == Kind.REFUND.value:
            posting = ledger.find_posting_by_key(session, original.wallet_key)
            if posting is not None and posting.reversed_by is None:
                ledger.reverse(
                    session=session,
                    actor=actor,
                    posting_id=posting.id,
                    reason=why,
                    permission=WALLETS_DEBIT,
                )
            return
        wallets.reverse_debit(session, idempotency_key=original.wallet_key, reason=why, actor=actor)

    # reversal and settlement -------------------------------------------------------------

    def reverse(self, session: Session, ctx: Ctx, actor: Any) -> None:
        """0400: undo the original named by field 90, once. An unknown original answers 25."""
        original = self.find_original(session, ctx)
        if original is None:
            raise Decline("25")
        ctx.original = original
        ctx.pan_hash = original.pan_hash
        ctx.route = original.route
        if original.kind == Kind.VOID.value and original.approved and not original.reversed:
            raise Decline("12")
        if original.approved and not original.reversed:
            why = f"reversal {ctx.tid}/{ctx.stan}"
            if original.route == "on-us":
                self.undo_onus(session, original, actor, why)
            elif original.route == "upstream":
                self.queue_upstream_reversal(session, original)
            if original.kind == Kind.COMPLETION.value and original.original_id:
                preauth = session.get(Journal, original.original_id)
                if preauth is not None:
                    preauth.completed = False
            self._uncount(original)
        original.reversed = True
        ctx.rc = "00"

    def _uncount(self, original: Journal) -> None:
        if original.kind not in DEBITS:
            return
        if original.merchant_id is not None:
            key = (original.merchant_id, original.local_date)
            if key in self.merchant_totals:
                self.merchant_totals[key] -= original.amount
        if (original.tid, original.local_date) in self.terminal_totals:
            self.terminal_totals[(original.tid, original.local_date)] -= original.amount

    def settle(self, session: Session, ctx: Ctx) -> None:
        """0500: compare the terminal's batch totals with the journal's (对账)."""
        msg = ctx.msg
        batch_no = msg["60"]
        rows = list(
            session.execute(
                select(Journal.id, Journal.kind, Journal.amount).where(
                    Journal.tid == ctx.tid,
                    Journal.settled_batch_id.is_(None),
                    Journal.approved.is_(True),
                    Journal.reversed.is_(False),
                    Journal.voided.is_(False),
                    Journal.kind.in_((*DEBITS, Kind.REFUND.value)),
                    Journal.batch_no.in_((batch_no, "")),
                )
            )
        )
        debits = [r for r in rows if r.kind in DEBITS]
        credits = [r for r in rows if r.kind == Kind.REFUND.value]
        batch = Batch(
            tid=ctx.tid,
            mid=msg.get("42", ""),
            batch_no=batch_no,
            terminal_credits=int(msg["74"]),
            terminal_debits=int(msg["76"]),
            terminal_credit_amount=int(msg["86"]),
            terminal_debit_amount=int(msg["88"]),
            gateway_credits=len(credits),
            gateway_debits=len(debits),
            gateway_credit_amount=sum(r.amount for r in credits),
            gateway_debit_amount=sum(r.amount for r in debits),
        )
        batch.balanced = (
            batch.terminal_credits == batch.gateway_credits
            and batch.terminal_debits == batch.gateway_debits
            and batch.terminal_credit_amount == batch.gateway_credit_amount
            and batch.terminal_debit_amount == batch.gateway_debit_amount
        )
        session.add(batch)
        session.flush()
        if batch.balanced:
            ids = [r.id for r in rows]
            for start in range(0, len(ids), 500):
                session.execute(
                    Journal.__table__.update()  # type: ignore[attr-defined]
                    .where(Journal.id.in_(ids[start : start + 500]))
                    .values(settled_batch_id=batch.id)
                )
        ctx.rc = "00" if batch.balanced else "95"

    # upstream ----------------------------------------------------------------------------

    def prepare_forward(self, ctx: Ctx) -> None:
        if not self.upstream_available():
            raise Decline("91")
        msg = ctx.msg
        out: codec.Message = {
            k: msg[k]
            for k in ("t", "2", "3", "4", "7", "12", "13", "14", "22", "25", "38", "41", "42", "49")
            if k in msg
        }
        ctx.response["37"] = self.next_rrn()
        out["37"] = ctx.response["37"]
        if ctx.original is not None:
            out["37"] = ctx.original.rrn or ""
            if ctx.original.upstream_stan:
                out["90"] = codec.original_data(
                    ctx.original.mti, ctx.original.upstream_stan, ctx.original.transmitted or ""
                )
            if "2" not in out and ctx.original.pan_masked:
                pass  # the host finds the original by RRN
        if ctx.kind in NEEDS_PIN:
            block = msg.get("52")
            if not block:
                raise Decline("55")
            assert ctx.keys is not None
            out["52"] = crypto.translate_pin_block(ctx.keys.tpk, self.zpk, block)
        out.setdefault("7", utcnow().strftime("%m%d%H%M%S"))
        ctx.forward = out

    def finish_upstream(self, session: Session, ctx: Ctx, actor: Any) -> None:
        """The host answered (or not): journal the outcome; queue a reversal after a timeout."""
        ctx.sent, ctx.forward = ctx.forward, None
        if ctx.original is not None:
            ctx.original = session.get(Journal, ctx.original.id)
        reply = ctx.upstream_reply
        if reply is None:
            ctx.rc = "91"
            ctx.response["39"] = "91"
            if ctx.kind != Kind.BALANCE and ctx.upstream_stan:
                self.queue_upstream_reversal(session, None, ctx)
            return
        rc = reply.get("39", "96")
        if len(rc) != 2:
            rc = "96"
        if rc == "00":
            self.approve(ctx, auth=ctx.kind != Kind.BALANCE)
            if "38" in reply and ctx.kind != Kind.BALANCE:
                ctx.response["38"] = reply["38"][:6]
            if "54" in reply:
                ctx.response["54"] = reply["54"]
            if ctx.original is not None:
                if ctx.kind == Kind.VOID:
                    ctx.original.voided = True
                elif ctx.kind == Kind.COMPLETION:
                    ctx.original.completed = True
        ctx.rc = rc
        ctx.response["39"] = rc

    def queue_upstream_reversal(
        self, session: Session, original: Journal | None, ctx: Ctx | None = None
    ) -> None:
        """Store a 0400 for the upstream host; the SAF task forwards it until answered."""
        if original is not None:
            mti, stan, transmitted = original.mti, original.upstream_stan, original.transmitted
            tid, amount, mid = original.tid, original.amount, original.mid
            journal_id: int | None = original.id
        else:
            assert ctx is not None and ctx.sent is not None
            mti, stan = ctx.sent["t"], ctx.upstream_stan
            transmitted, tid = ctx.sent.get("7", ""), ctx.tid
            amount, journal_id, mid = ctx.amount, ctx.journal_id, ctx.msg.get("42", "")
        if not stan:
            return
        message = {
            "t": "0400",
            "3": "000000",
            "4": f"{amount:012d}",
            "7": utcnow().strftime("%m%d%H%M%S"),
            "41": tid,
            "42": mid,
            "90": codec.original_data(mti, stan, transmitted),
        }
        if original is None and ctx is not None:
            ctx.saf = message  # stored with the journal row (its id) at the end of the batch
            return
        session.add(SafEntry(journal_id=journal_id, message=message))

    # store and forward -------------------------------------------------------------------

    def saf_pending(self, limit: int = 50) -> list[tuple[int, dict[str, str]]]:
        with self.sessions() as session:
            rows = session.execute(
                select(SafEntry.id, SafEntry.message)
                .where(SafEntry.done_at.is_(None))
                .order_by(SafEntry.id)
                .limit(limit)
            ).all()
            depth = session.execute(
                select(func.count(SafEntry.id)).where(SafEntry.done_at.is_(None))
            ).scalar_one()
        self.metrics.saf_depth = int(depth)
        return [(r.id, dict(r.message)) for r in rows]

    def saf_result(self, entry_id: int, rc: str | None) -> None:
        with self.sessions() as session:
            entry = session.get(SafEntry, entry_id)
            if entry is None:
                return
            entry.attempts += 1
            entry.last_attempt_at = utcnow()
            if rc is not None:
                entry.done_at = utcnow()
                entry.response_code = rc[:2]
            session.commit()

    def heartbeat(self) -> None:
        from cardops.gateway.models import Node

        with self.sessions() as session:
            node = session.execute(select(Node).where(Node.name == self.node)).scalar_one_or_none()
            if node is None:
                node = Node(name=self.node)
                session.add(node)
            node.heartbeat_at = utcnow()
            node.metrics = self.metrics.snapshot()
            session.commit()

    def alert(self, subject: str, body: str, dedupe: str) -> None:
        """An operations alert through the outbox (one per ``dedupe`` key)."""
        from cardops.notify import service as notify

        try:
            with self.sessions() as session:
                notify.enqueue(
                    session,
                    channel="email",
                    recipient=self.config.alert_recipient,
                    subject=subject,
                    body=body,
                    dedupe_key=dedupe[:128],
                )
                session.commit()
        except Exception:
            log.exception("alert not queued: %s", subject)
