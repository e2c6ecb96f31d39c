"""The door decision engine: may card X open door Y now?

Everything a decision needs is held in memory, so :meth:`DecisionEngine.decide` runs no
database query:

* cards by printed number, by chip UID (upper-case hex) and by Wiegand facility:number, each
  pointing at one compact record (state, validity, property, grants, parking permits);
* doors by code (id, car-park gate or not, active, property);
* access groups as sets of door ids; schedules as periods per weekday (7 = holiday);
  holidays per property.

The index is built from the database on first use and then follows the credential-change
log (``CredentialChange``; its id is the version): only the cards and doors that changed are
read again.

How fast a change reaches decisions:

* **In this process**: :func:`cardops.access.credentials.on_committed` marks the index stale
  when a transaction with credential changes commits, and the next decision refreshes it
  first. A loss report committed here is enforced by every decision that starts after the
  commit returns.
* **From other processes on this host** (another web worker, the CLI): the committing process
  touches the change signal file ``<var>/access-changes`` after the commit; every decision
  looks at that file's modification time (one ``stat``, about a microsecond) and refreshes
  first when it moved. A loss committed by any process of this host is therefore enforced
  by every decision that starts after the commit (and the touch) returns.
* **Anything else** (another host sharing the database, a change written without the
  services): the engine also looks at the latest version at most every ``poll_interval``
  seconds (``CARDOPS_ACCESS_POLL_MS``, default 500 ms) from the decision path.

Decision order and reason codes (``Reason``): unknown door, door disabled, unknown card, card
state (not issued, lost, cancelled, returned, replaced), not yet valid, expired; at a car-park
gate the card needs an active parking permit covering today (the permit is the gate's
authorization; groups and schedules do not apply there); elsewhere the door must be in one
of the card's groups and the local time (``settings.timezone``) inside that grant's schedule.
"""

from __future__ import annotations

import gc
import logging
import os
import re
import threading
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from cardops.access import wiegand
from cardops.access.credentials import on_committed
from cardops.access.models import (
    AccessGroupDoor,
    CardGrant,
    CredentialChange,
    Door,
    DoorKind,
    Holiday,
    Reason,
    SchedulePeriod,
    TimeSchedule,
)
from cardops.cards.models import Card, CardState
from cardops.core import clock
from cardops.core.clock import as_utc, utcnow
from cardops.core.config import get_settings
from cardops.core.db import session_factory
from cardops.core.errors import CardopsError

log = logging.getLogger("cardops.access")

# A card record is a tuple (compact for a million cards):
ID, NUMBER, UID, WKEY, DENY, VALID_FROM, VALID_UNTIL, PROPERTY, GRANTS, PARKING = range(10)
# DENY: None for an active card, else the reason code its state gives.
# VALID_FROM/UNTIL: date ordinals or 0. GRANTS: ((group_id, schedule_id or 0), …).
# PARKING: ((valid_from ordinal, valid_until ordinal, property_id), …) of active permits.

STATE_REASON: dict[str, str | None] = {
    CardState.ACTIVE.value: None,
    CardState.STOCK.value: Reason.NOT_ISSUED.value,
    CardState.OFFICE.value: Reason.NOT_ISSUED.value,
    CardState.SCRAPPED.value: Reason.NOT_ISSUED.value,
    CardState.LOST.value: Reason.LOST.value,
    CardState.CANCELLED.value: Reason.CANCELLED.value,
    CardState.RETURNED.value: Reason.RETURNED.value,
    CardState.REPLACED.value: Reason.REPLACED.value,
}
_UID_SEPARATORS = re.compile(r"[\s:\-]")
_HEX = re.compile(r"^[0-9A-F]{2,32}$")
_BATCH = 500

OK = Reason.OK.value
UNKNOWN_DOOR = Reason.UNKNOWN_DOOR.value
DOOR_DISABLED = Reason.DOOR_DISABLED.value
UNKNOWN_CARD = Reason.UNKNOWN_CARD.value
NOT_YET_VALID = Reason.NOT_YET_VALID.value
EXPIRED = Reason.EXPIRED.value
NO_PARKING = Reason.NO_PARKING.value
PARKING_EXPIRED = Reason.PARKING_EXPIRED.value
DOOR_NOT_IN_GROUP = Reason.DOOR_NOT_IN_GROUP.value
OUTSIDE_SCHEDULE = Reason.OUTSIDE_SCHEDULE.value


