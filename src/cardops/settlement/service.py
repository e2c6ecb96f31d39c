"""Settlement: business days and their windows, merchant settlement, profit sharing up the
channel, rewards, and the ledger postings of all of it. The only code that writes the
settlement tables.

Entry point for batch callers (the CLI, benchmarks)::

    settle_day(session=..., actor=..., business_date=date(2026, 11, 22), progress=None)

closes the day's window if its cut-off has passed (a window still open is refused with a
``Conflict`` naming ``business_date``), aggregates the window's journal range in SQL (see
:mod:`cardops.settlement.compute`: per-transaction half-up rounding and caps inside the SUM),
stores the figures per merchant / lowest provider / card type, the shares per provider, the
payouts (T+1), posts one balanced ledger posting per merchant and per provider, and moves the
window to *settled*. Settling a settled day again recomputes it and, when nothing differs,
returns the stored result without posting anything. ``progress`` is an optional callable
taking a step label (str); it is called at each step. The caller commits.

Rounding rule: each fee (merchant discount, each provider's cost, the bank fee) is computed
per transaction as ``(amount × bp + 5000) // 10000`` fen — to the fen, half up — and then
capped by the rate card's per-transaction cap. A refund is charged back with the same rule on
its own amount at the merchant rates of its original sale's business day (the refund's own
day when the sale is in the same window or has no window), so a full refund claws back
exactly what its purchase paid even when the merchant's rate changed in between (provider and
bank rate cards keep no history: the current ones apply).

A void or reversal takes its original off once: in the original's window it nets the sale out,
on a later day it is an adjustment (negative figures that day); a cancellation of an original
that an earlier window already took off (a repeated reversal, a void after a reversal) is
ignored.

Ledger, per merchant and window: Dr 1122 bank settlement receivable (gross − bank fee),
Dr 6602 bank charges (bank fee), Cr ``2203:merchant:<id>`` merchant payable (net), Cr 6002
merchant fee income (fee). Per provider and window: Dr 6601 profit-share expense,
Cr ``2204:provider:<id>`` profit shares payable. Rewards: Dr ``6601:rewards``, Cr the provider's
payable. HQ's margin is what stays in 6002 after 6601 and 6602.
"""

from __future__ import annotations

import bisect
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, delete, func, insert, select
from sqlalchemy.orm import Session

from cardops.audit.service import record
from cardops.auth.models import User
from cardops.auth.service import require
from cardops.channel.models import Provider, ProviderLevel, ProviderRateVersion
from cardops.core.clock import SINCE_ALWAYS, utcnow
from cardops.core.config import get_settings
from cardops.core.errors import Conflict, FieldErrors, NotFound, ValidationFailed
from cardops.gateway.models import Journal
from cardops.ledger import chart
from cardops.ledger import service as ledger
from cardops.ledger.service import NewPosting
from cardops.merchants.models import Merchant
from cardops.settlement import snapshot as snapshots
from cardops.settlement.compute import (
    MAX_LEVELS,
    NO_CAP,
    PASS_RATES,
    Method,
    RateSet,
    aggregate,
)
from cardops.settlement.models import (
    MerchantRateCard,
    Payout,
    RateVersion,
    Reward,
    RewardKind,
    RewardRule,
    SettlementFact,
    SettlementSettings,
    SettlementWindow,
    ShareLine,
    WindowEvent,
    WindowState,
)
from cardops.settlement.permissions import (
    SETTLEMENT_RATES,
    SETTLEMENT_RUN,
    SETTLEMENT_VIEW,
)
from cardops.terminals.models import Terminal

Progress = Callable[[str], None]

DEFAULT_CUTOFF = "23:00"
DEFAULT_BANK_RATES: dict[str, Any] = {
    "debit": {"rate_bp": 30, "cap": 1500},
    "credit": {"rate_bp": 45},
}
DEFAULT_MERCHANT_RATES: dict[str, Any] = {
    "debit": {"rate_bp": 50, "cap": 2000},
    "credit": {"rate_bp": 60},
}
MAX_BP = 2000  # 20 %: anything above is a typo
MAX_CAP = 10**9
REWARDS_ACCOUNT = "6601:rewards"
CARD_TYPES = ("debit", "credit")
_CUTOFF = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")
_PERCENT = re.compile(r"^(\d{1,2})(?:\.(\d{1,2}))?$")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


# --- input ----------------------------------------------------------------------------------


