"""Numbered service cards and returns & exchanges. The only code that changes them; it never
commits (the request or command that called it does)."""

from __future__ import annotations

import calendar
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from stdnum.iso7064 import mod_37_36

from cardops.approvals import service as approvals
from cardops.approvals.models import ApprovalRequest
from cardops.audit.service import record
from cardops.auth.models import User
from cardops.auth.service import require
from cardops.channel import service as channel
from cardops.channel.models import Provider, ProviderLevel
from cardops.channel.regions import normalize_city, normalize_province
from cardops.core.clock import as_utc, local, utcnow
from cardops.core.errors import (
    Conflict,
    FieldErrors,
    InvalidTransition,
    NotFound,
    PermissionDenied,
    RateLimited,
    ValidationFailed,
)
from cardops.core.i18n import N_
from cardops.core.models import next_number, next_value
from cardops.core.ratelimit import SlidingWindowLimiter
from cardops.ledger import service as ledger
from cardops.ledger.chart import DEFAULT_DEBIT, OTHER_INCOME
from cardops.ledger.models import AccountType, PaymentMethod
from cardops.parties import service as parties
from cardops.parties.models import Document, Person
from cardops.terminals.models import TerminalModel
from cardops.warranty.models import (
    AllocationLevel,
    CardAllocation,
    CardRange,
    CardState,
    CompensationState,
    InstallerPoints,
    ModelTerms,
    ReturnKind,
    ReturnReason,
    ReturnState,
    ServiceCard,
    ServiceCardEvent,
    ShippingPayer,
    WarrantyReturn,
    WarrantyReturnEvent,
    WarrantySettings,
)
from cardops.warranty.permissions import (
    WARRANTY_ISSUE,
    WARRANTY_MANAGE,
    WARRANTY_REGISTER,
    WARRANTY_RETURNS,
    WARRANTY_SETTLE,
    WARRANTY_VIEW,
)

COMPENSATION_KIND = "compensation"
DOC_OWNER = "warranty_return"
PHOTO_DOC_TYPE = "photo"
MAX_RANGE = 1_000_000  # numbers per generated range
MAX_PRICE = 10_000_000_000  # fen
MAX_MONTHS = 120
MAX_POINTS = 100_000
MAX_PHOTOS = 10
_PREFIX = re.compile(r"^[A-Z]{1,6}$")
_NUMBER = re.compile(r"^([A-Z]{1,6})([0-9]{4,12})([0-9A-Z])$")
_SPACES = re.compile(r"[\s\-]+")

# Ledger accounts the domain posts to (opened on first use).
REFUNDS_ACCOUNT = "warranty.refunds"
COMPENSATION_ACCOUNT = "warranty.compensation"
SHIPPING_ACCOUNT = "warranty.shipping"
_ACCOUNTS = {
    REFUNDS_ACCOUNT: ("Sales returns and refunds", "销售退货退款"),
    COMPENSATION_ACCOUNT: ("After-sales compensation", "售后补偿"),
    SHIPPING_ACCOUNT: ("Return shipping borne", "退换货运费"),
}


def _text(value: Any, *, field: str, max_length: int, required: bool = False) -> str:
    text = str(value if value is not None else "").strip()
    if "\x00" in text:
        raise ValidationFailed("The text contains a character that is not allowed.", field=field)
    if len(text) > max_length:
        raise ValidationFailed("Too long: at most {n} characters.", field=field, n=max_length)
    if required and not text:
        raise ValidationFailed("This field is required.", field=field)
    return text


