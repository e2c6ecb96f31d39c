"""Console pages of the ledger: accounts, postings, trial balance, receipts."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from cardops.auth.service import require
from cardops.core.errors import CardopsError, ValidationFailed
from cardops.core.i18n import N_
from cardops.core.money import parse_amount
from cardops.ledger import service
from cardops.ledger.chart import CARD_FEE_INCOME
from cardops.ledger.models import Account, AccountType
from cardops.ledger.numerals import amount_in_words
from cardops.ledger.permissions import (
    LEDGER_ACCOUNTS,
    LEDGER_POST,
    LEDGER_VIEW,
    RECEIPTS_ISSUE,
    RECEIPTS_VIEW,
    RECEIPTS_VOID,
)
from cardops.ledger.receipts_pdf import render_receipt_pdf
from cardops.web.deps import Console, ConsoleForm, ConsolePage, form_error_context
from cardops.web.nav import NavItem

router = APIRouter()
SECTION = N_("Finance")
NAV = [
    NavItem(N_("Accounts"), "/ledger/accounts", LEDGER_VIEW, section=SECTION, order=500),
    NavItem(N_("Postings"), "/ledger/postings", LEDGER_VIEW, section=SECTION, order=501),
    NavItem(N_("Trial balance"), "/ledger/trial-balance", LEDGER_VIEW, section=SECTION, order=502),
    NavItem(N_("Receipts"), "/receipts", RECEIPTS_VIEW, section=SECTION, order=503),
    NavItem(N_("Take a payment"), "/receipts/new", RECEIPTS_ISSUE, section=SECTION, order=504),
]
PAGE = 50
POSTING_ROWS = 6
ITEM_ROWS = 4

TYPE_LABELS = {
    "asset": N_("Asset"),
    "liability": N_("Liability"),
    "equity": N_("Equity"),
    "income": N_("Income"),
    "expense": N_("Expense"),
}
METHOD_LABELS = {
    "cash": N_("Cash"),
    "card": N_("Bank card"),
    "transfer": N_("Bank transfer"),
    "wechat": N_("WeChat Pay"),
    "alipay": N_("Alipay"),
}


def _day(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def _page(page: int) -> int:
    return max(1, min(page, 100_000))


def _text(form: dict[str, Any], name: str) -> str:
    value = form.get(name)
    if isinstance(value, list):
        value = value[0] if value else ""
    return str(value or "").strip()


def _account_choices(console: Console, *types: str, top_level: bool = False) -> list[Account]:
    accounts = service.list_accounts(console.db, active=True, top_level=top_level, limit=1000)
    return [a for a in accounts if not types or a.type in types]


def _common(console: Console) -> dict[str, Any]:
    return {"type_labels": TYPE_LABELS, "method_labels": METHOD_LABELS, "words": amount_in_words}


# --- accounts -----------------------------------------------------------------------------


def _accounts_page(
    console: Console,
    *,
    q: str = "",
    type: str = "",
    status_code: int = 200,
    form: dict[str, Any] | None = None,
    **extra: Any,
) -> HTMLResponse:
    accounts = service.list_accounts(
        console.db, q=q[:100] or None, type=type if type in TYPE_LABELS else None, top_level=True
    )
    totals = service.rolled_up_balances(console.db)
    return console.render(
        "ledger/accounts.html",
        status_code=status_code,
        accounts=accounts,
        totals=totals,
        filters={"q": q, "type": type},
        form=form or {},
        type_options=[(k, v) for k, v in TYPE_LABELS.items()],
        **_common(console),
        **extra,
    )


@router.get("/ledger/accounts", response_class=HTMLResponse)
def accounts(console: ConsolePage, q: str = "", type: str = "") -> HTMLResponse:
    require(console.user, LEDGER_VIEW)
    return _accounts_page(console, q=q, type=type)


@router.post("/ledger/accounts", response_class=HTMLResponse)
def create_account(console: ConsoleForm) -> Response:
    require(console.user, LEDGER_ACCOUNTS)
    form = console.form
    try:
        account = service.create_account(
            session=console.db,
            actor=console.user,
            code=_text(form, "code"),
            name_en=_text(form, "name_en"),
            name_zh=_text(form, "name_zh"),
            type=_text(form, "type"),
            currency=_text(form, "currency") or None,
            parent_code=_text(form, "parent") or None,
        )
    except CardopsError as exc:
        console.db.rollback()
        return _accounts_page(console, status_code=exc.status, form=form, **form_error_context(exc))
    console.flash("Account {code} opened.", code=account.code)
    console.db.commit()
    return console.redirect(f"/ledger/accounts/{account.code}")


def _account_page(
    console: Console,
    code: str,
    *,
    since: str = "",
    until: str = "",
    status_code: int = 200,
    **extra: Any,
) -> HTMLResponse:
    account = service.get_account_by_code(console.db, code)
    result = service.statement(console.db, account, since=_day(since), until=_day(until))
    children = service.list_accounts(console.db, parent=account, limit=200)
    child_balances = service.balances(console.db, children)
    return console.render(
        "ledger/account.html",
        status_code=status_code,
        account=account,
        statement=result,
        children=children,
        child_balances=child_balances,
        filters={"since": since, "until": until},
        **_common(console),
        **extra,
    )


@router.get("/ledger/accounts/{code}", response_class=HTMLResponse)
def account_detail(
    console: ConsolePage, code: str, since: str = "", until: str = ""
) -> HTMLResponse:
    require(console.user, LEDGER_VIEW)
    return _account_page(console, code, since=since, until=until)


@router.post("/ledger/accounts/{code}", response_class=HTMLResponse)
def update_account(console: ConsoleForm, code: str) -> Response:
    require(console.user, LEDGER_ACCOUNTS)
    form = console.form
    try:
        account = service.update_account(
            session=console.db,
            actor=console.user,
            code=code,
            name_en=_text(form, "name_en"),
            name_zh=_text(form, "name_zh"),
            is_active=_text(form, "is_active") == "1",
        )
    except CardopsError as exc:
        console.db.rollback()
        return _account_page(console, code, status_code=exc.status, **form_error_context(exc))
    console.flash("Saved.")
    console.db.commit()
    return console.redirect(f"/ledger/accounts/{account.code}")


# --- postings -----------------------------------------------------------------------------


@router.get("/ledger/postings", response_class=HTMLResponse)
def postings(
    console: ConsolePage,
    q: str = "",
    account: str = "",
    since: str = "",
    until: str = "",
    page: int = 1,
) -> HTMLResponse:
    require(console.user, LEDGER_VIEW)
    page = _page(page)
    acc = service.find_account(console.db, account) if account else None
    rows = service.list_postings(
        console.db,
        q=q[:100] or None,
        account=acc,
        since=_day(since),
        until=_day(until),
        limit=PAGE + 1,
        offset=(page - 1) * PAGE,
    )
    return console.render(
        "ledger/postings.html",
        rows=rows[:PAGE],
        has_more=len(rows) > PAGE,
        page=page,
        filters={"q": q, "account": account, "since": since, "until": until},
        **_common(console),
    )


def _posting_form(
    console: Console, *, form: dict[str, Any] | None = None, status_code: int = 200, **extra: Any
) -> HTMLResponse:
    form = form or {}
    rows = POSTING_ROWS
    while rows < service.MAX_LINES and any(
        _text(form, f"{name}_{rows}") for name in ("account", "debit", "credit")
    ):
        rows += 1
    return console.render(
        "ledger/posting_form.html",
        status_code=status_code,
        form=form,
        rows=rows,
        accounts=_account_choices(console),
        today=service.today().isoformat(),
        **_common(console),
        **extra,
    )


@router.get("/ledger/postings/new", response_class=HTMLResponse)
def new_posting(console: ConsolePage) -> HTMLResponse:
    require(console.user, LEDGER_POST)
    return _posting_form(console)


def _form_lines(form: dict[str, Any]) -> list[tuple[str, int]]:
    """The filled rows of the posting form, amounts typed in yuan."""
    lines: list[tuple[str, int]] = []
    for i in range(service.MAX_LINES):
        account = _text(form, f"account_{i}")
        debit = _text(form, f"debit_{i}")
        credit = _text(form, f"credit_{i}")
        if not (account or debit or credit):
            continue
        if debit and credit:
            raise ValidationFailed(
                "Enter either a debit or a credit on a line, not both.", field=f"credit_{i}"
            )
        if not debit and not credit:
            raise ValidationFailed("Enter the amount of this line.", field=f"debit_{i}")
        name = f"debit_{i}" if debit else f"credit_{i}"
        amount = parse_amount(debit or credit, field=name)
        if amount < 0:
            raise ValidationFailed(
                "Enter a positive amount; a credit goes in the credit column.", field=name
            )
        if not account:
            raise ValidationFailed("Choose an account for this line.", field=f"account_{i}")
        lines.append((account, amount if debit else -amount))
    return lines


@router.post("/ledger/postings", response_class=HTMLResponse)
def create_posting(console: ConsoleForm) -> Response:
    require(console.user, LEDGER_POST)
    form = console.form
    try:
        business_date = None
        if _text(form, "business_date"):
            business_date = _day(_text(form, "business_date"))
            if business_date is None:
                raise ValidationFailed("Enter a valid date.", field="business_date")
        posting = service.post(
            session=console.db,
            actor=console.user,
            lines=_form_lines(form),
            description=_text(form, "description"),
            reference=_text(form, "reference") or None,
            business_date=business_date,
        )
    except CardopsError as exc:
        console.db.rollback()
        return _posting_form(console, form=form, status_code=exc.status, **form_error_context(exc))
    console.flash("Posting {number} recorded.", number=posting.number)
    console.db.commit()
    return console.redirect(f"/ledger/postings/{posting.id}")


def _posting_page(
    console: Console, posting_id: int, *, status_code: int = 200, **extra: Any
) -> HTMLResponse:
    posting = service.get_posting(console.db, posting_id)
    return console.render(
        "ledger/posting.html", status_code=status_code, posting=posting, **_common(console), **extra
    )


@router.get("/ledger/postings/{posting_id}", response_class=HTMLResponse)
def posting_detail(console: ConsolePage, posting_id: int) -> HTMLResponse:
    require(console.user, LEDGER_VIEW)
    return _posting_page(console, posting_id)


@router.post("/ledger/postings/{posting_id}/reverse", response_class=HTMLResponse)
def reverse_posting(console: ConsoleForm, posting_id: int) -> Response:
    require(console.user, LEDGER_POST)
    try:
        reversal = service.reverse(
            session=console.db,
            actor=console.user,
            posting_id=posting_id,
            reason=_text(console.form, "reason"),
        )
    except CardopsError as exc:
        console.db.rollback()
        return _posting_page(
            console,
            posting_id,
            status_code=exc.status,
            reason=_text(console.form, "reason"),
            **form_error_context(exc),
        )
    console.flash("Reversal {number} recorded.", number=reversal.number)
    console.db.commit()
    return console.redirect(f"/ledger/postings/{reversal.id}")


@router.get("/ledger/trial-balance", response_class=HTMLResponse)
def trial_balance(console: ConsolePage, as_of: str = "") -> HTMLResponse:
    require(console.user, LEDGER_VIEW)
    day = _day(as_of)
    result = service.trial_balance(console.db, as_of=day)
    return console.render(
        "ledger/trial_balance.html",
        result=result,
        as_of=as_of if day else "",
        **_common(console),
    )


# --- receipts -----------------------------------------------------------------------------


@router.get("/receipts", response_class=HTMLResponse)
def receipts(
    console: ConsolePage, q: str = "", since: str = "", until: str = "", page: int = 1
) -> HTMLResponse:
    require(console.user, RECEIPTS_VIEW)
    page = _page(page)
    rows = service.list_receipts(
        console.db,
        q=q[:100] or None,
        since=_day(since),
        until=_day(until),
        limit=PAGE + 1,
        offset=(page - 1) * PAGE,
    )
    return console.render(
        "ledger/receipts.html",
        rows=rows[:PAGE],
        has_more=len(rows) > PAGE,
        page=page,
        filters={"q": q, "since": since, "until": until},
        **_common(console),
    )


def _receipt_form(
    console: Console, *, form: dict[str, Any] | None = None, status_code: int = 200, **extra: Any
) -> HTMLResponse:
    return console.render(
        "ledger/receipt_form.html",
        status_code=status_code,
        form=form or {"account_0": CARD_FEE_INCOME},
        rows=ITEM_ROWS,
        credit_accounts=_account_choices(
            console, AccountType.INCOME.value, AccountType.LIABILITY.value, top_level=True
        ),
        debit_accounts=_account_choices(console, AccountType.ASSET.value, top_level=True),
        **_common(console),
        **extra,
    )


@router.get("/receipts/new", response_class=HTMLResponse)
def new_receipt(console: ConsolePage) -> HTMLResponse:
    require(console.user, RECEIPTS_ISSUE)
    return _receipt_form(console)


def _form_items(form: dict[str, Any]) -> list[tuple[str, int, str]]:
    items: list[tuple[str, int, str]] = []
    for i in range(ITEM_ROWS):
        label = _text(form, f"item_{i}")
        amount_text = _text(form, f"amount_{i}")
        if not label and not amount_text:
            continue
        if not label:
            raise ValidationFailed("Say what the payment is for.", field=f"item_{i}")
        amount = parse_amount(amount_text, field=f"amount_{i}")
        if amount <= 0:
            raise ValidationFailed("Enter an amount above zero.", field=f"amount_{i}")
        account = _text(form, f"account_{i}")
        if not account:
            raise ValidationFailed("Choose the account the money is for.", field=f"account_{i}")
        items.append((label, amount, account))
    if not items:
        raise ValidationFailed("Add at least one item with an amount.", field="item_0")
    return items


@router.post("/receipts", response_class=HTMLResponse)
def create_receipt(console: ConsoleForm) -> Response:
    require(console.user, RECEIPTS_ISSUE)
    form = console.form
    try:
        receipt = service.record_payment(
            session=console.db,
            actor=console.user,
            payer_name=_text(form, "payer_name"),
            items=_form_items(form),
            method=_text(form, "method"),
            debit_account=_text(form, "debit_account") or None,
            reference=_text(form, "reference") or None,
        )
    except CardopsError as exc:
        console.db.rollback()
        return _receipt_form(console, form=form, status_code=exc.status, **form_error_context(exc))
    console.flash("Receipt {number} issued.", number=receipt.number)
    console.db.commit()
    return console.redirect(f"/receipts/{receipt.number}")


def _receipt_page(
    console: Console, number: str, *, status_code: int = 200, **extra: Any
) -> HTMLResponse:
    receipt = service.get_receipt(console.db, number)
    return console.render(
        "ledger/receipt.html", status_code=status_code, receipt=receipt, **_common(console), **extra
    )


@router.get("/receipts/{number}", response_class=HTMLResponse)
def receipt_detail(console: ConsolePage, number: str) -> HTMLResponse:
    require(console.user, RECEIPTS_VIEW)
    return _receipt_page(console, number)


@router.get("/receipts/{number}/pdf")
def receipt_pdf(console: ConsolePage, number: str) -> Response:
    require(console.user, RECEIPTS_VIEW)
    receipt = service.get_receipt(console.db, number)
    return Response(
        render_receipt_pdf(receipt),
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{receipt.number}.pdf"'},
    )


@router.post("/receipts/{number}/void", response_class=HTMLResponse)
def void_receipt(console: ConsoleForm, number: str) -> Response:
    require(console.user, RECEIPTS_VOID)
    reason = _text(console.form, "reason")
    try:
        receipt = service.void_receipt(
            session=console.db, actor=console.user, number=number, reason=reason
        )
    except CardopsError as exc:
        console.db.rollback()
        return _receipt_page(
            console, number, status_code=exc.status, reason=reason, **form_error_context(exc)
        )
    console.flash("Receipt {number} voided.", number=receipt.number)
    console.db.commit()
    return console.redirect(f"/receipts/{receipt.number}")