def parse_day(value: Any, *, field: str = "business_date") -> date:
    """A business date typed as YYYY-MM-DD."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    text = value.strip() if isinstance(value, str) else ""
    try:
        if len(text) != 10:
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed("Enter a date as YYYY-MM-DD.", field=field) from None


def parse_month(value: Any, *, field: str = "month") -> tuple[date, date]:
    """First and last day of a month typed as YYYY-MM."""
    text = value.strip() if isinstance(value, str) else ""
    match = _MONTH.match(text)
    if not match or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 2000:
        raise ValidationFailed("Enter a month as YYYY-MM.", field=field)
    first = date(int(match.group(1)), int(match.group(2)), 1)
    last = (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    return first, last


def parse_percent(value: Any, *, field: str) -> int:
    """A rate typed in percent ('0.38', '0.6', '1') → basis points, exactly."""
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValidationFailed("Enter the rate in percent, e.g. 0.38.", field=field)
    text = value.strip().rstrip("%").strip() if isinstance(value, str) else ""
    match = _PERCENT.match(text)
    if not match:
        raise ValidationFailed(
            "Enter the rate in percent with at most two decimals, e.g. 0.38.", field=field
        )
    bp = int(match.group(1)) * 100 + int((match.group(2) or "0").ljust(2, "0"))
    return check_bp(bp, field=field)


def check_bp(value: Any, *, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_BP:
        raise ValidationFailed(
            "A rate is between 0 and {max} basis points (0–20 %).", field=field, max=MAX_BP
        )
    return value


def check_cap(value: Any, *, field: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= MAX_CAP:
        raise ValidationFailed(
            "A cap is a positive whole number of fen, or empty for no cap.", field=field
        )
    return value


def rate_card_json(
    *, debit_bp: int, debit_cap: int | None, credit_bp: int, prefix: str = ""
) -> dict[str, Any]:
    debit: dict[str, Any] = {"rate_bp": check_bp(debit_bp, field=f"{prefix}debit_bp")}
    cap = check_cap(debit_cap, field=f"{prefix}debit_cap")
    if cap is not None:
        debit["cap"] = cap
    return {"debit": debit, "credit": {"rate_bp": check_bp(credit_bp, field=f"{prefix}credit_bp")}}


# --- settings -------------------------------------------------------------------------------


def get_config(session: Session) -> SettlementSettings:
    """The settings row (created with defaults on first use)."""
    row = session.get(SettlementSettings, 1)
    if row is None:
        row = SettlementSettings(
            id=1,
            cutoff=DEFAULT_CUTOFF,
            bank_rate_card=dict(DEFAULT_BANK_RATES),
            default_merchant_rate=dict(DEFAULT_MERCHANT_RATES),
        )
        session.add(row)
        session.flush()
    return row


def update_config(
    *,
    session: Session,
    actor: User,
    cutoff: str,
    bank_debit_bp: int,
    bank_debit_cap: int | None,
    bank_credit_bp: int,
    default_debit_bp: int,
    default_debit_cap: int | None,
    default_credit_bp: int,
) -> SettlementSettings:
    """Change the cut-off (applies to windows opened from now on) and the rate cards."""
    require(actor, SETTLEMENT_RATES)
    errors = FieldErrors()
    text = cutoff.strip() if isinstance(cutoff, str) else ""
    if not _CUTOFF.match(text):
        errors.add(ValidationFailed("Enter the cut-off as HH:MM, e.g. 23:00.", field="cutoff"))
    for prefix, bp_d, cap_d, bp_c in (
        ("bank_", bank_debit_bp, bank_debit_cap, bank_credit_bp),
        ("default_", default_debit_bp, default_debit_cap, default_credit_bp),
    ):
        errors.check(check_bp, bp_d, field=f"{prefix}debit_bp")
        errors.check(check_cap, cap_d, field=f"{prefix}debit_cap")
        errors.check(check_bp, bp_c, field=f"{prefix}credit_bp")
    errors.raise_if_any()
    bank = rate_card_json(
        debit_bp=bank_debit_bp, debit_cap=bank_debit_cap, credit_bp=bank_credit_bp
    )
    default = rate_card_json(
        debit_bp=default_debit_bp, debit_cap=default_debit_cap, credit_bp=default_credit_bp
    )
    row = get_config(session)
    before = {
        "cutoff": row.cutoff,
        "bank_rate_card": row.bank_rate_card,
        "default_merchant_rate": row.default_merchant_rate,
    }
    _remember_rates(session, "bank", row.bank_rate_card, bank, actor)
    _remember_rates(session, "default", row.default_merchant_rate, default, actor)
    row.cutoff = text
    row.bank_rate_card = bank
    row.default_merchant_rate = default
    row.updated_at = utcnow()
    row.updated_by_id = actor.id
    session.flush()
    record(
        session,
        actor,
        "settlement.settings_updated",
        ("settlement_settings", 1),
        before=before,
        after={"cutoff": text, "bank_rate_card": bank, "default_merchant_rate": default},
    )
    return row


def _remember_rates(
    session: Session, scope: str, before: dict[str, Any], card: dict[str, Any], actor: User
) -> None:
    """Keep the bank's rate card or the default merchant rate as a new version when it
    changed; with no version yet, the old card first becomes the version "since always"."""
    if dict(before or {}) == card:
        return
    if session.scalar(select(RateVersion.id).where(RateVersion.scope == scope).limit(1)) is None:
        session.add(
            RateVersion(scope=scope, rate_card=dict(before or {}), recorded_at=SINCE_ALWAYS)
        )
    session.add(RateVersion(scope=scope, rate_card=card, actor_id=actor.id, recorded_at=utcnow()))


def _in_force(rows: Any, at: datetime | None) -> dict[Any, dict[str, Any]]:
    """Per key, of ``(key, card, recorded_at, id)`` rows: the last version recorded at or
    before ``at`` (None: the latest), or the first one when all came later (a provider made
    after the day closed)."""
    found: dict[Any, dict[str, Any]] = {}
    first: dict[Any, dict[str, Any]] = {}
    for key, card, recorded_at, _id in sorted(rows, key=lambda r: (r[2], r[3])):
        first.setdefault(key, card or {})
        if at is None or recorded_at <= at:
            found[key] = card or {}
    return {**first, **found}


def settings_cards_at(session: Session, at: datetime | None) -> dict[str, dict[str, Any]]:
    """The bank's rate card ("bank") and the default merchant rate ("default") in force at
    ``at`` (None: now)."""
    config = get_config(session)
    found = _in_force(
        session.execute(
            select(
                RateVersion.scope, RateVersion.rate_card, RateVersion.recorded_at, RateVersion.id
            )
        ).all(),
        at,
    )
    return {
        "bank": found.get("bank", config.bank_rate_card),
        "default": found.get("default", config.default_merchant_rate),
    }


def provider_cards_at(session: Session, at: datetime | None) -> dict[int, dict[str, Any]]:
    """Provider id → its rate card in force at ``at`` (providers with versions only)."""
    return _in_force(
        session.execute(
            select(
                ProviderRateVersion.provider_id,
                ProviderRateVersion.rate_card,
                ProviderRateVersion.recorded_at,
                ProviderRateVersion.id,
            )
        ).all(),
        at,
    )


def rate_history(session: Session, actor: User) -> list[RateVersion]:
    """The versions of the bank's rate card and the default merchant rate, newest first."""
    require(actor, SETTLEMENT_VIEW)
    return list(
        session.execute(
            select(RateVersion).order_by(RateVersion.recorded_at.desc(), RateVersion.id.desc())
        ).scalars()
    )


