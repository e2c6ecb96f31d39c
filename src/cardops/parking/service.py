"""Parking permits (停车卡/车场授权). The only code that changes them.

Seed 003 §4.3: the desk checks the applicant's ID, driving licence, vehicle licence and
insurance policy (tenants also their lease contract) and keeps copies; a parking space
lease/use agreement is signed; the customer uses their own access card or buys a parking card.
A monthly card runs from the issue or top-up day to the day before the same day next month
(:func:`monthly_period`). Seed 000 §3.4.4: when a parking lease ends, the parking authorization
is cancelled only after the owner confirms (:func:`end_permit`).

Every change to a permit appends a credential change for its card (``access.credentials``) in
the same transaction, so car-park gates see it at the next decision.
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, NoReturn

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from cardops.access.credentials import touch_card
from cardops.audit.service import record, snapshot
from cardops.auth.models import User
from cardops.auth.service import require
from cardops.cards.models import Card, CardEvent, CardState, HolderKind
from cardops.core.clock import local, utcnow
from cardops.core.errors import Conflict, NotFound, ValidationFailed
from cardops.core.i18n import N_, gettext
from cardops.core.models import next_number
from cardops.core.money import format_minor
from cardops.ledger import service as ledger
from cardops.ledger.chart import PARKING_INCOME
from cardops.ledger.models import PaymentMethod
from cardops.parking.models import (
    TRANSITIONS,
    ParkingPeriod,
    ParkingPermit,
    PermitKind,
    PermitState,
)
from cardops.parking.permissions import PARKING_MANAGE, PARKING_VIEW
from cardops.parties import service as parties
from cardops.parties.models import Document, Person

PERMIT_PREFIX = "PK"
OWNER_TYPE = "parking_permit"
MAX_MONTHS = 24  # one payment covers at most two years
MAX_MONTHLY_FEE = 10_000_000  # fen: 100 000 yuan a month is certainly a typing error
EXPIRING_DAYS = 7  # the list highlights permits ending within a week

KIND_LABELS: dict[str, str] = {
    PermitKind.MONTHLY.value: N_("Monthly card"),
    PermitKind.LEASE.value: N_("Leased space"),
    PermitKind.OWNED.value: N_("Own space"),
}
STATE_LABELS: dict[str, str] = {
    PermitState.ACTIVE.value: N_("Active"),
    PermitState.ENDED.value: N_("Ended"),
}

# The evidence for a parking permit (seed 003 §4.3.1–4.3.2), in checklist order. Each entry:
# requirement code -> (document types that satisfy it, English label). "agreement" must be
# uploaded for the permit itself; the others may also be on the person's file.
REQUIREMENTS: dict[str, tuple[tuple[str, ...], str]] = {
    "id_copy": (("id_front", "id_back"), N_("ID copy")),
    "driving_licence": (("driving_licence",), N_("Driving licence")),
    "vehicle_licence": (("vehicle_licence",), N_("Vehicle licence")),
    "insurance_policy": (("insurance_policy",), N_("Insurance policy")),
    "lease_contract": (("lease_contract",), N_("Lease contract (tenants)")),
    "agreement": (("signed_form",), N_("Signed parking space agreement")),
}
# The document type an upload for each requirement is stored as.
UPLOAD_TYPE = {code: types[0] for code, (types, _) in REQUIREMENTS.items()}
PERMIT_ONLY = frozenset({"agreement"})

# 省、自治区、直辖市简称 and the special prefixes of embassy/consulate plates.
_PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
_SERIAL = "A-HJ-NP-Z0-9"  # serial letters exclude I and O
_PLATE_ORDINARY = re.compile(rf"^[{_PROVINCES}][A-Z][{_SERIAL}]{{4}}[{_SERIAL}挂学警港澳]$")
_PLATE_NEW_ENERGY = re.compile(
    rf"^[{_PROVINCES}][A-Z](?:[DF][{_SERIAL}][0-9]{{4}}|[0-9]{{5}}[DF])$"
)
_SPACE = re.compile(r"^[A-Za-z0-9\u4e00-\u9fff][A-Za-z0-9\u4e00-\u9fff _.#-]{0,31}$")


# --- rules --------------------------------------------------------------------------------


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later, clamped to the end of a shorter month (31 Jan → 28 Feb)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def monthly_period(start: date, months: int = 1) -> tuple[date, date]:
    """The period a monthly card covers: from ``start`` to the day before the same day
    ``months`` later (9 June → 8 July; 31 January → 27 February, 28 in a leap year;
    15 December → 14 January). Both ends are inclusive."""
    if not isinstance(months, int) or isinstance(months, bool) or not 1 <= months <= MAX_MONTHS:
        raise ValidationFailed(
            "Enter the number of months: a whole number from 1 to {n}.",
            field="months",
            n=MAX_MONTHS,
        )
    return start, add_months(start, months) - timedelta(days=1)


def normalize_plate(value: str | None, *, field: str = "plate") -> str:
    """Check a mainland licence plate and return it compact and upper-case.

    Ordinary plates have 7 characters (川A12345, 粤B1234学); new-energy plates 8, with D or F
    after the city letter (粤BD12345) or at the end (粤B12345D). Spaces, '·' and '-' are dropped
    and full-width letters and digits converted.
    """
    text = unicodedata.normalize("NFKC", value or "")
    plate = "".join(c for c in text if not c.isspace() and c not in "·•.-_").upper()
    if not plate:
        raise ValidationFailed("Enter the licence plate, for example 川A12345.", field=field)
    if _PLATE_ORDINARY.fullmatch(plate) or _PLATE_NEW_ENERGY.fullmatch(plate):
        return plate
    raise ValidationFailed(
        "The licence plate {plate} is not valid: a province character, a city letter and 5 letters or digits (new-energy plates: 6, with D or F), for example 川A12345 or 粤BD12345.",
        field=field,
        plate=plate[:16],
    )


def today() -> date:
    """The operator's business date."""
    return local(utcnow()).date()


