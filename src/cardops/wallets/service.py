"""Card wallets (储值): stored value on a card, kept in the ledger. The only code that moves it.

A wallet is the ledger sub-account ``wallet:card:<card id>`` under 2202 "Card wallet float"
(a liability: the money belongs to the holder). Its balance is derived from the ledger, never
stored. Top-ups are taken at the desk with a receipt (:func:`top_up`); payments at community
merchants arrive through the acquiring gateway as on-us transactions and call :func:`debit`,
which answers with a decline reason instead of raising for business declines, is idempotent
on the caller's key and never lets a wallet go below zero. :func:`reverse_debit` undoes one.
When a lost card is reissued, :func:`transfer_wallet` moves the balance to the new card.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from cardops.audit.service import record, snapshot
from cardops.auth.models import User
from cardops.auth.service import require, system_user
from cardops.cards.models import Card, CardEvent, CardState
from cardops.core.db import in_values
from cardops.core.errors import Conflict, NotFound, ValidationFailed
from cardops.core.money import format_minor
from cardops.ledger import service as ledger
from cardops.ledger.chart import MERCHANT_PAYABLES, WALLET_FLOAT
from cardops.ledger.models import Account, PaymentMethod, Posting, Receipt
from cardops.wallets.permissions import (
    WALLETS_DEBIT,
    WALLETS_MANAGE,
    WALLETS_TOPUP,
    WALLETS_VIEW,
)

DEFAULT_MAX_TOPUP = 500_000  # fen: 5 000 yuan per top-up unless the property's policy says
MAX_DEBIT = 10**10  # fen on one payment; anything above is a malformed request
DEBIT_KEY_PREFIX = "wallet-debit:"
REVERSAL_KEY_PREFIX = "wallet-reversal:"
TOPUP_KEY_PREFIX = "wallet-topup:"

# Reasons of :class:`WalletDebitResult` (stable codes the gateway maps to ISO 8583 later).
OK = "ok"
UNKNOWN_CARD = "unknown_card"
CARD_NOT_ACTIVE = "card_not_active"
WALLET_DISABLED = "wallet_disabled"
INSUFFICIENT_FUNDS = "insufficient_funds"
DUPLICATE = "duplicate"
NOT_FOUND = "not_found"  # reverse_debit: no debit under that key


def account_code(card: Card | CardRef) -> str:
    return f"wallet:card:{card.id}"


@dataclass(slots=True)
class WalletDebitResult:
    """The answer to a debit or a reversal. ``approved`` with reason ``duplicate`` means the
    same request was processed before and is not charged again."""

    approved: bool
    reason: str
    balance_after: int | None  # fen; None when the card is unknown
    posting: str | None = None  # ledger posting number of the debit (or reversal)
    idempotency_key: str = ""


# --- lookups ------------------------------------------------------------------------------


def find_card(session: Session, card_number: str) -> Card | None:
    number = (card_number or "").strip() if isinstance(card_number, str) else ""
    if not number or len(number) > 32:
        return None
    return session.execute(select(Card).where(Card.number == number)).scalar_one_or_none()


def get_card(session: Session, card_number: str) -> Card:
    card = find_card(session, card_number)
    if card is None:
        raise NotFound(
            "There is no card with the number {number}.",
            field="card_number",
            number=str(card_number)[:32],
        )
    return card


def _card(session: Session, card: Card | str) -> Card:
    return card if isinstance(card, Card) else get_card(session, card)


def find_account(session: Session, card: Card | CardRef) -> Account | None:
    return ledger.find_account(session, account_code(card))


def balance(session: Session, card: Card | CardRef) -> int:
    """The money on the card's wallet in fen (0 when it has none)."""
    account = find_account(session, card)
    if account is None:
        return 0
    return account.natural(ledger.balance(session, account))


def max_topup(session: Session, card: Card) -> int:
    """The largest single top-up: the property's ``card_policy["wallet_max_topup"]`` (fen)."""
    from cardops.access.models import Property

    prop = session.get(Property, card.property_id) if card.property_id else None
    value = (prop.card_policy or {}).get("wallet_max_topup") if prop else None
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return DEFAULT_MAX_TOPUP


