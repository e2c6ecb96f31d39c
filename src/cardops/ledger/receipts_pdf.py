"""Printable receipts (收据) as PDF, with the Chinese font embedded.

The font is a CJK TrueType font registered with reportlab's ``TTFont``, which embeds the
glyphs used (a ``/FontFile2`` stream), so the receipt prints the same on any machine. Lookup:
``CARDOPS_PDF_FONT`` (a path, optionally ``#N`` for the N-th font of a ``.ttc``), then common
system paths (Debian's fonts-wqy-zenhei first), then ``fc-match :lang=zh-cn``. Only when
none works do we fall back to reportlab's ``STSong-Light``, which is *not* embedded and prints
as empty boxes where Adobe's CJK fonts are missing — with a warning in the log.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.pagesizes import A5
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from cardops.core.clock import local
from cardops.core.config import get_settings
from cardops.core.money import format_minor
from cardops.ledger.models import Receipt
from cardops.ledger.numerals import amount_in_words

log = logging.getLogger("cardops.ledger.receipts")

FALLBACK_FONT = "STSong-Light"

# Common places of CJK fonts with TrueType outlines (reportlab cannot embed CFF outlines, so
# Noto Sans CJK .otf/.ttc are tried but usually refused; the loop then moves on).
FONT_CANDIDATES: list[str] = [
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/wqy-zenhei/wqy-zenhei.ttc",
    "/usr/share/fonts/wqy-microhei/wqy-microhei.ttc",
    "/usr/share/fonts/wenquanyi/wqy-zenhei/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/usr/share/fonts/truetype/arphic/ukai.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/truetype/noto/NotoSansSC-Regular.ttf",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/System/Library/Fonts/Supplemental/Arial Unicode.ttf",
    "/Library/Fonts/Arial Unicode.ttf",
    "C:/Windows/Fonts/simsun.ttc",
    "C:/Windows/Fonts/simhei.ttf",
    "C:/Windows/Fonts/msyh.ttc",
]

_PROBE = "收据壹贰元整"  # the font must have these glyphs


@dataclass(frozen=True, slots=True)
class PdfFont:
    name: str  # reportlab font name
    path: str | None  # file it came from; None for the non-embedded fallback
    subfont_index: int = 0

    @property
    def embedded(self) -> bool:
        return self.path is not None


def _split_index(spec: str) -> tuple[str, int]:
    """``/path/font.ttc#1`` → (path, 1); a plain path → (path, 0)."""
    path, sep, index = spec.rpartition("#")
    if sep and index.isdigit():
        return path, int(index)
    return spec, 0


def _try_register(path: str, index: int) -> str | None:
    if not path or not os.path.isfile(path):
        return None
    name = "CardopsCJK-" + hashlib.sha1(f"{path}#{index}".encode()).hexdigest()[:10]
    if name in pdfmetrics.getRegisteredFontNames():
        return name
    try:
        font = TTFont(name, path, subfontIndex=index)
    except Exception as exc:  # reportlab raises TTFError, struct errors, OSError …
        log.info("font %s#%d cannot be embedded: %s", path, index, exc)
        return None
    if not all(ord(ch) in font.face.charToGlyph for ch in _PROBE):
        log.info("font %s#%d has no Chinese glyphs", path, index)
        return None
    pdfmetrics.registerFont(font)
    return name


def fc_match_fonts() -> list[str]:
    """What fontconfig offers for Simplified Chinese, if fontconfig is installed."""
    exe = shutil.which("fc-match")
    if exe is None:
        return []
    try:
        result = subprocess.run(
            [exe, "-s", "-f", "%{file}\n", ":lang=zh-cn"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    files = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    return [f for f in files if f.lower().endswith((".ttf", ".ttc", ".otf"))][:20]


@lru_cache(maxsize=8)
def _resolve(configured: str) -> PdfFont:
    if configured:
        path, index = _split_index(configured)
        name = _try_register(path, index)
        if name:
            return PdfFont(name, path, index)
        log.warning(
            "CARDOPS_PDF_FONT=%s cannot be used (missing, not TrueType outlines, or no Chinese "
            "glyphs); looking for a system font instead",
            configured,
        )
    seen: set[str] = set()
    for path in [*FONT_CANDIDATES, *fc_match_fonts()]:
        if path in seen:
            continue
        seen.add(path)
        name = _try_register(path, 0)
        if name:
            return PdfFont(name, path, 0)
    log.warning(
        "No CJK TrueType font found: receipts use %s, which is NOT embedded and prints as empty "
        "boxes on machines without Adobe's CJK fonts. Install fonts-wqy-zenhei or set "
        "CARDOPS_PDF_FONT to a .ttf/.ttc file.",
        FALLBACK_FONT,
    )
    if FALLBACK_FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FALLBACK_FONT))
    return PdfFont(FALLBACK_FONT, None)


def pdf_font() -> PdfFont:
    """The font receipts are printed with (looked up once per configured value)."""
    return _resolve(get_settings().pdf_font.strip())


def reset_font_cache() -> None:
    _resolve.cache_clear()


