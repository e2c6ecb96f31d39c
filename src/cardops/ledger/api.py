"""REST API of the ledger and receipts. Amounts are integers in fen."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Query
from fastapi.responses import Response

from cardops.auth.service import require
from cardops.ledger import service
from cardops.ledger.models import Account, Posting, Receipt
from cardops.ledger.numerals import amount_in_words
from cardops.ledger.permissions import (
    LEDGER_VIEW,
    RECEIPTS_VIEW,
)
from cardops.ledger.receipts_pdf import render_receipt_pdf
from cardops.ledger.schemas import (
    AccountIn,
    AccountOut,
    AccountPatch,
    AccountTypeName,
    BalanceOut,
    PaymentIn,
    PostingIn,
    PostingLineOut,
    PostingOut,
    ReasonIn,
    ReceiptItemOut,
    ReceiptOut,
    StatementLineOut,
    StatementOut,
    TrialBalanceOut,
    TrialRowOut,
    TrialTotalOut,
)
from cardops.web.deps import DB, ApiUser

router = APIRouter(tags=["ledger"])


def account_out(account: Account, balance: int) -> AccountOut:
    return AccountOut(
        code=account.code,
        name_en=account.name_en,
        name_zh=account.name_zh,
        type=account.type,
        currency=account.currency,
        owner_type=account.owner_type,
        owner_id=account.owner_id,
        parent=account.parent.code if account.parent else None,
        is_active=account.is_active,
        created_at=account.created_at,
        balance=balance,
        natural_balance=account.natural(balance),
    )


def posting_out(posting: Posting) -> PostingOut:
    return PostingOut(
        id=posting.id,
        number=posting.number,
        posted_at=posting.posted_at,
        business_date=posting.business_date,
        description=posting.description,
        reference=posting.reference,
        idempotency_key=posting.idempotency_key,
        created_by=posting.created_by.username,
        reversal_of=posting.reversal_of.number if posting.reversal_of else None,
        reversed_by=posting.reversed_by.number if posting.reversed_by else None,
        receipt=posting.receipt.number if posting.receipt else None,
        lines=[
            PostingLineOut(
                account=line.account.code,
                account_name_en=line.account.name_en,
                account_name_zh=line.account.name_zh,
                amount=line.amount,
                currency=line.currency,
            )
            for line in posting.lines
        ],
    )


def receipt_out(receipt: Receipt) -> ReceiptOut:
    return ReceiptOut(
        number=receipt.number,
        issued_at=receipt.issued_at,
        payer_name=receipt.payer_name,
        payer_type=receipt.payer_type,
        payer_id=receipt.payer_id,
        amount=receipt.amount,
        currency=receipt.currency,
        amount_in_words=amount_in_words(receipt.amount),
        items=[ReceiptItemOut.model_validate(item) for item in receipt.items],
        method=receipt.method,
        reference=receipt.reference,
        posting=receipt.posting.number,
        issued_by=receipt.issued_by.username,
        voided_at=receipt.voided_at,
        void_reason=receipt.void_reason,
        void_posting=receipt.void_posting.number if receipt.void_posting else None,
        pdf_url=f"/api/v1/receipts/{receipt.number}/pdf",
    )


# --- accounts -----------------------------------------------------------------------------


@router.get("/ledger/accounts", response_model=list[AccountOut], summary="Accounts with balances")
def list_accounts(
    db: DB,
    user: ApiUser,
    type: AccountTypeName | None = None,
    parent: str | None = Query(None, max_length=64, description="sub-accounts of this code"),
    owner_type: str | None = Query(None, max_length=32),
    owner_id: int | None = Query(None, ge=0, le=2**63 - 1),
    active: bool | None = None,
    q: str | None = Query(None, max_length=100),
    limit: int = Query(500, ge=1, le=5000),
    offset: int = Query(0, ge=0, le=10_000_000),
) -> list[AccountOut]:
    require(user, LEDGER_VIEW)
    parent_account = service.get_account_by_code(db, parent) if parent else None
    accounts = service.list_accounts(
        db,
        type=type,
        parent=parent_account,
        owner_type=owner_type,
        owner_id=owner_id,
        active=active,
        q=q,
        limit=limit,
        offset=offset,
    )
    amounts = service.balances(db, accounts)
    return [account_out(a, amounts.get(a.id, 0)) for a in accounts]


@router.post("/ledger/accounts", response_model=AccountOut, status_code=201)
def create_account(db: DB, user: ApiUser, body: AccountIn) -> AccountOut:
    account = service.create_account(
        session=db,
        actor=user,
        code=body.code,
        name_en=body.name_en,
        name_zh=body.name_zh,
        type=body.type,
        currency=body.currency,
        owner_type=body.owner_type,
        owner_id=body.owner_id,
        parent_code=body.parent,
    )
    db.commit()
    return account_out(account, 0)


@router.get("/ledger/accounts/{code}", response_model=AccountOut)
def get_account(db: DB, user: ApiUser, code: str) -> AccountOut:
    require(user, LEDGER_VIEW)
    account = service.get_account_by_code(db, code)
    return account_out(account, service.balance(db, account))


@router.patch("/ledger/accounts/{code}", response_model=AccountOut)
def patch_account(db: DB, user: ApiUser, code: str, body: AccountPatch) -> AccountOut:
    account = service.update_account(
        session=db,
        actor=user,
        code=code,
        name_en=body.name_en,
        name_zh=body.name_zh,
        is_active=body.is_active,
    )
    db.commit()
    return account_out(account, service.balance(db, account))


@router.get(
    "/ledger/accounts/{code}/balance",
    response_model=BalanceOut,
    summary="Derived balance (sum of lines)",
)
def account_balance(db: DB, user: ApiUser, code: str, as_of: date | None = None) -> BalanceOut:
    require(user, LEDGER_VIEW)
    account = service.get_account_by_code(db, code)
    amount = service.balance(db, account, as_of=as_of)
    return BalanceOut(
        account=account.code,
        currency=account.currency,
        as_of=as_of,
        balance=amount,
        natural_balance=account.natural(amount),
    )


@router.get(
    "/ledger/accounts/{code}/statement",
    response_model=StatementOut,
    summary="Lines with a running balance",
)
def account_statement(
    db: DB,
    user: ApiUser,
    code: str,
    since: date | None = None,
    until: date | None = None,
    limit: int = Query(500, ge=1, le=5000),
) -> StatementOut:
    require(user, LEDGER_VIEW)
    result = service.statement(db, code, since=since, until=until, limit=limit)
    return StatementOut(
        account=result.account.code,
        currency=result.account.currency,
        since=since,
        until=until,
        opening_balance=result.opening,
        closing_balance=result.closing,
        truncated=result.truncated,
        lines=[
            StatementLineOut(
                posting_id=line.posting.id,
                posting_number=line.posting.number,
                posted_at=line.posting.posted_at,
                business_date=line.posting.business_date,
                description=line.posting.description,
                reference=line.posting.reference,
                amount=line.amount,
                balance=line.balance,
            )
            for line in result.lines
        ],
    )


# --- postings -----------------------------------------------------------------------------


@router.get("/ledger/postings", response_model=list[PostingOut])
def list_postings(
    db: DB,
    user: ApiUser,
    account: str | None = Query(None, max_length=64),
    reference: str | None = Query(None, max_length=128),
    q: str | None = Query(None, max_length=100),
    since: date | None = None,
    until: date | None = None,
    limit: int = Query(50, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=10_000_000),
) -> list[PostingOut]:
    require(user, LEDGER_VIEW)
    acc = service.get_account_by_code(db, account) if account else None
    rows = service.list_postings(
        db,
        account=acc,
        reference=reference,
        q=q,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
    return [posting_out(p) for p in rows]


@router.post(
    "/ledger/postings",
    response_model=PostingOut,
    status_code=201,
    summary="Post a balanced manual entry (debit > 0, credit < 0, in fen)",
)
def create_posting(db: DB, user: ApiUser, body: PostingIn) -> PostingOut:
    posting = service.post(
        session=db,
        actor=user,
        lines=[(line.account, line.amount) for line in body.lines],
        description=body.description,
        reference=body.reference,
        idempotency_key=body.idempotency_key,
        business_date=body.business_date,
    )
    db.commit()
    return posting_out(posting)


@router.get("/ledger/postings/{posting_id}", response_model=PostingOut)
def get_posting(db: DB, user: ApiUser, posting_id: int) -> PostingOut:
    require(user, LEDGER_VIEW)
    return posting_out(service.get_posting(db, posting_id))


@router.post(
    "/ledger/postings/{posting_id}/reverse",
    response_model=PostingOut,
    status_code=201,
    summary="Post the reversal of a posting",
)
def reverse_posting(db: DB, user: ApiUser, posting_id: int, body: ReasonIn) -> PostingOut:
    reversal = service.reverse(session=db, actor=user, posting_id=posting_id, reason=body.reason)
    db.commit()
    return posting_out(reversal)


@router.get("/ledger/trial-balance", response_model=TrialBalanceOut)
def trial_balance(
    db: DB, user: ApiUser, as_of: date | None = None, rollup: bool = True
) -> TrialBalanceOut:
    require(user, LEDGER_VIEW)
    result = service.trial_balance(db, as_of=as_of, rollup=rollup)
    return TrialBalanceOut(
        as_of=as_of,
        balanced=result.balanced,
        rows=[
            TrialRowOut(
                account=row.account.code,
                name_en=row.account.name_en,
                name_zh=row.account.name_zh,
                type=row.account.type,
                currency=row.account.currency,
                debit=row.debit,
                credit=row.credit,
            )
            for row in result.rows
        ],
        totals=[
            TrialTotalOut(currency=t.currency, debit=t.debit, credit=t.credit)
            for t in result.totals
        ],
    )


# --- receipts -----------------------------------------------------------------------------


@router.get("/receipts", response_model=list[ReceiptOut])
def list_receipts(
    db: DB,
    user: ApiUser,
    q: str | None = Query(None, max_length=100),
    payer_type: str | None = Query(None, max_length=32),
    payer_id: int | None = Query(None, ge=0, le=2**63 - 1),
    reference: str | None = Query(None, max_length=128),
    voided: bool | None = None,
    since: date | None = None,
    until: date | None = None,
    limit: int = Query(50, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=10_000_000),
) -> list[ReceiptOut]:
    require(user, RECEIPTS_VIEW)
    rows = service.list_receipts(
        db,
        q=q,
        payer_type=payer_type,
        payer_id=payer_id,
        reference=reference,
        voided=voided,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
    return [receipt_out(r) for r in rows]


@router.post(
    "/receipts",
    response_model=ReceiptOut,
    status_code=201,
    summary="Take a payment: posts it and issues one numbered receipt",
)
def record_payment(db: DB, user: ApiUser, body: PaymentIn) -> ReceiptOut:
    receipt = service.record_payment(
        session=db,
        actor=user,
        payer_name=body.payer_name,
        payer_type=body.payer_type,
        payer_id=body.payer_id,
        items=[
            (i.item, i.amount, i.account) if i.account else (i.item, i.amount) for i in body.items
        ],
        method=body.method,
        credit_account=body.credit_account,
        debit_account=body.debit_account,
        reference=body.reference,
        description=body.description,
        idempotency_key=body.idempotency_key,
    )
    db.commit()
    return receipt_out(receipt)


@router.get("/receipts/{number}", response_model=ReceiptOut)
def get_receipt(db: DB, user: ApiUser, number: str) -> ReceiptOut:
    require(user, RECEIPTS_VIEW)
    return receipt_out(service.get_receipt(db, number))


@router.get(
    "/receipts/{number}/pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
    summary="The printable receipt (customer copy)",
)
def receipt_pdf(db: DB, user: ApiUser, number: str) -> Response:
    require(user, RECEIPTS_VIEW)
    receipt = service.get_receipt(db, number)
    return Response(
        render_receipt_pdf(receipt),
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{receipt.number}.pdf"'},
    )


@router.post("/receipts/{number}/void", response_model=ReceiptOut, summary="Void a receipt")
def void_receipt(db: DB, user: ApiUser, number: str, body: ReasonIn) -> ReceiptOut:
    receipt = service.void_receipt(session=db, actor=user, number=number, reason=body.reason)
    db.commit()
    return receipt_out(receipt)
