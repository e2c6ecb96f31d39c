"""The ledger: accounts, balanced postings, derived balances, receipts. The only code that
writes them.

Amounts are integers in minor units (fen); a line's amount is positive for a debit and negative
for a credit, and each posting sums to zero per currency. Balances are ``SUM(amount)`` over an
account's lines — never stored, never edited. Corrections are reversing postings.

Other domains post through :func:`post` and take money through :func:`record_payment` (which
posts *and* issues exactly one numbered receipt). Both accept ``permission=`` so that a domain
can authorise the movement with its own permission (e.g. ``cards.issue`` charging a card fee)
instead of the ledger's.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, cast

from sqlalchemy import Table, event, func, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cardops.audit.service import record, snapshot
from cardops.auth.models import User
from cardops.auth.service import require
from cardops.core.clock import local, utcnow
from cardops.core.config import get_settings
from cardops.core.db import BulkInsert, in_values
from cardops.core.errors import Conflict, NotFound, ValidationFailed
from cardops.core.models import advance, next_number
from cardops.core.money import format_minor
from cardops.ledger.chart import DEFAULT_DEBIT, STANDARD_CHART
from cardops.ledger.models import (
    CREDIT_NORMAL,
    Account,
    AccountType,
    PaymentMethod,
    Posting,
    PostingLine,
    Receipt,
)
from cardops.ledger.permissions import (
    LEDGER_ACCOUNTS,
    LEDGER_POST,
    RECEIPTS_ISSUE,
    RECEIPTS_VOID,
)

MAX_AMOUNT = 10**13  # fen on one line: 100 000 000 000 yuan; sums stay far inside BIGINT
MAX_LINES = 200
MAX_ITEMS = 50
POSTING_PREFIX = "JV"  # 记账凭证 (journal voucher)
RECEIPT_PREFIX = "RC"

_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:._-]{0,63}$")
_OWNER_TYPE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

Line = tuple[str, int]
"""One posting line: (account code, amount in fen; debit > 0, credit < 0)."""

PaymentItem = tuple[str, int] | tuple[str, int, str]
"""(label, amount in fen) or (label, amount, credit account code)."""


# --- small helpers ------------------------------------------------------------------------


def _text(value: Any, *, field: str, max_length: int, required: bool = True) -> str:
    text = value.strip() if isinstance(value, str) else ""
    if value is not None and not isinstance(value, str):
        raise ValidationFailed("Enter text.", field=field)
    if _CONTROL.search(text):
        raise ValidationFailed("The text contains control characters.", field=field)
    if required and not text:
        raise ValidationFailed("This field is required.", field=field)
    if len(text) > max_length:
        raise ValidationFailed("Too long: at most {n} characters.", field=field, n=max_length)
    return text


def _lookup_key(value: str) -> str | None:
    """A code or number as typed in a URL; None when it cannot name anything."""
    text = (value or "").strip()
    if not text or len(text) > 64 or _CONTROL.search(text):
        return None
    return text


def _is_whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def today() -> date:
    """The operator's business date (local time zone)."""
    return local(utcnow()).date()


# --- accounts -----------------------------------------------------------------------------


def find_account(session: Session, code: str) -> Account | None:
    key = _lookup_key(code)
    if key is None:
        return None
    return session.execute(select(Account).where(Account.code == key)).scalar_one_or_none()


def get_account_by_code(session: Session, code: str) -> Account:
    account = find_account(session, code)
    if account is None:
        raise NotFound("There is no account “{account}”.", account=code[:64], field="account")
    return account


def list_accounts(
    session: Session,
    *,
    type: str | None = None,
    parent: Account | None = None,
    top_level: bool = False,
    owner_type: str | None = None,
    owner_id: int | None = None,
    active: bool | None = None,
    q: str | None = None,
    limit: int = 500,
    offset: int = 0,
) -> list[Account]:
    stmt = select(Account).order_by(Account.code)
    if type:
        stmt = stmt.where(Account.type == type)
    if parent is not None:
        stmt = stmt.where(Account.parent_id == parent.id)
    elif top_level:
        stmt = stmt.where(Account.parent_id.is_(None))
    if owner_type:
        stmt = stmt.where(Account.owner_type == owner_type)
    if owner_id is not None:
        stmt = stmt.where(Account.owner_id == owner_id)
    if active is not None:
        stmt = stmt.where(Account.is_active.is_(active))
    if q and not _CONTROL.search(q):
        like = f"%{q.strip()}%"
        stmt = stmt.where(
            or_(Account.code.like(like), Account.name_en.like(like), Account.name_zh.like(like))
        )
    return list(session.execute(stmt.limit(limit).offset(offset)).scalars())


def _account_fields(
    session: Session,
    *,
    code: str,
    name_en: str,
    name_zh: str,
    type: str,
    currency: str | None,
    owner_type: str | None,
    owner_id: int | None,
    parent_code: str | None,
    parents: dict[str, Account | None] | None = None,
) -> dict[str, Any]:
    """The checked columns of a new account. ``parents`` caches parent look-ups across many
    calls (bulk opening)."""
    code = _text(code, field="code", max_length=64)
    if not _CODE.match(code):
        raise ValidationFailed(
            "An account code is 1–64 letters, digits, ':', '.', '_' or '-', starting with a letter or digit.",
            field="code",
        )
    values: dict[str, Any] = {
        "code": code,
        "name_en": _text(name_en, field="name_en", max_length=128),
        "name_zh": _text(name_zh, field="name_zh", max_length=128),
    }
    if type not in {t.value for t in AccountType}:
        raise ValidationFailed(
            "Choose the account type: asset, liability, equity, income or expense.", field="type"
        )
    values["type"] = type
    currency = (currency or get_settings().currency).strip().upper()
    if not _CURRENCY.match(currency):
        raise ValidationFailed("A currency is a three-letter code such as CNY.", field="currency")
    values["currency"] = currency
    owner_type = _text(owner_type, field="owner_type", max_length=32, required=False) or None
    if owner_type is not None and not _OWNER_TYPE.match(owner_type):
        raise ValidationFailed(
            "An owner type is lower-case letters, digits or '_', e.g. card.", field="owner_type"
        )
    if owner_id is not None and (not _is_whole(owner_id) or not 0 <= owner_id < 2**63):
        raise ValidationFailed("The owner id is not valid.", field="owner_id")
    if (owner_type is None) != (owner_id is None):
        raise ValidationFailed(
            "Give both the owner type and the owner id, or neither.", field="owner_id"
        )
    values["owner_type"], values["owner_id"] = owner_type, owner_id
    values["parent"] = None
    if parent_code:
        if parents is None:
            parent = find_account(session, parent_code)
        elif parent_code in parents:
            parent = parents[parent_code]
        else:
            parent = parents[parent_code] = find_account(session, parent_code)
        if parent is None:
            raise ValidationFailed(
                "There is no account “{account}”.", field="parent", account=parent_code[:64]
            )
        if parent.parent_id is not None:
            raise ValidationFailed(
                "The parent account is itself a sub-account; choose a top-level account.",
                field="parent",
            )
        if parent.type != type or parent.currency != currency:
            raise ValidationFailed(
                "A sub-account has the same type and currency as its parent.", field="parent"
            )
        values["parent"] = parent
    return values