# --- merchant rate cards ----------------------------------------------------------------------


def _merchant(session: Session, merchant_id: Any) -> Merchant:
    merchant = (
        session.get(Merchant, merchant_id)
        if isinstance(merchant_id, int) and 0 < merchant_id < 2**31
        else None
    )
    if merchant is None:
        raise NotFound("There is no merchant {id}.", id=merchant_id, field="merchant_id")
    return merchant


def _last_closed_date(session: Session) -> date | None:
    return session.execute(
        select(func.max(SettlementWindow.business_date)).where(
            SettlementWindow.state != WindowState.OPEN.value
        )
    ).scalar_one_or_none()


def set_merchant_rate(
    *,
    session: Session,
    actor: User,
    merchant_id: int,
    debit_bp: int,
    debit_cap: int | None,
    credit_bp: int,
    effective_from: date,
    note: str = "",
) -> MerchantRateCard:
    """Add a version of a merchant's rate card. It takes effect on ``effective_from``, which
    must come after the last closed business day (a closed day never changes)."""
    require(actor, SETTLEMENT_RATES)
    merchant = _merchant(session, merchant_id)
    errors = FieldErrors()
    errors.check(check_bp, debit_bp, field="debit_bp")
    errors.check(check_cap, debit_cap, field="debit_cap")
    errors.check(check_bp, credit_bp, field="credit_bp")
    if not isinstance(effective_from, date):
        errors.add(ValidationFailed("Enter a date as YYYY-MM-DD.", field="effective_from"))
    note = note.strip() if isinstance(note, str) else ""
    if len(note) > 200:
        errors.add(ValidationFailed("Too long: at most {n} characters.", field="note", n=200))
    errors.raise_if_any()
    closed = _last_closed_date(session)
    if closed is not None and effective_from <= closed:
        raise ValidationFailed(
            "Business days up to {day} are closed; a new rate takes effect after that.",
            field="effective_from",
            day=closed.isoformat(),
        )
    exists = session.execute(
        select(MerchantRateCard.id).where(
            MerchantRateCard.merchant_id == merchant.id,
            MerchantRateCard.effective_from == effective_from,
        )
    ).first()
    if exists:
        raise Conflict(
            "This merchant already has a rate card taking effect on {day}.",
            field="effective_from",
            day=effective_from.isoformat(),
        )
    card = MerchantRateCard(
        merchant_id=merchant.id,
        debit_bp=debit_bp,
        debit_cap=debit_cap,
        credit_bp=credit_bp,
        effective_from=effective_from,
        note=note,
        created_by_id=actor.id,
    )
    session.add(card)
    session.flush()
    record(session, actor, "settlement.merchant_rate_set", card)
    return card


def merchant_rate_history(session: Session, merchant_id: int) -> list[MerchantRateCard]:
    return list(
        session.execute(
            select(MerchantRateCard)
            .where(MerchantRateCard.merchant_id == merchant_id)
            .order_by(MerchantRateCard.effective_from.desc())
        ).scalars()
    )


def merchant_rate_on(session: Session, merchant_id: int, day: date) -> MerchantRateCard | None:
    return session.execute(
        select(MerchantRateCard)
        .where(
            MerchantRateCard.merchant_id == merchant_id,
            MerchantRateCard.effective_from <= day,
        )
        .order_by(MerchantRateCard.effective_from.desc())
        .limit(1)
    ).scalar_one_or_none()


def _card_rates(card: MerchantRateCard) -> RateSet:
    return RateSet(
        debit=(card.debit_bp, card.debit_cap if card.debit_cap is not None else NO_CAP),
        credit=(card.credit_bp, NO_CAP),
    )


def merchant_rates_on(
    session: Session, day: date, *, at: datetime | None = None
) -> tuple[dict[int, RateSet], RateSet]:
    """Merchant id → rates in force on ``day``; and the default for merchants without a card
    (the version in force at ``at``, the window's close; None: the current one)."""
    default = _rate_set(settings_cards_at(session, at)["default"], DEFAULT_MERCHANT_RATES)
    return merchant_cards_on(session, day), default


def _rate_set(card: dict[str, Any], fallback: dict[str, Any]) -> RateSet:
    found = RateSet.from_card(card) or RateSet.from_card(fallback)
    assert found is not None
    return found