@dataclass(slots=True)
class WalletInfo:
    card: Card
    enabled: bool
    balance: int
    account: str | None
    max_topup: int


def wallet(*, session: Session, actor: User, card_number: str) -> WalletInfo:
    require(actor, WALLETS_VIEW)
    card = get_card(session, card_number)
    account = find_account(session, card)
    return WalletInfo(
        card=card,
        enabled=card.wallet_enabled,
        balance=balance(session, card),
        account=account.code if account else None,
        max_topup=max_topup(session, card),
    )


@dataclass(slots=True)
class StatementEntry:
    at: datetime
    business_date: date
    posting: str
    description: str
    reference: str | None
    amount: int  # fen, + money in, − money out
    balance: int  # fen, after this entry
    receipt: str | None = None


@dataclass(slots=True)
class WalletStatement:
    card: Card
    opening: int
    closing: int
    entries: list[StatementEntry] = field(default_factory=list)
    truncated: bool = False


def statement(
    *,
    session: Session,
    actor: User,
    card_number: str,
    since: date | None = None,
    until: date | None = None,
    limit: int = 500,
) -> WalletStatement:
    """Top-ups, payments, reversals and transfers with the running balance."""
    require(actor, WALLETS_VIEW)
    card = get_card(session, card_number)
    account = find_account(session, card)
    if account is None:
        return WalletStatement(card=card, opening=0, closing=0)
    raw = ledger.statement(
        session, account, since=since, until=until, limit=max(1, min(limit, 5000))
    )
    posting_ids = [line.posting.id for line in raw.lines]
    receipts: dict[int, str] = {}
    if posting_ids:
        receipts = {
            pid: number
            for pid, number in session.execute(
                select(Receipt.posting_id, Receipt.number).where(
                    Receipt.posting_id.in_(posting_ids)
                )
            )
        }
    result = WalletStatement(
        card=card,
        opening=account.natural(raw.opening),
        closing=account.natural(raw.closing),
        truncated=raw.truncated,
    )
    for line in raw.lines:
        result.entries.append(
            StatementEntry(
                at=line.posting.posted_at,
                business_date=line.posting.business_date,
                posting=line.posting.number,
                description=line.posting.description,
                reference=line.posting.reference,
                amount=account.natural(line.amount),
                balance=account.natural(line.balance),
                receipt=receipts.get(line.posting.id),
            )
        )
    return result


# --- changes ------------------------------------------------------------------------------


def _event(session: Session, card: Card, actor: User, kind: str, **data: Any) -> None:
    session.add(CardEvent(card_id=card.id, kind=kind, actor_id=actor.id, data=data))


def _open_account(session: Session, actor: User, card: Card, permission: str) -> Account:
    return ledger.ensure_account(
        session=session,
        actor=actor,
        code=account_code(card),
        name_en=f"Wallet of card {card.number}",
        name_zh=f"卡 {card.number} 储值",
        type="liability",
        parent_code=WALLET_FLOAT,
        owner_type="card",
        owner_id=card.id,
        permission=permission,
    )


def enable_wallet(*, session: Session, actor: User, card_number: str) -> Card:
    """Let an active card carry stored value; opens its ledger sub-account."""
    require(actor, WALLETS_MANAGE)
    card = get_card(session, card_number)
    if card.state != CardState.ACTIVE.value:
        raise Conflict(
            "Card {number} is {state}; only an active card can carry a wallet.",
            field="card_number",
            number=card.number,
            state=card.state,
        )
    if card.wallet_enabled:
        return card
    before = snapshot(card)
    card.wallet_enabled = True
    _open_account(session, actor, card, WALLETS_MANAGE)
    _event(session, card, actor, "wallet_enabled")
    session.flush()
    record(session, actor, "wallet.enabled", card, before=before)
    return card


def _positive_amount(amount: Any, *, limit: int, fld: str = "amount") -> int:
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise ValidationFailed("The amount must be a whole number of fen.", field=fld)
    if amount <= 0:
        raise ValidationFailed(
            "The amount must be above zero; {amount} yuan cannot be topped up.",
            field=fld,
            amount=format_minor(amount),
        )
    if amount > limit:
        raise ValidationFailed(
            "At most {limit} yuan can be topped up at once.", field=fld, limit=format_minor(limit)
        )
    return amount


