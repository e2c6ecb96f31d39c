"""Console pages of card wallets: find a card, its balance and statement, top-up."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from cardops.auth.service import require
from cardops.core.errors import CardopsError
from cardops.core.i18n import N_, gettext
from cardops.core.money import format_minor, parse_amount
from cardops.ledger.models import PaymentMethod
from cardops.wallets import service
from cardops.wallets.permissions import WALLETS_MANAGE, WALLETS_TOPUP, WALLETS_VIEW
from cardops.web.deps import Console, ConsoleForm, ConsolePage, form_error_context
from cardops.web.nav import NavItem

router = APIRouter()

NAV = [NavItem(N_("Wallets"), "/wallets", WALLETS_VIEW, section=N_("One-card"), order=331)]
METHOD_LABELS = {
    PaymentMethod.CASH.value: N_("Cash"),
    PaymentMethod.CARD.value: N_("Bank card"),
    PaymentMethod.TRANSFER.value: N_("Bank transfer"),
    PaymentMethod.WECHAT.value: N_("WeChat Pay"),
    PaymentMethod.ALIPAY.value: N_("Alipay"),
}


def _text(console: Console, name: str) -> str:
    raw = console.form.get(name)
    if isinstance(raw, list):
        raw = raw[0] if raw else ""
    return raw[:200] if isinstance(raw, str) else ""


@router.get("/wallets", response_class=HTMLResponse)
def wallet_find(console: ConsolePage, card: str = "") -> Response:
    require(console.user, WALLETS_VIEW)
    number = card.strip()[:32]
    if number:
        if service.find_card(console.db, number) is not None:
            return console.redirect(f"/wallets/{quote(number, safe='')}")
        return console.render(
            "wallets/find.html",
            status_code=404,
            card=number,
            error=gettext("There is no card with the number {number}.", number=number),
        )
    return console.render("wallets/find.html", card="")


def _wallet_page(
    console: Console, card_number: str, status_code: int = 200, **extra: Any
) -> HTMLResponse:
    info = service.wallet(session=console.db, actor=console.user, card_number=card_number)
    statement = service.statement(session=console.db, actor=console.user, card_number=card_number)
    extra.setdefault("values", {"method": "cash"})
    return console.render(
        "wallets/wallet.html",
        status_code=status_code,
        info=info,
        statement=statement,
        methods=[(k, gettext(v)) for k, v in METHOD_LABELS.items()],
        max_topup=format_minor(info.max_topup),
        **extra,
    )


@router.get("/wallets/{card_number}", response_class=HTMLResponse)
def wallet_detail(console: ConsolePage, card_number: str) -> HTMLResponse:
    require(console.user, WALLETS_VIEW)
    return _wallet_page(console, card_number[:32])


@router.post("/wallets/{card_number}/enable", response_class=HTMLResponse)
def wallet_enable(console: ConsoleForm, card_number: str) -> Response:
    require(console.user, WALLETS_MANAGE)
    card_number = card_number[:32]
    try:
        service.enable_wallet(session=console.db, actor=console.user, card_number=card_number)
    except CardopsError as exc:
        console.db.rollback()
        return _wallet_page(console, card_number, status_code=exc.status, **form_error_context(exc))
    console.flash("The wallet of card {number} is enabled.", number=card_number)
    console.db.commit()
    return console.redirect(f"/wallets/{quote(card_number, safe='')}")


@router.post("/wallets/{card_number}/top-up", response_class=HTMLResponse)
def wallet_top_up(console: ConsoleForm, card_number: str) -> Response:
    require(console.user, WALLETS_TOPUP)
    card_number = card_number[:32]
    values = {name: _text(console, name) for name in ("amount", "method", "payer_name")}
    try:
        receipt = service.top_up(
            session=console.db,
            actor=console.user,
            card_number=card_number,
            amount=parse_amount(values["amount"], field="amount"),
            method=values["method"] or "cash",
            payer_name=values["payer_name"].strip() or None,
        )
    except CardopsError as exc:
        console.db.rollback()
        return _wallet_page(
            console, card_number, status_code=exc.status, values=values, **form_error_context(exc)
        )
    console.flash(
        "Topped up {amount} yuan; receipt {receipt}.",
        amount=format_minor(receipt.amount),
        receipt=receipt.number,
    )
    console.db.commit()
    return console.redirect(f"/wallets/{quote(card_number, safe='')}")