def merchant_cards_on(session: Session, day: date) -> dict[int, RateSet]:
    """Merchant id → the rates of its rate card in force on ``day`` (merchants with one)."""
    latest = (
        select(MerchantRateCard.merchant_id, func.max(MerchantRateCard.effective_from).label("d"))
        .where(MerchantRateCard.effective_from <= day)
        .group_by(MerchantRateCard.merchant_id)
        .subquery()
    )
    cards = session.execute(
        select(
            MerchantRateCard.merchant_id,
            MerchantRateCard.debit_bp,
            MerchantRateCard.debit_cap,
            MerchantRateCard.credit_bp,
        ).join(
            latest,
            (latest.c.merchant_id == MerchantRateCard.merchant_id)
            & (latest.c.d == MerchantRateCard.effective_from),
        )
    )
    return {
        m: RateSet(debit=(d_bp, d_cap if d_cap is not None else NO_CAP), credit=(c_bp, NO_CAP))
        for m, d_bp, d_cap, c_bp in cards
    }


# --- windows ---------------------------------------------------------------------------------


def _zone() -> ZoneInfo:
    return ZoneInfo(get_settings().timezone)


def window_bounds(day: date, cutoff: str) -> tuple[datetime, datetime]:
    """UTC start and end of business day ``day``: from the previous day's cut-off to this day's
    (a cut-off of 00:00 means the calendar day)."""
    hours, minutes = (int(p) for p in cutoff.split(":"))
    zone = _zone()

    def end_of(d: date) -> datetime:
        at = time(hours, minutes)
        local_end = datetime.combine(d + timedelta(days=1) if at == time(0) else d, at, zone)
        return local_end.astimezone(UTC)

    return end_of(day - timedelta(days=1)), end_of(day)


def business_date_of(moment: datetime, cutoff: str) -> date:
    """The business day a moment (UTC) belongs to."""
    local = moment.astimezone(_zone())
    hours, minutes = (int(p) for p in cutoff.split(":"))
    if (hours, minutes) != (0, 0) and (local.hour, local.minute) >= (hours, minutes):
        return local.date() + timedelta(days=1)
    return local.date()


def get_window(session: Session, day: date) -> SettlementWindow | None:
    return session.execute(
        select(SettlementWindow).where(SettlementWindow.business_date == day)
    ).scalar_one_or_none()


def _event(
    session: Session, window: SettlementWindow, event: str, actor: User | None, **data: Any
) -> None:
    session.add(
        WindowEvent(
            window_id=window.id, event=event, data=data, actor_id=actor.id if actor else None
        )
    )


def ensure_window(session: Session, actor: User | None, day: date) -> SettlementWindow:
    window = get_window(session, day)
    if window is not None:
        return window
    cutoff = get_config(session).cutoff
    start, end = window_bounds(day, cutoff)
    window = SettlementWindow(
        business_date=day,
        state=WindowState.OPEN.value,
        start_at=start,
        end_at=end,
        cutoff=cutoff,
    )
    session.add(window)
    session.flush()
    _event(session, window, "opened", actor, start=start.isoformat(), end=end.isoformat())
    return window


def list_windows(session: Session, *, limit: int = 60, offset: int = 0) -> list[SettlementWindow]:
    return list(
        session.execute(
            select(SettlementWindow)
            .order_by(SettlementWindow.business_date.desc())
            .limit(limit)
            .offset(offset)
        ).scalars()
    )


def window_events(session: Session, window: SettlementWindow) -> list[WindowEvent]:
    return list(
        session.execute(
            select(WindowEvent).where(WindowEvent.window_id == window.id).order_by(WindowEvent.id)
        ).scalars()
    )


def _last_id_before(session: Session, moment: datetime) -> int:
    """The highest journal id stamped before ``moment``: the latest rows before it by time
    (several gateway nodes interleave by milliseconds, so the last minutes are looked at), then
    any row journaled after those but stamped before ``moment`` (scanned by id from there)."""
    latest = session.execute(
        select(Journal.created_at)
        .where(Journal.created_at < moment)
        .order_by(Journal.created_at.desc())
        .limit(1)
    ).scalar_one_or_none()
    if latest is None:
        return 0
    found = session.execute(
        select(func.max(Journal.id)).where(
            Journal.created_at >= latest - timedelta(minutes=5), Journal.created_at < moment
        )
    ).scalar_one_or_none()
    candidate = int(found or 0)
    # rows stamped before the cut-off but journaled later (a node's late group commit)
    late = session.execute(
        select(func.max(Journal.id)).where(Journal.id > candidate, Journal.created_at < moment)
    ).scalar_one_or_none()
    return max(candidate, int(late or 0))