def top_up(
    *,
    session: Session,
    actor: User,
    card_number: str,
    amount: int,
    method: str = PaymentMethod.CASH.value,
    payer_name: str | None = None,
    idempotency_key: str | None = None,
) -> Receipt:
    """Put money on the card at the desk: a numbered receipt, cash/bank debited, the card's
    wallet credited. Zero, negative and too-large amounts, lost or otherwise inactive cards
    and cards without a wallet are refused; nothing is saved then."""
    require(actor, WALLETS_TOPUP)
    card = get_card(session, card_number)
    clean = _positive_amount(amount, limit=max_topup(session, card))
    if method not in {m.value for m in PaymentMethod}:
        raise ValidationFailed(
            "Choose the payment method: cash, card, transfer, wechat or alipay.", field="method"
        )
    if card.state != CardState.ACTIVE.value:
        raise Conflict(
            "Card {number} is {state}; only an active card can be topped up.",
            field="card_number",
            number=card.number,
            state=card.state,
        )
    if not card.wallet_enabled:
        raise Conflict(
            "Card {number} has no wallet; enable the wallet first.",
            field="card_number",
            number=card.number,
        )
    account = _open_account(session, actor, card, WALLETS_TOPUP)
    name = payer_name
    if not name and card.person_id:
        from cardops.parties.models import Person

        person = session.get(Person, card.person_id)
        name = person.name if person else None
    receipt = ledger.record_payment(
        session=session,
        actor=actor,
        payer_name=name or f"Card {card.number}",
        items=[(f"储值卡充值 Wallet top-up {card.number}", clean, account.code)],
        method=method,
        payer_type="person" if card.person_id else None,
        payer_id=card.person_id,
        reference=f"card:{card.number}",
        description="wallet top-up",
        idempotency_key=TOPUP_KEY_PREFIX + idempotency_key if idempotency_key else None,
        permission=WALLETS_TOPUP,
    )
    _event(session, card, actor, "wallet_topped_up", amount=clean, receipt=receipt.number)
    session.flush()
    return receipt


def _debit_result(
    session: Session, posting: Posting, card: Card | None, key: str, *, reason: str
) -> WalletDebitResult:
    return WalletDebitResult(
        approved=True,
        reason=reason,
        balance_after=balance(session, card) if card else None,
        posting=posting.number,
        idempotency_key=key,
    )


def _check_merchant_account(session: Session, code: str, account: Account | None = None) -> None:
    if account is None:
        account = ledger.find_account(session, code) if isinstance(code, str) else None
    parent = account.parent.code if account is not None and account.parent else None
    if account is None or MERCHANT_PAYABLES not in (account.code, parent):
        raise ValidationFailed(
            "Payments are credited to merchant payables ({account}) or one of its sub-accounts.",
            field="merchant_account",
            account=MERCHANT_PAYABLES,
        )