def create_account(
    *,
    session: Session,
    actor: User,
    code: str,
    name_en: str,
    name_zh: str,
    type: str,
    currency: str | None = None,
    owner_type: str | None = None,
    owner_id: int | None = None,
    parent_code: str | None = None,
    permission: str = LEDGER_ACCOUNTS,
) -> Account:
    """Open an account. ``permission`` lets another domain open its sub-ledgers."""
    require(actor, permission)
    values = _account_fields(
        session,
        code=code,
        name_en=name_en,
        name_zh=name_zh,
        type=type,
        currency=currency,
        owner_type=owner_type,
        owner_id=owner_id,
        parent_code=parent_code,
    )
    if find_account(session, values["code"]) is not None:
        raise Conflict(
            "The account code “{account}” is taken.", field="code", account=values["code"]
        )
    account = Account(**values)
    session.add(account)
    session.flush()
    record(session, actor, "ledger.account_created", account)
    return account


def ensure_account(
    *,
    session: Session,
    actor: User,
    code: str,
    name_en: str,
    name_zh: str,
    type: str,
    currency: str | None = None,
    owner_type: str | None = None,
    owner_id: int | None = None,
    parent_code: str | None = None,
    permission: str = LEDGER_ACCOUNTS,
) -> Account:
    """The account with ``code``, opened first if it does not exist (sub-ledgers on demand:
    ``ensure_account(code=f"wallet:card:{card.id}", type="liability", parent_code="2202",
    owner_type="card", owner_id=card.id, permission=CARDS_ISSUE, …)``)."""
    require(actor, permission)
    existing = find_account(session, code)
    if existing is not None:
        return existing
    return create_account(
        session=session,
        actor=actor,
        code=code,
        name_en=name_en,
        name_zh=name_zh,
        type=type,
        currency=currency,
        owner_type=owner_type,
        owner_id=owner_id,
        parent_code=parent_code,
        permission=permission,
    )


@dataclass(frozen=True)
class AccountSpec:
    """One account for :func:`ensure_accounts` (the fields of :func:`create_account`)."""

    code: str
    name_en: str
    name_zh: str
    type: str
    parent_code: str | None = None
    owner_type: str | None = None
    owner_id: int | None = None
    currency: str | None = None


def ensure_accounts(
    *,
    session: Session,
    actor: User,
    specs: Sequence[AccountSpec],
    permission: str = LEDGER_ACCOUNTS,
) -> int:
    """Open every account of ``specs`` that does not exist yet, in bulk: one query per 500
    codes for what exists, one multi-row insert for the rest, one audit entry
    (``ledger.accounts_created``, entity ``ledger_accounts``/``bulk``) listing the codes
    opened. Each spec is checked like
    :func:`create_account` checks its arguments (the first bad one raises, nothing is opened).
    Existing accounts are left as they are. Returns how many were opened."""
    require(actor, permission)
    wanted: dict[str, AccountSpec] = {}
    for spec in specs:
        wanted.setdefault(spec.code.strip() if isinstance(spec.code, str) else spec.code, spec)
    codes = sorted(wanted)
    existing: set[str] = set()
    for start in range(0, len(codes), 500):
        existing.update(
            session.execute(
                select(Account.code).where(Account.code.in_(codes[start : start + 500]))
            ).scalars()
        )
    missing = [code for code in codes if code not in existing]
    if not missing:
        return 0
    parents: dict[str, Account | None] = {}
    rows: list[dict[str, Any]] = []
    now = utcnow()
    for code in missing:
        spec = wanted[code]
        values = _account_fields(
            session,
            code=spec.code,
            name_en=spec.name_en,
            name_zh=spec.name_zh,
            type=spec.type,
            currency=spec.currency,
            owner_type=spec.owner_type,
            owner_id=spec.owner_id,
            parent_code=spec.parent_code,
            parents=parents,
        )
        parent = values.pop("parent")
        rows.append(
            {
                **values,
                "parent_id": parent.id if parent is not None else None,
                "is_active": True,
                "created_at": now,
                "updated_at": now,
            }
        )
    session.flush()
    session.execute(insert(cast(Table, Account.__table__)), rows)
    record(
        session,
        actor,
        "ledger.accounts_created",
        ("ledger_accounts", "bulk"),
        after={"count": len(missing), "codes": missing},
    )
    return len(missing)


