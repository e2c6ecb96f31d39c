"""Gateway state an operator changes: on-us card numbers and PINs, the stop list; and the
read side of the journal (search, charts, batches, nodes).

Full card numbers are never stored: an on-us PAN is shown once when it is assigned (to print
on the card) and kept as a keyed hash and a masked form; stop-list entries likewise.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cardops.audit.service import record, snapshot
from cardops.auth.models import User
from cardops.auth.service import require
from cardops.cards.models import Card
from cardops.core.clock import local, utcnow
from cardops.core.errors import Conflict, NotFound, ValidationFailed
from cardops.core.models import bump_version
from cardops.gateway import crypto
from cardops.gateway.config import GatewayConfig
from cardops.gateway.engine import STOPLIST_VERSION
from cardops.gateway.models import Batch, Journal, Node, OnusCard, StopEntry, StopReason
from cardops.gateway.permissions import CARD_PAN_MANAGE, GATEWAY_VIEW, STOPLIST_MANAGE

STOP_REASONS = tuple(r.value for r in StopReason)


def _card(session: Session, card_number: str) -> Card:
    number = (card_number or "").strip()[:32]
    card = session.execute(select(Card).where(Card.number == number)).scalar_one_or_none()
    if card is None:
        raise NotFound(
            "There is no card with the number {number}.", field="card_number", number=number
        )
    return card


def onus_bin() -> str:
    return GatewayConfig().onus_bin


@dataclass(slots=True)
class AssignedPan:
    onus: OnusCard
    pan: str  # shown once, never stored


def find_onus(session: Session, card: Card) -> OnusCard | None:
    return session.execute(select(OnusCard).where(OnusCard.card_id == card.id)).scalar_one_or_none()


def assign_pan(
    *,
    session: Session,
    actor: User,
    card_number: str,
    expiry: str | None = None,
    replace: bool = False,
) -> AssignedPan:
    """Give a one-card card a 16-digit card number on the operator's BIN (Luhn check digit),
    so that it can pay at terminals as an on-us card. ``expiry`` YYMM defaults to the card's
    validity or five years."""
    require(actor, CARD_PAN_MANAGE)
    card = _card(session, card_number)
    if expiry is None:
        until = card.valid_until or (local(utcnow()).date() + timedelta(days=5 * 365))
        expiry = until.strftime("%y%m")
    if len(expiry) != 4 or not expiry.isdigit() or not 1 <= int(expiry[2:]) <= 12:
        raise ValidationFailed("The expiry is YYMM, e.g. 3012.", field="expiry")
    existing = find_onus(session, card)
    if existing is not None and not replace:
        raise Conflict(
            "Card {number} already has a card number ({masked}).",
            field="card_number",
            number=card.number,
            masked=existing.pan_masked,
        )
    bin_ = onus_bin()
    while True:
        body = bin_ + "".join(secrets.choice("0123456789") for _ in range(15 - len(bin_)))
        pan = body + crypto.luhn_digit(body)
        digest = crypto.pan_hash(pan)
        taken = session.execute(
            select(OnusCard.id).where(OnusCard.pan_hash == digest)
        ).scalar_one_or_none()
        if taken is None:
            break
    before = snapshot(existing) if existing is not None else None
    if existing is None:
        existing = OnusCard(card_id=card.id, pan_hash=digest, pan_masked="", expiry=expiry)
        session.add(existing)
    existing.pan_hash = digest
    existing.pan_masked = crypto.mask_pan(pan)
    existing.expiry = expiry
    existing.pin_verification = None
    existing.pin_tries = 0
    session.flush()
    record(session, actor, "gateway.pan_assigned", existing, before=before)
    return AssignedPan(onus=existing, pan=pan)


def set_pin(*, session: Session, actor: User, card_number: str, pin: str) -> OnusCard:
    """Set (or reset) the PIN of an on-us card; the tries counter starts again."""
    require(actor, CARD_PAN_MANAGE)
    card = _card(session, card_number)
    onus = find_onus(session, card)
    if onus is None:
        raise Conflict(
            "Card {number} has no card number yet; assign one first.",
            field="card_number",
            number=card.number,
        )
    pin = (pin or "").strip()
    if not pin.isdigit() or not 4 <= len(pin) <= 12:
        raise ValidationFailed("A PIN is 4 to 12 digits.", field="pin")
    if len(set(pin)) == 1 or pin in "0123456789012" or pin in "9876543210987":
        raise ValidationFailed(
            "Choose a PIN that is not a run of one digit or a sequence.", field="pin"
        )
    before = snapshot(onus)
    onus.pin_verification = crypto.pin_verification_value(pin, onus.pan_hash)
    onus.pin_tries = 0
    onus.pin_set_at = utcnow()
    session.flush()
    record(session, actor, "gateway.pin_set", onus, before=before)
    return onus


# --- stop list ----------------------------------------------------------------------------


def _check_pan(pan: str) -> str:
    clean = "".join((pan or "").split())
    if not crypto.luhn_ok(clean):
        raise ValidationFailed(
            "Enter a card number of 12 to 19 digits with a valid check digit.", field="pan"
        )
    return clean


def add_stop(*, session: Session, actor: User, pan: str, reason: str, note: str = "") -> StopEntry:
    """Put a card on the stop list (止付): lost → 41, stolen → 43, counterfeit → 59."""
    require(actor, STOPLIST_MANAGE)
    clean = _check_pan(pan)
    if reason not in STOP_REASONS:
        raise ValidationFailed("Choose why: lost, stolen or counterfeit.", field="reason")
    note = " ".join((note or "").split())
    if not note:
        raise ValidationFailed("Say why the card is stopped.", field="note")
    if len(note) > 500:
        raise ValidationFailed("At most {n} characters.", field="note", n=500)
    digest = crypto.pan_hash(clean)
    entry, added = add_stop_by_hash(
        session=session,
        actor=actor,
        pan_hash=digest,
        pan_masked=crypto.mask_pan(clean),
        reason=reason,
        note=note,
    )
    if not added:
        raise Conflict(
            "Card {masked} is on the stop list already.", field="pan", masked=entry.pan_masked
        )
    return entry


def add_stop_by_hash(
    *,
    session: Session,
    actor: User,
    pan_hash: str,
    pan_masked: str,
    reason: str,
    note: str,
    **context: Any,
) -> tuple[StopEntry, bool]:
    """Stop-list a card known only by its keyed hash (the journal keeps no full card number),
    e.g. from a confirmed fraud alert. Returns ``(entry, added)``: a card already on the list
    keeps its entry (``added`` is False). ``context`` goes into the audit entry."""
    require(actor, STOPLIST_MANAGE)
    active = session.execute(
        select(StopEntry).where(StopEntry.pan_hash == pan_hash, StopEntry.active.is_(True))
    ).scalar_one_or_none()
    if active is not None:
        return active, False
    entry = StopEntry(
        pan_hash=pan_hash,
        pan_masked=pan_masked,
        reason=reason,
        note=note[:500],
        added_by_id=actor.id,
        added_at=utcnow(),
    )
    session.add(entry)
    session.flush()
    bump_version(session, STOPLIST_VERSION)
    record(session, actor, "gateway.stop_added", entry, **context)
    return entry, True


def remove_stop(*, session: Session, actor: User, entry_id: int, note: str = "") -> StopEntry:
    require(actor, STOPLIST_MANAGE)
    entry = session.get(StopEntry, entry_id) if 0 < entry_id < 2**31 else None
    if entry is None:
        raise NotFound("There is no stop-list entry {id}.", id=entry_id)
    if not entry.active:
        raise Conflict(
            "Card {masked} was taken off the stop list already.", masked=entry.pan_masked
        )
    note = " ".join((note or "").split())
    if not note:
        raise ValidationFailed("Say why the card is taken off the stop list.", field="note")
    before = snapshot(entry)
    entry.active = False
    entry.removed_at = utcnow()
    entry.removed_by_id = actor.id
    entry.removal_note = note[:500]
    session.flush()
    bump_version(session, STOPLIST_VERSION)
    record(session, actor, "gateway.stop_removed", entry, before=before)
    return entry


def list_stops(*, session: Session, actor: User, active_only: bool = True) -> list[StopEntry]:
    require(actor, GATEWAY_VIEW)
    query = select(StopEntry).order_by(StopEntry.id.desc()).limit(1000)
    if active_only:
        query = query.where(StopEntry.active.is_(True))
    return list(session.execute(query).scalars())


# --- the journal --------------------------------------------------------------------------


@dataclass
class TxFilter:
    tid: str = ""
    mid: str = ""
    card: str = ""  # masked form or a full number (hashed to search)
    rrn: str = ""
    day: date | None = None
    result: str = ""  # approved | declined | a response code


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    from zoneinfo import ZoneInfo

    from cardops.core.config import get_settings

    start = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(get_settings().timezone))
    return start, start + timedelta(days=1)


def _filtered(query: Any, f: TxFilter) -> Any:
    if f.tid:
        query = query.where(Journal.tid == f.tid.strip()[:8])
    if f.mid:
        query = query.where(Journal.mid == f.mid.strip()[:15])
    if f.card:
        text = f.card.strip()[:19]
        if text.isdigit() and crypto.luhn_ok(text):
            query = query.where(Journal.pan_hash == crypto.pan_hash(text))
        elif "*" in text:
            query = query.where(Journal.pan_masked == text)
        else:
            query = query.where(Journal.pan_masked.like(f"%{text.replace('%', '')}%"))
    if f.rrn:
        query = query.where(Journal.rrn == f.rrn.strip()[:12])
    if f.day:
        start, end = _day_bounds(f.day)
        query = query.where(Journal.created_at >= start, Journal.created_at < end)
    if f.result == "approved":
        query = query.where(Journal.approved.is_(True))
    elif f.result == "declined":
        query = query.where(Journal.approved.is_(False))
    elif len(f.result) == 2:
        query = query.where(Journal.response_code == f.result.upper())
    return query


def search(
    *, session: Session, actor: User, filters: TxFilter, limit: int = 100, offset: int = 0
) -> tuple[list[Journal], int]:
    require(actor, GATEWAY_VIEW)
    total = session.execute(_filtered(select(func.count(Journal.id)), filters)).scalar_one()
    rows = session.execute(
        _filtered(select(Journal), filters)
        .order_by(Journal.id.desc())
        .limit(max(1, min(limit, 500)))
        .offset(max(0, min(offset, 10**7)))
    ).scalars()
    return list(rows), int(total)


def get_transaction(*, session: Session, actor: User, journal_id: int) -> Journal:
    require(actor, GATEWAY_VIEW)
    row = session.get(Journal, journal_id)
    if row is None:
        raise NotFound("There is no transaction {id}.", id=journal_id)
    return row


@dataclass
class Bucket:
    label: str
    total: int
    approved: int

    @property
    def rate(self) -> float:
        return self.approved / self.total if self.total else 0.0


def volume(*, session: Session, actor: User, filters: TxFilter, days: int = 14) -> list[Bucket]:
    """Financial requests and approvals per local day (or per hour when one day is chosen)."""
    require(actor, GATEWAY_VIEW)
    query = _filtered(select(Journal.created_at, Journal.approved), filters).where(
        Journal.kind.in_(("purchase", "preauth", "completion", "refund", "void", "balance"))
    )
    today = local(utcnow()).date()
    if filters.day is None:
        start, _ = _day_bounds(today - timedelta(days=days - 1))
        query = query.where(Journal.created_at >= start)
        labels = [(today - timedelta(days=days - 1 - i)).strftime("%m-%d") for i in range(days)]
        fmt = "%m-%d"
    else:
        labels = [f"{h:02d}" for h in range(24)]
        fmt = "%H"
    buckets = {label: Bucket(label, 0, 0) for label in labels}
    for at, approved in session.execute(query.limit(200_000)):
        bucket = buckets.get(local(at).strftime(fmt))
        if bucket is not None:
            bucket.total += 1
            bucket.approved += 1 if approved else 0
    return list(buckets.values())


def list_batches(*, session: Session, actor: User, limit: int = 100) -> list[Batch]:
    require(actor, GATEWAY_VIEW)
    return list(session.execute(select(Batch).order_by(Batch.id.desc()).limit(limit)).scalars())


def nodes(*, session: Session, actor: User) -> list[Node]:
    require(actor, GATEWAY_VIEW)
    return list(session.execute(select(Node).order_by(Node.name)).scalars())