def _whole(value: Any, *, field: str, low: int, high: int, message: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValidationFailed(message, field=field, low=low, high=high)
    return value


def _line(value: str | None, *, field: str, max_length: int, required: bool = False) -> str:
    text = " ".join(parties.plain_text(value).split())
    if required and not text:
        raise ValidationFailed("This field is required.", field=field)
    if len(text) > max_length:
        raise ValidationFailed("Too long: at most {n} characters.", field=field, n=max_length)
    return text


# --- lookups ------------------------------------------------------------------------------


def find_card(session: Session, card_number: str) -> Card | None:
    number = (card_number or "").strip()
    if not number or len(number) > 32:
        return None
    return session.execute(select(Card).where(Card.number == number)).scalar_one_or_none()


def get_card(session: Session, card_number: str, *, field: str = "card_number") -> Card:
    card = find_card(session, card_number)
    if card is None:
        raise NotFound(
            "There is no card with the number {number}.", field=field, number=card_number[:32]
        )
    return card


def get_permit(*, session: Session, actor: User, number: str) -> ParkingPermit:
    require(actor, PARKING_VIEW)
    key = (number or "").strip()
    permit = (
        session.execute(
            select(ParkingPermit).where(ParkingPermit.number == key)
        ).scalar_one_or_none()
        if key and len(key) <= 32
        else None
    )
    if permit is None:
        raise NotFound("There is no parking permit {number}.", number=number[:32])
    return permit


def list_permits(
    *,
    session: Session,
    actor: User,
    state: str | None = None,
    q: str | None = None,
    card_id: int | None = None,
    expiring_within: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[ParkingPermit]:
    """Permits, those ending soonest first among the active ones."""
    require(actor, PARKING_VIEW)
    stmt = select(ParkingPermit)
    if state in STATE_LABELS:
        stmt = stmt.where(ParkingPermit.state == state)
    if card_id is not None:
        stmt = stmt.where(ParkingPermit.card_id == card_id)
    if expiring_within is not None:
        horizon = today() + timedelta(days=max(0, min(expiring_within, 3660)))
        stmt = stmt.where(
            ParkingPermit.state == PermitState.ACTIVE.value,
            ParkingPermit.valid_until <= horizon,
        )
    text = " ".join(parties.plain_text(q).split())[:64]
    if text:
        compact = "".join(unicodedata.normalize("NFKC", text).split()).upper()
        stmt = stmt.outerjoin(Card, Card.id == ParkingPermit.card_id).where(
            or_(
                ParkingPermit.number.contains(compact, autoescape=True),
                ParkingPermit.plate.contains(compact, autoescape=True),
                ParkingPermit.space.contains(text, autoescape=True),
                Card.number.contains(text, autoescape=True),
            )
        )
    stmt = stmt.order_by(ParkingPermit.state, ParkingPermit.valid_until, ParkingPermit.id)
    limit = max(1, min(limit, 500))
    offset = max(0, min(offset, 10_000_000))
    return list(session.execute(stmt.limit(limit).offset(offset)).scalars())


def is_expiring(permit: ParkingPermit, *, on: date | None = None) -> bool:
    """Active and ending within :data:`EXPIRING_DAYS` (or already past its end)."""
    day = on or today()
    return permit.is_active and permit.valid_until <= day + timedelta(days=EXPIRING_DAYS)


def is_current(permit: ParkingPermit, *, on: date | None = None) -> bool:
    """What a car-park gate checks: active and covering the day."""
    day = on or today()
    return permit.is_active and permit.valid_from <= day <= permit.valid_until


# --- documents ----------------------------------------------------------------------------


def _permit_exists(session: Session, permit_id: int) -> bool:
    return session.get(ParkingPermit, permit_id) is not None


def _permit_url(permit_id: int) -> str:
    return f"/parking/by-id/{permit_id}"


parties.register_document_owner(
    OWNER_TYPE, label=N_("Parking permit"), exists=_permit_exists, url=_permit_url
)


@dataclass(slots=True)
class Requirement:
    code: str
    label: str  # English, translated on display
    document: Document | None  # the newest document on file that satisfies it
    where: str  # "person", "permit" or "" (missing)

    @property
    def satisfied(self) -> bool:
        return self.document is not None


def required_codes(card: Card | None) -> list[str]:
    """The requirement codes for a permit on this card (a tenant also needs the lease)."""
    codes = [c for c in REQUIREMENTS if c != "lease_contract"]
    if card is not None and card.holder_kind == HolderKind.TENANT.value:
        codes.insert(4, "lease_contract")
    return codes


def _documents_of(session: Session, owner_type: str, owner_id: int | None) -> list[Document]:
    if owner_id is None:
        return []
    return list(
        session.execute(
            select(Document)
            .where(Document.owner_type == owner_type, Document.owner_id == owner_id)
            .order_by(Document.id.desc())
        ).scalars()
    )


def checklist(
    session: Session,
    *,
    card: Card | None,
    person_id: int | None,
    permit: ParkingPermit | None = None,
) -> list[Requirement]:
    """Which of the required documents are on file for the person (or the permit)."""
    on_person = _documents_of(session, "person", person_id)
    on_permit = _documents_of(session, OWNER_TYPE, permit.id) if permit else []
    items = []
    for code in required_codes(card):
        types, label = REQUIREMENTS[code]
        found = next((d for d in on_permit if d.doc_type in types), None)
        where = "permit" if found else ""
        if found is None and code not in PERMIT_ONLY:
            found = next((d for d in on_person if d.doc_type in types), None)
            where = "person" if found else ""
        items.append(Requirement(code=code, label=label, document=found, where=where))
    return items


@dataclass(slots=True)
class Upload:
    """A document handed in at the desk with the application."""

    filename: str
    data: bytes
    content_type: str | None = None


def _missing_documents(items: list[Requirement], uploads: Mapping[str, Upload]) -> None:
    missing = [item for item in items if not item.satisfied and item.code not in uploads]
    if not missing:
        return
    names = ", ".join(gettext(item.label) for item in missing)
    raise ValidationFailed(
        "Parking cannot be issued without these documents: {missing}.",
        field="documents",
        errors=[("documents", "Parking cannot be issued without these documents: {missing}.")]
        + [(f"doc_{item.code}", N_("This document is required.")) for item in missing],
        missing=names,
    )


# --- changes ------------------------------------------------------------------------------


def _card_event(session: Session, card: Card, actor: User, kind: str, **data: Any) -> None:
    session.add(CardEvent(card_id=card.id, kind=kind, actor_id=actor.id, data=data))


def _charge(
    session: Session,
    *,
    actor: User,
    permit: ParkingPermit,
    person: Person,
    months: int,
    period: tuple[date, date],
    method: str,
    idempotency_key: str | None,
) -> str | None:
    amount = permit.monthly_fee * months
    if amount <= 0:
        return None
    label = f"停车费 Parking {permit.plate} {period[0].isoformat()}–{period[1].isoformat()}"
    receipt = ledger.record_payment(
        session=session,
        actor=actor,
        payer_name=person.name,
        items=[(label[:128], amount, PARKING_INCOME)],
        method=method,
        payer_type="person",
        payer_id=person.id,
        reference=f"parking:{permit.number}",
        description=f"parking {permit.number}",
        idempotency_key=idempotency_key,
        permission=PARKING_MANAGE,
    )
    return receipt.number


def _method(value: str | None, amount: int) -> str:
    if amount <= 0:
        return value or PaymentMethod.CASH.value
    if value not in {m.value for m in PaymentMethod}:
        raise ValidationFailed(
            "Choose the payment method: cash, card, transfer, wechat or alipay.",
            field="payment_method",
        )
    return value


def issue_permit(
    *,
    session: Session,
    actor: User,
    card_number: str,
    plate: str,
    monthly_fee: int,
    person_id: int | None = None,
    space: str = "",
    kind: str = PermitKind.MONTHLY.value,
    months: int = 1,
    payment_method: str | None = PaymentMethod.CASH.value,
    start: date | None = None,
    documents: Mapping[str, Upload] | None = None,
    note: str = "",
    idempotency_key: str | None = None,
) -> ParkingPermit:
    """Authorize a card for the car park from ``start`` (default today) for ``months``.

    The card must be active (the customer's access card or a parking card bought for it, of
    any holder kind, in a property). ``documents`` maps requirement codes (see
    :data:`REQUIREMENTS`) to the files handed in now; together with the documents already on
    the person's file they must cover every requirement, else nothing is saved and the error
    names every missing one. ``monthly_fee`` × ``months`` is taken with a receipt (income
    6003); a fee of 0 (e.g. the customer's own space) takes no payment.
    """
    require(actor, PARKING_MANAGE)
    uploads = dict(documents or {})
    errors: list[ValidationFailed] = []

    def check(func: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ValidationFailed as exc:
            errors.append(exc)
            return None

    card = get_card(session, card_number)
    clean_plate = check(normalize_plate, plate)
    clean_space = check(_line, space, field="space", max_length=32)
    if clean_space and not _SPACE.fullmatch(clean_space):
        errors.append(
            ValidationFailed(
                "A space number is letters, digits, '-', '_', '.', '#' or spaces, e.g. B2-018.",
                field="space",
            )
        )
    if kind not in KIND_LABELS:
        errors.append(
            ValidationFailed(
                "Choose the kind of permit: monthly card, leased space or own space.", field="kind"
            )
        )
    fee = check(
        _whole,
        monthly_fee,
        field="monthly_fee",
        low=0,
        high=MAX_MONTHLY_FEE,
        message=N_("Enter the monthly fee in fen: a whole number from {low} to {high}."),
    )
    clean_months = check(
        _whole,
        months,
        field="months",
        low=1,
        high=MAX_MONTHS,
        message=N_("Enter the number of months: a whole number from {low} to {high}."),
    )
    method = check(_method, payment_method, (fee or 0) * (clean_months or 0))
    clean_note = check(_line, note, field="note", max_length=255)
    for code, upload in uploads.items():
        if code not in REQUIREMENTS or not isinstance(upload, Upload):
            errors.append(
                ValidationFailed("Choose the document type from the list.", field="documents")
            )
            break
        if not upload.data:
            errors.append(
                ValidationFailed("The file is empty. Choose a file to upload.", field=f"doc_{code}")
            )
    if errors:
        _raise_all(errors)

    if card.state != CardState.ACTIVE.value:
        raise Conflict(
            "Card {number} is {state}; parking can be added only to an active card.",
            field="card_number",
            number=card.number,
            state=card.state,
        )
    if card.property_id is None:
        raise Conflict(
            "Card {number} does not belong to a property; issue it first.",
            field="card_number",
            number=card.number,
        )
    holder_id = person_id if person_id is not None else card.person_id
    if holder_id is None:
        raise ValidationFailed(
            "Choose the person the permit is for: the card has no holder.", field="person_id"
        )
    person = parties.get_person(session=session, person_id=holder_id)
    _missing_documents(checklist(session, card=card, person_id=person.id), uploads)

    same = session.execute(
        select(ParkingPermit).where(
            ParkingPermit.state == PermitState.ACTIVE.value,
            or_(
                ParkingPermit.card_id == card.id,
                (ParkingPermit.property_id == card.property_id)
                & (ParkingPermit.plate == clean_plate),
            ),
        )
    ).scalar_one_or_none()
    if same is not None:
        raise Conflict(
            "Parking permit {permit} is already active for card {number} or plate {plate}; top it up or end it first.",
            field="plate" if same.plate == clean_plate else "card_number",
            permit=same.number,
            number=card.number,
            plate=same.plate,
        )

    first_day = start or today()
    period = monthly_period(first_day, clean_months)
    permit = ParkingPermit(
        number=next_number(session, "parking_permit", PERMIT_PREFIX),
        property_id=card.property_id,
        card_id=card.id,
        person_id=person.id,
        plate=clean_plate,
        space=clean_space,
        kind=kind,
        valid_from=period[0],
        valid_until=period[1],
        monthly_fee=fee,
        state=PermitState.ACTIVE.value,
        end_reason="",
        owner_confirmation="",
        created_by_id=actor.id,
    )
    session.add(permit)
    session.flush()
    for code, upload in uploads.items():
        parties.upload_document(
            session=session,
            actor=actor,
            owner_type=OWNER_TYPE,
            owner_id=permit.id,
            doc_type=UPLOAD_TYPE[code],
            filename=upload.filename,
            data=upload.data,
            content_type=upload.content_type,
            note=gettext(REQUIREMENTS[code][1]),
        )
    receipt_no = _charge(
        session,
        actor=actor,
        permit=permit,
        person=person,
        months=clean_months,
        period=period,
        method=method,
        idempotency_key=idempotency_key,
    )
    permit.periods.append(
        ParkingPeriod(
            period_from=period[0],
            period_until=period[1],
            months=clean_months,
            amount=fee * clean_months,
            receipt_no=receipt_no,
            at=utcnow(),
            by_id=actor.id,
        )
    )
    _card_event(
        session,
        card,
        actor,
        "parking_issued",
        permit=permit.number,
        plate=permit.plate,
        valid_from=period[0].isoformat(),
        valid_until=period[1].isoformat(),
        receipt=receipt_no,
    )
    touch_card(session, card_id=card.id, property_id=card.property_id, reason="parking_issued")
    session.flush()
    record(session, actor, "parking.issued", permit, note=clean_note, receipt=receipt_no)
    return permit


def _raise_all(errors: Sequence[ValidationFailed]) -> NoReturn:
    if not errors:
        raise ValidationFailed("Some fields are not valid.")
    if len(errors) == 1:
        raise errors[0]
    params: dict[str, Any] = {}
    for item in errors:
        params.update(item.params)
    pairs: list[tuple[str, str]] = []
    for item in errors:
        pairs.extend(item.errors or [(item.field or "request", item.message)])
    raise ValidationFailed("Some fields are not valid.", errors=pairs, **params)


def top_up(
    *,
    session: Session,
    actor: User,
    number: str,
    months: int,
    payment_method: str | None = PaymentMethod.CASH.value,
    monthly_fee: int | None = None,
    idempotency_key: str | None = None,
) -> ParkingPeriod:
    """Pay for ``months`` more: from the day after the current end, or from today when the
    permit has already run out. ``monthly_fee`` changes the fee from now on."""
    require(actor, PARKING_MANAGE)
    permit = get_permit(session=session, actor=actor, number=number)
    errors: list[ValidationFailed] = []
    clean_months = None
    try:
        clean_months = _whole(
            months,
            field="months",
            low=1,
            high=MAX_MONTHS,
            message=N_("Enter the number of months: a whole number from {low} to {high}."),
        )
    except ValidationFailed as exc:
        errors.append(exc)
    fee = permit.monthly_fee
    if monthly_fee is not None:
        try:
            fee = _whole(
                monthly_fee,
                field="monthly_fee",
                low=0,
                high=MAX_MONTHLY_FEE,
                message=N_("Enter the monthly fee in fen: a whole number from {low} to {high}."),
            )
        except ValidationFailed as exc:
            errors.append(exc)
    method = None
    try:
        method = _method(payment_method, fee * (clean_months or 1))
    except ValidationFailed as exc:
        errors.append(exc)
    if errors or clean_months is None or method is None:
        _raise_all(errors)
    if not permit.is_active:
        raise Conflict(
            "Parking permit {permit} has ended; issue a new permit instead.",
            permit=permit.number,
        )
    card = session.get(Card, permit.card_id)
    if card is None or card.state != CardState.ACTIVE.value:
        raise Conflict(
            "Card {number} is {state}; parking can be topped up only on an active card.",
            field="number",
            number=card.number if card else "?",
            state=card.state if card else "?",
        )
    before = snapshot(permit)
    day = today()
    first = permit.valid_until + timedelta(days=1) if permit.valid_until >= day else day
    period = monthly_period(first, clean_months)
    permit.monthly_fee = fee
    if permit.valid_until < day:
        permit.valid_from = first
    permit.valid_until = period[1]
    person = parties.get_person(session=session, person_id=permit.person_id)
    receipt_no = _charge(
        session,
        actor=actor,
        permit=permit,
        person=person,
        months=clean_months,
        period=period,
        method=method,
        idempotency_key=idempotency_key,
    )
    row = ParkingPeriod(
        period_from=period[0],
        period_until=period[1],
        months=clean_months,
        amount=fee * clean_months,
        receipt_no=receipt_no,
        at=utcnow(),
        by_id=actor.id,
    )
    permit.periods.append(row)
    _card_event(
        session,
        card,
        actor,
        "parking_topped_up",
        permit=permit.number,
        valid_until=period[1].isoformat(),
        receipt=receipt_no,
    )
    touch_card(
        session, card_id=permit.card_id, property_id=permit.property_id, reason="parking_top_up"
    )
    session.flush()
    record(session, actor, "parking.topped_up", permit, before=before, receipt=receipt_no)
    return row


def end_permit(
    *,
    session: Session,
    actor: User,
    number: str,
    reason: str,
    owner_confirmed: bool,
    confirmation: str = "",
) -> ParkingPermit:
    """End the parking authorization (the lease ended, the car was sold, …).

    Seed 000 §3.4.4: the cashier tells the issuer, and the authorization is cancelled only
    after the owner confirms; ``confirmation`` says how (e.g. "phone call 10:20, 138…").
    Paid days are not refunded here.
    """
    require(actor, PARKING_MANAGE)
    permit = get_permit(session=session, actor=actor, number=number)
    errors: list[ValidationFailed] = []
    clean_reason = ""
    clean_confirmation = ""
    try:
        clean_reason = _line(reason, field="reason", max_length=255, required=True)
    except ValidationFailed as exc:
        errors.append(exc)
    try:
        clean_confirmation = _line(confirmation, field="confirmation", max_length=255)
    except ValidationFailed as exc:
        errors.append(exc)
    if owner_confirmed is not True:
        errors.append(
            ValidationFailed(
                "The parking authorization is cancelled only after the owner confirms; record the owner's confirmation first.",
                field="owner_confirmed",
            )
        )
    if errors:
        _raise_all(errors)
    target = PermitState.ENDED
    if target not in TRANSITIONS[PermitState(permit.state)]:
        raise Conflict("Parking permit {permit} has already ended.", permit=permit.number)
    before = snapshot(permit)
    permit.state = target.value
    permit.ended_at = utcnow()
    permit.ended_by_id = actor.id
    permit.end_reason = clean_reason
    permit.owner_confirmation = clean_confirmation or gettext("Owner confirmed")
    card = session.get(Card, permit.card_id)
    if card is not None:
        _card_event(
            session, card, actor, "parking_ended", permit=permit.number, reason=clean_reason
        )
    touch_card(
        session, card_id=permit.card_id, property_id=permit.property_id, reason="parking_ended"
    )
    session.flush()
    record(session, actor, "parking.ended", permit, before=before)
    return permit


def move_permits(*, session: Session, actor: User, from_card: Card, to_card: Card) -> int:
    """Move the active permits of a reissued card to the new card (cards.reissue may call
    this). Returns how many moved."""
    require(actor, PARKING_MANAGE)
    moved = 0
    for permit in session.execute(
        select(ParkingPermit).where(
            ParkingPermit.card_id == from_card.id, ParkingPermit.state == PermitState.ACTIVE.value
        )
    ).scalars():
        before = snapshot(permit)
        permit.card_id = to_card.id
        moved += 1
        session.flush()
        record(session, actor, "parking.moved", permit, before=before)
    if moved:
        for card in (from_card, to_card):
            if card.property_id is not None:
                touch_card(
                    session, card_id=card.id, property_id=card.property_id, reason="parking_moved"
                )
    return moved


def receipt_total(periods: Sequence[ParkingPeriod]) -> str:
    return format_minor(sum(p.amount for p in periods))


# --- reminders ----------------------------------------------------------------------------


def queue_expiry_reminders(
    session: Session, *, on: date | None = None, days_ahead: int = 7, actor: User | None = None
) -> int:
    """Queue an SMS and/or e-mail to the holder of every active parking permit that ends
    within ``days_ahead`` days (monthly cards are topped up at the desk before they run out).
    Each permit and end date is reminded once per channel."""
    from cardops.notify.service import enqueue_checked

    start = on or local(utcnow()).date()
    until = start + timedelta(days=max(0, min(days_ahead, 366)))
    rows = session.execute(
        select(ParkingPermit, Person)
        .join(Person, Person.id == ParkingPermit.person_id)
        .where(
            ParkingPermit.state == PermitState.ACTIVE.value,
            ParkingPermit.valid_until >= start,
            ParkingPermit.valid_until <= until,
        )
        .order_by(ParkingPermit.id)
    ).all()
    queued = 0
    for permit, person in rows:
        body = (
            f"{person.name}，您好：车牌 {permit.plate} 的停车卡（{permit.number}）"
            f"将于 {permit.valid_until.isoformat()} 到期，请及时到物业客服中心续费。"
        )
        key = f"parking-expiry:{permit.id}:{permit.valid_until.isoformat()}"
        targets = [("sms", person.mobile, ""), ("email", person.email, "停车卡即将到期")]
        for channel, recipient, subject in targets:
            if not recipient:
                continue
            _, new = enqueue_checked(
                session,
                channel=channel,
                recipient=recipient,
                subject=f"{subject} · {permit.plate}" if subject else "",
                body=body,
                actor=actor,
                ref=f"parking:{permit.number}",
                dedupe_key=f"{key}:{channel}",
            )
            queued += int(new)
    return queued