def update_account(
    *,
    session: Session,
    actor: User,
    code: str,
    name_en: str | None = None,
    name_zh: str | None = None,
    is_active: bool | None = None,
) -> Account:
    """Rename an account, or close / reopen it. Only an account at zero can be closed."""
    require(actor, LEDGER_ACCOUNTS)
    account = get_account_by_code(session, code)
    before = snapshot(account)
    if name_en is not None:
        account.name_en = _text(name_en, field="name_en", max_length=128)
    if name_zh is not None:
        account.name_zh = _text(name_zh, field="name_zh", max_length=128)
    if is_active is not None and is_active != account.is_active:
        if not is_active:
            current = balance(session, account)
            if current != 0:
                raise Conflict(
                    "The account {account} has a balance of {balance}; bring it to zero before closing it.",
                    field="is_active",
                    account=account.code,
                    balance=format_minor(account.natural(current)),
                )
        account.is_active = is_active
    session.flush()
    record(session, actor, "ledger.account_updated", account, before=before)
    return account


def ensure_standard_chart(*, session: Session, actor: User) -> int:
    """Open any account of the standard chart that is missing. Returns how many were opened."""
    require(actor, LEDGER_ACCOUNTS)
    opened = 0
    for item in STANDARD_CHART:
        if find_account(session, item.code) is None:
            create_account(
                session=session,
                actor=actor,
                code=item.code,
                name_en=item.name_en,
                name_zh=item.name_zh,
                type=item.type.value,
            )
            opened += 1
    return opened


# --- postings -----------------------------------------------------------------------------


def _resolve_lines(
    session: Session,
    lines: Sequence[Line],
    *,
    allow_inactive: bool = False,
    known: dict[str, Account] | None = None,
) -> list[tuple[Account, int]]:
    if not isinstance(lines, list | tuple) or len(lines) < 2:
        raise ValidationFailed(
            "A posting needs at least two lines: a debit and a credit.", field="lines"
        )
    if len(lines) > MAX_LINES:
        raise ValidationFailed("A posting has at most {n} lines.", field="lines", n=MAX_LINES)
    parsed: list[tuple[str, int]] = []
    for n, line in enumerate(lines, start=1):
        if not isinstance(line, list | tuple) or len(line) != 2:
            raise ValidationFailed("Line {n} is not an (account, amount) pair.", field="lines", n=n)
        code, amount = line
        if not isinstance(code, str) or _lookup_key(code) is None:
            raise ValidationFailed("Line {n}: choose an account.", field="lines", n=n)
        if not _is_whole(amount):
            raise ValidationFailed(
                "Line {n}: the amount must be a whole number of fen.", field="lines", n=n
            )
        if amount == 0:
            raise ValidationFailed("Line {n}: the amount must not be zero.", field="lines", n=n)
        if abs(amount) > MAX_AMOUNT:
            raise ValidationFailed("Line {n}: the amount is too large.", field="lines", n=n)
        parsed.append((code.strip(), amount))
    codes = {code for code, _ in parsed}
    if known is not None and codes <= known.keys():
        found = known
    else:
        found = {
            a.code: a
            for a in session.execute(select(Account).where(Account.code.in_(codes))).scalars()
        }
    resolved: list[tuple[Account, int]] = []
    for n, (code, amount) in enumerate(parsed, start=1):
        account = found.get(code)
        if account is None:
            raise ValidationFailed(
                "Line {n}: there is no account “{account}”.", field="lines", n=n, account=code
            )
        if not account.is_active and not allow_inactive:
            raise ValidationFailed(
                "Line {n}: the account “{account}” is closed.", field="lines", n=n, account=code
            )
        resolved.append((account, amount))
    return resolved


def _check_balanced(resolved: list[tuple[Account, int]]) -> None:
    debits: dict[str, int] = defaultdict(int)
    credits: dict[str, int] = defaultdict(int)
    for account, amount in resolved:
        if amount > 0:
            debits[account.currency] += amount
        else:
            credits[account.currency] -= amount
    for currency in sorted(set(debits) | set(credits)):
        if debits[currency] != credits[currency]:
            raise ValidationFailed(
                "The posting does not balance: debits {debits} and credits {credits} {currency} differ by {difference}.",
                field="lines",
                debits=format_minor(debits[currency]),
                credits=format_minor(credits[currency]),
                currency=currency,
                difference=format_minor(abs(debits[currency] - credits[currency])),
            )


def _line_key(pairs: list[tuple[Account, int]] | list[PostingLine]) -> list[tuple[int, int]]:
    out = []
    for item in pairs:
        if isinstance(item, PostingLine):
            out.append((item.account_id, item.amount))
        else:
            out.append((item[0].id, item[1]))
    return sorted(out)


def find_posting_by_key(session: Session, key: str) -> Posting | None:
    return session.execute(
        select(Posting).where(Posting.idempotency_key == key)
    ).scalar_one_or_none()


def _replay(existing: Posting, resolved: list[tuple[Account, int]], key: str) -> Posting:
    if _line_key(existing.lines) != _line_key(resolved):
        raise Conflict(
            "The idempotency key “{key}” was already used for a different posting ({number}).",
            field="idempotency_key",
            key=key,
            number=existing.number,
        )
    return existing


def _posting_after(posting: Posting) -> dict[str, Any]:
    return {
        **snapshot(posting),
        "lines": [
            {"account": line.account.code, "amount": line.amount, "currency": line.currency}
            for line in posting.lines
        ],
    }


def _check_overdraft(
    session: Session, resolved: list[tuple[Account, int]], codes: Sequence[str]
) -> None:
    for code in codes:
        touched = [(account, amount) for account, amount in resolved if account.code == code]
        if not touched:
            continue
        account = touched[0][0]
        deltas = [amount for _, amount in touched]
        current = balance(session, account)
        after = account.natural(current + sum(deltas))
        if after < 0:
            raise ValidationFailed(
                "Not enough money on {account}: {available} available.",
                field="lines",
                account=code,
                available=format_minor(account.natural(current)),
            )