def debit(
    session: Session,
    *,
    card_number: str,
    amount: int,
    reference: str,
    idempotency_key: str,
    actor: User | None = None,
    merchant_account: str = MERCHANT_PAYABLES,
) -> WalletDebitResult:
    """Pay ``amount`` fen from the card's wallet to ``merchant_account`` (on-us payment).

    Business declines are answers, not exceptions: ``unknown_card``, ``card_not_active``
    (lost, cancelled, …), ``wallet_disabled``, ``insufficient_funds``. Repeating a request
    with the same ``idempotency_key`` charges nothing again and answers ``duplicate``
    (approved when it is the same payment; declined when the key was used for a different
    card or amount). Malformed input (amount not above zero, no key) raises
    ``ValidationFailed``. ``actor`` defaults to the system user (the gateway).
    """
    who = actor if actor is not None else system_user(session)
    require(who, WALLETS_DEBIT)
    if not isinstance(amount, int) or isinstance(amount, bool) or not 0 < amount <= MAX_DEBIT:
        raise ValidationFailed(
            "The amount must be a whole number of fen above zero.", field="amount"
        )
    key = (idempotency_key or "").strip() if isinstance(idempotency_key, str) else ""
    if not key or len(key) > 100:
        raise ValidationFailed(
            "Give an idempotency key of 1 to 100 characters.", field="idempotency_key"
        )
    ref = (reference or "").strip()[:100] if isinstance(reference, str) else ""
    _check_merchant_account(session, merchant_account)
    ledger_key = DEBIT_KEY_PREFIX + key
    card = find_card(session, card_number)
    existing = ledger.find_posting_by_key(session, ledger_key)
    if existing is not None:
        same = card is not None and any(
            line.account.code == account_code(card) and line.amount == amount
            for line in existing.lines
        )
        if same:
            return _debit_result(session, existing, card, key, reason=DUPLICATE)
        return WalletDebitResult(
            approved=False,
            reason=DUPLICATE,
            balance_after=balance(session, card) if card else None,
            posting=existing.number,
            idempotency_key=key,
        )
    if card is None:
        return WalletDebitResult(False, UNKNOWN_CARD, None, idempotency_key=key)
    if card.state != CardState.ACTIVE.value:
        return WalletDebitResult(
            False, CARD_NOT_ACTIVE, balance(session, card), idempotency_key=key
        )
    account = find_account(session, card)
    if not card.wallet_enabled or account is None or not account.is_active:
        return WalletDebitResult(
            False, WALLET_DISABLED, balance(session, card), idempotency_key=key
        )
    available = account.natural(ledger.balance(session, account))
    if available < amount:
        return WalletDebitResult(False, INSUFFICIENT_FUNDS, available, idempotency_key=key)
    try:
        posting = ledger.post(
            session=session,
            actor=who,
            lines=[(account.code, amount), (merchant_account, -amount)],
            description=f"Wallet payment card {card.number}" + (f": {ref}" if ref else ""),
            reference=ref or f"wallet:{card.number}",
            idempotency_key=ledger_key,
            no_overdraft=[account.code],
            permission=WALLETS_DEBIT,
        )
    except ValidationFailed as exc:
        if exc.message.startswith("Not enough money"):
            # A concurrent payment took the money between the check and the posting.
            return WalletDebitResult(
                False, INSUFFICIENT_FUNDS, balance(session, card), idempotency_key=key
            )
        raise
    return _debit_result(session, posting, card, key, reason=OK)


@dataclass(frozen=True, slots=True)
class CardRef:
    """The columns of a card that :func:`debit_many` reads (a caller's prefetch may hand them
    over instead of an ORM ``Card``)."""

    id: int
    number: str
    state: str
    wallet_enabled: bool


@dataclass(frozen=True, slots=True)
class DebitRequest:
    """One payment of a :func:`debit_many` batch (the arguments of :func:`debit`)."""

    card_number: str
    amount: int
    reference: str
    idempotency_key: str
    merchant_account: str = MERCHANT_PAYABLES
    # the card, when the caller already read it in this session (the gateway's prefetch):
    # saves reading it again; it must be the card of ``card_number``
    card: Card | CardRef | None = field(default=None, compare=False, repr=False)


def _card_refs(session: Session, requests: list[DebitRequest]) -> dict[str, Card | CardRef]:
    """The batch's cards by number: those the caller handed over, the others in one query."""
    numbers = {
        req.card_number.strip()
        for req in requests
        if isinstance(req.card_number, str) and 0 < len(req.card_number.strip()) <= 32
    }
    cards: dict[str, Card | CardRef] = {
        req.card.number: req.card
        for req in requests
        if req.card is not None
        and isinstance(req.card_number, str)
        and req.card.number == req.card_number.strip()
    }
    missing = numbers - cards.keys()
    if missing:
        rows = session.execute(
            select(Card.id, Card.number, Card.state, Card.wallet_enabled).where(
                Card.number.in_(missing)
            )
        )
        cards.update((row.number, CardRef(*row)) for row in rows)
    return cards


_PARENT = aliased(Account)
# built once: building the statement per batch cost more than running it
_ACCOUNT_REFS = (
    select(
        Account.id,
        Account.code,
        Account.type,
        Account.currency,
        Account.is_active,
        _PARENT.code,
    )
    .outerjoin(_PARENT, _PARENT.id == Account.parent_id)
    .where(in_values(Account.code, "codes"))
)


