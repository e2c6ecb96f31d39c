"""Receipts: one numbered receipt per payment, voiding, and the printable PDF."""

from __future__ import annotations

import io
import logging
import os
import re

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cardops.auth.models import User
from cardops.core.config import get_settings
from cardops.core.errors import Conflict, PermissionDenied, ValidationFailed
from cardops.ledger import receipts_pdf, service
from cardops.ledger.chart import (
    CARD_FEE_INCOME,
    CASH,
    DEPOSITS_HELD,
    PAYMENT_CLEARING,
)
from cardops.ledger.models import ImmutableRecord, Receipt
from cardops.ledger.receipts_pdf import FALLBACK_FONT, pdf_font, render_receipt_pdf
from tests.factories import make_user


def _pay(db: Session, actor: User, **kw: object) -> Receipt:
    args: dict[str, object] = {
        "payer_name": "张伟",
        "items": [("工本费 Card fee", 2000)],
        "method": "cash",
        "credit_account": CARD_FEE_INCOME,
    }
    args.update(kw)
    return service.record_payment(session=db, actor=actor, **args)  # type: ignore[arg-type]


def _seq(number: str) -> int:
    match = re.fullmatch(r"RC(\d{4})-(\d{6})", number)
    assert match, number
    return int(match.group(2))


def test_each_payment_gets_one_receipt_with_consecutive_numbers(db: Session, cashier: User) -> None:
    cash_before = service.balance(db, CASH)
    first = _pay(db, cashier)
    second = _pay(db, cashier, payer_name="李娜", items=[("工本费", 2500)])
    assert _seq(second.number) == _seq(first.number) + 1
    for receipt in (first, second):
        assert receipt.posting.reference == f"receipt:{receipt.number}"
        assert receipt.posting.receipt is receipt
        count = db.execute(
            select(func.count())
            .select_from(Receipt)
            .where(Receipt.posting_id == receipt.posting_id)
        ).scalar_one()
        assert count == 1
    assert service.balance(db, CASH) == cash_before + 4500
    assert first.issued_by_id == cashier.id


def test_card_fee_and_deposit_in_one_payment(db: Session, cashier: User) -> None:
    deposits = service.balance(db, DEPOSITS_HELD)
    receipt = _pay(
        db,
        cashier,
        items=[("工本费", 2000, CARD_FEE_INCOME), ("押金", 5000, DEPOSITS_HELD)],
        method="wechat",
        payer_type="person",
        payer_id=42,
        reference="card:9",
    )
    assert receipt.amount == 7000
    assert [(line.account.code, line.amount) for line in receipt.posting.lines] == [
        (PAYMENT_CLEARING, 7000),
        (CARD_FEE_INCOME, -2000),
        (DEPOSITS_HELD, -5000),
    ]
    assert service.balance(db, DEPOSITS_HELD) == deposits - 5000
    assert service.list_receipts(db, payer_type="person", payer_id=42) == [receipt]


def test_payment_is_validated(db: Session, cashier: User) -> None:
    with pytest.raises(ValidationFailed) as exc:
        _pay(db, cashier, items=[])
    assert exc.value.field == "items"
    with pytest.raises(ValidationFailed) as exc:
        _pay(db, cashier, items=[("工本费", -5)])
    assert exc.value.field == "items"
    with pytest.raises(ValidationFailed) as exc:
        _pay(db, cashier, method="cheque")
    assert exc.value.field == "method"
    with pytest.raises(ValidationFailed) as exc:
        _pay(db, cashier, payer_name="  ")
    assert exc.value.field == "payer_name"
    with pytest.raises(PermissionDenied):
        _pay(db, make_user(db, "data_analyst"))


def test_idempotent_payment_returns_the_same_receipt(db: Session, cashier: User) -> None:
    first = _pay(db, cashier, idempotency_key="pay-1")
    again = _pay(db, cashier, idempotency_key="pay-1")
    assert again.id == first.id
    following = _pay(db, cashier)
    assert _seq(following.number) == _seq(first.number) + 1


def test_void_posts_the_reversal_and_never_reuses_the_number(
    db: Session, cashier: User, finance: User
) -> None:
    cash_before = service.balance(db, CASH)
    receipt = _pay(db, cashier)
    with pytest.raises(PermissionDenied):
        service.void_receipt(session=db, actor=cashier, number=receipt.number, reason="wrong")
    with pytest.raises(Conflict):
        service.reverse(session=db, actor=finance, posting_id=receipt.posting_id, reason="x")
    service.void_receipt(session=db, actor=finance, number=receipt.number, reason="typed twice")
    assert receipt.voided_at is not None
    assert receipt.void_posting is not None
    assert receipt.void_posting.reversal_of_id == receipt.posting_id
    assert service.balance(db, CASH) == cash_before
    with pytest.raises(Conflict):
        service.void_receipt(session=db, actor=finance, number=receipt.number, reason="again")
    later = _pay(db, cashier)
    assert _seq(later.number) == _seq(receipt.number) + 1
    assert service.get_receipt(db, receipt.number).is_voided