def close_window(*, session: Session, actor: User, business_date: date) -> SettlementWindow:
    """Fix the window's journal range once its cut-off has passed (earlier open windows are
    closed first). Rows journaled from now on fall into the next window."""
    require(actor, SETTLEMENT_RUN)
    window = ensure_window(session, actor, business_date)
    if window.state != WindowState.OPEN.value:
        return window
    now = utcnow()
    end_at = window.end_at if window.end_at.tzinfo else window.end_at.replace(tzinfo=UTC)
    if now < end_at:
        raise Conflict(
            "The settlement window of {day} is still open until {until}; settle it after the cut-off.",
            field="business_date",
            day=business_date.isoformat(),
            until=end_at.astimezone(_zone()).strftime("%Y-%m-%d %H:%M"),
        )
    later = session.execute(
        select(SettlementWindow.business_date)
        .where(
            SettlementWindow.business_date > business_date,
            SettlementWindow.state != WindowState.OPEN.value,
        )
        .limit(1)
    ).scalar_one_or_none()
    if later is not None:
        raise Conflict(
            "A later business day ({later}) is already closed; {day} cannot be opened behind it.",
            field="business_date",
            later=later.isoformat(),
            day=business_date.isoformat(),
        )
    previous = session.execute(
        select(SettlementWindow)
        .where(SettlementWindow.business_date < business_date)
        .order_by(SettlementWindow.business_date.desc())
        .limit(1)
    ).scalar_one_or_none()
    if previous is not None and previous.state == WindowState.OPEN.value:
        previous = close_window(session=session, actor=actor, business_date=previous.business_date)
    if previous is not None:
        first_id = previous.last_id or 0
    else:
        start_at = (
            window.start_at if window.start_at.tzinfo else window.start_at.replace(tzinfo=UTC)
        )
        first_id = _last_id_before(session, start_at)
    window.first_id = first_id
    window.last_id = max(first_id, _last_id_before(session, end_at))
    window.transition(WindowState.CLOSED)
    window.closed_at = now
    session.flush()
    _event(session, window, "closed", actor, first_id=window.first_id, last_id=window.last_id)
    record(session, actor, "settlement.window_closed", window)
    return window


# --- settlement ------------------------------------------------------------------------------


@dataclass
class Totals:
    count: int = 0
    cancels: int = 0
    gross: int = 0
    fee: int = 0
    bank_fee: int = 0
    hq_margin: int = 0
    adjustment: int = 0

    @property
    def net(self) -> int:
        return self.gross - self.fee


@dataclass
class ShareTotals:
    count: int = 0
    volume: int = 0
    share: int = 0


@dataclass
class Computed:
    facts: dict[tuple[int, int | None, str], Totals] = field(default_factory=dict)
    shares: dict[tuple[int, str], ShareTotals] = field(default_factory=dict)


def _providers(session: Session) -> dict[int, Provider]:
    return {p.id: p for p in session.execute(select(Provider)).scalars()}


def provider_chain(providers: dict[int, Provider], provider_id: int | None) -> list[Provider]:
    """The terminal's provider and its ancestors below HQ, lowest first."""
    chain: list[Provider] = []
    seen: set[int] = set()
    current = providers.get(provider_id) if provider_id is not None else None
    while current is not None and current.level != ProviderLevel.HQ.value:
        if current.id in seen:
            break
        seen.add(current.id)
        chain.append(current)
        current = providers.get(current.parent_id) if current.parent_id is not None else None
    return chain


def _refund_rates(
    session: Session,
    window: SettlementWindow,
    today: dict[int, RateSet],
    default: RateSet,
) -> list[tuple[int, int, dict[int, RateSet]]]:
    """For refunds in the window of sales settled in earlier windows: each such earlier
    window's id range with the merchant rates of its business day, when they differ from
    today's (a refund claws back what its sale paid, at the sale day's rates). Provider and
    bank rate cards are those in force when this window closed."""
    assert window.first_id is not None and window.last_id is not None
    originals = sorted(
        {
            int(o)
            for (o,) in session.execute(
                select(Journal.original_id).where(
                    Journal.kind == "refund",
                    Journal.id > window.first_id,
                    Journal.id <= window.last_id,
                    Journal.original_id <= window.first_id,
                )
            )
            if o is not None
        }
    )
    if not originals:
        return []
    earlier = session.execute(
        select(SettlementWindow.business_date, SettlementWindow.first_id, SettlementWindow.last_id)
        .where(
            SettlementWindow.business_date < window.business_date,
            SettlementWindow.first_id.is_not(None),
            SettlementWindow.last_id.is_not(None),
            SettlementWindow.last_id >= originals[0],
            SettlementWindow.first_id < originals[-1],
        )
        .order_by(SettlementWindow.first_id)
    ).all()
    out: list[tuple[int, int, dict[int, RateSet]]] = []
    for day, first, last in earlier:
        a, b = int(first or 0), int(last or 0)
        at = bisect.bisect_right(originals, a)
        if at >= len(originals) or originals[at] > b:
            continue  # no refund of a sale of that day
        rates = merchant_cards_on(session, day)
        full = {m: rates.get(m, default) for m in today}
        if full != today:
            out.append((a, b, full))
    return out


