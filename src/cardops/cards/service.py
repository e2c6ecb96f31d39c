"""Cards of the one-card system: stock, requisitions, issuing with evidence and approvals,
fees and deposits, loss, reissue, replacement, return, cancellation, extension, reminders.

The only code that changes cards. Every function takes keyword-only arguments, checks its
permission first, writes the card's history (``CardEvent``) and the audit log, calls
``access.credentials.touch_card`` for every change a door decision depends on, and never
commits.
"""

from __future__ import annotations

import csv
import importlib
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from types import ModuleType
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, or_, select
from sqlalchemy.orm import Session

from cardops.access.credentials import touch_card
from cardops.access.models import (
    AccessGroup,
    Building,
    CardGrant,
    Property,
    TimeSchedule,
    Unit,
)
from cardops.approvals.models import ApprovalRequest, RequestState
from cardops.approvals.service import submit as submit_approval
from cardops.audit.service import record, snapshot
from cardops.auth.models import User
from cardops.auth.service import has_permission, require
from cardops.cards import policy as card_policy
from cardops.cards.models import (
    Card,
    CardBatch,
    CardEvent,
    CardRequisition,
    CardState,
    HolderKind,
    card_class,
)
from cardops.cards.permissions import (
    CARDS_CANCEL,
    CARDS_ISSUE,
    CARDS_ISSUE_STAFF,
    CARDS_MANAGE,
    CARDS_POLICY,
    CARDS_REQUISITION,
    CARDS_STOCK,
    CARDS_VIEW,
)
from cardops.cards.policy import HOUSEHOLD_KINDS, STAFF_KINDS
from cardops.core.clock import local, utcnow
from cardops.core.config import get_settings
from cardops.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from cardops.core.i18n import N_
from cardops.core.models import next_number
from cardops.ledger import service as ledger
from cardops.ledger.chart import CARD_FEE_INCOME, DEFAULT_DEBIT, DEPOSITS_HELD, OTHER_INCOME
from cardops.notify.service import enqueue_checked
from cardops.parking.models import ParkingPermit
from cardops.parties.models import Document, Organisation, Person
from cardops.parties.service import register_document_owner, upload_document

MAX_BATCH = 100_000
MAX_REQUISITION = 10_000
MAX_MONTHS = 60
PAYMENT_METHODS = tuple(DEFAULT_DEBIT)
LIVE_STATES = (CardState.ACTIVE.value, CardState.LOST.value)

_NUMBER = re.compile(r"^[A-Z0-9][A-Z0-9-]{0,31}$")
_UID = re.compile(r"^[0-9A-F]{8,32}$")
_SEQ = re.compile(r"^(.*?)(\d+)$")

register_document_owner(
    "card",
    label=N_("Card"),
    exists=lambda s, i: s.get(Card, i) is not None,
    url=lambda i: f"/cards/id/{i}",
)

# Evidence: what each holder kind must show (document types of parties.models.DOC_TYPES).
EVIDENCE_LABELS: dict[str, str] = {
    "id_front": N_("ID copy"),
    "photo": N_("Photo"),
    "lease_contract": N_("Lease contract"),
    "application_form": N_("Application form"),
    "owner_confirmation": N_("Owner's phone confirmation"),
    "approval": N_("Approved request"),
}
REQUIRED_DOCUMENTS: dict[str, tuple[str, ...]] = {
    HolderKind.OWNER: ("id_front", "photo"),
    HolderKind.FAMILY: ("id_front", "photo"),
    HolderKind.RELATIVE: ("id_front",),
    HolderKind.NANNY: ("id_front",),
    HolderKind.TENANT: ("id_front", "lease_contract"),
    HolderKind.MERCHANT: ("application_form",),
    HolderKind.RENOVATION: ("id_front", "application_form"),
    HolderKind.STAFF: (),
    HolderKind.CLEANER: ("id_front",),
    HolderKind.LIFT_MAINTAINER: ("id_front",),
}
APPROVAL_KINDS: dict[str, str] = {
    HolderKind.STAFF: "staff_card",
    HolderKind.MERCHANT: "merchant_card",
}
CONFIRMATION_KINDS = frozenset({HolderKind.RELATIVE, HolderKind.NANNY})
UNIT_KINDS = HOUSEHOLD_KINDS | {HolderKind.RENOVATION, HolderKind.MERCHANT}

# Default grants when the access service offers none: (group code, schedule code).
# "B{building}" is the residents' group of a building (access demo convention).
_FALLBACK_GRANTS: dict[str, tuple[tuple[str, str | None], ...]] = {
    HolderKind.RENOVATION: (("RENO", "DAYTIME"),),
    HolderKind.STAFF: (("STAFF", "WORKHOURS"),),
    HolderKind.CLEANER: (("STAFF", "WORKHOURS"),),
    HolderKind.LIFT_MAINTAINER: (("STAFF", "WORKHOURS"),),
}

DAMAGE_KINDS = ("natural", "man_made")
STAFF_CANCEL_REASONS = ("left", "lost", "misuse")


class Upload(NamedTuple):
    """A file handed in at the desk, stored as a document of the card."""

    doc_type: str
    filename: str
    data: bytes
    content_type: str | None = None


@dataclass(frozen=True, slots=True)
class OwnerConfirmation:
    """The owner confirmed a family member, relative or nanny by phone."""

    phoned_at: datetime
    owner_person_id: int | None = None  # default: the unit's recorded owner
    note: str = ""


@dataclass(slots=True)
class ReturnResult:
    card: Card
    refunded: int = 0
    forfeited: int = 0
    refund_number: str | None = None


@dataclass(slots=True)
class CardSpec:
    """A card of a batch: number, optional chip UID and Wiegand fields."""

    number: str
    uid: str | None = None
    wiegand_format: int | None = None
    wiegand_facility: int | None = None
    wiegand_number: int | None = None
    row: int = 0
    problems: list[str] = field(default_factory=list)


# --- small helpers ------------------------------------------------------------------------


def today() -> date:
    """The operator's local date."""
    return local(utcnow()).date()


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later, clamped to the end of a shorter month."""
    total = day.year * 12 + day.month - 1 + months
    year, month = divmod(total, 12)
    month += 1
    next_first = date(year + (month == 12), month % 12 + 1, 1)
    last = (next_first - timedelta(days=1)).day
    return date(year, month, min(day.day, last))


def validity(start: date, months: int) -> tuple[date, date]:
    """From ``start`` to the day before the same day ``months`` later (inclusive)."""
    return start, add_months(start, months) - timedelta(days=1)


def normalize_number(value: str | None, *, field: str = "card_number") -> str:
    text = (value or "").strip().upper()
    if not _NUMBER.fullmatch(text):
        raise ValidationFailed(
            "A card number is 1–32 letters, digits or '-', e.g. C000123.", field=field
        )
    return text


def normalize_uid(value: str | None, *, field: str = "uid") -> str | None:
    """A chip UID as upper-case hex without separators; ``None`` when empty."""
    text = re.sub(r"[\s:.-]", "", value or "").upper()
    if not text:
        return None
    if not _UID.fullmatch(text) or len(text) % 2:
        raise ValidationFailed(
            "A chip UID is 4 to 16 bytes in hex, e.g. 04A2B3C4 or 04:A2:B3:C4.", field=field
        )
    return text


def parse_wiegand(value: str | None, *, field: str = "wiegand") -> tuple[int, int, int] | None:
    """``26:FFF:NNNNN``, ``34:FFFFF:NNNNN`` or ``FFF:NNNNN`` → (format, facility, number).

    Without a format a facility up to 255 is 26-bit, above is 34-bit. 26-bit: facility
    0–255, card 0–65535; 34-bit: facility 0–65535, card 0–65535.
    """
    text = (value or "").strip()
    if not text:
        return None
    parts = re.split(r"[:/ ]+", text)
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        numbers = []
    if len(numbers) == 2:
        fmt = 26 if numbers[0] <= 255 else 34
        facility, number = numbers
    elif len(numbers) == 3:
        fmt, facility, number = numbers
    else:
        raise ValidationFailed(
            "Enter Wiegand data as facility:card, e.g. 123:45678, or 26:123:45678.", field=field
        )
    max_facility = {26: 255, 34: 65535}.get(fmt)
    if max_facility is None:
        raise ValidationFailed("Wiegand cards are 26-bit or 34-bit.", field=field)
    if not 0 <= facility <= max_facility or not 0 <= number <= 65535:
        raise ValidationFailed(
            "A {bits}-bit Wiegand card has a facility code 0–{max_facility} and a card number 0–65535.",
            field=field,
            bits=fmt,
            max_facility=max_facility,
        )
    return fmt, facility, number


def _methods(method: str, *, field: str = "payment_method") -> str:
    if method not in PAYMENT_METHODS:
        raise ValidationFailed(
            "Choose the payment method: cash, card, transfer, wechat or alipay.", field=field
        )
    return method


def _clean(value: str | None, *, field: str, max_length: int, required: bool = False) -> str:
    text = (value or "").strip()
    if "\x00" in text:
        raise ValidationFailed("The text contains a character that is not allowed.", field=field)
    if len(text) > max_length:
        raise ValidationFailed("Too long: at most {n} characters.", field=field, n=max_length)
    if required and not text:
        raise ValidationFailed("This field is required.", field=field)
    return text


def _in_range(value: int | None) -> bool:
    return value is not None and 0 < value < 2**31


def _event(session: Session, card: Card, kind: str, actor: User | None, **data: Any) -> CardEvent:
    event = CardEvent(
        card=card,
        kind=kind,
        actor_id=actor.id if actor else None,
        at=utcnow(),
        data={k: v for k, v in data.items() if v is not None},
    )
    session.add(event)
    return event


def _touch(session: Session, card: Card, reason: str) -> None:
    if card.property_id is not None:
        touch_card(session, card_id=card.id, property_id=card.property_id, reason=reason)


def _access_service() -> ModuleType | None:
    """The access engineer's grants service, when it exists."""
    try:
        return importlib.import_module("cardops.access.service")
    except ModuleNotFoundError as exc:
        if exc.name != "cardops.access.service":
            raise
        return None