def _account_refs(
    session: Session, codes: set[str]
) -> tuple[dict[str, ledger.AccountRef], dict[str, str | None]]:
    """The accounts under ``codes`` as :class:`ledger.AccountRef` (one query, no ORM
    objects), and each one's parent account code."""
    rows = session.connection().execute(_ACCOUNT_REFS, {"codes": list(codes)})
    refs: dict[str, ledger.AccountRef] = {}
    parents: dict[str, str | None] = {}
    for account_id, code, kind, currency, active, parent_code in rows:
        refs[code] = ledger.AccountRef(account_id, code, kind, currency, active)
        parents[code] = parent_code
    return refs, parents


def debit_many(
    session: Session, requests: list[DebitRequest], *, actor: User | None = None
) -> list[WalletDebitResult]:
    """:func:`debit` for many payments at once (the gateway's group commit): the same answers
    in the same order, as if each had been debited one after the other, but with two queries
    for the whole batch (cards unless handed over, accounts) and the postings written by
    :func:`ledger.post_many` (one posting per payment, one counter lock, one audit entry
    listing them). Balances are checked under the posting lock against the ledger plus the
    batch's earlier payments, so no wallet goes below zero even when other processes pay
    from it at the same time. A payment that cannot go through the batch (unknown or inactive
    card, disabled wallet, a key used before or twice) is answered by :func:`debit` itself,
    after the batch. Malformed input raises ``ValidationFailed`` for the whole batch."""
    who = actor if actor is not None else system_user(session)
    require(who, WALLETS_DEBIT)
    if not requests:
        return []
    keys: list[str] = []
    for req in requests:
        amount = req.amount
        if not isinstance(amount, int) or isinstance(amount, bool) or not 0 < amount <= MAX_DEBIT:
            raise ValidationFailed(
                "The amount must be a whole number of fen above zero.", field="amount"
            )
        key = (req.idempotency_key or "").strip() if isinstance(req.idempotency_key, str) else ""
        if not key or len(key) > 100:
            raise ValidationFailed(
                "Give an idempotency key of 1 to 100 characters.", field="idempotency_key"
            )
        keys.append(key)
    cards = _card_refs(session, requests)
    merchant_codes = {req.merchant_account for req in requests}
    codes = {account_code(c) for c in cards.values()}
    codes.update(code for code in merchant_codes if isinstance(code, str))
    accounts, parents = _account_refs(session, codes)
    for code in merchant_codes:
        found = isinstance(code, str) and code in accounts
        if not found or MERCHANT_PAYABLES not in (code, parents.get(code)):
            raise ValidationFailed(
                "Payments are credited to merchant payables ({account}) or one of its sub-accounts.",
                field="merchant_account",
                account=MERCHANT_PAYABLES,
            )
    results: list[WalletDebitResult | None] = [None] * len(requests)
    batch: list[ledger.NewPosting] = []
    slots: list[tuple[int, ledger.AccountRef]] = []
    later: list[int] = []  # answered by debit() after the batch, one by one
    seen: set[str] = set()
    for i, (req, key) in enumerate(zip(requests, keys, strict=True)):
        ledger_key = DEBIT_KEY_PREFIX + key
        card = cards.get(req.card_number.strip()) if isinstance(req.card_number, str) else None
        account = accounts.get(account_code(card)) if card is not None else None
        if (
            ledger_key in seen
            or card is None
            or card.state != CardState.ACTIVE.value
            or not card.wallet_enabled
            or account is None
            or not account.is_active
        ):
            later.append(i)  # rare: debit() gives the decline (or the duplicate) its answer
            continue
        seen.add(ledger_key)
        ref = (req.reference or "").strip()[:100] if isinstance(req.reference, str) else ""
        batch.append(
            ledger.NewPosting(
                lines=[(account.code, req.amount), (req.merchant_account, -req.amount)],
                description=f"Wallet payment card {card.number}" + (f": {ref}" if ref else ""),
                reference=ref or f"wallet:{card.number}",
                idempotency_key=ledger_key,
                no_overdraft=[account.code],
            )
        )
        slots.append((i, account))
    outcomes = ledger.post_many(
        session=session, actor=who, postings=batch, permission=WALLETS_DEBIT, accounts=accounts
    )
    for (i, account), outcome in zip(slots, outcomes, strict=True):
        key = keys[i]
        if outcome.refused == "duplicate":  # paid under this key before (or meanwhile)
            later.append(i)
            continue
        after = account.natural(outcome.balances[account.code])
        if outcome.refused == "overdraft":
            results[i] = WalletDebitResult(False, INSUFFICIENT_FUNDS, after, idempotency_key=key)
        else:
            results[i] = WalletDebitResult(True, OK, after, outcome.number, idempotency_key=key)
    for i in sorted(later):
        req = requests[i]
        results[i] = debit(
            session,
            card_number=req.card_number,
            amount=req.amount,
            reference=req.reference,
            idempotency_key=keys[i],
            actor=who,
            merchant_account=req.merchant_account,
        )
    return [r for r in results if r is not None]