def compute_window(
    session: Session,
    window: SettlementWindow,
    progress: Progress | None = None,
    *,
    method: Method = "columns",
    snapshot: snapshots.Writer | None = None,
) -> Computed:
    """The window's figures, from the journal (nothing written). ``method``: see
    :func:`cardops.settlement.compute.aggregate` (both give the same figures)."""
    if window.first_id is None or window.last_id is None:
        raise Conflict(
            "The settlement window of {day} is not closed yet.",
            field="business_date",
            day=window.business_date.isoformat(),
        )
    providers = _providers(session)
    # rate cards as they were when the window closed: a later change never alters a closed day
    at = window.closed_at
    cards = settings_cards_at(session, at)
    merchant_rates = merchant_cards_on(session, window.business_date)
    default = _rate_set(cards["default"], DEFAULT_MERCHANT_RATES)
    used_merchants = {m for (m,) in session.execute(select(Merchant.id)) if m not in merchant_rates}
    for merchant_id in used_merchants:
        merchant_rates[merchant_id] = default
    by_provider = {pid: provider_chain(providers, pid) for pid in providers}
    provider_cards = provider_cards_at(session, at)
    rate_sets = {
        pid: RateSet.from_card(provider_cards.get(pid, p.rate_card)) or PASS_RATES
        for pid, p in providers.items()
    }
    if any(len(c) > MAX_LEVELS for c in by_provider.values()):
        raise Conflict("The provider tree is deeper than four levels below HQ.")
    chain_rates = {pid: [rate_sets[p.id] for p in chain] for pid, chain in by_provider.items()}
    terminal_chains: dict[int, tuple[int, list[RateSet]]] = {}
    for terminal_id, provider_id in session.execute(
        select(Terminal.id, Terminal.provider_id).where(Terminal.provider_id.is_not(None))
    ):
        chain = by_provider.get(provider_id) or [] if provider_id is not None else []
        if chain and provider_id is not None:
            terminal_chains[terminal_id] = (chain[0].id, chain_rates[provider_id])
    bank = _rate_set(cards["bank"], DEFAULT_BANK_RATES)
    refund_rates = _refund_rates(session, window, merchant_rates, default)
    groups = aggregate(
        session,
        first_id=window.first_id,
        last_id=window.last_id,
        merchant_rates=merchant_rates,
        terminal_chains=terminal_chains,
        bank=bank,
        progress=progress,
        method=method,
        snapshot=snapshot,
        refund_rates=refund_rates,
    )
    if progress:
        progress("figures")
    out = Computed()
    for g in groups:
        card_type = "credit" if g.credit else "debit"
        key = (g.merchant_id, g.owner_id, card_type)
        totals = out.facts.setdefault(key, Totals())
        signed = g.sign
        if g.cancel:
            totals.cancels += g.count
        else:
            totals.count += g.count
        totals.gross += signed * g.amount
        totals.fee += signed * g.fee
        totals.bank_fee += signed * g.bank_fee
        chain = by_provider[g.owner_id] if g.owner_id is not None else []
        top_cost = g.costs[-1] if chain else g.fee
        totals.hq_margin += signed * (top_cost - g.bank_fee)
        if g.earlier:
            totals.adjustment += signed * g.amount
        below = g.fee
        for level, provider in enumerate(chain):
            cost = g.costs[level]
            line = out.shares.setdefault((provider.id, card_type), ShareTotals())
            line.share += signed * (below - cost)
            line.volume += signed * g.amount
            line.count += -g.count if g.cancel else g.count
            below = cost
    return out


@dataclass
class SettleResult:
    window: SettlementWindow
    computed: Computed
    postings: int
    unchanged: bool = False


def _fact_rows(window: SettlementWindow, computed: Computed) -> list[dict[str, Any]]:
    return [
        {
            "window_id": window.id,
            "merchant_id": m,
            "provider_id": p,
            "card_type": c,
            "count": t.count,
            "cancels": t.cancels,
            "gross": t.gross,
            "fee": t.fee,
            "bank_fee": t.bank_fee,
            "hq_margin": t.hq_margin,
            "adjustment": t.adjustment,
        }
        for (m, p, c), t in sorted(
            computed.facts.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0, kv[0][2])
        )
    ]


def _share_rows(window: SettlementWindow, computed: Computed) -> list[dict[str, Any]]:
    return [
        {
            "window_id": window.id,
            "provider_id": p,
            "card_type": c,
            "count": s.count,
            "volume": s.volume,
            "share": s.share,
        }
        for (p, c), s in sorted(computed.shares.items())
    ]