def _wallets_service() -> ModuleType | None:
    try:
        return importlib.import_module("cardops.wallets.service")
    except ModuleNotFoundError as exc:
        if exc.name != "cardops.wallets.service":
            raise
        return None


# --- lookups ------------------------------------------------------------------------------


def find_card(session: Session, text: str | None) -> Card | None:
    """A card by its printed number or its chip UID (any case, with or without separators)."""
    raw = (text or "").strip().upper()
    if not raw or len(raw) > 64 or "\x00" in raw:
        return None
    card = session.execute(select(Card).where(Card.number == raw)).scalar_one_or_none()
    if card is None:
        uid = re.sub(r"[\s:.-]", "", raw)
        if _UID.fullmatch(uid):
            card = session.execute(select(Card).where(Card.uid == uid)).scalar_one_or_none()
    return card


def get_card(session: Session, number: str, *, field: str = "card_number") -> Card:
    card = find_card(session, number)
    if card is None:
        raise NotFound("There is no card {number}.", field=field, number=(number or "")[:64])
    return card


def get_card_by_id(session: Session, card_id: int) -> Card:
    card = session.get(Card, card_id) if _in_range(card_id) else None
    if card is None:
        raise NotFound("There is no card with id {id}.", id=card_id)
    return card


def get_property(
    session: Session, property_id: int | None = None, code: str | None = None
) -> Property:
    prop: Property | None = None
    if property_id is not None and _in_range(property_id):
        prop = session.get(Property, property_id)
    elif code:
        prop = session.execute(
            select(Property).where(Property.code == code.strip().upper()[:32])
        ).scalar_one_or_none()
    if prop is None:
        raise NotFound(
            "There is no property {name}.", field="property_id", name=code or property_id or ""
        )
    return prop


def list_properties(session: Session) -> list[Property]:
    return list(session.execute(select(Property).order_by(Property.code)).scalars())


def unit_label(session: Session, unit_id: int | None) -> str:
    if unit_id is None:
        return ""
    unit = session.get(Unit, unit_id)
    return unit.code if unit else ""


def units_of(session: Session, property_id: int) -> list[Unit]:
    return list(
        session.execute(
            select(Unit)
            .join(Building, Building.id == Unit.building_id)
            .where(Building.property_id == property_id)
            .order_by(Unit.code)
        ).scalars()
    )