def _post(
    *,
    session: Session,
    actor: User,
    lines: Sequence[Line],
    description: str,
    reference: str | None = None,
    idempotency_key: str | None = None,
    business_date: date | None = None,
    no_overdraft: Sequence[str] = (),
    reversal_of: Posting | None = None,
    allow_inactive: bool = False,
) -> Posting:
    description = _text(description, field="description", max_length=255)
    reference = _text(reference, field="reference", max_length=128, required=False) or None
    key = _text(idempotency_key, field="idempotency_key", max_length=128, required=False) or None
    if business_date is not None and not isinstance(business_date, date):
        raise ValidationFailed("Enter a valid date.", field="business_date")
    resolved = _resolve_lines(session, lines, allow_inactive=allow_inactive)
    _check_balanced(resolved)
    if key:
        existing = find_posting_by_key(session, key)
        if existing is not None:
            return _replay(existing, resolved, key)
    now = utcnow()
    try:
        with session.begin_nested():
            # The counter row lock serialises postings, so the overdraft check below sees
            # every posting committed before this one.
            number = next_number(session, "posting", POSTING_PREFIX)
            _check_overdraft(session, resolved, no_overdraft)
            posting = Posting(
                number=number,
                posted_at=now,
                business_date=business_date or local(now).date(),
                description=description,
                reference=reference,
                idempotency_key=key,
                created_by_id=actor.id,
                reversal_of=reversal_of,
                lines=[
                    PostingLine(account=account, amount=amount, currency=account.currency)
                    for account, amount in resolved
                ],
            )
            session.add(posting)
            session.flush()
    except IntegrityError:
        # Another transaction got there first with the same key or the same reversal.
        if key and (existing := find_posting_by_key(session, key)) is not None:
            return _replay(existing, resolved, key)
        if reversal_of is not None:
            raise Conflict(
                "Posting {number} has already been reversed.", number=reversal_of.number
            ) from None
        raise
    record(session, actor, "ledger.posted", posting, after=_posting_after(posting))
    return posting


def post(
    *,
    session: Session,
    actor: User,
    lines: Sequence[Line],
    description: str,
    reference: str | None = None,
    idempotency_key: str | None = None,
    business_date: date | None = None,
    no_overdraft: Sequence[str] = (),
    permission: str = LEDGER_POST,
) -> Posting:
    """Write one balanced posting and return it.

    ``lines`` are ``(account code, amount in fen)`` pairs, debit positive and credit negative,
    at least two, none zero, summing to zero per currency. ``idempotency_key``: posting the
    same key again returns the first posting (a different posting under a used key is a
    conflict). ``no_overdraft`` names accounts (e.g. a card wallet) whose natural balance must
    not go below zero. ``permission`` is what the actor must hold (default ``ledger.post``).
    """
    require(actor, permission)
    return _post(
        session=session,
        actor=actor,
        lines=lines,
        description=description,
        reference=reference,
        idempotency_key=idempotency_key,
        business_date=business_date,
        no_overdraft=no_overdraft,
    )


def get_posting(session: Session, posting_id: int) -> Posting:
    posting = session.get(Posting, posting_id) if 0 < posting_id < 2**63 else None
    if posting is None:
        raise NotFound("There is no posting {id}.", id=posting_id)
    return posting


def get_posting_by_number(session: Session, number: str) -> Posting:
    key = _lookup_key(number)
    posting = (
        session.execute(select(Posting).where(Posting.number == key)).scalar_one_or_none()
        if key
        else None
    )
    if posting is None:
        raise NotFound("There is no posting {id}.", id=number[:64])
    return posting