# --- PDF ----------------------------------------------------------------------------------


def _fonts(pdf: bytes) -> dict[str, bool]:
    """BaseFont name → whether a font file is embedded, for every font on every page."""
    found: dict[str, bool] = {}
    for page in PdfReader(io.BytesIO(pdf)).pages:
        for ref in page["/Resources"]["/Font"].values():
            font = ref.get_object()
            descriptors = []
            if "/FontDescriptor" in font:
                descriptors.append(font["/FontDescriptor"].get_object())
            for child in font.get("/DescendantFonts", []):
                child = child.get_object()
                if "/FontDescriptor" in child:
                    descriptors.append(child["/FontDescriptor"].get_object())
            found[str(font["/BaseFont"])] = any(
                key in d for d in descriptors for key in ("/FontFile", "/FontFile2", "/FontFile3")
            )
    return found


def _cjk_font_on_machine() -> bool:
    return any(os.path.isfile(p) for p in receipts_pdf.FONT_CANDIDATES) or bool(
        receipts_pdf.fc_match_fonts()
    )


def test_receipt_pdf_is_a_valid_pdf_with_the_number(db: Session, cashier: User) -> None:
    receipt = _pay(db, cashier, items=[("工本费 Card fee", 12000)])
    pdf = render_receipt_pdf(receipt)
    assert pdf.startswith(b"%PDF")
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    assert reader.metadata is not None and receipt.number in (reader.metadata.title or "")
    text = reader.pages[0].extract_text()
    assert receipt.number in text
    if pdf_font().embedded:
        assert "收" in text and "壹佰贰拾元整" in text


def test_receipt_pdf_embeds_the_cjk_font(db: Session, cashier: User) -> None:
    if not _cjk_font_on_machine():
        if os.environ.get("CARDOPS_REQUIRE_CJK_FONT") == "1":
            pytest.fail("CI requires a CJK TrueType font: install fonts-wqy-zenhei")
        pytest.skip("no CJK TrueType font on this machine (CI installs fonts-wqy-zenhei)")
    chosen = pdf_font()
    assert chosen.embedded, "a CJK font exists but was not picked up"
    fonts = _fonts(render_receipt_pdf(_pay(db, cashier)))
    cjk = {name: embedded for name, embedded in fonts.items() if name != "/Helvetica"}
    assert cjk, fonts
    assert all(cjk.values()), f"fonts not embedded: {fonts}"


def test_configured_font_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    path = "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"
    if not os.path.isfile(path):
        pytest.skip("fonts-wqy-zenhei is not installed")
    monkeypatch.setattr(get_settings(), "pdf_font", f"{path}#1")
    receipts_pdf.reset_font_cache()
    try:
        chosen = pdf_font()
        assert (chosen.path, chosen.subfont_index, chosen.embedded) == (path, 1, True)
    finally:
        receipts_pdf.reset_font_cache()


def test_without_a_cjk_font_falls_back_with_a_warning(
    db: Session, cashier: User, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(get_settings(), "pdf_font", "/nonexistent/font.ttf")
    monkeypatch.setattr(receipts_pdf, "FONT_CANDIDATES", [])
    monkeypatch.setattr(receipts_pdf, "fc_match_fonts", lambda: [])
    receipts_pdf.reset_font_cache()
    try:
        with caplog.at_level(logging.WARNING, logger="cardops.ledger.receipts"):
            chosen = pdf_font()
            pdf = render_receipt_pdf(_pay(db, cashier))
        assert chosen.name == FALLBACK_FONT and not chosen.embedded
        assert "NOT embedded" in caplog.text
        assert pdf.startswith(b"%PDF")
    finally:
        receipts_pdf.reset_font_cache()


def test_voided_receipt_pdf_says_void(db: Session, cashier: User, finance: User) -> None:
    receipt = _pay(db, cashier)
    service.void_receipt(session=db, actor=finance, number=receipt.number, reason="测试")
    text = PdfReader(io.BytesIO(render_receipt_pdf(receipt))).pages[0].extract_text()
    assert "VOID" in text


def test_a_receipt_changes_only_when_voided(db: Session, cashier: User) -> None:
    receipt = _pay(db, cashier)
    receipt.amount = 1
    with pytest.raises(ImmutableRecord):
        db.flush()
    db.rollback()