def search_cards(
    *,
    session: Session,
    actor: User,
    q: str = "",
    state: str | None = None,
    holder_kind: str | None = None,
    property_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[Card]:
    """Cards matching a number, UID, holder name, mobile or unit code; newest first."""
    require(actor, CARDS_VIEW)
    stmt = select(Card)
    text = (q or "").strip()[:64]
    if text and "\x00" not in text:
        like = f"%{text}%"
        uid = re.sub(r"[\s:.-]", "", text).upper()
        person_ids = select(Person.id).where(or_(Person.name.like(like), Person.mobile.like(like)))
        unit_ids = select(Unit.id).where(Unit.code.like(like))
        stmt = stmt.where(
            or_(
                Card.number.like(f"%{text.upper()}%"),
                Card.uid.like(f"%{uid}%") if uid else Card.uid.is_(None),
                Card.person_id.in_(person_ids),
                Card.unit_id.in_(unit_ids),
            )
        )
    if state in {s.value for s in CardState}:
        stmt = stmt.where(Card.state == state)
    if holder_kind in {k.value for k in HolderKind}:
        stmt = stmt.where(Card.holder_kind == holder_kind)
    if property_id is not None and _in_range(property_id):
        stmt = stmt.where(Card.property_id == property_id)
    limit = max(1, min(limit, 500))
    offset = max(0, min(offset, 10_000_000))
    return list(
        session.execute(stmt.order_by(Card.id.desc()).limit(limit).offset(offset)).scalars()
    )


def grants_of(session: Session, card: Card) -> list[tuple[AccessGroup, TimeSchedule | None]]:
    rows = session.execute(
        select(CardGrant, AccessGroup)
        .join(AccessGroup, AccessGroup.id == CardGrant.group_id)
        .where(CardGrant.card_id == card.id)
        .order_by(AccessGroup.code)
    ).all()
    out: list[tuple[AccessGroup, TimeSchedule | None]] = []
    for grant, group in rows:
        schedule = session.get(TimeSchedule, grant.schedule_id) if grant.schedule_id else None
        out.append((group, schedule))
    return out


def history(session: Session, card: Card) -> list[CardEvent]:
    return list(
        session.execute(
            select(CardEvent).where(CardEvent.card_id == card.id).order_by(CardEvent.id)
        ).scalars()
    )


def is_expired(card: Card, on: date | None = None) -> bool:
    return card.valid_until is not None and card.valid_until < (on or today())


# --- stock --------------------------------------------------------------------------------


def _sequential(first: str, quantity: int) -> list[str]:
    match = _SEQ.match(first)
    if not match:
        raise ValidationFailed(
            "The first card number must end in digits, e.g. C000001.", field="first_number"
        )
    prefix, digits = match.groups()
    start = int(digits)
    width = len(digits)
    numbers = [f"{prefix}{start + i:0{width}d}" for i in range(quantity)]
    if len(numbers[-1]) > 32:
        raise ValidationFailed(
            "The card numbers would be longer than 32 characters.", field="quantity"
        )
    return numbers


def parse_cards_csv(text: str) -> list[CardSpec]:
    """Rows ``number,uid[,wiegand]`` (a header row is skipped); problems are kept per row."""
    specs: list[CardSpec] = []
    reader = csv.reader(io.StringIO(text))
    for n, row in enumerate(reader, start=1):
        cells = [c.strip() for c in row]
        if not cells or not any(cells):
            continue
        if n == 1 and cells[0].lower() in {"number", "card", "card_number", "卡号"}:
            continue
        spec = CardSpec(number=cells[0], row=n)
        spec.uid = cells[1] if len(cells) > 1 and cells[1] else None
        if len(cells) > 2 and cells[2]:
            try:
                parsed = parse_wiegand(cells[2])
            except ValidationFailed as exc:
                spec.problems.append(exc.localized())
                parsed = None
            if parsed:
                spec.wiegand_format, spec.wiegand_facility, spec.wiegand_number = parsed
        specs.append(spec)
    return specs


def _check_specs(session: Session, specs: list[CardSpec]) -> list[CardSpec]:
    """Normalise numbers and UIDs; refuse duplicates within the batch and with the database."""
    errors: list[str] = []
    seen_numbers: set[str] = set()
    seen_uids: set[str] = set()
    seen_wiegand: set[tuple[int, int]] = set()
    for spec in specs:
        where = f"#{spec.row}" if spec.row else spec.number
        try:
            spec.number = normalize_number(spec.number)
        except ValidationFailed as exc:
            errors.append(f"{where}: {exc.localized()}")
            continue
        try:
            spec.uid = normalize_uid(spec.uid)
        except ValidationFailed as exc:
            errors.append(f"{where}: {exc.localized()}")
        errors.extend(f"{where}: {p}" for p in spec.problems)
        if spec.number in seen_numbers:
            errors.append(f"{where}: {spec.number} ×2")
        seen_numbers.add(spec.number)
        if spec.uid:
            if spec.uid in seen_uids:
                errors.append(f"{where}: {spec.uid} ×2")
            seen_uids.add(spec.uid)
        if spec.wiegand_facility is not None and spec.wiegand_number is not None:
            key = (spec.wiegand_facility, spec.wiegand_number)
            if key in seen_wiegand:
                errors.append(f"{where}: {key[0]}:{key[1]} ×2")
            seen_wiegand.add(key)
    if errors:
        raise ValidationFailed(
            "The card list has problems: {problems}",
            field="cards",
            problems="; ".join(errors[:20]),
        )
    taken: list[str] = []
    numbers = list(seen_numbers)
    for i in range(0, len(numbers), 500):
        taken += (
            session.execute(select(Card.number).where(Card.number.in_(numbers[i : i + 500])))
            .scalars()
            .all()
        )
    uids = list(seen_uids)
    for i in range(0, len(uids), 500):
        hits = session.execute(select(Card.uid).where(Card.uid.in_(uids[i : i + 500]))).scalars()
        taken += [u for u in hits if u]
    for facility, number in seen_wiegand:
        hit = session.execute(
            select(Card.number).where(
                Card.wiegand_facility == facility, Card.wiegand_number == number
            )
        ).scalar_one_or_none()
        if hit:
            taken.append(f"{facility}:{number}")
    if taken:
        raise Conflict(
            "These card numbers or UIDs are already registered: {taken}",
            field="cards",
            taken=", ".join(sorted(str(t) for t in taken)[:20]),
        )
    return specs


def receive_batch(
    *,
    session: Session,
    actor: User,
    number: str,
    supplier: str = "",
    quantity: int | None = None,
    first_number: str | None = None,
    cards: Sequence[CardSpec] | None = None,
    csv_text: str | None = None,
    unit_cost: int = 0,
    note: str = "",
) -> CardBatch:
    """Finance receives blank cards: ``quantity`` numbered on from ``first_number``, or an
    explicit list (``cards``, or a CSV of ``number,uid[,wiegand]``). They enter stock."""
    require(actor, CARDS_STOCK)
    batch_number = _clean(number, field="number", max_length=32, required=True).upper()
    supplier = _clean(supplier, field="supplier", max_length=128)
    note = _clean(note, field="note", max_length=500)
    if isinstance(unit_cost, bool) or not 0 <= unit_cost <= card_policy.MAX_FEE:
        raise ValidationFailed("Enter an amount between 0 and 10,000 yuan.", field="unit_cost")
    if session.execute(select(CardBatch.id).where(CardBatch.number == batch_number)).first():
        raise Conflict("Batch {number} was received already.", field="number", number=batch_number)
    specs: list[CardSpec]
    if csv_text:
        specs = parse_cards_csv(csv_text)
    elif cards:
        specs = [
            CardSpec(
                **{
                    k: getattr(c, k)
                    for k in (
                        "number",
                        "uid",
                        "wiegand_format",
                        "wiegand_facility",
                        "wiegand_number",
                        "row",
                    )
                }
            )
            for c in cards
        ]
    elif first_number:
        if quantity is None or not 1 <= quantity <= MAX_BATCH:
            raise ValidationFailed(
                "Enter a quantity between 1 and {n}.", field="quantity", n=MAX_BATCH
            )
        specs = [
            CardSpec(number=n)
            for n in _sequential(normalize_number(first_number, field="first_number"), quantity)
        ]
    else:
        raise ValidationFailed(
            "Give the first card number and a quantity, or a list of cards.", field="first_number"
        )
    if not specs:
        raise ValidationFailed("The card list is empty.", field="cards")
    if len(specs) > MAX_BATCH:
        raise ValidationFailed("Enter a quantity between 1 and {n}.", field="quantity", n=MAX_BATCH)
    if quantity is not None and quantity != len(specs):
        raise ValidationFailed(
            "The quantity ({quantity}) does not match the {n} cards listed.",
            field="quantity",
            quantity=quantity,
            n=len(specs),
        )
    _check_specs(session, specs)
    batch = CardBatch(
        number=batch_number,
        received_at=utcnow(),
        received_by_id=actor.id,
        supplier=supplier,
        quantity=len(specs),
        unit_cost=unit_cost,
        note=note,
    )
    session.add(batch)
    session.flush()
    now = utcnow()
    session.execute(
        insert(Card),
        [
            {
                "number": s.number,
                "uid": s.uid,
                "wiegand_format": s.wiegand_format,
                "wiegand_facility": s.wiegand_facility,
                "wiegand_number": s.wiegand_number,
                "batch_id": batch.id,
                "state": CardState.STOCK.value,
                "is_gift": False,
                "is_free": False,
                "fee": 0,
                "deposit": 0,
                "evidence": {},
                "wallet_enabled": False,
                "state_reason": "",
                "note": "",
                "created_at": now,
                "updated_at": now,
            }
            for s in specs
        ],
    )
    record(
        session, actor, "card_batch.received", batch, numbers=[specs[0].number, specs[-1].number]
    )
    return batch


def list_batches(session: Session, *, limit: int = 100) -> list[CardBatch]:
    return list(
        session.execute(select(CardBatch).order_by(CardBatch.id.desc()).limit(limit)).scalars()
    )


def stock_counts(session: Session) -> dict[str, int]:
    rows = session.execute(select(Card.state, func.count()).group_by(Card.state)).all()
    return {str(state): int(n) for state, n in rows}


def office_stock(session: Session, property_id: int) -> int:
    return int(
        session.execute(
            select(func.count()).where(
                Card.property_id == property_id, Card.state == CardState.OFFICE.value
            )
        ).scalar_one()
    )


def request_cards(
    *, session: Session, actor: User, property_id: int, quantity: int, note: str = ""
) -> CardRequisition:
    """The property office asks finance for ``quantity`` blank cards."""
    require(actor, CARDS_REQUISITION)
    prop = get_property(session, property_id)
    if isinstance(quantity, bool) or not 1 <= quantity <= MAX_REQUISITION:
        raise ValidationFailed(
            "Enter a quantity between 1 and {n}.", field="quantity", n=MAX_REQUISITION
        )
    requisition = CardRequisition(
        number=next_number(session, "card_requisition", "RQ"),
        property_id=prop.id,
        quantity=quantity,
        state="requested",
        requested_by_id=actor.id,
        requested_at=utcnow(),
        note=_clean(note, field="note", max_length=500),
    )
    session.add(requisition)
    session.flush()
    record(session, actor, "card_requisition.requested", requisition)
    return requisition


def get_requisition(session: Session, requisition_id: int) -> CardRequisition:
    row = session.get(CardRequisition, requisition_id) if _in_range(requisition_id) else None
    if row is None:
        raise NotFound("There is no requisition with id {id}.", id=requisition_id)
    return row


def list_requisitions(session: Session, *, limit: int = 100) -> list[CardRequisition]:
    return list(
        session.execute(
            select(CardRequisition).order_by(CardRequisition.id.desc()).limit(limit)
        ).scalars()
    )


def fulfil_requisition(
    *, session: Session, actor: User, requisition_id: int, card_numbers: Sequence[str] | None = None
) -> list[Card]:
    """Finance hands blank cards to the office: the oldest stock cards, or the ones named."""
    require(actor, CARDS_STOCK)
    requisition = get_requisition(session, requisition_id)
    if requisition.state != "requested":
        raise Conflict(
            "Requisition {number} is {state}; it cannot be fulfilled again.",
            number=requisition.number,
            state=requisition.state,
        )
    before = snapshot(requisition)
    if card_numbers:
        cards = [get_card(session, n, field="card_numbers") for n in card_numbers]
        wrong = [c.number for c in cards if c.state != CardState.STOCK.value]
        if wrong:
            raise Conflict(
                "These cards are not in stock: {numbers}",
                field="card_numbers",
                numbers=", ".join(wrong[:20]),
            )
        if len(cards) != requisition.quantity:
            raise ValidationFailed(
                "The quantity ({quantity}) does not match the {n} cards listed.",
                field="card_numbers",
                quantity=requisition.quantity,
                n=len(cards),
            )
    else:
        cards = list(
            session.execute(
                select(Card)
                .where(Card.state == CardState.STOCK.value)
                .order_by(Card.id)
                .limit(requisition.quantity)
            ).scalars()
        )
        if len(cards) < requisition.quantity:
            raise Conflict(
                "Only {available} blank cards are in stock; the requisition asks for {quantity}.",
                available=len(cards),
                quantity=requisition.quantity,
            )
    for card in cards:
        card.transition(CardState.OFFICE)
        card.property_id = requisition.property_id
        card.requisition_id = requisition.id
        _event(session, card, "requisitioned", actor, requisition=requisition.number)
    requisition.state = "fulfilled"
    requisition.fulfilled_by_id = actor.id
    requisition.fulfilled_at = utcnow()
    session.flush()
    record(
        session,
        actor,
        "card_requisition.fulfilled",
        requisition,
        before=before,
        cards=[cards[0].number, cards[-1].number] if cards else [],
    )
    return cards


def reject_requisition(
    *, session: Session, actor: User, requisition_id: int, reason: str
) -> CardRequisition:
    require(actor, CARDS_STOCK)
    requisition = get_requisition(session, requisition_id)
    if requisition.state != "requested":
        raise Conflict(
            "Requisition {number} is {state}; it cannot be fulfilled again.",
            number=requisition.number,
            state=requisition.state,
        )
    before = snapshot(requisition)
    requisition.state = "rejected"
    requisition.note = _clean(reason, field="reason", max_length=500, required=True)
    requisition.fulfilled_by_id = actor.id
    requisition.fulfilled_at = utcnow()
    session.flush()
    record(session, actor, "card_requisition.rejected", requisition, before=before)
    return requisition


# --- policy -------------------------------------------------------------------------------


def get_policy(prop: Property) -> dict[str, dict[str, int]]:
    return card_policy.effective(prop.card_policy)


def set_policy(
    *,
    session: Session,
    actor: User,
    property_id: int,
    policy: dict[str, Any],
    replacement_warranty_days: int | None = None,
) -> Property:
    """Save a property's card policy (validated; partial policies are merged over defaults)."""
    require(actor, CARDS_POLICY)
    prop = get_property(session, property_id)
    merged = card_policy.validate(policy)
    if replacement_warranty_days is not None and (
        isinstance(replacement_warranty_days, bool) or not 0 <= replacement_warranty_days <= 3650
    ):
        raise ValidationFailed(
            "Enter a warranty between 0 and 3650 days.", field="replacement_warranty_days"
        )
    before = {
        "card_policy": prop.card_policy,
        "replacement_warranty_days": prop.replacement_warranty_days,
    }
    prop.card_policy = merged
    if replacement_warranty_days is not None:
        prop.replacement_warranty_days = replacement_warranty_days
    session.flush()
    record(
        session,
        actor,
        "property.card_policy_set",
        prop,
        before=before,
        after={"card_policy": merged, "replacement_warranty_days": prop.replacement_warranty_days},
    )
    return prop


# --- approvals ----------------------------------------------------------------------------


def request_card_approval(
    *,
    session: Session,
    actor: User,
    holder_kind: str,
    person_id: int,
    property_id: int,
    organisation_id: int | None = None,
    unit_id: int | None = None,
    reason: str = "",
) -> ApprovalRequest:
    """Submit the written request a staff card (department manager) or a merchant card
    (department head) needs before it is issued. Issue with its id once approved."""
    require(actor, CARDS_ISSUE)
    kind = _holder_kind(holder_kind)
    approval_kind = APPROVAL_KINDS.get(kind)
    if approval_kind is None:
        raise ValidationFailed(
            "A {kind} card needs no approval; issue it directly.", field="holder_kind", kind=kind
        )
    prop = get_property(session, property_id)
    person = _person(session, person_id)
    org = _organisation(session, organisation_id) if organisation_id else None
    if kind == HolderKind.MERCHANT and org is None:
        raise ValidationFailed(
            "Choose the merchant (organisation) of a merchant card.", field="organisation_id"
        )
    reason = _clean(reason, field="reason", max_length=2000)
    title = f"{'员工卡' if kind == HolderKind.STAFF else '商户卡'} {person.name}" + (
        f" · {org.name}" if org else ""
    )
    return submit_approval(
        session=session,
        actor=actor,
        kind=approval_kind,
        title=title[:200],
        description=reason,
        payload={
            "holder_kind": kind.value,
            "person_id": person.id,
            "organisation_id": org.id if org else None,
            "unit_id": unit_id,
            "property_id": prop.id,
        },
        subject=("person", person.id),
        check_permission=False,
    )


def _check_approval(
    session: Session, kind: HolderKind, person: Person, request_id: int | None
) -> ApprovalRequest | None:
    approval_kind = APPROVAL_KINDS.get(kind)
    if approval_kind is None:
        return None
    if request_id is None:
        raise ValidationFailed(
            "A {kind} card needs an approved “{approval}” request; submit one and issue the card once it is approved.",
            field="approval_request_id",
            kind=kind.value,
            approval=approval_kind,
        )
    request = session.get(ApprovalRequest, request_id) if _in_range(request_id) else None
    if request is None or request.kind != approval_kind:
        raise ValidationFailed(
            "There is no “{approval}” request with id {id}.",
            field="approval_request_id",
            approval=approval_kind,
            id=request_id,
        )
    payload = request.payload or {}
    if payload.get("person_id") not in (None, person.id):
        raise ValidationFailed(
            "Request {number} was made for someone else.",
            field="approval_request_id",
            number=request.number,
        )
    if request.state != RequestState.APPROVED:
        raise ValidationFailed(
            "Request {number} is {state}, not approved; the card can be issued once it is approved.",
            field="approval_request_id",
            number=request.number,
            state=str(request.state),
        )
    used = session.execute(
        select(Card.number).where(Card.approval_request_id == request.id)
    ).scalar_one_or_none()
    if used:
        raise Conflict(
            "Request {number} was used already for card {card}.",
            field="approval_request_id",
            number=request.number,
            card=used,
        )
    return request


# --- issuing ------------------------------------------------------------------------------


def _holder_kind(value: str) -> HolderKind:
    try:
        return HolderKind(value)
    except ValueError:
        raise ValidationFailed(
            "Choose the holder kind from the list.", field="holder_kind"
        ) from None


def _person(session: Session, person_id: int | None) -> Person:
    person = session.get(Person, person_id) if _in_range(person_id) else None
    if person is None:
        raise NotFound("There is no person with id {id}.", field="person_id", id=person_id or "")
    return person


def _organisation(session: Session, organisation_id: int | None) -> Organisation:
    org = session.get(Organisation, organisation_id) if _in_range(organisation_id) else None
    if org is None:
        raise NotFound(
            "There is no organisation with id {id}.",
            field="organisation_id",
            id=organisation_id or "",
        )
    return org


def _unit(session: Session, unit_id: int | None, prop: Property) -> Unit:
    unit = session.get(Unit, unit_id) if _in_range(unit_id) else None
    if unit is None:
        raise NotFound("There is no unit with id {id}.", field="unit_id", id=unit_id or "")
    building = session.get(Building, unit.building_id)
    if building is None or building.property_id != prop.id:
        raise ValidationFailed(
            "Unit {unit} is not in property {property}.",
            field="unit_id",
            unit=unit.code,
            property=prop.code,
        )
    return unit


def _documents_on_file(session: Session, owners: list[tuple[str, int]]) -> dict[str, Document]:
    found: dict[str, Document] = {}
    for owner_type, owner_id in owners:
        docs = session.execute(
            select(Document)
            .where(Document.owner_type == owner_type, Document.owner_id == owner_id)
            .order_by(Document.id)
        ).scalars()
        for doc in docs:
            found[doc.doc_type] = doc
    return found


def evidence_needed(kind: str, *, family_on_record: bool = False) -> list[str]:
    """Evidence codes (see ``EVIDENCE_LABELS``) a holder kind must show."""
    hk = HolderKind(kind)
    needed = list(REQUIRED_DOCUMENTS[hk])
    if hk in CONFIRMATION_KINDS or (hk == HolderKind.FAMILY and not family_on_record):
        needed.append("owner_confirmation")
    if hk in APPROVAL_KINDS:
        needed.append("approval")
    return needed


def _family_on_record(session: Session, person: Person, unit: Unit) -> bool:
    """A family member is on record when they have held a card of the unit before."""
    return (
        session.execute(
            select(Card.id).where(Card.person_id == person.id, Card.unit_id == unit.id).limit(1)
        ).first()
        is not None
    )


def issue_card(
    *,
    session: Session,
    actor: User,
    card_number: str,
    holder_kind: str,
    person_id: int,
    unit_id: int | None = None,
    organisation_id: int | None = None,
    uploads: Sequence[Upload] = (),
    owner_confirmation: OwnerConfirmation | None = None,
    approval_request_id: int | None = None,
    valid_months: int | None = None,
    is_gift: bool = False,
    payment_method: str = "cash",
    acknowledged: bool = False,
    note: str = "",
) -> Card:
    """Issue a blank office card to a holder (办卡/发卡).

    Checks the holder kind's evidence (documents of the person, the merchant or uploaded now;
    the owner's phone confirmation; the approved request), the property's card policy
    (validity, limit per unit), takes the fee and deposit on one numbered receipt, grants the
    default doors and writes the issue register. Nothing is saved when a check fails.
    """
    require(actor, CARDS_ISSUE)
    kind = _holder_kind(holder_kind)
    if kind == HolderKind.STAFF and not has_permission(actor, CARDS_ISSUE_STAFF):
        raise PermissionDenied(
            "Only the front-desk lead or a customer-service supervisor may issue staff cards."
        )
    payment_method = _methods(payment_method)
    note = _clean(note, field="note", max_length=2000)
    card = get_card(session, card_number)
    if card.state == CardState.STOCK.value:
        raise Conflict(
            "Card {number} is still in finance's stock; requisition it for the property office first.",
            field="card_number",
            number=card.number,
        )
    if card.state != CardState.OFFICE.value or card.property_id is None:
        raise Conflict(
            "Card {number} is {state}; only a blank card held by the property office can be issued.",
            field="card_number",
            number=card.number,
            state=card.state,
        )
    prop = get_property(session, card.property_id)
    person = _person(session, person_id)
    unit: Unit | None = None
    org: Organisation | None = None
    if kind in UNIT_KINDS or unit_id is not None:
        if unit_id is None:
            raise ValidationFailed(
                "Choose the unit of a {kind} card.", field="unit_id", kind=kind.value
            )
        unit = _unit(session, unit_id, prop)
    if kind == HolderKind.MERCHANT:
        if organisation_id is None:
            raise ValidationFailed(
                "Choose the merchant (organisation) of a merchant card.", field="organisation_id"
            )
        org = _organisation(session, organisation_id)
    elif organisation_id is not None:
        org = _organisation(session, organisation_id)
    if kind == HolderKind.OWNER and unit is not None and unit.owner_person_id != person.id:
        raise ValidationFailed(
            "{name} is not the recorded owner of unit {unit}.",
            field="person_id",
            name=person.name,
            unit=unit.code,
        )
    kp = card_policy.for_kind(prop.card_policy, kind)
    months = kp.validity_months if valid_months is None else valid_months
    if isinstance(months, bool) or not 1 <= months <= kp.validity_months:
        raise ValidationFailed(
            "A {kind} card is valid for at most {months} months under the card policy of {property}.",
            field="valid_months",
            kind=kind.value,
            months=kp.validity_months,
            property=prop.code,
        )
    if kp.max_per_unit and unit is not None:
        count = session.execute(
            select(func.count()).where(
                Card.unit_id == unit.id,
                Card.holder_kind == kind.value,
                Card.state.in_(LIVE_STATES),
            )
        ).scalar_one()
        if count >= kp.max_per_unit:
            raise Conflict(
                "Unit {unit} already has {count} {kind} card(s); the card policy of {property} allows at most {limit}.",
                field="holder_kind",
                unit=unit.code,
                count=count,
                kind=kind.value,
                property=prop.code,
                limit=kp.max_per_unit,
            )
    approval = _check_approval(session, kind, person, approval_request_id)

    # evidence
    owners: list[tuple[str, int]] = [("person", person.id)]
    if org is not None:
        owners.append(("organisation", org.id))
    on_file = _documents_on_file(session, owners)
    uploaded_types = {u.doc_type for u in uploads if u.data}
    family_known = (
        kind == HolderKind.FAMILY and unit is not None and _family_on_record(session, person, unit)
    )
    needed = evidence_needed(kind, family_on_record=family_known)
    errors: list[tuple[str, str]] = []
    missing: list[str] = []
    for code in needed:
        if code in ("owner_confirmation", "approval"):
            continue
        if code not in on_file and code not in uploaded_types:
            missing.append(code)
            errors.append((f"doc_{code}", EVIDENCE_LABELS[code]))
    confirmation: dict[str, Any] | None = None
    if "owner_confirmation" in needed:
        if owner_confirmation is None:
            missing.append("owner_confirmation")
            errors.append(("phoned_at", EVIDENCE_LABELS["owner_confirmation"]))
        else:
            assert unit is not None
            owner_id = owner_confirmation.owner_person_id or unit.owner_person_id
            if owner_id is None or owner_id != unit.owner_person_id:
                raise ValidationFailed(
                    "The phone confirmation must come from the recorded owner of unit {unit}.",
                    field="owner_person_id",
                    unit=unit.code,
                )
            phoned = owner_confirmation.phoned_at
            if phoned.tzinfo is None:  # a wall-clock time at the desk
                phoned = phoned.replace(tzinfo=ZoneInfo(get_settings().timezone))
            if phoned > utcnow() + timedelta(minutes=5):
                raise ValidationFailed(
                    "The time of the owner's phone confirmation is in the future.",
                    field="phoned_at",
                )
            confirmation = {
                "owner_person_id": owner_id,
                "phoned_at": phoned.astimezone(UTC).isoformat(),
                "clerk": actor.username,
                "clerk_id": actor.id,
                "note": _clean(owner_confirmation.note, field="confirmation_note", max_length=500),
            }
    if missing:
        labels = ", ".join(EVIDENCE_LABELS[m] for m in missing)
        raise ValidationFailed(
            "Evidence missing for a {kind} card: {missing}.",
            field="evidence",
            errors=errors,
            kind=kind.value,
            missing=labels,
        )

    # all checks passed: change things
    before = snapshot(card)
    card.transition(CardState.ACTIVE)
    card.holder_kind = kind.value
    card.card_class = card_class(kind)
    card.person_id = person.id
    card.unit_id = unit.id if unit else None
    card.organisation_id = org.id if org else None
    card.issued_at = utcnow()
    card.issued_by_id = actor.id
    card.valid_from, card.valid_until = validity(today(), months)
    card.is_gift = bool(is_gift)
    card.is_free = kind in STAFF_KINDS
    card.approval_request_id = approval.id if approval else None
    card.note = note
    fee = 0 if (card.is_gift or card.is_free) else kp.fee
    deposit = 0 if (card.is_gift or card.is_free) else kp.deposit
    receipt_no = _take_payment(
        session,
        actor,
        card,
        payer=org.name if org and kind == HolderKind.MERCHANT else person.name,
        person=person,
        fee=fee,
        deposit=deposit,
        method=payment_method,
        what="issue",
    )
    card.fee = fee
    card.deposit = deposit
    card.fee_receipt_no = receipt_no if fee else None
    card.deposit_receipt_no = receipt_no if deposit else None
    session.flush()
    documents: dict[str, int] = {code: doc.id for code, doc in on_file.items()}
    for upload in uploads:
        if not upload.data:
            continue
        doc = upload_document(
            session=session,
            actor=actor,
            owner_type="card",
            owner_id=card.id,
            doc_type=upload.doc_type,
            filename=upload.filename,
            data=upload.data,
            content_type=upload.content_type,
        )
        documents[upload.doc_type] = doc.id
    evidence: dict[str, Any] = {
        "documents": {k: v for k, v in documents.items() if k in needed},
        "owner_person_id": unit.owner_person_id if unit else None,
    }
    if confirmation:
        evidence["owner_confirmation"] = confirmation
    if approval is not None:
        evidence["approval"] = approval.number
    card.evidence = evidence
    if acknowledged:
        card.acknowledged_at = utcnow()
    _event(
        session,
        card,
        "issued",
        actor,
        holder_kind=kind.value,
        person=person.name,
        unit=unit.code if unit else None,
        valid_until=card.valid_until.isoformat() if card.valid_until else None,
        fee=fee,
        deposit=deposit,
        receipt=receipt_no,
        gift=card.is_gift or None,
        approval=approval.number if approval else None,
        acknowledged=acknowledged or None,
    )
    session.flush()
    _apply_default_grants(session, actor, card, prop, unit)
    record(session, actor, "card.issued", card, before=before)
    _touch(session, card, "issued")
    return card


def _take_payment(
    session: Session,
    actor: User,
    card: Card,
    *,
    payer: str,
    person: Person | None,
    fee: int,
    deposit: int,
    method: str,
    what: str,
) -> str | None:
    items: list[tuple[str, int, str]] = []
    if fee:
        items.append(("工本费 Card fee", fee, CARD_FEE_INCOME))
    if deposit:
        items.append(("押金 Deposit", deposit, DEPOSITS_HELD))
    if not items:
        return None
    receipt = ledger.record_payment(
        session=session,
        actor=actor,
        payer_name=payer[:128],
        items=items,
        method=method,
        payer_type="person" if person else None,
        payer_id=person.id if person else None,
        reference=f"card:{card.number}",
        description=f"{what} {card.number}",
        permission=CARDS_ISSUE if what == "issue" else CARDS_MANAGE,
    )
    return receipt.number


def _resolve_group(session: Session, prop: Property, value: Any) -> AccessGroup | None:
    if isinstance(value, AccessGroup):
        return value
    if isinstance(value, int):
        return session.get(AccessGroup, value)
    if isinstance(value, str):
        return session.execute(
            select(AccessGroup).where(AccessGroup.property_id == prop.id, AccessGroup.code == value)
        ).scalar_one_or_none()
    return None


def _resolve_schedule(session: Session, prop: Property, value: Any) -> TimeSchedule | None:
    if value is None or isinstance(value, TimeSchedule):
        return value
    if isinstance(value, int):
        return session.get(TimeSchedule, value)
    if isinstance(value, str):
        return session.execute(
            select(TimeSchedule).where(
                TimeSchedule.property_id == prop.id, TimeSchedule.code == value
            )
        ).scalar_one_or_none()
    return None


def default_grants(
    session: Session, prop: Property, kind: HolderKind, unit: Unit | None
) -> list[tuple[AccessGroup, TimeSchedule | None]]:
    """The doors a new card gets: from ``access.service.default_grants_for`` when it exists,
    else by convention (residents: group ``B{building}`` always; renovation: ``RENO`` in
    ``DAYTIME``; staff, cleaners, lift maintainers: ``STAFF`` in ``WORKHOURS``)."""
    access = _access_service()
    pairs: list[tuple[Any, Any]]
    hook = getattr(access, "default_grants_for", None) if access else None
    if hook is not None:
        pairs = list(hook(session, prop, kind.value, unit))
    else:
        pairs = list(_FALLBACK_GRANTS.get(kind, ()))
        if not pairs and unit is not None:
            building = session.get(Building, unit.building_id)
            if building is not None:
                pairs = [(f"B{building.code}", "ALWAYS")]
    out: list[tuple[AccessGroup, TimeSchedule | None]] = []
    for group_ref, schedule_ref in pairs:
        group = _resolve_group(session, prop, group_ref)
        if group is None:
            continue
        out.append((group, _resolve_schedule(session, prop, schedule_ref)))
    return out


def _insert_grants(
    session: Session, actor: User, card: Card, pairs: Sequence[tuple[int, int | None]]
) -> None:
    seen: set[int] = set()
    for group_id, schedule_id in pairs:
        if group_id in seen:
            continue
        seen.add(group_id)
        session.add(
            CardGrant(
                card_id=card.id,
                group_id=group_id,
                schedule_id=schedule_id,
                granted_at=utcnow(),
                granted_by_id=actor.id,
            )
        )
    session.flush()


def _apply_default_grants(
    session: Session, actor: User, card: Card, prop: Property, unit: Unit | None
) -> None:
    pairs = default_grants(session, prop, HolderKind(card.holder_kind or ""), unit)
    _insert_grants(session, actor, card, [(g.id, s.id if s else None) for g, s in pairs])
    if pairs:
        _event(
            session,
            card,
            "granted",
            actor,
            groups=[f"{g.code}" + (f"@{s.code}" if s else "") for g, s in pairs],
        )


def acknowledge(*, session: Session, actor: User, card_number: str) -> Card:
    """The holder signed the issue register (签收)."""
    require(actor, CARDS_ISSUE)
    card = get_card(session, card_number)
    if card.issued_at is None:
        raise Conflict("Card {number} has not been issued.", number=card.number)
    if card.acknowledged_at is not None:
        return card
    before = snapshot(card)
    card.acknowledged_at = utcnow()
    _event(session, card, "acknowledged", actor)
    session.flush()
    record(session, actor, "card.acknowledged", card, before=before)
    return card


# --- lifecycle ----------------------------------------------------------------------------


def report_lost(
    *, session: Session, actor: User, card_number: str, channel: str = "desk", note: str = ""
) -> Card:
    """挂失: the card stops opening doors and gates and stops paying, at once."""
    require(actor, CARDS_MANAGE)
    if channel not in ("desk", "phone"):
        raise ValidationFailed("Say how the loss was reported: desk or phone.", field="channel")
    note = _clean(note, field="note", max_length=500)
    card = get_card(session, card_number)
    before = snapshot(card)
    card.transition(CardState.LOST, note or "lost")
    _event(session, card, "lost", actor, channel=channel, note=note or None)
    session.flush()
    record(session, actor, "card.reported_lost", card, before=before, channel=channel)
    _touch(session, card, "lost")
    return card


def cancel_loss(
    *, session: Session, actor: User, card_number: str, id_checked: bool, note: str = ""
) -> Card:
    """解挂: the holder found the card; their ID was checked at the desk."""
    require(actor, CARDS_MANAGE)
    if not id_checked:
        raise ValidationFailed(
            "Check the holder's ID before cancelling the loss report.", field="id_checked"
        )
    note = _clean(note, field="note", max_length=500)
    card = get_card(session, card_number)
    if card.state != CardState.LOST.value:
        raise Conflict(
            "Card {number} is {state}, not reported lost.", number=card.number, state=card.state
        )
    before = snapshot(card)
    card.transition(CardState.ACTIVE)
    _event(session, card, "found", actor, note=note or None)
    session.flush()
    record(session, actor, "card.loss_cancelled", card, before=before)
    _touch(session, card, "found")
    return card


def _new_card_for(session: Session, old: Card, new_number: str) -> Card:
    new = get_card(session, new_number, field="new_card_number")
    if new.id == old.id:
        raise ValidationFailed("Choose a different blank card.", field="new_card_number")
    if new.state != CardState.OFFICE.value or new.property_id != old.property_id:
        raise Conflict(
            "Card {number} is not a blank card held by this property's office.",
            field="new_card_number",
            number=new.number,
        )
    return new


def _move_holder(session: Session, actor: User, old: Card, new: Card) -> dict[str, Any]:
    """Copy holder, validity and grants to ``new``; move parking permits and the wallet."""
    new.transition(CardState.ACTIVE)
    for name in (
        "holder_kind",
        "card_class",
        "person_id",
        "unit_id",
        "organisation_id",
        "valid_from",
        "valid_until",
        "is_gift",
        "is_free",
        "approval_request_id",
        "wallet_enabled",
        "acknowledged_at",
    ):
        setattr(new, name, getattr(old, name))
    new.evidence = dict(old.evidence or {}, replaces=old.number)
    new.issued_at = utcnow()
    new.issued_by_id = actor.id
    new.replaces_id = old.id
    new.deposit = old.deposit
    new.deposit_receipt_no = old.deposit_receipt_no
    old.deposit = 0
    new.approval_request_id = None
    session.flush()
    grants = session.execute(select(CardGrant).where(CardGrant.card_id == old.id)).scalars().all()
    _insert_grants(session, actor, new, [(g.group_id, g.schedule_id) for g in grants])
    moved: dict[str, Any] = {"grants": len(grants)}
    permits = (
        session.execute(select(ParkingPermit).where(ParkingPermit.card_id == old.id))
        .scalars()
        .all()
    )
    for permit in permits:
        permit.card_id = new.id
    moved["parking_permits"] = len(permits)
    wallets = _wallets_service()
    transfer = getattr(wallets, "transfer_wallet", None) if wallets else None
    if transfer is not None and old.wallet_enabled:
        transfer(session=session, actor=actor, from_card=old, to_card=new)
        moved["wallet"] = True
    session.flush()
    return moved


def reissue(
    *,
    session: Session,
    actor: User,
    card_number: str,
    new_card_number: str,
    payment_method: str = "cash",
) -> Card:
    """补办: a lost card is cancelled and a new office card takes its holder, doors, validity,
    parking permits and wallet balance; the card fee is charged again."""
    require(actor, CARDS_MANAGE)
    payment_method = _methods(payment_method)
    old = get_card(session, card_number)
    if old.state != CardState.LOST.value:
        raise Conflict(
            "Card {number} is {state}; only a card reported lost is reissued.",
            field="card_number",
            number=old.number,
            state=old.state,
        )
    new = _new_card_for(session, old, new_card_number)
    prop = get_property(session, old.property_id)
    kp = card_policy.for_kind(prop.card_policy, old.holder_kind or "")
    old_before, new_before = snapshot(old), snapshot(new)
    old.transition(CardState.CANCELLED, "reissued")
    moved = _move_holder(session, actor, old, new)
    fee = 0 if (old.is_free or old.is_gift) else kp.fee
    person = session.get(Person, old.person_id) if old.person_id else None
    receipt_no = _take_payment(
        session,
        actor,
        new,
        payer=person.name if person else new.number,
        person=person,
        fee=fee,
        deposit=0,
        method=payment_method,
        what="reissue",
    )
    new.fee = fee
    new.fee_receipt_no = receipt_no
    _event(session, old, "cancelled", actor, reason="reissued", new_card=new.number)
    _event(
        session, new, "reissued", actor, old_card=old.number, fee=fee, receipt=receipt_no, **moved
    )
    session.flush()
    record(session, actor, "card.cancelled", old, before=old_before, reason="reissued")
    record(session, actor, "card.reissued", new, before=new_before, old_card=old.number)
    _touch(session, old, "reissued")
    _touch(session, new, "reissued")
    return new


def replace(
    *,
    session: Session,
    actor: User,
    card_number: str,
    new_card_number: str,
    damage: str,
    note: str = "",
    payment_method: str = "cash",
) -> Card:
    """换卡 against the damaged card: natural damage within the property's warranty days of
    issue is free, later the card fee is charged; man-made damage is refused."""
    require(actor, CARDS_MANAGE)
    payment_method = _methods(payment_method)
    if damage not in DAMAGE_KINDS:
        raise ValidationFailed("Say whether the damage is natural or man-made.", field="damage")
    note = _clean(note, field="note", max_length=500)
    old = get_card(session, card_number)
    if damage == "man_made":
        raise ValidationFailed(
            "Man-made damage (punched, folded, machine-washed) is not replaced; buy a new card.",
            field="damage",
        )
    if old.state != CardState.ACTIVE.value:
        raise Conflict(
            "Card {number} is {state}; only an active card is replaced.",
            field="card_number",
            number=old.number,
            state=old.state,
        )
    new = _new_card_for(session, old, new_card_number)
    prop = get_property(session, old.property_id)
    kp = card_policy.for_kind(prop.card_policy, old.holder_kind or "")
    issued_day = local(old.issued_at).date() if old.issued_at else today()
    within = (today() - issued_day).days <= prop.replacement_warranty_days
    fee = 0 if (within or old.is_free) else kp.fee
    old_before, new_before = snapshot(old), snapshot(new)
    old.transition(CardState.REPLACED, "damaged")
    moved = _move_holder(session, actor, old, new)
    person = session.get(Person, old.person_id) if old.person_id else None
    receipt_no = _take_payment(
        session,
        actor,
        new,
        payer=person.name if person else new.number,
        person=person,
        fee=fee,
        deposit=0,
        method=payment_method,
        what="replace",
    )
    new.fee = fee
    new.fee_receipt_no = receipt_no
    _event(session, old, "replaced", actor, damage=damage, new_card=new.number, note=note or None)
    _event(
        session,
        new,
        "replacement",
        actor,
        old_card=old.number,
        damage=damage,
        within_warranty=within,
        fee=fee,
        receipt=receipt_no,
        **moved,
    )
    session.flush()
    record(session, actor, "card.replaced", old, before=old_before, new_card=new.number)
    record(session, actor, "card.replacement_issued", new, before=new_before, fee=fee)
    _touch(session, old, "replaced")
    _touch(session, new, "replacement")
    return new


def return_card(
    *,
    session: Session,
    actor: User,
    card_number: str,
    receipt_number: str | None,
    damaged: bool = False,
    damage_note: str = "",
    refund_method: str = "cash",
) -> ReturnResult:
    """退卡 with the card and its receipt: the card is checked for damage, its number is
    cancelled for good, and the deposit is refunded (kept when the card is damaged; a gifted
    card refunds nothing)."""
    require(actor, CARDS_MANAGE)
    refund_method = _methods(refund_method, field="refund_method")
    damage_note = _clean(damage_note, field="damage_note", max_length=500)
    card = get_card(session, card_number)
    if card.state != CardState.ACTIVE.value:
        raise Conflict(
            "Card {number} is {state}; only an active card in hand can be returned.",
            field="card_number",
            number=card.number,
            state=card.state,
        )
    receipts = {r for r in (card.fee_receipt_no, card.deposit_receipt_no) if r}
    given = (receipt_number or "").strip().upper()
    if receipts:
        if not given:
            raise ValidationFailed(
                "A card is returned with its receipt: enter the number of the receipt for card {number}.",
                field="receipt_number",
                number=card.number,
            )
        if given not in receipts:
            raise ValidationFailed(
                "Receipt {receipt} is not the receipt of card {number}.",
                field="receipt_number",
                receipt=given[:32],
                number=card.number,
            )
    before = snapshot(card)
    result = ReturnResult(card=card)
    deposit = card.deposit
    if deposit and not card.is_gift:
        if damaged:
            ledger.post(
                session=session,
                actor=actor,
                lines=[(DEPOSITS_HELD, deposit), (OTHER_INCOME, -deposit)],
                description=f"Deposit kept for damaged card {card.number}",
                reference=f"card:{card.number}",
                idempotency_key=f"card-deposit-kept:{card.id}",
                permission=CARDS_MANAGE,
            )
            result.forfeited = deposit
        else:
            refund_number = next_number(session, "card_refund", "RF")
            ledger.post(
                session=session,
                actor=actor,
                lines=[(DEPOSITS_HELD, deposit), (DEFAULT_DEBIT[refund_method], -deposit)],
                description=f"Refund {refund_number}: deposit of card {card.number}",
                reference=f"refund:{refund_number}",
                idempotency_key=f"card-refund:{card.id}",
                permission=CARDS_MANAGE,
            )
            card.deposit_refund_receipt_no = refund_number
            result.refunded = deposit
            result.refund_number = refund_number
        card.deposit = 0
    card.transition(CardState.RETURNED, "damaged" if damaged else "returned")
    _event(
        session,
        card,
        "returned",
        actor,
        receipt=given or None,
        damaged=damaged,
        damage_note=damage_note or None,
        refunded=result.refunded,
        forfeited=result.forfeited or None,
        refund_number=result.refund_number,
        gift=card.is_gift or None,
    )
    session.flush()
    record(session, actor, "card.returned", card, before=before, refunded=result.refunded)
    _touch(session, card, "returned")
    return result


def _cancel(session: Session, actor: User, card: Card, reason: str, **data: Any) -> None:
    before = snapshot(card)
    card.transition(CardState.CANCELLED, reason)
    _event(session, card, "cancelled", actor, reason=reason, **data)
    session.flush()
    record(session, actor, "card.cancelled", card, before=before, reason=reason)
    _touch(session, card, "cancelled")


def cancel_cards_for_ownership_change(
    *,
    session: Session,
    actor: User,
    unit_id: int,
    reason: str,
    new_owner_person_id: int | None = None,
) -> list[Card]:
    """注销: ownership of a unit changed; every active or lost card of the former owner's
    household (owner, family, relatives, nannies, tenants of the unit) is cancelled and the
    former owner is notified. With ``new_owner_person_id`` the unit's owner is updated."""
    require(actor, CARDS_CANCEL)
    reason = _clean(reason, field="reason", max_length=200, required=True)
    unit = session.get(Unit, unit_id) if _in_range(unit_id) else None
    if unit is None:
        raise NotFound("There is no unit with id {id}.", field="unit_id", id=unit_id)
    new_owner = _person(session, new_owner_person_id) if new_owner_person_id else None
    former_id = unit.owner_person_id
    cards = list(
        session.execute(
            select(Card)
            .where(
                Card.unit_id == unit.id,
                Card.state.in_(LIVE_STATES),
                Card.holder_kind.in_([k.value for k in HOUSEHOLD_KINDS]),
            )
            .order_by(Card.id)
        ).scalars()
    )
    for card in cards:
        _cancel(session, actor, card, "ownership_change", note=reason, unit=unit.code)
    if new_owner is not None and new_owner.id != former_id:
        record(
            session,
            actor,
            "unit.owner_changed",
            unit,
            before={"owner_person_id": former_id},
            after={"owner_person_id": new_owner.id},
        )
        unit.owner_person_id = new_owner.id
    former = session.get(Person, former_id) if former_id else None
    if former is not None:
        numbers = ", ".join(c.number for c in cards) or "—"
        body = (
            f"{former.name}，您好：因房屋 {unit.code} 产权变更，原业主及家庭成员名下的 IC 卡"
            f"（{numbers}）已于 {today().isoformat()} 注销。如有疑问请联系物业客服中心。"
        )
        key = f"ownership-change:{unit.id}:{former.id}:{today().isoformat()}"
        if former.mobile:
            enqueue_checked(
                session,
                channel="sms",
                recipient=former.mobile,
                subject="",
                body=body,
                actor=actor,
                ref=f"unit:{unit.id}",
                dedupe_key=f"{key}:sms",
            )
        if former.email:
            enqueue_checked(
                session,
                channel="email",
                recipient=former.email,
                subject=f"IC 卡注销通知 · {unit.code}",
                body=body,
                actor=actor,
                ref=f"unit:{unit.id}",
                dedupe_key=f"{key}:email",
            )
    return cards


def cancel_staff_card(
    *, session: Session, actor: User, card_number: str, reason: str, note: str = ""
) -> Card:
    """A staff card is recovered when staff leave (``left``) or cancelled when ``lost`` or
    ``misuse``d. ``left`` also marks the holder as departed for the quarterly check."""
    require(actor, CARDS_CANCEL)
    if reason not in STAFF_CANCEL_REASONS:
        raise ValidationFailed("Choose the reason: left, lost or misuse.", field="reason")
    note = _clean(note, field="note", max_length=500)
    card = get_card(session, card_number)
    if HolderKind(card.holder_kind or "owner") not in STAFF_KINDS:
        raise ValidationFailed(
            "Card {number} is not a staff card.", field="card_number", number=card.number
        )
    if card.state not in LIVE_STATES:
        raise Conflict(
            "Card {number} is {state}; it cannot become {state_to}.",
            number=card.number,
            state=card.state,
            state_to=CardState.CANCELLED.value,
        )
    _cancel(session, actor, card, f"staff_{reason}", staff_reason=reason, note=note or None)
    return card


def extend(
    *,
    session: Session,
    actor: User,
    card_number: str,
    months: int,
    payment_method: str = "cash",
) -> Card:
    """延期: move ``valid_until`` on by ``months`` (from today if already expired); the new
    end may be at most the policy's validity for the holder kind from today."""
    require(actor, CARDS_MANAGE)
    payment_method = _methods(payment_method)
    card = get_card(session, card_number)
    if card.state != CardState.ACTIVE.value:
        raise Conflict(
            "Card {number} is {state}; only an active card is extended.",
            field="card_number",
            number=card.number,
            state=card.state,
        )
    prop = get_property(session, card.property_id)
    kp = card_policy.for_kind(prop.card_policy, card.holder_kind or "")
    if isinstance(months, bool) or not 1 <= months <= MAX_MONTHS:
        raise ValidationFailed("Enter 1 to {n} months.", field="months", n=MAX_MONTHS)
    start = today()
    base = max(card.valid_until + timedelta(days=1), start) if card.valid_until else start
    _, new_until = validity(base, months)
    _, limit = validity(start, kp.validity_months)
    if new_until > limit:
        raise ValidationFailed(
            "A {kind} card may be valid until {limit} at most ({months} months from today under the card policy).",
            field="months",
            kind=card.holder_kind or "",
            limit=limit.isoformat(),
            months=kp.validity_months,
        )
    before = snapshot(card)
    old_until = card.valid_until
    card.valid_until = new_until
    fee = 0 if (card.is_free or card.is_gift) else kp.extension_fee
    person = session.get(Person, card.person_id) if card.person_id else None
    receipt_no = _take_payment(
        session,
        actor,
        card,
        payer=person.name if person else card.number,
        person=person,
        fee=fee,
        deposit=0,
        method=payment_method,
        what="extend",
    )
    _event(
        session,
        card,
        "extended",
        actor,
        months=months,
        valid_until_before=old_until.isoformat() if old_until else None,
        valid_until=new_until.isoformat(),
        fee=fee or None,
        receipt=receipt_no,
    )
    session.flush()
    record(session, actor, "card.extended", card, before=before)
    _touch(session, card, "extended")
    return card


# --- reminders ----------------------------------------------------------------------------


def queue_expiry_reminders(
    session: Session, *, on: date | None = None, days_ahead: int = 30, actor: User | None = None
) -> int:
    """Queue an SMS and/or e-mail to the holder of every active card that expires within
    ``days_ahead`` days. Each card and end date is reminded once per channel."""
    start = on or today()
    until = start + timedelta(days=max(0, min(days_ahead, 366)))
    rows = session.execute(
        select(Card, Person)
        .join(Person, Person.id == Card.person_id)
        .where(
            Card.state == CardState.ACTIVE.value,
            Card.valid_until.is_not(None),
            Card.valid_until >= start,
            Card.valid_until <= until,
        )
        .order_by(Card.id)
    ).all()
    queued = 0
    for card, person in rows:
        assert card.valid_until is not None
        body = (
            f"{person.name}，您好：您的 IC 卡 {card.number} 将于 {card.valid_until.isoformat()} 到期，"
            "请携带身份证到物业客服中心办理延期。"
        )
        key = f"card-expiry:{card.id}:{card.valid_until.isoformat()}"
        if person.mobile:
            _, new = enqueue_checked(
                session,
                channel="sms",
                recipient=person.mobile,
                subject="",
                body=body,
                actor=actor,
                ref=f"card:{card.number}",
                dedupe_key=f"{key}:sms",
            )
            queued += int(new)
        if person.email:
            _, new = enqueue_checked(
                session,
                channel="email",
                recipient=person.email,
                subject=f"IC 卡即将到期 · {card.number}",
                body=body,
                actor=actor,
                ref=f"card:{card.number}",
                dedupe_key=f"{key}:email",
            )
            queued += int(new)
    return queued


# --- registers ----------------------------------------------------------------------------

OWNER_REGISTER_KINDS = tuple(
    k.value
    for k in (
        HolderKind.OWNER,
        HolderKind.FAMILY,
        HolderKind.RELATIVE,
        HolderKind.TENANT,
        HolderKind.NANNY,
        HolderKind.RENOVATION,
        HolderKind.MERCHANT,
    )
)
STAFF_REGISTER_KINDS = tuple(k.value for k in STAFF_KINDS)
REGISTER_EVENTS = (
    "issued",
    "lost",
    "found",
    "reissued",
    "replaced",
    "replacement",
    "returned",
    "cancelled",
    "extended",
    "acknowledged",
)


@dataclass(slots=True)
class RegisterRow:
    at: datetime
    kind: str
    card: Card
    person: Person | None
    unit: str
    data: dict[str, Any]
    actor: str


def register(
    *,
    session: Session,
    actor: User,
    which: str,
    since: date | None = None,
    until: date | None = None,
    limit: int = 500,
) -> list[RegisterRow]:
    """《IC卡发行/异常情况登记表》: issues and anomalies (loss, replacement, return,
    cancellation), owner register or staff register, newest first."""
    from cardops.cards.permissions import CARDS_REPORT

    require(actor, CARDS_REPORT)
    kinds = STAFF_REGISTER_KINDS if which == "staff" else OWNER_REGISTER_KINDS
    stmt = (
        select(CardEvent, Card)
        .join(Card, Card.id == CardEvent.card_id)
        .where(Card.holder_kind.in_(kinds), CardEvent.kind.in_(REGISTER_EVENTS))
    )
    if since:
        stmt = stmt.where(CardEvent.at >= datetime.combine(since, datetime.min.time()))
    if until:
        stmt = stmt.where(
            CardEvent.at < datetime.combine(until + timedelta(days=1), datetime.min.time())
        )
    rows = session.execute(stmt.order_by(CardEvent.id.desc()).limit(max(1, min(limit, 5000)))).all()
    users: dict[int, str] = {}
    out: list[RegisterRow] = []
    for event, card in rows:
        person = session.get(Person, card.person_id) if card.person_id else None
        name = ""
        if event.actor_id:
            if event.actor_id not in users:
                user = session.get(User, event.actor_id)
                users[event.actor_id] = user.display_name if user else ""
            name = users[event.actor_id]
        out.append(
            RegisterRow(
                at=event.at,
                kind=event.kind,
                card=card,
                person=person,
                unit=unit_label(session, card.unit_id),
                data=event.data or {},
                actor=name,
            )
        )
    return out
