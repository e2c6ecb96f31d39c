"""REST API of card wallets: balance, statement, desk top-up, and the on-us debit the
acquiring gateway (or an integrator holding ``wallets.debit``) calls."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Path, Query

from cardops.ledger.chart import MERCHANT_PAYABLES
from cardops.wallets import service
from cardops.wallets.schemas import (
    DebitIn,
    DebitOut,
    ReverseIn,
    StatementEntryOut,
    StatementOut,
    TopUpIn,
    TopUpOut,
    WalletOut,
)
from cardops.web.deps import DB, ApiUser

router = APIRouter(tags=["wallets"])
CardNumber = Annotated[str, Path(min_length=1, max_length=32)]


def wallet_out(info: service.WalletInfo) -> WalletOut:
    return WalletOut(
        card_number=info.card.number,
        card_state=info.card.state,
        enabled=info.enabled,
        balance=info.balance,
        account=info.account,
        max_topup=info.max_topup,
    )


def debit_out(result: service.WalletDebitResult) -> DebitOut:
    return DebitOut.model_validate(
        {
            "approved": result.approved,
            "reason": result.reason,
            "balance_after": result.balance_after,
            "posting": result.posting,
            "idempotency_key": result.idempotency_key,
        }
    )


@router.get("/wallets/{card_number}", response_model=WalletOut, summary="Wallet balance")
def get_wallet(db: DB, user: ApiUser, card_number: CardNumber) -> WalletOut:
    return wallet_out(service.wallet(session=db, actor=user, card_number=card_number))


@router.get("/wallets/{card_number}/statement", response_model=StatementOut)
def get_statement(
    db: DB,
    user: ApiUser,
    card_number: CardNumber,
    since: date | None = None,
    until: date | None = None,
    limit: int = Query(500, ge=1, le=5000),
) -> StatementOut:
    result = service.statement(
        session=db, actor=user, card_number=card_number, since=since, until=until, limit=limit
    )
    return StatementOut(
        card_number=result.card.number,
        opening=result.opening,
        closing=result.closing,
        truncated=result.truncated,
        entries=[
            StatementEntryOut(
                at=e.at,
                business_date=e.business_date,
                posting=e.posting,
                description=e.description,
                reference=e.reference,
                amount=e.amount,
                balance=e.balance,
                receipt=e.receipt,
            )
            for e in result.entries
        ],
    )


@router.post("/wallets/{card_number}/enable", response_model=WalletOut)
def enable(db: DB, user: ApiUser, card_number: CardNumber) -> WalletOut:
    service.enable_wallet(session=db, actor=user, card_number=card_number)
    db.commit()
    return wallet_out(service.wallet(session=db, actor=user, card_number=card_number))


@router.post("/wallets/{card_number}/top-up", response_model=TopUpOut, status_code=201)
def top_up(db: DB, user: ApiUser, card_number: CardNumber, body: TopUpIn) -> TopUpOut:
    receipt = service.top_up(
        session=db,
        actor=user,
        card_number=card_number,
        amount=body.amount,
        method=body.method,
        payer_name=body.payer_name,
        idempotency_key=body.idempotency_key,
    )
    db.commit()
    card = service.get_card(db, card_number)
    return TopUpOut(
        receipt=receipt.number,
        amount=receipt.amount,
        balance=service.balance(db, card),
        pdf_url=f"/api/v1/receipts/{receipt.number}/pdf",
    )


@router.post("/wallets/{card_number}/debit", response_model=DebitOut)
def debit(db: DB, user: ApiUser, card_number: CardNumber, body: DebitIn) -> DebitOut:
    """An on-us payment. Declines come back with ``approved: false`` and a reason (200)."""
    result = service.debit(
        db,
        card_number=card_number,
        amount=body.amount,
        reference=body.reference,
        idempotency_key=body.idempotency_key,
        actor=user,
        merchant_account=body.merchant_account or MERCHANT_PAYABLES,
    )
    db.commit()
    return debit_out(result)


@router.post("/wallets/{card_number}/reverse", response_model=DebitOut)
def reverse(db: DB, user: ApiUser, card_number: CardNumber, body: ReverseIn) -> DebitOut:
    """Reverse the debit made under ``idempotency_key`` on this card."""
    result = service.reverse_debit(
        db,
        idempotency_key=body.idempotency_key,
        reason=body.reason,
        actor=user,
        card_number=card_number,
    )
    db.commit()
    return debit_out(result)