class Decision(NamedTuple):
    allowed: bool
    reason: str
    card_id: int | None = None
    door_id: int | None = None


def normalize_uid(text: str) -> str:
    """``"04:a1:b2:c3"`` / ``"04 A1 B2 C3"`` / ``"04a1b2c3"`` → ``"04A1B2C3"``."""
    return _UID_SEPARATORS.sub("", text).upper()


def _poll_interval() -> float:
    return get_settings().access_poll_ms / 1000


def signal_path() -> Path:
    """The file whose modification time says "credentials changed" to every process here."""
    return get_settings().var_dir / "access-changes"


def _signal_stamp(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return 0


def touch_signal() -> None:
    """Tell the other processes of this host that credentials changed (after a commit)."""
    path = signal_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        now = time.time_ns()
        if not path.exists():
            path.touch()
        os.utime(path, ns=(now, now))
    except OSError:  # read-only var directory: the poll still propagates the change
        log.warning("could not touch %s; other processes see the change at their next poll", path)


def _ordinal(value: date | None) -> int:
    return value.toordinal() if value is not None else 0


class DecisionEngine:
    """The in-memory index and the decision function. One per process (:func:`get_engine`)."""

    def __init__(self, *, poll_interval: float | None = None) -> None:
        self.poll_interval = _poll_interval() if poll_interval is None else poll_interval
        self.tz = ZoneInfo(get_settings().timezone)
        self._lock = threading.RLock()
        self._built = False
        self._dirty = True
        self._next_poll = 0.0
        self.version = 0
        self._version_at: datetime | None = None
        self.by_number: dict[str, tuple[Any, ...]] = {}
        self.by_uid: dict[str, tuple[Any, ...]] = {}
        self.by_wiegand: dict[int, tuple[Any, ...]] = {}
        self.by_id: dict[int, tuple[Any, ...]] = {}
        self.doors: dict[str, tuple[int, bool, bool, int]] = {}
        self.group_doors: dict[int, frozenset[int]] = {}
        self.schedules: dict[int, tuple[str, tuple[tuple[tuple[int, int], ...], ...]]] = {}
        self.holidays: dict[int, frozenset[int]] = {}
        self.build_seconds = 0.0
        self.refreshes = 0
        self._signal_path = str(signal_path())
        self._signal_seen = _signal_stamp(self._signal_path)
        self._clock: tuple[int, datetime, int] = (0, datetime.min, 0)

    # --- staleness ------------------------------------------------------------------------

    def mark_stale(self) -> None:
        """Refresh before the next decision (called after a credential change commits)."""
        self._dirty = True

    def _ensure_fresh(self) -> None:
        with self._lock:
            if not self._built:
                self.rebuild()
                return
            now = time.monotonic()
            if not self._dirty and now < self._next_poll:
                return
            self._dirty = False
            self._next_poll = now + self.poll_interval
            self.refresh()

    # --- loading --------------------------------------------------------------------------

    def _session(self) -> Session:
        return session_factory()

    def rebuild(self) -> None:
        """Read everything again (first use, a restored database, a rolled-back change)."""
        started = time.perf_counter()
        with self._lock:
            self._dirty = False
            self._next_poll = time.monotonic() + self.poll_interval
            session = self._session()
            try:
                version, version_at = self._latest(session)
                self._load_topology(session)
                self.by_number, self.by_uid, self.by_wiegand, self.by_id = {}, {}, {}, {}
                self._load_cards(session, None)
                self.version, self._version_at = version, version_at
                self._built = True
            finally:
                session.rollback()
                session.close()
        # A million long-lived records: keep them out of the cyclic garbage collector's scans
        # (a full collection would otherwise walk them all, a latency spike on every request).
        gc.collect()
        gc.freeze()
        self.build_seconds = time.perf_counter() - started
        log.info(
            "door decision index built: %d cards, %d doors in %.1f s",
            len(self.by_id),
            len(self.doors),
            self.build_seconds,
        )

    def _latest(self, session: Session) -> tuple[int, datetime | None]:
        row = session.execute(
            select(CredentialChange.id, CredentialChange.at)
            .order_by(CredentialChange.id.desc())
            .limit(1)
        ).first()
        return (row[0], row[1]) if row else (0, None)

    def refresh(self) -> None:
        """Apply the credential changes after our version (only the cards that changed)."""
        from cardops.access.service import safe_version

        with self._lock:
            session = self._session()
            try:
                latest, _ = self._latest(session)
                if self.version:
                    at = session.execute(
                        select(CredentialChange.at).where(CredentialChange.id == self.version)
                    ).scalar_one_or_none()
                    if (
                        at is None
                        or self._version_at is None
                        or as_utc(at) != as_utc(self._version_at)
                    ):
                        # our version was rolled back or the database was restored
                        session.close()
                        self.rebuild()
                        return
                if latest <= self.version:
                    return
                rows = list(
                    session.execute(
                        select(CredentialChange.id, CredentialChange.at, CredentialChange.card_id)
                        .where(CredentialChange.id > self.version)
                        .order_by(CredentialChange.id)
                    )
                )
                if any(card_id is None for _, _, card_id in rows):
                    self._load_topology(session)
                card_ids = sorted({card_id for _, _, card_id in rows if card_id is not None})
                self._load_cards(session, card_ids)
                # Rows after a gap that may still fill in are applied now and again later.
                version = safe_version([(r[0], r[1]) for r in rows], self.version, utcnow())
                if version != self.version:
                    at_by_id = {r[0]: r[1] for r in rows}
                    self.version, self._version_at = version, at_by_id[version]
                self.refreshes += 1
            finally:
                session.rollback()
                session.close()

    def _load_topology(self, session: Session) -> None:
        doors: dict[str, tuple[int, bool, bool, int]] = {}
        for door_id, code, kind, active, property_id in session.execute(
            select(Door.id, Door.code, Door.kind, Door.is_active, Door.property_id)
        ):
            doors[code] = (door_id, kind == DoorKind.CARPARK_GATE.value, bool(active), property_id)
        members: dict[int, set[int]] = {}
        for group_id, door_id in session.execute(
            select(AccessGroupDoor.group_id, AccessGroupDoor.door_id)
        ):
            members.setdefault(group_id, set()).add(door_id)
        periods: dict[int, list[list[tuple[int, int]]]] = {}
        modes: dict[int, str] = {}
        for schedule_id, mode in session.execute(
            select(TimeSchedule.id, TimeSchedule.holiday_mode)
        ):
            modes[schedule_id] = mode
            periods[schedule_id] = [[] for _ in range(8)]
        for schedule_id, weekday, start, end in session.execute(
            select(
                SchedulePeriod.schedule_id,
                SchedulePeriod.weekday,
                SchedulePeriod.start_minute,
                SchedulePeriod.end_minute,
            )
        ):
            if schedule_id in periods and 0 <= weekday <= 7:
                periods[schedule_id][weekday].append((start, end))
        holidays: dict[int, set[int]] = {}
        for property_id, day in session.execute(select(Holiday.property_id, Holiday.day)):
            holidays.setdefault(property_id, set()).add(day.toordinal())
        self.doors = doors
        self.group_doors = {g: frozenset(d) for g, d in members.items()}
        self.schedules = {
            s: (modes[s], tuple(tuple(sorted(day)) for day in periods[s])) for s in modes
        }
        self.holidays = {p: frozenset(days) for p, days in holidays.items()}

    def _load_cards(self, session: Session, card_ids: list[int] | None) -> None:
        """Load all cards (``None``) or the given ones, replacing their records."""
        from cardops.parking.models import ParkingPermit

        if card_ids is None:
            self._load_card_rows(session, ParkingPermit, None)
            return
        for start in range(0, len(card_ids), _BATCH):
            self._load_card_rows(session, ParkingPermit, card_ids[start : start + _BATCH])

    def _load_card_rows(self, session: Session, permit_model: Any, ids: list[int] | None) -> None:
        grants: dict[int, list[tuple[int, int]]] = {}
        gstmt = select(CardGrant.card_id, CardGrant.group_id, CardGrant.schedule_id)
        pstmt = select(
            permit_model.card_id,
            permit_model.valid_from,
            permit_model.valid_until,
            permit_model.property_id,
        ).where(permit_model.state == "active")
        cstmt = select(
            Card.id,
            Card.number,
            Card.uid,
            Card.wiegand_facility,
            Card.wiegand_number,
            Card.state,
            Card.valid_from,
            Card.valid_until,
            Card.property_id,
        )
        if ids is not None:
            gstmt = gstmt.where(CardGrant.card_id.in_(ids))
            pstmt = pstmt.where(permit_model.card_id.in_(ids))
            cstmt = cstmt.where(Card.id.in_(ids))
        for card_id, group_id, schedule_id in session.execute(gstmt):
            grants.setdefault(card_id, []).append((group_id, schedule_id or 0))
        parking: dict[int, list[tuple[int, int, int]]] = {}
        for card_id, valid_from, valid_until, property_id in session.execute(pstmt):
            parking.setdefault(card_id, []).append(
                (_ordinal(valid_from), _ordinal(valid_until), property_id)
            )
        interned: dict[Any, Any] = {}
        found: set[int] = set()
        for cid, number, uid, facility, wnumber, state, vfrom, vuntil, prop in session.execute(
            cstmt
        ):
            found.add(cid)
            card_grants = tuple(sorted(grants.get(cid, ())))
            card_grants = interned.setdefault(card_grants, card_grants)
            permits = tuple(parking.get(cid, ()))
            wkey = (
                wiegand.key_of(facility, wnumber)
                if facility is not None and wnumber is not None
                else None
            )
            rec = (
                cid,
                number,
                normalize_uid(uid) if uid else None,
                wkey,
                STATE_REASON.get(state, Reason.NOT_ISSUED.value),
                _ordinal(vfrom),
                _ordinal(vuntil),
                prop,
                card_grants,
                permits,
            )
            self._put(rec)
        if ids is not None:
            for cid in set(ids) - found:  # deleted cards
                old = self.by_id.pop(cid, None)
                if old is not None:
                    self._drop_keys(old)

    def _drop_keys(self, old: tuple[Any, ...]) -> None:
        if self.by_number.get(old[NUMBER]) is old:
            del self.by_number[old[NUMBER]]
        if old[UID] and self.by_uid.get(old[UID]) is old:
            del self.by_uid[old[UID]]
        if old[WKEY] is not None and self.by_wiegand.get(old[WKEY]) is old:
            del self.by_wiegand[old[WKEY]]

    def _put(self, rec: tuple[Any, ...]) -> None:
        old = self.by_id.get(rec[ID])
        if old is not None:
            self._drop_keys(old)
        self.by_id[rec[ID]] = rec
        self.by_number[rec[NUMBER]] = rec
        if rec[UID]:
            self.by_uid[rec[UID]] = rec
        if rec[WKEY] is not None:
            self.by_wiegand[rec[WKEY]] = rec

    # --- lookups --------------------------------------------------------------------------

    def find_card(self, presented: str) -> tuple[Any, ...] | None:
        """A card by number, UID (hex, any case, with or without separators), Wiegand frame
        (26/34 bits, parity checked) or ``facility:number``."""
        rec = self.by_number.get(presented)
        if rec is not None:
            return rec
        text = presented.strip()
        if not text or len(text) > 64:
            return None
        rec = self.by_number.get(text)
        if rec is not None:
            return rec
        if wiegand.is_frame(text):
            try:
                return self.by_wiegand.get(wiegand.parse_frame(text).key)
            except CardopsError:  # a parity error: an unreadable card is an unknown card
                return None
        pair = wiegand.parse_pair(text)
        if pair is not None:
            rec = self.by_wiegand.get(pair.key)
            if rec is not None:
                return rec
        uid = normalize_uid(text)
        if _HEX.match(uid):
            return self.by_uid.get(uid)
        return None

    def card_id_of(self, presented: str) -> int | None:
        self._ensure_fresh()
        rec = self.find_card(presented)
        return rec[ID] if rec is not None else None

    # --- the decision ---------------------------------------------------------------------

    def decide(self, card: str, door: str, at: datetime | None = None) -> Decision:
        """Allow or deny ``card`` at ``door`` at ``at`` (default now), with the reason."""
        stamp = _signal_stamp(self._signal_path)
        if stamp != self._signal_seen:
            self._signal_seen = stamp  # before refreshing: a later touch refreshes again
            self._dirty = True
        if self._dirty or time.monotonic() >= self._next_poll:
            self._ensure_fresh()
        door_rec = self.doors.get(door)
        if door_rec is None:
            return Decision(False, UNKNOWN_DOOR)
        door_id, is_gate, active, door_property = door_rec
        if not active:
            return Decision(False, DOOR_DISABLED, None, door_id)
        rec = self.by_number.get(card) or self.find_card(card)
        if rec is None:
            return Decision(False, UNKNOWN_CARD, None, door_id)
        card_id = rec[ID]
        deny = rec[DENY]
        if deny is not None:
            return Decision(False, deny, card_id, door_id)
        if at is not None:
            moment = at.astimezone(self.tz)
            today = moment.toordinal()
        else:
            moment, today = self._now()
        if rec[VALID_FROM] and today < rec[VALID_FROM]:
            return Decision(False, NOT_YET_VALID, card_id, door_id)
        if rec[VALID_UNTIL] and today > rec[VALID_UNTIL]:
            return Decision(False, EXPIRED, card_id, door_id)
        if is_gate:
            reason = NO_PARKING
            for start, end, permit_property in rec[PARKING]:
                if permit_property != door_property:
                    continue
                if start <= today <= end:
                    return Decision(True, OK, card_id, door_id)
                if end < today:
                    reason = PARKING_EXPIRED
            return Decision(False, reason, card_id, door_id)
        in_group = False
        for group_id, schedule_id in rec[GRANTS]:
            doors = self.group_doors.get(group_id)
            if doors is None or door_id not in doors:
                continue
            in_group = True
            if not schedule_id or self._in_schedule(schedule_id, door_property, moment, today):
                return Decision(True, OK, card_id, door_id)
        return Decision(
            False, OUTSIDE_SCHEDULE if in_group else DOOR_NOT_IN_GROUP, card_id, door_id
        )

    def _now(self) -> tuple[datetime, int]:
        """Local time now and its date ordinal, computed once per second."""
        if clock._frozen is not None:  # tests may freeze the clock
            moment = clock._frozen.astimezone(self.tz)
            return moment, moment.toordinal()
        second = int(time.time())
        cached = self._clock
        if cached[0] != second:
            moment = datetime.fromtimestamp(second, self.tz)
            cached = self._clock = (second, moment, moment.toordinal())
        return cached[1], cached[2]

    def _in_schedule(
        self, schedule_id: int, property_id: int, moment: datetime, today: int
    ) -> bool:
        schedule = self.schedules.get(schedule_id)
        if schedule is None:
            return False
        mode, days = schedule
        weekday = moment.weekday()
        holidays = self.holidays.get(property_id)
        if holidays and today in holidays:
            if mode == "deny":
                return False
            if mode == "periods":
                weekday = 7
        minute = moment.hour * 60 + moment.minute
        for start, end in days[weekday]:  # noqa: SIM110 (a loop is faster here)
            if start <= minute < end:
                return True
        return False

    def stats(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "cards": len(self.by_id),
            "doors": len(self.doors),
            "build_seconds": round(self.build_seconds, 3),
            "refreshes": self.refreshes,
        }


_engine: DecisionEngine | None = None
_engine_lock = threading.Lock()


def get_engine() -> DecisionEngine:
    """This process's engine (built on first use)."""
    global _engine
    if _engine is None:
        with _engine_lock:
            if _engine is None:
                _engine = DecisionEngine()
    return _engine


def reset_engine(engine: DecisionEngine | None = None) -> DecisionEngine:
    """Start again from the database (tests; after restoring a backup)."""
    global _engine
    with _engine_lock:
        _engine = engine or DecisionEngine()
    return _engine


def decide(card: str, door: str, at: datetime | None = None) -> Decision:
    return get_engine().decide(card, door, at)


@on_committed
def _credentials_committed() -> None:
    if _engine is not None:
        _engine.mark_stale()
    touch_signal()


def warm() -> DecisionEngine:
    """Build the index now rather than on the first decision (server start, benchmarks)."""
    engine = get_engine()
    engine._ensure_fresh()
    return engine