def _stored(
    session: Session, window: SettlementWindow
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    facts = sorted(
        (
            f.merchant_id,
            f.provider_id or 0,
            f.card_type,
            f.count,
            f.cancels,
            f.gross,
            f.fee,
            f.bank_fee,
            f.hq_margin,
            f.adjustment,
        )
        for f in session.execute(
            select(SettlementFact).where(SettlementFact.window_id == window.id)
        ).scalars()
    )
    shares = sorted(
        (s.provider_id, s.card_type, s.count, s.volume, s.share)
        for s in session.execute(
            select(ShareLine).where(ShareLine.window_id == window.id)
        ).scalars()
    )
    return facts, shares


def _ensure_accounts(
    session: Session, actor: User, codes: dict[str, tuple[str, str, str, str, str, int]]
) -> None:
    """Open missing sub-ledgers in bulk: code → (name_en, name_zh, type, parent, owner_type,
    owner_id)."""
    ledger.ensure_accounts(
        session=session,
        actor=actor,
        specs=[
            ledger.AccountSpec(
                code=code,
                name_en=name_en,
                name_zh=name_zh,
                type=type_,
                parent_code=parent,
                owner_type=owner_type,
                owner_id=owner_id,
            )
            for code, (name_en, name_zh, type_, parent, owner_type, owner_id) in codes.items()
        ],
        permission=SETTLEMENT_RUN,
    )


def merchant_account(merchant_id: int) -> str:
    return f"{chart.MERCHANT_PAYABLES}:merchant:{merchant_id}"


def provider_account(provider_id: int) -> str:
    return f"{chart.PROFIT_SHARES_PAYABLE}:provider:{provider_id}"


def _postings(
    window: SettlementWindow, computed: Computed, providers: dict[int, Provider]
) -> tuple[list[NewPosting], dict[str, tuple[str, str, str, str, str, int]]]:
    day = window.business_date.isoformat()
    per_merchant: dict[int, Totals] = defaultdict(Totals)
    for (m, _p, _c), t in computed.facts.items():
        agg = per_merchant[m]
        agg.gross += t.gross
        agg.fee += t.fee
        agg.bank_fee += t.bank_fee
    per_provider: dict[int, int] = defaultdict(int)
    for (p, _c), s in computed.shares.items():
        per_provider[p] += s.share
    accounts: dict[str, tuple[str, str, str, str, str, int]] = {}
    postings: list[NewPosting] = []
    for m, t in sorted(per_merchant.items()):
        lines = [
            (chart.RECEIVABLES, t.gross - t.bank_fee),
            (chart.BANK_CHARGES, t.bank_fee),
            (merchant_account(m), -t.net),
            (chart.MERCHANT_FEE_INCOME, -t.fee),
        ]
        lines = [line for line in lines if line[1] != 0]
        if len(lines) < 2:
            continue
        accounts[merchant_account(m)] = (
            f"Merchant {m} payable",
            f"应付商户款 {m}",
            "liability",
            chart.MERCHANT_PAYABLES,
            "merchant",
            m,
        )
        postings.append(
            NewPosting(
                lines=lines,
                description=f"Settlement {day}: merchant {m}",
                reference=f"settlement:{day}",
                idempotency_key=f"settle:{day}:m:{m}",
            )
        )
    for p, share in sorted(per_provider.items()):
        if share == 0:
            continue
        name = providers[p].code if p in providers else str(p)
        accounts[provider_account(p)] = (
            f"Profit shares payable {name}",
            f"应付分润 {name}",
            "liability",
            chart.PROFIT_SHARES_PAYABLE,
            "provider",
            p,
        )
        postings.append(
            NewPosting(
                lines=[(chart.PROFIT_SHARE_EXPENSE, share), (provider_account(p), -share)],
                description=f"Settlement {day}: profit share of {name}",
                reference=f"settlement:{day}",
                idempotency_key=f"settle:{day}:p:{p}",
            )
        )
    return postings, accounts


def _payouts(
    session: Session, window: SettlementWindow, computed: Computed
) -> list[dict[str, Any]]:
    per_merchant: dict[int, int] = defaultdict(int)
    for (m, _p, _c), t in computed.facts.items():
        per_merchant[m] += t.net
    if not per_merchant:
        return []
    latest = (
        select(Payout.merchant_id, func.max(SettlementWindow.business_date).label("d"))
        .join(SettlementWindow, SettlementWindow.id == Payout.window_id)
        .where(SettlementWindow.business_date < window.business_date)
        .group_by(Payout.merchant_id)
        .subquery()
    )
    carried = {
        m: int(c)
        for m, c in session.execute(
            select(Payout.merchant_id, Payout.carried_out)
            .join(SettlementWindow, SettlementWindow.id == Payout.window_id)
            .join(
                latest,
                (latest.c.merchant_id == Payout.merchant_id)
                & (latest.c.d == SettlementWindow.business_date),
            )
        )
    }
    rows = []
    for m, net in sorted(per_merchant.items()):
        carried_in = carried.get(m, 0)
        total = net + carried_in
        rows.append(
            {
                "window_id": window.id,
                "merchant_id": m,
                "net": net,
                "carried_in": carried_in,
                "amount": max(total, 0),
                "carried_out": min(total, 0),
                "payout_date": window.business_date + timedelta(days=1),
            }
        )
    return rows


def _activation_rewards(
    session: Session, actor: User, window: SettlementWindow, providers: dict[int, Provider]
) -> list[NewPosting]:
    rules = list(
        session.execute(
            select(RewardRule).where(
                RewardRule.active.is_(True), RewardRule.kind == RewardKind.ACTIVATION.value
            )
        ).scalars()
    )
    if not rules:
        return []
    month = window.business_date.strftime("%Y-%m")
    earned: dict[int, int] = defaultdict(int)
    new: list[Reward] = []
    for terminal_id, provider_id in session.execute(
        select(Terminal.id, Terminal.provider_id).where(
            Terminal.activated_at >= window.start_at,
            Terminal.activated_at < window.end_at,
            Terminal.provider_id.is_not(None),
        )
    ):
        chain = provider_chain(providers, provider_id)
        for rule in rules:
            for position, provider in enumerate(chain):
                if rule.provider_id is not None:
                    matches = rule.provider_id == provider.id
                else:
                    matches = rule.level == provider.level if rule.level else position == 0
                if not matches:
                    continue
                amount = rule.amount or provider.activation_reward
                if amount <= 0:
                    continue
                reference = f"terminal:{terminal_id}"
                done = session.execute(
                    select(Reward.id).where(
                        Reward.rule_id == rule.id,
                        Reward.provider_id == provider.id,
                        Reward.reference == reference,
                    )
                ).first()
                if done:
                    continue
                reward = Reward(
                    rule_id=rule.id,
                    provider_id=provider.id,
                    kind=rule.kind,
                    reference=reference,
                    month=month,
                    amount=amount,
                )
                session.add(reward)
                new.append(reward)
                earned[provider.id] += amount
    session.flush()
    day = window.business_date.isoformat()
    postings = []
    for pid, amount in sorted(earned.items()):
        postings.append(
            NewPosting(
                lines=[(REWARDS_ACCOUNT, amount), (provider_account(pid), -amount)],
                description=f"Activation rewards {day}: {providers[pid].code}",
                reference=f"settlement:{day}",
                idempotency_key=f"settle:{day}:r:{pid}",
            )
        )
    for reward in new:
        record(session, actor, "settlement.reward_earned", reward)
    return postings


def _ensure_rewards_account(session: Session, actor: User) -> None:
    ledger.ensure_account(
        session=session,
        actor=actor,
        code=REWARDS_ACCOUNT,
        name_en="Channel rewards (activation, volume targets)",
        name_zh="渠道奖励（激活返现、达标奖励）",
        type="expense",
        parent_code=chart.PROFIT_SHARE_EXPENSE,
        permission=SETTLEMENT_RUN,
    )


def _post(session: Session, actor: User, day: date, postings: list[NewPosting]) -> int:
    if not postings:
        return 0
    outcomes = ledger.post_many(
        session=session,
        actor=actor,
        postings=postings,
        permission=SETTLEMENT_RUN,
        business_date=day,
    )
    return sum(1 for o in outcomes if o.refused is None)


def settle_day(
    *,
    session: Session,
    actor: User,
    business_date: date,
    progress: Progress | None = None,
) -> SettleResult:
    """Settle one business day (see the module docstring). Repeatable: a settled day is
    recomputed and, when it agrees, returned unchanged with nothing posted."""
    require(actor, SETTLEMENT_RUN)
    if not isinstance(business_date, date):
        raise ValidationFailed("Enter a date as YYYY-MM-DD.", field="business_date")
    if progress:
        progress("close")
    window = close_window(session=session, actor=actor, business_date=business_date)
    writer = None
    if snapshots.supported(session):
        snapshots.sweep(session)  # the folders of settlements that were rolled back
        if window.state != WindowState.SETTLED.value:
            assert window.first_id is not None and window.last_id is not None
            writer = snapshots.Writer(window.first_id, window.last_id)
    try:
        return _settle(session, actor, window, writer, progress)
    except BaseException:
        if writer is not None:
            writer.discard()
        raise


def _settle(
    session: Session,
    actor: User,
    window: SettlementWindow,
    writer: snapshots.Writer | None,
    progress: Progress | None,
) -> SettleResult:
    business_date = window.business_date
    computed = compute_window(session, window, progress, snapshot=writer)
    if window.state == WindowState.SETTLED.value:
        facts, shares = _stored(session, window)
        fresh_facts = sorted(
            (
                r["merchant_id"],
                r["provider_id"] or 0,
                r["card_type"],
                r["count"],
                r["cancels"],
                r["gross"],
                r["fee"],
                r["bank_fee"],
                r["hq_margin"],
                r["adjustment"],
            )
            for r in _fact_rows(window, computed)
        )
        fresh_shares = sorted(
            (r["provider_id"], r["card_type"], r["count"], r["volume"], r["share"])
            for r in _share_rows(window, computed)
        )
        if facts != fresh_facts or shares != fresh_shares:
            raise Conflict(
                "{day} was settled already and its figures now come out differently; a settled day is not changed — post an adjustment instead.",
                field="business_date",
                day=business_date.isoformat(),
            )
        _event(session, window, "resettled", actor, unchanged=True)
        session.flush()
        return SettleResult(window=window, computed=computed, postings=0, unchanged=True)
    if progress:
        progress("store")
    facts_table = cast(Table, SettlementFact.__table__)
    shares_table = cast(Table, ShareLine.__table__)
    payouts_table = cast(Table, Payout.__table__)
    conn = session.connection()
    for table in (facts_table, shares_table, payouts_table):
        conn.execute(delete(table).where(table.c.window_id == window.id))
    fact_rows = _fact_rows(window, computed)
    share_rows = _share_rows(window, computed)
    payout_rows = _payouts(session, window, computed)
    if fact_rows:
        conn.execute(insert(facts_table), fact_rows)
    if share_rows:
        conn.execute(insert(shares_table), share_rows)
    if payout_rows:
        conn.execute(insert(payouts_table), payout_rows)
    if progress:
        progress("post")
    providers = _providers(session)
    postings, accounts = _postings(window, computed, providers)
    _ensure_accounts(session, actor, accounts)
    rewards = _activation_rewards(session, actor, window, providers)
    if rewards:
        _ensure_rewards_account(session, actor)
    posted = _post(session, actor, business_date, postings + rewards)
    totals = Totals()
    for t in computed.facts.values():
        totals.count += t.count
        totals.gross += t.gross
        totals.fee += t.fee
        totals.bank_fee += t.bank_fee
        totals.hq_margin += t.hq_margin
        totals.adjustment += t.adjustment
    window.count = totals.count
    window.gross = totals.gross
    window.fee = totals.fee
    window.net = totals.net
    window.bank_fee = totals.bank_fee
    window.hq_margin = totals.hq_margin
    window.adjustments = totals.adjustment
    window.shares = sum(s.share for s in computed.shares.values())
    window.transition(WindowState.SETTLED)
    window.settled_at = utcnow()
    session.flush()
    _event(
        session,
        window,
        "settled",
        actor,
        count=window.count,
        gross=window.gross,
        fee=window.fee,
        net=window.net,
        postings=posted,
    )
    if writer is not None:
        manifest = writer.finish(window.id)
        _event(
            session,
            window,
            "snapshot",
            actor,
            token=manifest["token"],
            fingerprint=manifest["fingerprint"],
        )
        session.flush()
    record(session, actor, "settlement.day_settled", window)
    return SettleResult(window=window, computed=computed, postings=posted)