def list_postings(
    session: Session,
    *,
    account: Account | None = None,
    reference: str | None = None,
    q: str | None = None,
    since: date | None = None,
    until: date | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[Posting]:
    stmt = select(Posting).order_by(Posting.id.desc())
    if account is not None:
        stmt = stmt.where(
            Posting.id.in_(
                select(PostingLine.posting_id).where(PostingLine.account_id == account.id)
            )
        )
    if reference and not _CONTROL.search(reference):
        stmt = stmt.where(Posting.reference == reference)
    if q and not _CONTROL.search(q):
        like = f"%{q.strip()}%"
        stmt = stmt.where(
            or_(
                Posting.number.like(like),
                Posting.description.like(like),
                Posting.reference.like(like),
            )
        )
    if since:
        stmt = stmt.where(Posting.business_date >= since)
    if until:
        stmt = stmt.where(Posting.business_date <= until)
    return list(session.execute(stmt.limit(limit).offset(offset)).scalars())


def _reverse(
    *, session: Session, actor: User, posting: Posting, reason: str, reference: str
) -> Posting:
    if posting.reversal_of_id is not None:
        raise Conflict(
            "Posting {number} is itself a reversal and cannot be reversed; post again instead.",
            number=posting.number,
        )
    if posting.reversed_by is not None:
        raise Conflict(
            "Posting {number} has already been reversed by {reversal}.",
            number=posting.number,
            reversal=posting.reversed_by.number,
        )
    reason = _text(reason, field="reason", max_length=200)
    return _post(
        session=session,
        actor=actor,
        lines=[(line.account.code, -line.amount) for line in posting.lines],
        description=f"Reversal of {posting.number}: {reason}",
        reference=reference,
        reversal_of=posting,
        allow_inactive=True,
    )


def reverse(
    *,
    session: Session,
    actor: User,
    posting_id: int,
    reason: str,
    permission: str = LEDGER_POST,
) -> Posting:
    """Post the mirror image of a posting (dated today), which cancels its effect.

    A posting is reversed at most once; a reversal is not reversed. A posting that records a
    receipt is cancelled by voiding the receipt instead.
    """
    require(actor, permission)
    posting = get_posting(session, posting_id)
    if posting.receipt is not None:
        raise Conflict(
            "Posting {number} records receipt {receipt}; void the receipt instead.",
            number=posting.number,
            receipt=posting.receipt.number,
        )
    return _reverse(
        session=session,
        actor=actor,
        posting=posting,
        reason=reason,
        reference=f"reversal:{posting.number}",
    )


# --- balances -----------------------------------------------------------------------------


def balance(session: Session, account: Account | str, *, as_of: date | None = None) -> int:
    """SUM of the account's lines in fen (debit-positive), up to and including ``as_of``."""
    acc = account if isinstance(account, Account) else get_account_by_code(session, account)
    stmt = select(func.coalesce(func.sum(PostingLine.amount), 0)).where(
        PostingLine.account_id == acc.id
    )
    if as_of is not None:
        stmt = stmt.join(Posting, Posting.id == PostingLine.posting_id).where(
            Posting.business_date <= as_of
        )
    return int(session.execute(stmt).scalar_one())


def balances(
    session: Session, accounts: Sequence[Account] | None = None, *, as_of: date | None = None
) -> dict[int, int]:
    """Account id → balance (debit-positive) for many accounts in one query."""
    stmt = select(PostingLine.account_id, func.sum(PostingLine.amount)).group_by(
        PostingLine.account_id
    )
    if accounts is not None:
        ids = [a.id for a in accounts]
        if not ids:
            return {}
        stmt = stmt.where(PostingLine.account_id.in_(ids))
    if as_of is not None:
        stmt = stmt.join(Posting, Posting.id == PostingLine.posting_id).where(
            Posting.business_date <= as_of
        )
    return {account_id: int(total) for account_id, total in session.execute(stmt)}


def rolled_up_balances(session: Session, *, as_of: date | None = None) -> dict[int, int]:
    """Account id → balance including its sub-accounts (for top-level accounts)."""
    own = balances(session, as_of=as_of)
    parents: dict[int, int | None] = {
        account_id: parent_id
        for account_id, parent_id in session.execute(
            select(Account.id, Account.parent_id).where(Account.parent_id.is_not(None))
        )
    }
    total: dict[int, int] = defaultdict(int)
    for account_id, amount in own.items():
        total[parents.get(account_id) or account_id] += amount
    return dict(total)


@dataclass(slots=True)
class TrialRow:
    account: Account
    balance: int  # debit-positive

    @property
    def debit(self) -> int:
        return self.balance if self.balance > 0 else 0

    @property
    def credit(self) -> int:
        return -self.balance if self.balance < 0 else 0


@dataclass(slots=True)
class TrialTotal:
    currency: str
    debit: int = 0
    credit: int = 0


@dataclass(slots=True)
class TrialBalance:
    as_of: date | None
    rows: list[TrialRow]
    totals: list[TrialTotal]

    @property
    def balanced(self) -> bool:
        return all(t.debit == t.credit for t in self.totals)


def trial_balance(
    session: Session, *, as_of: date | None = None, rollup: bool = True
) -> TrialBalance:
    """Every account with a non-zero balance, debit or credit column; totals per currency.

    With ``rollup`` sub-accounts (card wallets, merchants) are summed into their parent.
    """
    amounts = rolled_up_balances(session, as_of=as_of) if rollup else balances(session, as_of=as_of)
    ids = [i for i, amount in amounts.items() if amount != 0]
    accounts = (
        session.execute(select(Account).where(Account.id.in_(ids)).order_by(Account.code))
        .scalars()
        .all()
        if ids
        else []
    )
    rows = [TrialRow(account=a, balance=amounts[a.id]) for a in accounts]
    totals: dict[str, TrialTotal] = {}
    for row in rows:
        total = totals.setdefault(row.account.currency, TrialTotal(row.account.currency))
        total.debit += row.debit
        total.credit += row.credit
    return TrialBalance(as_of=as_of, rows=rows, totals=[totals[c] for c in sorted(totals)])


@dataclass(slots=True)
class StatementLine:
    posting: Posting
    amount: int
    balance: int  # running, debit-positive


@dataclass(slots=True)
class Statement:
    account: Account
    since: date | None
    until: date | None
    opening: int
    lines: list[StatementLine] = field(default_factory=list)
    closing: int = 0
    truncated: bool = False


def statement(
    session: Session,
    account: Account | str,
    *,
    since: date | None = None,
    until: date | None = None,
    limit: int = 500,
) -> Statement:
    """The account's lines by business date with a running balance, opening and closing."""
    acc = account if isinstance(account, Account) else get_account_by_code(session, account)
    opening = (
        balance(session, acc, as_of=since - timedelta(days=1)) if since and since > date.min else 0
    )
    stmt = (
        select(PostingLine, Posting)
        .join(Posting, Posting.id == PostingLine.posting_id)
        .where(PostingLine.account_id == acc.id)
        .order_by(Posting.business_date, Posting.id, PostingLine.id)
    )
    if since:
        stmt = stmt.where(Posting.business_date >= since)
    if until:
        stmt = stmt.where(Posting.business_date <= until)
    rows = session.execute(stmt.limit(limit + 1)).all()
    result = Statement(account=acc, since=since, until=until, opening=opening)
    running = opening
    for line, posting in rows[:limit]:
        running += line.amount
        result.lines.append(StatementLine(posting=posting, amount=line.amount, balance=running))
    result.truncated = len(rows) > limit
    result.closing = balance(session, acc, as_of=until) if result.truncated else running
    return result


# --- receipts -----------------------------------------------------------------------------


def _normalize_items(
    items: Sequence[PaymentItem], credit_account: str | None
) -> list[tuple[str, int, str]]:
    if not isinstance(items, list | tuple) or not items:
        raise ValidationFailed("Add at least one item with an amount.", field="items")
    if len(items) > MAX_ITEMS:
        raise ValidationFailed("A receipt has at most {n} items.", field="items", n=MAX_ITEMS)
    out: list[tuple[str, int, str]] = []
    for n, item in enumerate(items, start=1):
        if not isinstance(item, list | tuple) or len(item) not in (2, 3):
            raise ValidationFailed("Item {n} is not a (label, amount) pair.", field="items", n=n)
        label = _text(item[0], field="items", max_length=128)
        amount = item[1]
        if not _is_whole(amount) or amount <= 0:
            raise ValidationFailed(
                "Item {n}: the amount must be a whole number of fen above zero.",
                field="items",
                n=n,
            )
        if amount > MAX_AMOUNT:
            raise ValidationFailed("Item {n}: the amount is too large.", field="items", n=n)
        account = item[2] if len(item) == 3 else credit_account
        if not account:
            raise ValidationFailed(
                "Item {n}: choose the account the money is for.", field="credit_account", n=n
            )
        out.append((label, amount, str(account)))
    return out


def record_payment(
    *,
    session: Session,
    actor: User,
    payer_name: str,
    items: Sequence[PaymentItem],
    method: str,
    credit_account: str | None = None,
    debit_account: str | None = None,
    payer_type: str | None = None,
    payer_id: int | None = None,
    reference: str | None = None,
    description: str | None = None,
    idempotency_key: str | None = None,
    permission: str = RECEIPTS_ISSUE,
) -> Receipt:
    """Take a payment: post it and issue exactly one numbered receipt for it.

    ``items`` are ``(label, fen)`` — credited to ``credit_account`` — or
    ``(label, fen, account)``; e.g. a card fee and a deposit in one payment:
    ``[("Card fee 工本费", 2000, "6001"), ("Deposit 押金", 5000, "2201")]``. The money is
    debited to ``debit_account``, by default the method's account (cash 1001, card and
    transfer 1002, WeChat/Alipay 1003). ``payer_type``/``payer_id`` point at the payer
    (e.g. ``("person", 42)``); ``reference`` says what was paid for (e.g. ``"card:123"``).
    Retrying with the same ``idempotency_key`` returns the first receipt.
    """
    require(actor, permission)
    payer_name = _text(payer_name, field="payer_name", max_length=128)
    if method not in {m.value for m in PaymentMethod}:
        raise ValidationFailed(
            "Choose the payment method: cash, card, transfer, wechat or alipay.", field="method"
        )
    lines_in = _normalize_items(items, credit_account)
    payer_type = _text(payer_type, field="payer_type", max_length=32, required=False) or None
    if payer_id is not None and (not _is_whole(payer_id) or not 0 <= payer_id < 2**63):
        raise ValidationFailed("The payer id is not valid.", field="payer_id")
    reference = _text(reference, field="reference", max_length=128, required=False) or None
    description = _text(description, field="description", max_length=100, required=False)
    key = _text(idempotency_key, field="idempotency_key", max_length=128, required=False) or None
    debit = debit_account or DEFAULT_DEBIT[method]
    total = sum(amount for _, amount, _ in lines_in)
    if total > MAX_AMOUNT:
        raise ValidationFailed("The total is too large.", field="items")
    lines: list[Line] = [(debit, total)] + [(acc, -amount) for _, amount, acc in lines_in]
    if key:
        existing = find_posting_by_key(session, key)
        if existing is not None:
            resolved = _resolve_lines(session, lines, allow_inactive=True)
            _replay(existing, resolved, key)
            if existing.receipt is None:
                raise Conflict(
                    "The idempotency key “{key}” was already used for a different posting ({number}).",
                    field="idempotency_key",
                    key=key,
                    number=existing.number,
                )
            return existing.receipt
    number = next_number(session, "receipt", RECEIPT_PREFIX)
    posting = _post(
        session=session,
        actor=actor,
        lines=lines,
        description=f"Receipt {number}: {payer_name}"
        + (f" ({description})" if description else ""),
        reference=f"receipt:{number}",
        idempotency_key=key,
    )
    if posting.reference != f"receipt:{number}":
        raise Conflict(
            "Another request is recording the same payment; look it up before trying again.",
            field="idempotency_key",
        )
    receipt = Receipt(
        number=number,
        issued_at=posting.posted_at,
        payer_name=payer_name,
        payer_type=payer_type,
        payer_id=payer_id,
        amount=total,
        currency=posting.lines[0].currency,
        items=[
            {"item": label, "amount": amount, "account": acc} for label, amount, acc in lines_in
        ],
        method=method,
        reference=reference,
        posting=posting,
        issued_by_id=actor.id,
    )
    session.add(receipt)
    session.flush()
    record(session, actor, "receipt.issued", receipt)
    return receipt


def find_receipt(session: Session, number: str) -> Receipt | None:
    key = _lookup_key(number)
    if key is None:
        return None
    return session.execute(select(Receipt).where(Receipt.number == key)).scalar_one_or_none()


def get_receipt(session: Session, number: str) -> Receipt:
    receipt = find_receipt(session, number)
    if receipt is None:
        raise NotFound("There is no receipt {number}.", number=number[:64])
    return receipt


def list_receipts(
    session: Session,
    *,
    q: str | None = None,
    payer_type: str | None = None,
    payer_id: int | None = None,
    reference: str | None = None,
    voided: bool | None = None,
    since: date | None = None,
    until: date | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[Receipt]:
    stmt = select(Receipt).order_by(Receipt.id.desc())
    if q and not _CONTROL.search(q):
        like = f"%{q.strip()}%"
        stmt = stmt.where(or_(Receipt.number.like(like), Receipt.payer_name.like(like)))
    if payer_type and not _CONTROL.search(payer_type):
        stmt = stmt.where(Receipt.payer_type == payer_type)
    if payer_id is not None:
        stmt = stmt.where(Receipt.payer_id == payer_id)
    if reference and not _CONTROL.search(reference):
        stmt = stmt.where(Receipt.reference == reference)
    if voided is not None:
        stmt = stmt.where(Receipt.voided_at.is_not(None) if voided else Receipt.voided_at.is_(None))
    if since or until:
        stmt = stmt.join(Posting, Posting.id == Receipt.posting_id)
        if since:
            stmt = stmt.where(Posting.business_date >= since)
        if until:
            stmt = stmt.where(Posting.business_date <= until)
    return list(session.execute(stmt.limit(limit).offset(offset)).scalars())


def void_receipt(*, session: Session, actor: User, number: str, reason: str) -> Receipt:
    """Cancel a receipt: post the reversal of its posting and mark it void. The receipt and
    its number stay; the number is never issued again."""
    require(actor, RECEIPTS_VOID)
    receipt = get_receipt(session, number)
    if receipt.voided_at is not None:
        raise Conflict("Receipt {number} is already void.", number=receipt.number)
    reason = _text(reason, field="reason", max_length=200)
    before = snapshot(receipt)
    reversal = _reverse(
        session=session,
        actor=actor,
        posting=receipt.posting,
        reason=reason,
        reference=f"void:{receipt.number}",
    )
    receipt.voided_at = reversal.posted_at
    receipt.void_reason = reason
    receipt.voided_by_id = actor.id
    receipt.void_posting = reversal
    session.flush()
    record(session, actor, "receipt.voided", receipt, before=before)
    return receipt


# --- batches ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NewPosting:
    """One posting of a batch for :func:`post_many` (same rules as :func:`post`)."""

    lines: Sequence[Line]
    description: str
    reference: str | None = None
    idempotency_key: str | None = None
    no_overdraft: Sequence[str] = ()


# --- derived balances, remembered between batches -----------------------------------------
#
# A balance is the SUM of the account's lines. A wallet paying every day has thousands of
# them, and every payment must read its balance under the posting lock. So the process
# remembers, per account, a *mark*: the SUM of its lines up to a line id. The balance is
# then the mark plus the lines after it, a short index range (ix_..._account_id_id). Lines
# are never changed or deleted, and every line is written under the posting counter's lock
# (``post`` and ``post_many``), so ids grow in commit order and no line can appear later
# below a mark. A mark is only remembered once the transaction that read it has committed;
# any rollback (a savepoint's too) drops the marks it read.

# account id → (line id, SUM of its lines ≤ that id, when it was remembered)
_MARKS: dict[int, tuple[int, int, float]] = {}
_MARKS_MAX = 200_000
# A mark is trusted this long (seconds). The one way a line could appear below a mark is two
# postings under different years' counters at once (PostgreSQL, at New Year's midnight):
# any such mark is gone within this time.
MARK_LIFETIME = 300.0
_PENDING_MARKS = "cardops.ledger.pending_marks"


def current_balances(session: Session, account_ids: Sequence[int]) -> dict[int, int]:
    """Account id → balance (debit-positive) now, for the accounts given: each from its
    remembered mark plus the lines after it, in one query. Call it under the posting lock
    when the answer decides a posting (``post_many`` does)."""
    oldest = time.monotonic() - MARK_LIFETIME
    marks: dict[int, tuple[int, int]] = {}
    for aid in account_ids:
        mark = _MARKS.get(aid)
        marks[aid] = (mark[0], mark[1]) if mark is not None and mark[2] > oldest else (0, 0)
    result = {aid: mark[1] for aid, mark in marks.items()}
    if not marks:
        return result
    # The marks as a VALUES list joined to the lines, in plain SQL with the ids written in as
    # integers (int(): nothing else can get in), run as driver SQL: an OR of 25 SQLAlchemy
    # terms cost more to build than the SUM it saves, and a text() per batch would fill the
    # compiled-statement cache with one-off entries.
    values = ", ".join(f"({int(aid)}, {int(line_id)})" for aid, (line_id, _) in marks.items())
    query = (
        f"WITH marks (account_id, after_id) AS (VALUES {values}) "
        "SELECT l.account_id, SUM(l.amount), MAX(l.id) FROM marks "
        "JOIN ledger_posting_lines AS l "
        "ON l.account_id = marks.account_id AND l.id > marks.after_id "
        "GROUP BY l.account_id"
    )
    pending: dict[int, tuple[int, int, float]] = session.info.setdefault(_PENDING_MARKS, {})
    now = time.monotonic()
    for aid, total, last in session.connection().exec_driver_sql(query):
        result[aid] += int(total)
        pending[aid] = (int(last), result[aid], now)
    return result


def forget_balance_marks() -> None:
    """Drop every remembered mark (balances are then read in full once more)."""
    _MARKS.clear()


@event.listens_for(Session, "after_commit")
def _keep_marks(session: Session) -> None:
    pending = session.info.pop(_PENDING_MARKS, None)
    if pending:
        if len(_MARKS) > _MARKS_MAX:
            _MARKS.clear()
        _MARKS.update(pending)


@event.listens_for(Session, "after_soft_rollback")
def _drop_marks(session: Session, _previous: Any) -> None:
    session.info.pop(_PENDING_MARKS, None)


@event.listens_for(Session, "after_transaction_end")
def _end_marks(session: Session, transaction: Any) -> None:
    if transaction.parent is None:  # the outermost ended without a commit (e.g. a close)
        session.info.pop(_PENDING_MARKS, None)


@dataclass(frozen=True, slots=True)
class AccountRef:
    """The columns of an account that :func:`post_many` needs, read without loading the ORM
    object (the gateway's hot path reads its wallets this way). Same meaning as on
    :class:`Account`."""

    id: int
    code: str
    type: str
    currency: str
    is_active: bool

    def natural(self, balance: int) -> int:
        return -balance if self.type in CREDIT_NORMAL else balance


@dataclass(slots=True)
class BatchOutcome:
    """What became of one :class:`NewPosting`: posted (``number``/``id``), or refused with
    ``refused`` = ``"overdraft"`` (nothing written) or ``"duplicate"`` (its key was used
    before; ``number`` names the earlier posting). ``balances`` holds the debit-positive
    balance, after this posting, of each of its ``no_overdraft`` accounts."""

    number: str | None = None
    id: int | None = None
    refused: str | None = None
    balances: dict[str, int] = field(default_factory=dict)


# post_many's statements, built once (building them per batch cost more than running them)
_USED_KEYS = select(Posting.idempotency_key, Posting.id, Posting.number).where(
    in_values(Posting.idempotency_key, "keys")
)
_IDS_BY_NUMBER = select(Posting.number, Posting.id).where(in_values(Posting.number, "numbers"))
_POSTINGS = BulkInsert(
    Posting.__table__,
    (
        "number",
        "posted_at",
        "business_date",
        "description",
        "reference",
        "idempotency_key",
        "created_by_id",
    ),
)
_LINES = BulkInsert(PostingLine.__table__, ("posting_id", "account_id", "amount", "currency"))


def post_many(
    *,
    session: Session,
    actor: User,
    postings: Sequence[NewPosting],
    permission: str = LEDGER_POST,
    business_date: date | None = None,
    accounts: Mapping[str, Account | AccountRef] | None = None,
) -> list[BatchOutcome]:
    """Write many balanced postings at once: one counter lock for their numbers, one balance
    query for the ``no_overdraft`` accounts, bulk inserts, and one audit entry that lists
    every posting it covers. A posting that would overdraw one of its ``no_overdraft``
    accounts (given the postings before it in the batch) is refused and the others go on;
    a posting whose idempotency key was used before is refused as a duplicate. Malformed
    postings raise ``ValidationFailed`` for the whole batch. Balances stay derived: they are
    ``SUM`` of lines, read after the lock that serialises postings (as :func:`post` does).
    ``accounts``: accounts the caller has already loaded in this session, by code (they are
    not read again)."""
    require(actor, permission)
    if not postings:
        return []
    codes = {
        line[0].strip()
        for item in postings
        for line in (item.lines if isinstance(item.lines, list | tuple) else ())
        if isinstance(line, list | tuple) and len(line) == 2 and isinstance(line[0], str)
    }
    known: dict[str, Account | AccountRef] = {
        code: account
        for code, account in (accounts or {}).items()
        if code in codes and account.code == code
    }
    ordered = sorted(codes - known.keys())
    for start in range(0, len(ordered), 500):
        known.update(
            (a.code, a)
            for a in session.execute(
                select(Account).where(Account.code.in_(ordered[start : start + 500]))
            ).scalars()
        )
    prepared: list[tuple[NewPosting, list[tuple[Account, int]], str, str | None, str | None]] = []
    for item in postings:
        description = _text(item.description, field="description", max_length=255)
        ref = _text(item.reference, field="reference", max_length=128, required=False)
        given = _text(item.idempotency_key, field="idempotency_key", max_length=128, required=False)
        # an AccountRef has every attribute read below (id, code, currency, is_active,
        # natural); the cast only spares _resolve_lines a second signature
        resolved = _resolve_lines(session, item.lines, known=cast("dict[str, Account]", known))
        _check_balanced(resolved)
        prepared.append((item, resolved, description, ref or None, given or None))
    keys = [key for *_, key in prepared if key]
    if len(set(keys)) != len(keys):
        raise ValidationFailed("An idempotency key appears twice in the batch.", field="lines")
    now = utcnow()
    year = local(now).year
    counter_name = f"posting:{year}"
    # The counter row lock serialises postings (SQLite: the transaction's write lock), so
    # the duplicate and balance reads below see every posting committed before this batch.
    session.flush()  # and the session's own pending changes
    advance(session, counter_name, 0)
    used: dict[str, tuple[int, str]] = {}
    if keys:  # one parameter however many keys (in_values): no chunks needed
        used = {
            str(k): (pid, number)
            for k, pid, number in session.connection().execute(_USED_KEYS, {"keys": keys})
        }
    guarded = {
        account.id: account
        for item, resolved, *_ in prepared
        for account, _ in resolved
        if account.code in item.no_overdraft
    }
    running = current_balances(session, list(guarded)) if guarded else {}
    outcomes: list[BatchOutcome] = []
    accepted: list[tuple[int, list[tuple[Account, int]], str, str | None, str | None]] = []
    for index, (item, resolved, description, reference, key) in enumerate(prepared):
        if key and key in used:
            pid, used_number = used[key]
            outcomes.append(BatchOutcome(number=used_number, id=pid, refused="duplicate"))
            continue
        # every line on a guarded account moves its running balance; only this posting's
        # own no_overdraft accounts must stay at or above zero
        deltas: dict[int, int] = defaultdict(int)
        for account, amount in resolved:
            if account.id in guarded:
                deltas[account.id] += amount
        after = {aid: running[aid] + delta for aid, delta in deltas.items()}
        mine = [a for a in after if guarded[a].code in item.no_overdraft]
        outcome = BatchOutcome(balances={guarded[a].code: after[a] for a in mine})
        if any(guarded[a].natural(after[a]) < 0 for a in mine):
            outcome.refused = "overdraft"
            outcome.balances = {guarded[a].code: running[a] for a in mine}
            outcomes.append(outcome)
            continue
        running.update(after)
        outcomes.append(outcome)
        accepted.append((index, resolved, description, reference, key))
    if not accepted:
        return outcomes
    first = advance(session, counter_name, len(accepted)) - len(accepted) + 1
    day = business_date or local(now).date()
    connection = session.connection()
    posted_at = _POSTINGS.processor(connection, "posted_at")(now)
    business_day = _POSTINGS.processor(connection, "business_date")(day)
    numbers = [f"{POSTING_PREFIX}{year}-{first + n:06d}" for n in range(len(accepted))]
    # the driver's executemany (no ORM objects, no RETURNING: with it SQLite falls back to
    # one statement per row); the new ids are read back by their unique numbers
    _POSTINGS.run(
        connection,
        [
            (number, posted_at, business_day, description, reference, key, actor.id)
            for number, (_, _, description, reference, key) in zip(numbers, accepted, strict=True)
        ],
    )
    by_number: dict[str, int] = {
        number: posting_id
        for number, posting_id in connection.execute(_IDS_BY_NUMBER, {"numbers": numbers})
    }
    ids = [by_number[number] for number in numbers]
    lines: list[tuple[int, int, int, str]] = []
    covered = []
    for (index, resolved, _, reference, key), number, posting_id in zip(
        accepted, numbers, ids, strict=True
    ):
        outcomes[index].number, outcomes[index].id = number, posting_id
        lines += [
            (posting_id, account.id, amount, account.currency) for account, amount in resolved
        ]
        covered.append(
            {
                "id": posting_id,
                "number": number,
                "idempotency_key": key,
                "reference": reference,
                "lines": [[account.code, amount, account.currency] for account, amount in resolved],
            }
        )
    _LINES.run(connection, lines)
    record(
        session,
        actor,
        "ledger.posted_batch",
        ("ledger_postings", f"{covered[0]['number']}..{covered[-1]['number']}"),
        after={"count": len(covered), "lines": "[account, amount, currency]", "postings": covered},
    )
    return outcomes