def _whole(value: Any, *, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationFailed("Enter a whole number.", field=field)
    if not low <= value <= high:
        raise ValidationFailed(
            "Enter a number from {low} to {high}.", field=field, low=low, high=high
        )
    return value


def _fen(value: Any, *, field: str, high: int = MAX_PRICE) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationFailed("The amount must be a whole number of fen.", field=field)
    if value < 0:
        raise ValidationFailed("The amount must not be negative.", field=field)
    if value > high:
        raise ValidationFailed("The amount is too large.", field=field)
    return value


def add_months(day: date, months: int) -> date:
    """``2026-01-31`` + 1 month → ``2026-02-28`` (the last day when the month is shorter)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def today() -> date:
    return local(utcnow()).date()


# --- numbers --------------------------------------------------------------------------------


def format_number(prefix: str, width: int, seq: int) -> str:
    """``JD`` + ``00000042`` + check character."""
    body = f"{prefix}{seq:0{width}d}"
    return body + mod_37_36.calc_check_digit(body)


def normalize_number(text: str | None) -> str:
    return _SPACES.sub("", str(text or "")).upper()[:40]


@dataclass(frozen=True, slots=True)
class ParsedNumber:
    number: str
    prefix: str
    width: int
    seq: int


def parse_number(text: str | None) -> tuple[ParsedNumber | None, str]:
    """The parts of a card number, or None and why not (``format`` or ``check``)."""
    number = normalize_number(text)
    match = _NUMBER.fullmatch(number)
    if not match:
        return None, "format"
    if not mod_37_36.is_valid(number):
        return None, "check"
    prefix, digits, _check = match.groups()
    return ParsedNumber(number, prefix, len(digits), int(digits)), ""


def _parsed(text: str | None, *, field: str) -> ParsedNumber:
    parsed, why = parse_number(text)
    if parsed is None:
        if not normalize_number(text):
            raise ValidationFailed("Enter the service-card number.", field=field)
        if why == "check":
            raise ValidationFailed(
                "{number} is not a genuine service-card number: its check character is wrong.",
                field=field,
                number=normalize_number(text),
            )
        raise ValidationFailed(
            "A service-card number is 1–6 letters, 4–12 digits and a check character, "
            "e.g. JD00000017R.",
            field=field,
        )
    return parsed


# --- settings and model terms ---------------------------------------------------------------


def get_settings(session: Session) -> WarrantySettings:
    row = session.get(WarrantySettings, 1)
    if row is None:
        row = WarrantySettings(
            id=1, warranty_months=12, points_per_card=10, compensation_cap=1000, photo_hours=24
        )
    return row


def update_settings(
    *,
    session: Session,
    actor: User,
    warranty_months: int,
    points_per_card: int,
    compensation_cap: int,
    photo_hours: int,
) -> WarrantySettings:
    require(actor, WARRANTY_MANAGE)
    errors = FieldErrors()
    months = errors.check(_whole, warranty_months, field="warranty_months", low=1, high=MAX_MONTHS)
    points = errors.check(_whole, points_per_card, field="points_per_card", low=0, high=MAX_POINTS)
    cap = errors.check(_fen, compensation_cap, field="compensation_cap", high=100_000_000)
    hours = errors.check(_whole, photo_hours, field="photo_hours", low=1, high=24 * 30)
    errors.raise_if_any()
    row = session.get(WarrantySettings, 1)
    before = None
    if row is None:
        row = WarrantySettings(id=1)
        session.add(row)
    else:
        before = _settings_snapshot(row)
    row.warranty_months, row.points_per_card = months, points
    row.compensation_cap, row.photo_hours = cap, hours
    session.flush()
    record(session, actor, "warranty.settings_changed", row, before=before)
    return row


def _settings_snapshot(row: WarrantySettings) -> dict[str, Any]:
    return {
        "warranty_months": row.warranty_months,
        "points_per_card": row.points_per_card,
        "compensation_cap": row.compensation_cap,
        "photo_hours": row.photo_hours,
    }


def get_model(session: Session, model_id: Any, *, field: str = "model_id") -> TerminalModel:
    if isinstance(model_id, bool) or not isinstance(model_id, int) or not 0 < model_id < 2**31:
        raise ValidationFailed("Choose the product model.", field=field)
    model = session.get(TerminalModel, model_id)
    if model is None:
        raise NotFound("There is no product model {id}.", field=field, id=model_id)
    return model


def model_terms(session: Session, model_id: int) -> ModelTerms | None:
    return session.get(ModelTerms, model_id)


def list_models(session: Session) -> list[tuple[TerminalModel, ModelTerms | None]]:
    stmt = (
        select(TerminalModel, ModelTerms)
        .outerjoin(ModelTerms, ModelTerms.model_id == TerminalModel.id)
        .order_by(TerminalModel.code)
    )
    return [(m, t) for m, t in session.execute(stmt).tuples()]


def set_model_terms(
    *,
    session: Session,
    actor: User,
    model_id: int,
    floor_price: int,
    warranty_months: int | None = None,
    points: int | None = None,
) -> ModelTerms:
    require(actor, WARRANTY_MANAGE)
    errors = FieldErrors()
    model = errors.check(get_model, session, model_id)
    floor = errors.check(_fen, floor_price, field="floor_price")
    if warranty_months is not None:
        errors.check(_whole, warranty_months, field="warranty_months", low=1, high=MAX_MONTHS)
    if points is not None:
        errors.check(_whole, points, field="points", low=0, high=MAX_POINTS)
    errors.raise_if_any()
    terms = session.get(ModelTerms, model.id)
    before = None
    if terms is None:
        terms = ModelTerms(model_id=model.id)
        session.add(terms)
    else:
        before = {
            "floor_price": terms.floor_price,
            "warranty_months": terms.warranty_months,
            "points": terms.points,
        }
    terms.floor_price, terms.warranty_months, terms.points = floor, warranty_months, points
    session.flush()
    record(session, actor, "warranty.model_terms_set", terms, before=before)
    return terms


def _serialize(session: Session) -> None:
    """Generating ranges and issuing numbers check for overlaps before they insert; this row
    lock (a counter bumped under FOR UPDATE) makes two such checks run one after the other."""
    next_value(session, "warranty:numbering")


# --- ranges ---------------------------------------------------------------------------------


def _overlapping_range(
    session: Session, prefix: str, width: int, start: int, end: int
) -> CardRange | None:
    return session.execute(
        select(CardRange)
        .where(
            CardRange.prefix == prefix,
            CardRange.width == width,
            CardRange.start <= end,
            CardRange.end >= start,
        )
        .limit(1)
    ).scalar_one_or_none()


def generate_range(
    *,
    session: Session,
    actor: User,
    prefix: str,
    width: int,
    start: int,
    count: int,
    note: str = "",
) -> CardRange:
    """Generate ``count`` numbers from ``start``: ``prefix`` + sequence (``width`` digits) +
    check character. A range that overlaps one already generated is refused."""
    require(actor, WARRANTY_MANAGE)
    errors = FieldErrors()
    prefix = _text(prefix, field="prefix", max_length=20).upper()
    if not _PREFIX.fullmatch(prefix):
        errors.add(ValidationFailed("A prefix is 1–6 letters A–Z, e.g. JD.", field="prefix"))
    width = errors.check(_whole, width, field="width", low=4, high=12)
    start = errors.check(_whole, start, field="start", low=0, high=10**12 - 1)
    count = errors.check(_whole, count, field="count", low=1, high=MAX_RANGE)
    note = errors.check(_text, note, field="note", max_length=200) or ""
    errors.raise_if_any()
    end = start + count - 1
    if end >= 10**width:
        raise ValidationFailed(
            "{count} numbers from {start} do not fit in {width} digits.",
            field="count",
            count=count,
            start=start,
            width=width,
        )
    _serialize(session)
    clash = _overlapping_range(session, prefix, width, start, end)
    if clash is not None:
        raise Conflict(
            "The numbers overlap the range {first} – {last} generated already.",
            field="start",
            first=first_number(clash),
            last=last_number(clash),
        )
    row = CardRange(
        prefix=prefix, width=width, start=start, end=end, note=note, created_by_id=actor.id
    )
    session.add(row)
    session.flush()
    record(session, actor, "warranty.range_generated", row)
    return row


def first_number(item: CardRange | CardAllocation) -> str:
    r = item if isinstance(item, CardRange) else item.card_range
    return format_number(r.prefix, r.width, item.start)


def last_number(item: CardRange | CardAllocation) -> str:
    r = item if isinstance(item, CardRange) else item.card_range
    return format_number(r.prefix, r.width, item.end)


@dataclass
class RangeRow:
    card_range: CardRange
    issued: int  # numbers issued to branches
    registered: int


def _range_rows(session: Session, ranges: list[CardRange]) -> list[RangeRow]:
    ids = [r.id for r in ranges]
    issued: dict[int, int] = {}
    registered: dict[int, int] = {}
    if ids:
        for range_id, total in session.execute(
            select(CardAllocation.range_id, func.sum(CardAllocation.end - CardAllocation.start + 1))
            .where(
                CardAllocation.range_id.in_(ids),
                CardAllocation.level == AllocationLevel.BRANCH.value,
            )
            .group_by(CardAllocation.range_id)
        ).tuples():
            issued[range_id] = int(total or 0)
        for range_id, count in session.execute(
            select(ServiceCard.range_id, func.count())
            .where(ServiceCard.range_id.in_(ids))
            .group_by(ServiceCard.range_id)
        ).tuples():
            registered[range_id] = int(count)
    return [RangeRow(r, issued.get(r.id, 0), registered.get(r.id, 0)) for r in ranges]


def list_ranges(*, session: Session, actor: User, limit: int = 200) -> list[RangeRow]:
    require(actor, WARRANTY_VIEW)
    ranges = list(
        session.execute(select(CardRange).order_by(CardRange.id.desc()).limit(limit)).scalars()
    )
    return _range_rows(session, ranges)


def range_row(session: Session, card_range: CardRange) -> RangeRow:
    return _range_rows(session, [card_range])[0]


def get_range(session: Session, range_id: int) -> CardRange:
    row = session.get(CardRange, range_id) if 0 < range_id < 2**31 else None
    if row is None:
        raise NotFound("There is no service-card range {id}.", id=range_id)
    return row


def range_allocations(session: Session, range_id: int) -> list[CardAllocation]:
    return list(
        session.execute(
            select(CardAllocation)
            .where(CardAllocation.range_id == range_id)
            .order_by(CardAllocation.start, CardAllocation.level)
        ).scalars()
    )


# --- issuing --------------------------------------------------------------------------------


def _range_for(session: Session, parsed: ParsedNumber) -> CardRange | None:
    return session.execute(
        select(CardRange)
        .where(
            CardRange.prefix == parsed.prefix,
            CardRange.width == parsed.width,
            CardRange.start <= parsed.seq,
            CardRange.end >= parsed.seq,
        )
        .limit(1)
    ).scalar_one_or_none()


def _holding(session: Session, range_id: int, level: str, seq: int) -> CardAllocation | None:
    return session.execute(
        select(CardAllocation)
        .where(
            CardAllocation.range_id == range_id,
            CardAllocation.level == level,
            CardAllocation.start <= seq,
            CardAllocation.end >= seq,
        )
        .limit(1)
    ).scalar_one_or_none()


def _check_scope(session: Session, actor: User, provider: Provider, *, field: str) -> None:
    visible = channel.visible_provider_ids(session, actor)
    if visible is not None and provider.id not in visible:
        raise PermissionDenied(
            "You work for another provider and cannot act for {provider}.",
            field=field,
            provider=provider.name,
        )


def issue(
    *,
    session: Session,
    actor: User,
    first: str,
    last: str,
    provider_id: int,
    note: str = "",
) -> CardAllocation:
    """Issue the numbers ``first`` … ``last`` to a branch (from the generated range) or to a
    dealer (from what its branch holds)."""
    require(actor, WARRANTY_ISSUE)
    errors = FieldErrors()
    a = errors.check(_parsed, first, field="first")
    b = errors.check(_parsed, last, field="last")
    note = errors.check(_text, note, field="note", max_length=200) or ""
    provider: Provider | None = None
    if isinstance(provider_id, bool) or not isinstance(provider_id, int) or provider_id <= 0:
        errors.add(ValidationFailed("Choose the branch or dealer.", field="provider_id"))
    else:
        provider = session.get(Provider, provider_id) if provider_id < 2**31 else None
        if provider is None:
            errors.add(
                ValidationFailed("There is no provider {id}.", field="provider_id", id=provider_id)
            )
    errors.raise_if_any()
    assert a is not None and b is not None and provider is not None
    if (a.prefix, a.width) != (b.prefix, b.width):
        raise ValidationFailed(
            "The first and the last number must have the same prefix and length.", field="last"
        )
    if b.seq < a.seq:
        raise ValidationFailed("The last number comes before the first.", field="last")
    card_range = _range_for(session, a)
    if card_range is None:
        raise ValidationFailed(
            "No generated range contains {number}.", field="first", number=a.number
        )
    if b.seq > card_range.end:
        raise ValidationFailed(
            "{number} is beyond the end of its range ({end}).",
            field="last",
            number=b.number,
            end=last_number(card_range),
        )
    if not provider.is_active:
        raise ValidationFailed(
            "The provider {provider} is not active.", field="provider_id", provider=provider.name
        )
    if provider.level == ProviderLevel.CITY.value:
        level, parent = AllocationLevel.BRANCH, None
        if channel.visible_provider_ids(session, actor) is not None:
            raise PermissionDenied("Only head-office staff issue numbers to branches.")
    elif provider.level == ProviderLevel.COUNTY.value:
        level = AllocationLevel.DEALER
        branch = provider.parent
        if branch is None:
            raise ValidationFailed(
                "The dealer {provider} has no branch above it.",
                field="provider_id",
                provider=provider.name,
            )
        _check_scope(session, actor, branch, field="provider_id")
        parent = _holding(session, card_range.id, AllocationLevel.BRANCH.value, a.seq)
        if parent is None or parent.provider_id != branch.id or parent.end < b.seq:
            raise ValidationFailed(
                "The branch {branch} does not hold all of the numbers {first} – {last}; a "
                "dealer can only receive numbers its branch holds.",
                field="first",
                branch=branch.name,
                first=a.number,
                last=b.number,
            )
    else:
        raise ValidationFailed(
            "Numbers are issued to branches (city providers) and dealers (county providers).",
            field="provider_id",
        )
    _serialize(session)
    clash = session.execute(
        select(CardAllocation)
        .where(
            CardAllocation.range_id == card_range.id,
            CardAllocation.level == level.value,
            CardAllocation.start <= b.seq,
            CardAllocation.end >= a.seq,
        )
        .limit(1)
    ).scalar_one_or_none()
    if clash is not None:
        raise Conflict(
            "Some of these numbers ({first} – {last}) are already issued to {provider}.",
            field="first",
            first=format_number(card_range.prefix, card_range.width, max(a.seq, clash.start)),
            last=format_number(card_range.prefix, card_range.width, min(b.seq, clash.end)),
            provider=clash.provider.name,
        )
    row = CardAllocation(
        range_id=card_range.id,
        level=level.value,
        provider_id=provider.id,
        parent_id=parent.id if parent else None,
        start=a.seq,
        end=b.seq,
        issued_at=utcnow(),
        issued_by_id=actor.id,
        note=note,
    )
    session.add(row)
    session.flush()
    record(
        session,
        actor,
        "warranty.numbers_issued",
        row,
        first=a.number,
        last=b.number,
        provider=provider.code,
    )
    return row


def list_allocations(
    *, session: Session, actor: User, provider_id: int | None = None, limit: int = 500
) -> list[CardAllocation]:
    require(actor, WARRANTY_VIEW)
    stmt = select(CardAllocation).order_by(
        CardAllocation.issued_at.desc(), CardAllocation.id.desc()
    )
    visible = channel.visible_provider_ids(session, actor)
    if visible is not None:
        stmt = stmt.where(CardAllocation.provider_id.in_(visible))
    if provider_id:
        stmt = stmt.where(CardAllocation.provider_id == provider_id)
    return list(session.execute(stmt.limit(limit)).scalars())


def issue_targets(session: Session, actor: User) -> list[Provider]:
    """Branches and dealers the actor may issue numbers to."""
    stmt = select(Provider).where(
        Provider.is_active.is_(True),
        Provider.level.in_([ProviderLevel.CITY.value, ProviderLevel.COUNTY.value]),
    )
    visible = channel.visible_provider_ids(session, actor)
    rows = list(session.execute(stmt.order_by(Provider.code)).scalars())
    if visible is None:
        return rows
    return [p for p in rows if p.level == ProviderLevel.COUNTY.value and p.parent_id in visible]


# --- lookup ---------------------------------------------------------------------------------


@dataclass
class Lookup:
    number: str
    genuine: bool
    reason: str = ""  # format | check | unknown (why not genuine)
    card_range: CardRange | None = None
    branch: Provider | None = None
    dealer: Provider | None = None
    card: ServiceCard | None = None

    @property
    def warranty_end(self) -> date | None:
        return self.card.warranty_end if self.card else None

    @property
    def days_left(self) -> int | None:
        if self.card is None:
            return None
        return max((self.card.warranty_end - today()).days, 0)

    @property
    def in_warranty(self) -> bool:
        return (
            self.card is not None
            and self.card.state == CardState.REGISTERED.value
            and self.card.warranty_end >= today()
        )


PUBLIC_LOOKUPS_PER_MINUTE = 30
_public_lookups = SlidingWindowLimiter(PUBLIC_LOOKUPS_PER_MINUTE, 60.0, name="warranty-lookup")


def check_public_lookup(source: str | None) -> None:
    """Anyone may look a card up without signing in, but not walk the number range: at most
    ``PUBLIC_LOOKUPS_PER_MINUTE`` look-ups per address and minute (shared by every web process
    through Redis when ``CARDOPS_REDIS_URL`` is set, else per web process)."""
    if not _public_lookups.allow(source or "unknown"):
        raise RateLimited("Too many look-ups from your address. Please try again in a minute.")


def lookup(session: Session, number: str | None) -> Lookup:
    """Is ``number`` a genuine card, who holds it, is it registered? No permission needed:
    customers ask this on the public page."""
    if len(str(number or "")) > 40:
        return Lookup(number=normalize_number(number), genuine=False, reason="format")
    parsed, why = parse_number(number)
    if parsed is None:
        return Lookup(number=normalize_number(number), genuine=False, reason=why)
    card_range = _range_for(session, parsed)
    if card_range is None:
        return Lookup(number=parsed.number, genuine=False, reason="unknown")
    result = Lookup(number=parsed.number, genuine=True, card_range=card_range)
    card = session.execute(
        select(ServiceCard).where(ServiceCard.number == parsed.number)
    ).scalar_one_or_none()
    if card is not None:
        result.card, result.branch, result.dealer = card, card.branch, card.dealer
        return result
    branch = _holding(session, card_range.id, AllocationLevel.BRANCH.value, parsed.seq)
    dealer = _holding(session, card_range.id, AllocationLevel.DEALER.value, parsed.seq)
    result.branch = branch.provider if branch else None
    result.dealer = dealer.provider if dealer else None
    return result


# --- registration ---------------------------------------------------------------------------


@dataclass
class Sale:
    number: str
    model_id: int
    buyer_name: str
    buyer_phone: str
    province: str
    price: int
    sale_date: date | None = None
    city: str = ""
    address: str = ""
    serial: str = ""
    installer_id: int | None = None


def _card_event(
    session: Session, card: ServiceCard, actor: User | None, event: str, /, **data: Any
) -> None:
    session.add(
        ServiceCardEvent(
            card_id=card.id,
            at=utcnow(),
            kind=event,
            actor_id=actor.id if actor else None,
            data=data,
        )
    )


def register(*, session: Session, actor: User, sale: Sale) -> ServiceCard:
    """Register a card against a sale: flags cross-region selling and prices below the floor,
    sets the warranty end, credits the installer's points."""
    require(actor, WARRANTY_REGISTER)
    errors = FieldErrors()
    parsed = errors.check(_parsed, sale.number, field="number")
    model = errors.check(get_model, session, sale.model_id)
    serial = errors.check(_text, sale.serial, field="serial", max_length=64) or ""
    buyer = errors.check(_text, sale.buyer_name, field="buyer_name", max_length=64, required=True)
    phone = errors.check(parties.validate_mobile, sale.buyer_phone or "", field="buyer_phone")
    province_text = errors.check(
        _text, sale.province, field="province", max_length=16, required=True
    )
    province = normalize_province(province_text) if province_text else None
    if province_text and province is None:
        errors.add(
            ValidationFailed("Choose a province from the list, e.g. 四川.", field="province")
        )
    city = normalize_city(errors.check(_text, sale.city, field="city", max_length=32) or "")
    address = errors.check(_text, sale.address, field="address", max_length=200) or ""
    price = errors.check(_fen, sale.price, field="price")
    sale_date = sale.sale_date or today()
    if not isinstance(sale_date, date):
        errors.add(ValidationFailed("Enter a date as YYYY-MM-DD.", field="sale_date"))
    elif sale_date > today():
        errors.add(ValidationFailed("The sale date is in the future.", field="sale_date"))
    elif sale_date < today() - timedelta(days=366 * 5):
        errors.add(
            ValidationFailed("The sale date is more than five years ago.", field="sale_date")
        )
    installer: Person | None = None
    if sale.installer_id is not None:
        if isinstance(sale.installer_id, bool) or not isinstance(sale.installer_id, int):
            errors.add(ValidationFailed("Choose the installer.", field="installer_id"))
        else:
            installer = (
                session.get(Person, sale.installer_id) if 0 < sale.installer_id < 2**31 else None
            )
            if installer is None:
                errors.add(
                    ValidationFailed(
                        "There is no person {id}.", field="installer_id", id=sale.installer_id
                    )
                )
    errors.raise_if_any()
    assert parsed is not None and model is not None and price is not None
    card_range = _range_for(session, parsed)
    if card_range is None:
        raise NotFound(
            "{number} is not a genuine service-card number: no range contains it.",
            field="number",
            number=parsed.number,
        )
    existing = session.execute(
        select(ServiceCard).where(ServiceCard.number == parsed.number)
    ).scalar_one_or_none()
    if existing is not None:
        raise Conflict(
            "Service card {number} is already registered (sale of {date}).",
            field="number",
            number=parsed.number,
            date=existing.sale_date.isoformat(),
        )
    branch_alloc = _holding(session, card_range.id, AllocationLevel.BRANCH.value, parsed.seq)
    if branch_alloc is None:
        raise ValidationFailed(
            "Service card {number} has not been issued to a branch yet.",
            field="number",
            number=parsed.number,
        )
    dealer_alloc = _holding(session, card_range.id, AllocationLevel.DEALER.value, parsed.seq)
    branch = branch_alloc.provider
    dealer = dealer_alloc.provider if dealer_alloc else None
    _check_scope(session, actor, dealer or branch, field="number")
    settings = get_settings(session)
    terms = model_terms(session, model.id)
    floor = terms.floor_price if terms else 0
    months = (terms.warranty_months if terms else None) or settings.warranty_months
    points = terms.points if terms and terms.points is not None else settings.points_per_card
    assert isinstance(sale_date, date)
    card = ServiceCard(
        number=parsed.number,
        range_id=card_range.id,
        seq=parsed.seq,
        branch_id=branch.id,
        dealer_id=dealer.id if dealer else None,
        model_id=model.id,
        serial=serial,
        buyer_name=buyer,
        buyer_phone=phone,
        province=province,
        city=city,
        address=address,
        price=price,
        floor_price=floor,
        installer_id=installer.id if installer else None,
        sale_date=sale_date,
        warranty_end=add_months(sale_date, months),
        points=points if installer else 0,
        cross_region=channel.is_outside_region(dealer or branch, province, city),
        below_floor=bool(floor and price < floor),
        state=CardState.REGISTERED.value,
        registered_by_id=actor.id,
    )
    try:
        with session.begin_nested():
            session.add(card)
            session.flush()
    except IntegrityError as exc:  # registered by someone else at the same moment
        raise Conflict(
            "Service card {number} is already registered (sale of {date}).",
            field="number",
            number=parsed.number,
            date=sale_date.isoformat(),
        ) from exc
    _card_event(
        session,
        card,
        actor,
        "registered",
        cross_region=card.cross_region,
        below_floor=card.below_floor,
        price=price,
        floor_price=floor,
    )
    if installer is not None and card.points:
        session.add(
            InstallerPoints(
                installer_id=installer.id,
                card_id=card.id,
                points=card.points,
                at=utcnow(),
                reason="registered",
            )
        )
    record(session, actor, "warranty.card_registered", card)
    return card


def get_card(session: Session, number: str, *, actor: User | None = None) -> ServiceCard:
    key = normalize_number(number)
    card = session.execute(
        select(ServiceCard).where(ServiceCard.number == key)
    ).scalar_one_or_none()
    if card is None:
        raise NotFound(
            "There is no registered service card {number}.", field="number", number=key[:24]
        )
    if actor is not None:
        visible = channel.visible_provider_ids(session, actor)
        if visible is not None and card.branch_id not in visible and card.dealer_id not in visible:
            raise NotFound(
                "There is no registered service card {number}.", field="number", number=key[:24]
            )
    return card


def list_cards(
    *,
    session: Session,
    actor: User,
    flagged: str | None = None,  # cross_region | below_floor | any
    q: str | None = None,
    limit: int = 200,
    offset: int = 0,
) -> list[ServiceCard]:
    require(actor, WARRANTY_VIEW)
    stmt = select(ServiceCard)
    visible = channel.visible_provider_ids(session, actor)
    if visible is not None:
        stmt = stmt.where(
            or_(ServiceCard.branch_id.in_(visible), ServiceCard.dealer_id.in_(visible))
        )
    if flagged == "cross_region":
        stmt = stmt.where(ServiceCard.cross_region.is_(True))
    elif flagged == "below_floor":
        stmt = stmt.where(ServiceCard.below_floor.is_(True))
    elif flagged == "any":
        stmt = stmt.where(
            or_(ServiceCard.cross_region.is_(True), ServiceCard.below_floor.is_(True))
        )
    text = (q or "").strip()[:64]
    if text:
        like = f"%{text}%"
        stmt = stmt.where(
            or_(
                ServiceCard.number.ilike(like),
                ServiceCard.buyer_name.ilike(like),
                ServiceCard.buyer_phone.ilike(like),
                ServiceCard.serial.ilike(like),
            )
        )
    stmt = stmt.order_by(ServiceCard.id.desc()).limit(min(limit, 1000)).offset(max(offset, 0))
    return list(session.execute(stmt).scalars())


def void_card(*, session: Session, actor: User, number: str, reason: str) -> ServiceCard:
    """Void a registration made in error (points taken back)."""
    require(actor, WARRANTY_REGISTER)
    text = _text(reason, field="reason", max_length=500, required=True)
    card = get_card(session, number, actor=actor)
    before = {"state": card.state}
    card.transition(CardState.VOIDED)
    _take_back_points(session, card, "voided")
    _card_event(session, card, actor, "voided", reason=text)
    record(session, actor, "warranty.card_voided", card, before=before, reason=text)
    return card


def _take_back_points(session: Session, card: ServiceCard, reason: str) -> None:
    if card.installer_id and card.points:
        session.add(
            InstallerPoints(
                installer_id=card.installer_id,
                card_id=card.id,
                points=-card.points,
                at=utcnow(),
                reason=reason,
            )
        )


# --- installer points -----------------------------------------------------------------------


@dataclass
class Statement:
    installer: Person
    since: date
    until: date
    entries: list[InstallerPoints] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(e.points for e in self.entries)

    @property
    def cards(self) -> int:
        return sum(1 for e in self.entries if e.points > 0)


def _period(since: date | None, until: date | None) -> tuple[date, date, datetime, datetime]:
    until = until or today()
    since = since or until.replace(day=1)
    if since > until:
        raise ValidationFailed("The start of the period is after its end.", field="since")
    start = local(utcnow()).replace(
        year=since.year, month=since.month, day=since.day, hour=0, minute=0, second=0, microsecond=0
    )
    end = start + timedelta(days=(until - since).days + 1)
    return since, until, as_utc(start), as_utc(end)


def installer_statement(
    *,
    session: Session,
    actor: User,
    installer_id: int,
    since: date | None = None,
    until: date | None = None,
) -> Statement:
    """The installer's point entries in the period (local dates, both ends included)."""
    require(actor, WARRANTY_VIEW)
    installer = session.get(Person, installer_id) if 0 < installer_id < 2**31 else None
    if installer is None:
        raise NotFound("There is no person {id}.", field="installer_id", id=installer_id)
    since, until, start, end = _period(since, until)
    entries = list(
        session.execute(
            select(InstallerPoints)
            .where(
                InstallerPoints.installer_id == installer.id,
                InstallerPoints.at >= start,
                InstallerPoints.at < end,
            )
            .order_by(InstallerPoints.at, InstallerPoints.id)
        ).scalars()
    )
    return Statement(installer, since, until, entries)


def points_summary(
    *, session: Session, actor: User, since: date | None = None, until: date | None = None
) -> tuple[date, date, list[tuple[Person, int, int]]]:
    """Per installer: points and cards in the period, most points first."""
    require(actor, WARRANTY_VIEW)
    since, until, start, end = _period(since, until)
    rows = session.execute(
        select(
            Person,
            func.sum(InstallerPoints.points),
            func.count(InstallerPoints.id).filter(InstallerPoints.points > 0),
        )
        .join(InstallerPoints, InstallerPoints.installer_id == Person.id)
        .where(InstallerPoints.at >= start, InstallerPoints.at < end)
        .group_by(Person.id)
        .order_by(func.sum(InstallerPoints.points).desc(), Person.id)
    ).tuples()
    return since, until, [(p, int(total or 0), int(cards or 0)) for p, total, cards in rows]


# --- returns and exchanges ------------------------------------------------------------------


@dataclass
class Photo:
    filename: str
    data: bytes
    content_type: str | None = None


@dataclass
class ReturnInput:
    card_number: str
    kind: str
    reason: str
    description: str = ""
    requested_at: datetime | None = None
    shipping_paid_by: str | None = None
    shipping_cost: int = 0
    refund_amount: int | None = None
    exchange_model_id: int | None = None
    exchange_serial: str = ""
    price_difference: int = 0
    compensation: int = 0
    request_approval: bool = False
    photos: Sequence[Photo] = ()


def _return_event(
    session: Session, item: WarrantyReturn, actor: User | None, event: str, /, **data: Any
) -> None:
    session.add(
        WarrantyReturnEvent(
            return_id=item.id,
            at=utcnow(),
            kind=event,
            actor_id=actor.id if actor else None,
            data=data,
        )
    )


def photo_deadline(session: Session, item: WarrantyReturn) -> datetime:
    return as_utc(item.requested_at) + timedelta(hours=get_settings(session).photo_hours)


def photos(session: Session, item: WarrantyReturn) -> list[Document]:
    return list(
        session.execute(
            select(Document)
            .where(Document.owner_type == DOC_OWNER, Document.owner_id == item.id)
            .order_by(Document.id)
        ).scalars()
    )


def _check_photos(photos_in: Sequence[Photo]) -> None:
    if len(photos_in) > MAX_PHOTOS:
        raise ValidationFailed("Attach at most {n} photos.", field="photos", n=MAX_PHOTOS)
    for photo in photos_in:
        if not photo.data:
            raise ValidationFailed("The file is empty. Choose a file to upload.", field="photos")


def _store_photos(
    session: Session, actor: User, item: WarrantyReturn, photos_in: Sequence[Photo]
) -> list[Document]:
    stored = []
    for photo in photos_in:
        try:
            stored.append(
                parties.upload_document(
                    session=session,
                    actor=actor,
                    owner_type=DOC_OWNER,
                    owner_id=item.id,
                    doc_type=PHOTO_DOC_TYPE,
                    filename=photo.filename or "photo.jpg",
                    data=photo.data,
                    content_type=photo.content_type,
                )
            )
        except ValidationFailed as exc:
            raise ValidationFailed(exc.message, field="photos", **exc.params) from exc
    return stored


def _compensation_state(
    session: Session, amount: int, request_approval: bool, cap: int
) -> CompensationState:
    if amount == 0:
        return CompensationState.NONE
    if amount <= cap:
        return CompensationState.WITHIN_CAP
    if not request_approval:
        raise ValidationFailed(
            "A compensation of {amount} yuan is above the cap of {cap} yuan; ask for the "
            "supervisor's approval.",
            field="compensation",
            amount=f"{amount / 100:.2f}",
            cap=f"{cap / 100:.2f}",
        )
    if approvals.find_chain(session, COMPENSATION_KIND) is None:
        raise ValidationFailed(
            "There is no approval chain for compensations; ask an administrator to define the "
            "“compensation” chain.",
            field="compensation",
        )
    return CompensationState.PENDING


def _submit_compensation(session: Session, actor: User, item: WarrantyReturn) -> None:
    request = approvals.submit(
        session=session,
        actor=actor,
        kind=COMPENSATION_KIND,
        title=f"Compensation {item.compensation / 100:.2f} CNY for {item.number}",
        description=item.description[:2000],
        payload={
            "return": item.number,
            "card": item.card.number,
            "compensation": item.compensation,
            "cap": item.compensation_cap,
        },
        subject=item,
        check_permission=False,
    )
    item.approval_request_id = request.id
    _return_event(session, item, actor, "compensation_submitted", approval=request.number)


def create_return(*, session: Session, actor: User, data: ReturnInput) -> WarrantyReturn:
    """Take a return or exchange request against a registered card."""
    require(actor, WARRANTY_RETURNS)
    errors = FieldErrors()
    card: ServiceCard | None = None
    try:
        card = get_card(session, data.card_number, actor=actor)
    except NotFound as exc:
        errors.add(ValidationFailed(exc.message, field="card_number", **exc.params))
    kinds = {k.value for k in ReturnKind}
    if data.kind not in kinds:
        errors.add(ValidationFailed("Choose return or exchange.", field="kind"))
    if data.reason not in {r.value for r in ReturnReason}:
        errors.add(ValidationFailed("Choose the reason: quality or not quality.", field="reason"))
    description = errors.check(_text, data.description, field="description", max_length=2000) or ""
    now = utcnow()
    requested_at = as_utc(data.requested_at) if data.requested_at else now
    if requested_at > now + timedelta(minutes=5):
        errors.add(ValidationFailed("The request time is in the future.", field="requested_at"))
    elif requested_at < now - timedelta(days=365):
        errors.add(
            ValidationFailed("The request time is more than a year ago.", field="requested_at")
        )
    payer = data.shipping_paid_by or (
        ShippingPayer.COMPANY.value
        if data.reason == ReturnReason.QUALITY.value
        else ShippingPayer.CUSTOMER.value
    )
    if payer not in {p.value for p in ShippingPayer}:
        errors.add(ValidationFailed("Choose who pays the shipping.", field="shipping_paid_by"))
    shipping = errors.check(_fen, data.shipping_cost, field="shipping_cost", high=10_000_000)
    if shipping and payer == ShippingPayer.CUSTOMER.value:
        errors.add(
            ValidationFailed(
                "The customer pays the shipping; leave the shipping cost at 0.",
                field="shipping_cost",
            )
        )
    compensation = errors.check(_fen, data.compensation, field="compensation", high=100_000_000)
    exchange_serial = (
        errors.check(_text, data.exchange_serial, field="exchange_serial", max_length=64) or ""
    )
    difference = data.price_difference
    if isinstance(difference, bool) or not isinstance(difference, int):
        errors.add(
            ValidationFailed("The amount must be a whole number of fen.", field="price_difference")
        )
    elif abs(difference) > MAX_PRICE:
        errors.add(ValidationFailed("The amount is too large.", field="price_difference"))
    errors.check(_check_photos, data.photos)
    if data.reason == ReturnReason.QUALITY.value:
        if not data.photos:
            errors.add(
                ValidationFailed("A quality claim needs photos of the problem.", field="photos")
            )
        elif now > requested_at + timedelta(hours=get_settings(session).photo_hours):
            errors.add(
                ValidationFailed(
                    "Photos for a quality claim are accepted only within {hours} hours of the "
                    "request (until {deadline}).",
                    field="photos",
                    hours=get_settings(session).photo_hours,
                    deadline=local(
                        requested_at + timedelta(hours=get_settings(session).photo_hours)
                    ).strftime("%Y-%m-%d %H:%M"),
                )
            )
    errors.raise_if_any()
    assert card is not None and compensation is not None and shipping is not None
    if card.state != CardState.REGISTERED.value:
        raise InvalidTransition(
            "Service card {number} is {state}; it takes no return or exchange.",
            field="card_number",
            number=card.number,
            state=card.state,
        )
    open_one = session.execute(
        select(WarrantyReturn.number).where(
            WarrantyReturn.card_id == card.id,
            WarrantyReturn.state.in_(
                [
                    ReturnState.REQUESTED.value,
                    ReturnState.ACCEPTED.value,
                    ReturnState.RECEIVED.value,
                ]
            ),
        )
    ).scalar()
    if open_one:
        raise Conflict(
            "Return {number} for this card is still open.", field="card_number", number=open_one
        )
    refund = 0
    exchange_model: TerminalModel | None = None
    if data.kind == ReturnKind.RETURN.value:
        refund = card.price if data.refund_amount is None else data.refund_amount
        refund = _fen(refund, field="refund_amount")
        if refund > card.price:
            raise ValidationFailed(
                "The refund cannot be more than the sale price ({price} yuan).",
                field="refund_amount",
                price=f"{card.price / 100:.2f}",
            )
        if difference:
            raise ValidationFailed(
                "A price difference applies to exchanges only.", field="price_difference"
            )
    else:
        exchange_model = (
            get_model(session, data.exchange_model_id, field="exchange_model_id")
            if data.exchange_model_id is not None
            else card.model
        )
        if data.refund_amount:
            raise ValidationFailed(
                "An exchange has no refund; enter the price difference instead.",
                field="refund_amount",
            )
    cap = get_settings(session).compensation_cap
    comp_state = _compensation_state(session, compensation, data.request_approval, cap)
    item = WarrantyReturn(
        number=next_number(session, "warranty_return", "RT"),
        card_id=card.id,
        card=card,
        kind=data.kind,
        reason=data.reason,
        description=description,
        requested_at=requested_at,
        shipping_paid_by=payer,
        shipping_cost=shipping,
        refund_amount=refund,
        exchange_model_id=exchange_model.id if exchange_model else None,
        exchange_serial=exchange_serial,
        price_difference=difference,
        compensation=compensation,
        compensation_state=comp_state.value,
        compensation_cap=cap,
        state=ReturnState.REQUESTED.value,
        created_by_id=actor.id,
    )
    session.add(item)
    session.flush()
    _store_photos(session, actor, item, data.photos)
    _return_event(
        session,
        item,
        actor,
        "requested",
        kind=item.kind,
        reason=item.reason,
        photos=len(data.photos),
        compensation=compensation,
    )
    if comp_state == CompensationState.PENDING:
        _submit_compensation(session, actor, item)
    _card_event(session, card, actor, "return_requested", number=item.number, kind=item.kind)
    record(session, actor, "warranty.return_requested", item)
    return item


def get_return(session: Session, return_id: int, *, actor: User | None = None) -> WarrantyReturn:
    item = session.get(WarrantyReturn, return_id) if 0 < return_id < 2**31 else None
    if item is None:
        raise NotFound("There is no return {id}.", id=return_id)
    if actor is not None:
        visible = channel.visible_provider_ids(session, actor)
        card = item.card
        if visible is not None and card.branch_id not in visible and card.dealer_id not in visible:
            raise NotFound("There is no return {id}.", id=return_id)
    return item


def get_return_by_number(
    session: Session, number: str, *, actor: User | None = None
) -> WarrantyReturn:
    key = (number or "").strip().upper()[:32]
    item = session.execute(
        select(WarrantyReturn).where(WarrantyReturn.number == key)
    ).scalar_one_or_none()
    if item is None:
        raise NotFound("There is no return {id}.", id=key)
    return get_return(session, item.id, actor=actor)


def list_returns(
    *,
    session: Session,
    actor: User,
    state: str | None = None,
    limit: int = 200,
    offset: int = 0,
) -> list[WarrantyReturn]:
    require(actor, WARRANTY_VIEW)
    stmt = select(WarrantyReturn).join(ServiceCard, ServiceCard.id == WarrantyReturn.card_id)
    visible = channel.visible_provider_ids(session, actor)
    if visible is not None:
        stmt = stmt.where(
            or_(ServiceCard.branch_id.in_(visible), ServiceCard.dealer_id.in_(visible))
        )
    if state == "open":
        stmt = stmt.where(
            WarrantyReturn.state.in_(
                [
                    ReturnState.REQUESTED.value,
                    ReturnState.ACCEPTED.value,
                    ReturnState.RECEIVED.value,
                ]
            )
        )
    elif state in {s.value for s in ReturnState}:
        stmt = stmt.where(WarrantyReturn.state == state)
    stmt = stmt.order_by(WarrantyReturn.id.desc()).limit(min(limit, 1000)).offset(max(offset, 0))
    return list(session.execute(stmt).scalars())


def add_photos(
    *, session: Session, actor: User, return_id: int, photos_in: Sequence[Photo]
) -> list[Document]:
    require(actor, WARRANTY_RETURNS)
    item = get_return(session, return_id, actor=actor)
    if item.state not in (ReturnState.REQUESTED.value, ReturnState.ACCEPTED.value):
        raise InvalidTransition(
            "Return {number} is {state}; photos can no longer be added.",
            field="photos",
            number=item.number,
            state=item.state,
        )
    if not photos_in:
        raise ValidationFailed("Choose at least one photo.", field="photos")
    _check_photos(photos_in)
    deadline = photo_deadline(session, item)
    if item.reason == ReturnReason.QUALITY.value and utcnow() > deadline:
        raise ValidationFailed(
            "Photos for a quality claim are accepted only within {hours} hours of the request "
            "(until {deadline}).",
            field="photos",
            hours=get_settings(session).photo_hours,
            deadline=local(deadline).strftime("%Y-%m-%d %H:%M"),
        )
    stored = _store_photos(session, actor, item, photos_in)
    _return_event(session, item, actor, "photos_added", count=len(stored))
    return stored


def _move(
    session: Session,
    actor: User,
    item: WarrantyReturn,
    target: ReturnState,
    event: str,
    **data: Any,
) -> WarrantyReturn:
    before = {"state": item.state}
    item.transition(target)
    _return_event(session, item, actor, event, **data)
    record(session, actor, f"warranty.return_{event}", item, before=before, **data)
    if (
        target in (ReturnState.CANCELLED, ReturnState.REJECTED)
        and item.approval_request_id is not None
        and item.compensation_state == CompensationState.PENDING.value
    ):
        # nothing left to approve: the pending compensation request is withdrawn with it
        approvals.withdraw_for_subject(
            session=session,
            actor=actor,
            request_id=item.approval_request_id,
            comment=str(data.get("reason") or ""),
        )
    return item


def accept(*, session: Session, actor: User, return_id: int, note: str = "") -> WarrantyReturn:
    """Accept the request after checking the evidence: a quality claim needs a photo taken in
    within the photo window."""
    require(actor, WARRANTY_RETURNS)
    note = _text(note, field="note", max_length=500)
    item = get_return(session, return_id, actor=actor)
    if item.reason == ReturnReason.QUALITY.value:
        deadline = photo_deadline(session, item)
        in_time = [d for d in photos(session, item) if as_utc(d.uploaded_at) <= deadline]
        if not in_time:
            raise ValidationFailed(
                "A quality claim needs photos sent within {hours} hours of the request.",
                field="photos",
                hours=get_settings(session).photo_hours,
            )
    return _move(session, actor, item, ReturnState.ACCEPTED, "accepted", note=note)


def reject(*, session: Session, actor: User, return_id: int, reason: str) -> WarrantyReturn:
    require(actor, WARRANTY_RETURNS)
    text = _text(reason, field="reason", max_length=500, required=True)
    item = get_return(session, return_id, actor=actor)
    return _move(session, actor, item, ReturnState.REJECTED, "rejected", reason=text)


def cancel(*, session: Session, actor: User, return_id: int, reason: str) -> WarrantyReturn:
    require(actor, WARRANTY_RETURNS)
    text = _text(reason, field="reason", max_length=500, required=True)
    item = get_return(session, return_id, actor=actor)
    return _move(session, actor, item, ReturnState.CANCELLED, "cancelled", reason=text)


def receive(*, session: Session, actor: User, return_id: int, note: str = "") -> WarrantyReturn:
    """The returned goods arrived and were checked."""
    require(actor, WARRANTY_RETURNS)
    note = _text(note, field="note", max_length=500)
    item = get_return(session, return_id, actor=actor)
    return _move(session, actor, item, ReturnState.RECEIVED, "received", note=note)


def set_compensation(
    *,
    session: Session,
    actor: User,
    return_id: int,
    amount: int,
    request_approval: bool = False,
) -> WarrantyReturn:
    """Change the compensation of an open request; above the cap it goes for approval."""
    require(actor, WARRANTY_RETURNS)
    amount = _fen(amount, field="compensation", high=100_000_000)
    item = get_return(session, return_id, actor=actor)
    if not item.is_open:
        raise InvalidTransition(
            "Return {number} is {state}; its compensation cannot change.",
            field="compensation",
            number=item.number,
            state=item.state,
        )
    if item.compensation_state == CompensationState.PENDING.value:
        raise Conflict(
            "The compensation of return {number} is waiting for approval.",
            field="compensation",
            number=item.number,
        )
    cap = get_settings(session).compensation_cap
    state = _compensation_state(session, amount, request_approval, cap)
    before = {"compensation": item.compensation, "compensation_state": item.compensation_state}
    item.compensation, item.compensation_state, item.compensation_cap = amount, state.value, cap
    item.approval_request_id = None
    session.flush()
    _return_event(session, item, actor, "compensation_set", amount=amount, state=state.value)
    if state == CompensationState.PENDING:
        _submit_compensation(session, actor, item)
    record(session, actor, "warranty.return_compensation_set", item, before=before)
    return item


def _on_compensation_decided(*, session: Session, request: ApprovalRequest, actor: User) -> None:
    if request.subject_type != WarrantyReturn.__tablename__ or not request.subject_id:
        return
    item = session.get(WarrantyReturn, int(request.subject_id))
    if item is None or item.approval_request_id != request.id:
        return
    if item.compensation_state != CompensationState.PENDING.value:
        return
    before = {"compensation_state": item.compensation_state}
    if request.state == "approved":
        item.compensation_state = CompensationState.APPROVED.value
    elif request.state in ("rejected", "withdrawn"):
        item.compensation_state = CompensationState.REJECTED.value
    else:
        return
    _return_event(
        session,
        item,
        actor,
        "compensation_" + item.compensation_state,
        approval=request.number,
    )
    record(session, actor, "warranty.return_compensation_decided", item, before=before)


approvals.on_decided(COMPENSATION_KIND, _on_compensation_decided)


def _ensure_account(session: Session, actor: User, code: str) -> None:
    name_en, name_zh = _ACCOUNTS[code]
    ledger.ensure_account(
        session=session,
        actor=actor,
        code=code,
        name_en=name_en,
        name_zh=name_zh,
        type=AccountType.EXPENSE.value,
        permission=WARRANTY_SETTLE,
    )


@dataclass
class Settlement:
    refund: int = 0  # fen paid back for the goods (a return, or an exchange to a cheaper unit)
    compensation: int = 0
    shipping: int = 0
    collect: int = 0  # fen the customer pays (an exchange to a dearer unit)

    @property
    def pay_out(self) -> int:
        return self.refund + self.compensation + self.shipping


def settlement(item: WarrantyReturn) -> Settlement:
    """What completing the request moves, in fen."""
    out = Settlement()
    if item.kind == ReturnKind.RETURN.value:
        out.refund = item.refund_amount
    elif item.price_difference < 0:
        out.refund = -item.price_difference
    else:
        out.collect = item.price_difference
    if item.compensation_state in (
        CompensationState.WITHIN_CAP.value,
        CompensationState.APPROVED.value,
    ):
        out.compensation = item.compensation
    if item.shipping_paid_by == ShippingPayer.COMPANY.value:
        out.shipping = item.shipping_cost
    return out


def complete(
    *, session: Session, actor: User, return_id: int, payment_method: str
) -> WarrantyReturn:
    """Settle the request: the refund, compensation and shipping we owe are posted to the
    ledger in one balanced posting; a price difference the customer pays gets a receipt. A
    return closes the card (the installer's points are taken back); an exchange moves it to the
    new unit."""
    require(actor, WARRANTY_SETTLE)
    item = get_return(session, return_id, actor=actor)
    if payment_method not in {m.value for m in PaymentMethod}:
        raise ValidationFailed(
            "Choose the payment method: cash, card, transfer, wechat or alipay.",
            field="payment_method",
        )
    if not item.can_become(ReturnState.COMPLETED):
        raise InvalidTransition(
            "Return {number} is {state_from}; it cannot become {state_to}.",
            number=item.number,
            state_from=item.state,
            state_to=ReturnState.COMPLETED.value,
        )
    if item.compensation_state in (
        CompensationState.PENDING.value,
        CompensationState.REJECTED.value,
    ):
        raise ValidationFailed(
            "The compensation of {amount} yuan is above the cap and has no approval; wait for "
            "the supervisor or lower it.",
            field="compensation",
            amount=f"{item.compensation / 100:.2f}",
        )
    money = settlement(item)
    debit = DEFAULT_DEBIT[payment_method]
    lines: list[tuple[str, int]] = []
    for code, amount in (
        (REFUNDS_ACCOUNT, money.refund),
        (COMPENSATION_ACCOUNT, money.compensation),
        (SHIPPING_ACCOUNT, money.shipping),
    ):
        if amount:
            _ensure_account(session, actor, code)
            lines.append((code, amount))
    if lines:
        lines.append((debit, -money.pay_out))
        posting = ledger.post(
            session=session,
            actor=actor,
            lines=lines,
            description=f"Return {item.number} (card {item.card.number})",
            reference=f"warranty_return:{item.number}",
            idempotency_key=f"warranty_return:{item.number}",
            permission=WARRANTY_SETTLE,
        )
        item.posting_id = posting.id
    if money.collect:
        receipt = ledger.record_payment(
            session=session,
            actor=actor,
            payer_name=item.card.buyer_name,
            items=[
                (f"Exchange price difference 换货差价 {item.number}", money.collect, OTHER_INCOME)
            ],
            method=payment_method,
            reference=f"warranty_return:{item.number}",
            idempotency_key=f"warranty_return_receipt:{item.number}",
            permission=WARRANTY_SETTLE,
        )
        item.receipt_id = receipt.id
    item.payment_method = payment_method
    card = item.card
    if item.kind == ReturnKind.RETURN.value:
        card.transition(CardState.RETURNED)
        _take_back_points(session, card, "returned")
        _card_event(session, card, actor, "returned", number=item.number)
    else:
        before = {"model_id": card.model_id, "serial": card.serial}
        if item.exchange_model_id:
            card.model_id = item.exchange_model_id
        card.serial = item.exchange_serial or card.serial
        _card_event(session, card, actor, "exchanged", number=item.number, before=before)
    return _move(
        session,
        actor,
        item,
        ReturnState.COMPLETED,
        "completed",
        payment_method=payment_method,
        refund=money.refund,
        compensation=money.compensation,
        shipping=money.shipping,
        collected=money.collect,
    )


parties.register_document_owner(
    DOC_OWNER,
    label=N_("Return or exchange"),
    exists=lambda s, i: s.get(WarrantyReturn, i) is not None,
    url=lambda i: f"/warranty/returns/{i}",
)