def reverse_debit(
    session: Session,
    *,
    idempotency_key: str,
    reason: str = "reversal",
    actor: User | None = None,
    card_number: str | None = None,
) -> WalletDebitResult:
    """Give back the money of the debit made under ``idempotency_key`` (a reversal or void
    from the gateway). Reversing twice answers ``duplicate``; an unknown key ``not_found``.
    The money goes back even to a card that has been reported lost since."""
    who = actor if actor is not None else system_user(session)
    require(who, WALLETS_DEBIT)
    key = (idempotency_key or "").strip() if isinstance(idempotency_key, str) else ""
    if not key or len(key) > 100:
        raise ValidationFailed(
            "Give an idempotency key of 1 to 100 characters.", field="idempotency_key"
        )
    posting = ledger.find_posting_by_key(session, DEBIT_KEY_PREFIX + key)
    if posting is None:
        return WalletDebitResult(False, NOT_FOUND, None, idempotency_key=key)
    wallet_line = next(
        (line for line in posting.lines if line.account.code.startswith("wallet:card:")), None
    )
    card = (
        session.get(Card, wallet_line.account.owner_id)
        if wallet_line is not None and wallet_line.account.owner_id
        else None
    )
    if card_number is not None and (card is None or card.number != card_number.strip()):
        return WalletDebitResult(False, NOT_FOUND, None, idempotency_key=key)
    if posting.reversed_by is not None:
        return _debit_result(session, posting.reversed_by, card, key, reason=DUPLICATE)
    text = " ".join(str(reason or "").split())[:200] or "reversal"
    reversal = ledger.reverse(
        session=session, actor=who, posting_id=posting.id, reason=text, permission=WALLETS_DEBIT
    )
    return _debit_result(session, reversal, card, key, reason=OK)


def transfer_wallet(
    session: Session, actor: User, from_card: Card | str, to_card: Card | str
) -> int:
    """Move the whole balance of ``from_card`` (e.g. a lost card being reissued) to
    ``to_card`` and enable the new card's wallet. Returns the fen moved (0 when the old card
    has no wallet or no money). Called by ``cards.service.reissue``."""
    require(actor, WALLETS_MANAGE)
    old = _card(session, from_card)
    new = _card(session, to_card)
    if old.id == new.id:
        raise ValidationFailed("Choose a different card to move the wallet to.", field="to_card")
    if not old.wallet_enabled and find_account(session, old) is None:
        return 0
    source = find_account(session, old)
    amount = balance(session, old)
    before = snapshot(new)
    if not new.wallet_enabled:
        new.wallet_enabled = True
    target = _open_account(session, actor, new, WALLETS_MANAGE)
    if amount > 0 and source is not None:
        ledger.post(
            session=session,
            actor=actor,
            lines=[(source.code, amount), (target.code, -amount)],
            description=f"Wallet moved from card {old.number} to card {new.number}",
            reference=f"card:{new.number}",
            no_overdraft=[source.code],
            permission=WALLETS_MANAGE,
        )
    old_before = snapshot(old)
    old.wallet_enabled = False
    _event(session, old, actor, "wallet_moved_out", amount=amount, to_card=new.number)
    _event(session, new, actor, "wallet_moved_in", amount=amount, from_card=old.number)
    session.flush()
    record(session, actor, "wallet.moved_out", old, before=old_before, amount=amount)
    record(session, actor, "wallet.moved_in", new, before=before, amount=amount)
    return amount
