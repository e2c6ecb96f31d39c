"""The delivery note (发货单) as PDF: one copy each for the channel team, the warehouse and
finance (渠道联 / 仓库联 / 财务联, seed 002: "所有发货单一式三份"). Every copy starts on a new
page with the same content and its copy label; the CJK font is embedded (ledger's lookup)."""

from __future__ import annotations

import io
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import (
    Flowable,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from cardops.channel.models import ProviderOrder
from cardops.core.clock import local, utcnow
from cardops.core.money import format_minor
from cardops.ledger.receipts_pdf import pdf_font

COPIES: tuple[tuple[str, str], ...] = (
    ("第一联 渠道联", "Channel copy"),
    ("第二联 仓库联", "Warehouse copy"),
    ("第三联 财务联", "Finance copy"),
)


def render_delivery_note(order: ProviderOrder) -> bytes:
    font = pdf_font().name
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=14 * mm,
        bottomMargin=14 * mm,
        title=f"发货单 Delivery note {order.number}",
        author="cardops",
        creator="cardops",
    )
    base = ParagraphStyle("base", fontName=font, fontSize=9.5, leading=13, wordWrap="CJK")
    title = ParagraphStyle("title", parent=base, fontSize=20, leading=24, alignment=TA_CENTER)
    subtitle = ParagraphStyle("subtitle", parent=base, fontSize=10, alignment=TA_CENTER)
    right = ParagraphStyle("right", parent=base, alignment=TA_RIGHT)
    label = ParagraphStyle(
        "label", parent=base, fontSize=11, alignment=TA_RIGHT, textColor=colors.darkred
    )

    def p(text: str, style: ParagraphStyle = base) -> Paragraph:
        return Paragraph(escape(text), style)

    width = doc.width
    grid = TableStyle(
        [
            ("GRID", (0, 0), (-1, -1), 0.5, colors.black),
            ("BACKGROUND", (0, 0), (-1, 0), colors.Color(0.93, 0.95, 0.97)),
            ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ]
    )
    codes = {line.model_id: line.model.code for line in order.lines}

    def copy(zh: str, en: str) -> list[Flowable]:
        dispatched = local(order.dispatched_at or utcnow()).strftime("%Y-%m-%d %H:%M")
        header = Table(
            [
                [p("发货方 From"), p(order.seller.name), p("收货方 To"), p(order.buyer.name)],
                [p("发货时间 Date"), p(dispatched), p("订单号 Order"), p(order.number)],
                [
                    p("承运商 Carrier"),
                    p(order.carrier or "—"),
                    p("运单号 Tracking no."),
                    p(order.tracking_no or "—"),
                ],
            ],
            colWidths=[28 * mm, width / 2 - 28 * mm, 30 * mm, width / 2 - 30 * mm],
        )
        lines = [
            [p("机型 Model"), p("数量 Qty", right), p("单价 Price", right), p("金额 Amount", right)]
        ]
        for line in order.lines:
            lines.append(
                [
                    p(f"{line.model.code} {line.model.name}"),
                    p(str(line.quantity), right),
                    p(format_minor(line.unit_price), right),
                    p(format_minor(line.amount), right),
                ]
            )
        lines.append(
            [
                p("合计 Total"),
                p(str(sum(x.quantity for x in order.lines)), right),
                p(""),
                p(format_minor(order.total), right),
            ]
        )
        table = Table(lines, colWidths=[width - 90 * mm, 25 * mm, 30 * mm, 35 * mm])
        table.setStyle(grid)
        serial_rows = [[p("#"), p("序列号 SN"), p("机型 Model"), p("IMEI"), p("ICCID")]]
        for n, picked in enumerate(order.serials, start=1):
            unit = picked.terminal
            serial_rows.append(
                [
                    p(str(n)),
                    p(unit.serial),
                    p(codes.get(unit.model_id, "")),
                    p(unit.imei or ""),
                    p(unit.iccid or ""),
                ]
            )
        serials = Table(
            serial_rows,
            colWidths=[10 * mm, 45 * mm, 30 * mm, 40 * mm, width - 125 * mm],
            repeatRows=1,
        )
        serials.setStyle(grid)
        signatures = Table(
            [[p("发货人 Sent by:"), p("复核 Checked by:"), p("收货人签收 Received by:")]],
            colWidths=[width / 3] * 3,
        )
        return [
            p("发 货 单", title),
            p("DELIVERY NOTE", subtitle),
            Spacer(1, 2 * mm),
            p(f"{zh} · {en}", label),
            Spacer(1, 3 * mm),
            header,
            Spacer(1, 4 * mm),
            table,
            Spacer(1, 4 * mm),
            p("机具三码 Serials"),
            Spacer(1, 1 * mm),
            serials,
            Spacer(1, 10 * mm),
            signatures,
        ]

    story: list[Flowable] = []
    for n, (zh, en) in enumerate(COPIES):
        if n:
            story.append(PageBreak())
        story += copy(zh, en)
    doc.build(story)
    return buffer.getvalue()