# --- the receipt --------------------------------------------------------------------------

METHOD_LABELS = {
    "cash": "现金 Cash",
    "card": "银行卡 Bank card",
    "transfer": "转账 Bank transfer",
    "wechat": "微信支付 WeChat Pay",
    "alipay": "支付宝 Alipay",
}


def _money(minor: int, currency: str) -> str:
    symbol = "¥" if currency == "CNY" else f"{currency} "
    return f"{symbol}{format_minor(minor)}"


def render_receipt_pdf(receipt: Receipt) -> bytes:
    """The customer's copy (客户联) of a receipt as a one-page A5 PDF."""
    font = pdf_font().name
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A5,
        leftMargin=12 * mm,
        rightMargin=12 * mm,
        topMargin=12 * mm,
        bottomMargin=12 * mm,
        title=f"收据 Receipt {receipt.number}",
        subject=f"Receipt {receipt.number}",
        author="cardops",
        creator="cardops",
    )
    base = ParagraphStyle("base", fontName=font, fontSize=9.5, leading=13, wordWrap="CJK")
    small = ParagraphStyle("small", parent=base, fontSize=8, leading=10, textColor=colors.grey)
    title = ParagraphStyle("title", parent=base, fontSize=22, leading=26, alignment=TA_CENTER)
    subtitle = ParagraphStyle("subtitle", parent=base, fontSize=10, alignment=TA_CENTER)
    right = ParagraphStyle("right", parent=base, alignment=TA_RIGHT)
    number_style = ParagraphStyle(
        "number", parent=base, fontSize=11, alignment=TA_RIGHT, textColor=colors.darkred
    )
    void_style = ParagraphStyle(
        "void", parent=base, fontSize=16, leading=20, alignment=TA_CENTER, textColor=colors.red
    )

    def p(text: str, style: ParagraphStyle = base) -> Paragraph:
        return Paragraph(escape(text), style)

    issued = local(receipt.issued_at)
    currency = receipt.currency
    story: list[Flowable] = [
        p("收  据", title),
        p("RECEIPT", subtitle),
        Spacer(1, 2 * mm),
        p(f"No. {receipt.number}", number_style),
        p("第一联 客户联 · Customer copy", right),
        Spacer(1, 3 * mm),
    ]
    width = doc.width
    header = Table(
        [
            [
                p("日期 Date"),
                p(issued.strftime("%Y-%m-%d %H:%M") + f" ({get_settings().timezone})"),
            ],
            [p("交款人 Received from"), p(receipt.payer_name)],
            [p("付款方式 Payment method"), p(METHOD_LABELS.get(receipt.method, receipt.method))],
        ],
        colWidths=[44 * mm, width - 44 * mm],
    )
    header.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
                ("TOPPADDING", (0, 0), (-1, -1), 3),
            ]
        )
    )
    story += [header, Spacer(1, 3 * mm)]

    rows = [[p("序号 No."), p("项目 Item"), p(f"金额 Amount ({currency})", right)]]
    for n, item in enumerate(receipt.items, start=1):
        rows.append(
            [
                p(str(n)),
                p(str(item.get("item", ""))),
                p(_money(int(item.get("amount", 0)), currency), right),
            ]
        )
    rows.append([p(""), p("合计 Total"), p(_money(receipt.amount, currency), right)])
    items = Table(rows, colWidths=[16 * mm, width - 56 * mm, 40 * mm], repeatRows=1)
    items.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.5, colors.black),
                ("BACKGROUND", (0, 0), (-1, 0), colors.Color(0.93, 0.95, 0.97)),
                ("BACKGROUND", (0, -1), (-1, -1), colors.Color(0.97, 0.97, 0.97)),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ]
        )
    )
    words = amount_in_words(receipt.amount)
    prefix = "人民币" if currency == "CNY" else f"{currency} "
    total = Table(
        [[p("大写金额 Amount in words"), p(prefix + words)]],
        colWidths=[44 * mm, width - 44 * mm],
    )
    total.setStyle(
        TableStyle(
            [
                ("BOX", (0, 0), (-1, -1), 0.5, colors.black),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
            ]
        )
    )
    story += [items, Spacer(1, 2 * mm), total, Spacer(1, 5 * mm)]

    issuer = receipt.issued_by.display_name if receipt.issued_by else ""
    signature = Table(
        [[p(f"收款人 Issued by: {issuer}"), p("收款单位（盖章）Stamp:", right)]],
        colWidths=[width / 2, width / 2],
    )
    story += [signature, Spacer(1, 8 * mm)]
    if receipt.voided_at is not None:
        story += [
            p("已作废  VOID", void_style),
            p(
                f"{local(receipt.voided_at).strftime('%Y-%m-%d %H:%M')} · {receipt.void_reason or ''}",
                subtitle,
            ),
            Spacer(1, 4 * mm),
        ]
    story.append(
        p(
            "本收据是付款凭证，请妥善保管。 Keep this receipt as proof of payment. "
            f"Posting {receipt.posting.number}",
            small,
        )
    )
    doc.build(story)
    return buffer.getvalue()
