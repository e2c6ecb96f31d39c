"""The printable field service record (客户服务记录表) as an A4 PDF, laid out like the paper
form: basic information, service record, device replacements, preventive checklist, service
result with the customer's drawn signature, call-centre registration number.

The Chinese font is the one the receipts embed (``ledger.receipts_pdf.pdf_font``: WenQuanYi Zen
Hei on Debian), so the record prints the same everywhere.
"""

from __future__ import annotations

import io
from datetime import datetime
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import (
    Flowable,
    Image,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)
from sqlalchemy.orm import Session

from cardops.auth.models import User
from cardops.core.clock import local
from cardops.ledger.receipts_pdf import pdf_font
from cardops.repairs import service
from cardops.repairs.models import (
    REPLACEMENT_KINDS,
    SATISFACTION,
    SERVICE_TYPES,
    WARRANTY_STATES,
    FieldVisit,
)

SERVICE_ZH = {"inspection": "巡检", "repair": "报修处理", "other": "其他"}
WARRANTY_ZH = {"in": "保内", "out": "保外", "other": "其他"}
KIND_ZH = {"part": "换件", "repair": "维修", "whole": "整机更换"}
SATISFACTION_ZH = {
    "very_satisfied": "非常满意",
    "satisfied": "满意",
    "neutral": "一般",
    "dissatisfied": "不满意",
    "very_dissatisfied": "非常不满意",
}


def _when(value: datetime | None) -> str:
    return local(value).strftime("%Y-%m-%d %H:%M") if value is not None else ""


def _boxes(options: dict[str, str], chosen: str, zh: dict[str, str]) -> str:
    return "  ".join(
        ("■ " if code == chosen else "□ ") + zh.get(code, code) + f" {label}"
        for code, label in options.items()
    )


def render_visit_pdf(session: Session, visit: FieldVisit) -> bytes:
    font = pdf_font().name
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=14 * mm,
        rightMargin=14 * mm,
        topMargin=12 * mm,
        bottomMargin=12 * mm,
        title=f"客户服务记录表 {visit.number}",
        author="cardops",
        creator="cardops",
    )
    base = ParagraphStyle("base", fontName=font, fontSize=9, leading=12, wordWrap="CJK")
    head = ParagraphStyle("head", parent=base, fontSize=10, leading=13)
    title = ParagraphStyle("title", parent=base, fontSize=18, leading=24, alignment=TA_CENTER)
    right = ParagraphStyle("right", parent=base, alignment=TA_RIGHT)

    def p(text: str, style: ParagraphStyle = base) -> Paragraph:
        return Paragraph(escape(text).replace("\n", "<br/>"), style)

    width = doc.width
    label_w = 30 * mm
    grid = TableStyle(
        [
            ("GRID", (0, 0), (-1, -1), 0.5, colors.black),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("BACKGROUND", (0, 0), (0, -1), colors.Color(0.94, 0.95, 0.97)),
        ]
    )
    technician = session.get(User, visit.technician_id) if visit.technician_id else None
    service_type = _boxes(SERVICE_TYPES, visit.service_type, SERVICE_ZH) + (
        f" {visit.service_type_other}" if visit.service_type_other else ""
    )
    warranty = _boxes(WARRANTY_STATES, visit.warranty, WARRANTY_ZH) + (
        f" {visit.warranty_other}" if visit.warranty_other else ""
    )
    story: list[Flowable] = [
        p("客户服务记录表", title),
        p("Customer service record", ParagraphStyle("sub", parent=base, alignment=TA_CENTER)),
        Spacer(1, 2 * mm),
        p(f"表编号 Form No. {visit.number}", right),
        Spacer(1, 2 * mm),
    ]
    basic = Table(
        [
            [p("客户单位 Customer"), p(visit.customer_name)],
            [p("客户地址 Address"), p(visit.address)],
            [p("联系人 Contact"), p(f"{visit.contact_name}  电话 Tel: {visit.contact_phone}")],
            [p("服务类型 Type"), p(service_type)],
            [p("服务状态 Warranty"), p(warranty)],
            [p("设备序列号 Serial"), p(visit.serial)],
            [p("到达时间 Arrival"), p(_when(visit.arrived_at))],
            [p("离开时间 Departure"), p(_when(visit.departed_at))],
        ],
        colWidths=[label_w, width - label_w],
    )
    basic.setStyle(grid)
    story += [p("基本信息 Basic information", head), basic, Spacer(1, 3 * mm)]
    record_table = Table(
        [
            [p("问题情况记录 Problem"), p(visit.problem)],
            [p("服务情况记录 Work done"), p(visit.work_notes)],
            [p("维修工程师 Engineer"), p(technician.display_name if technician else "")],
        ],
        colWidths=[label_w, width - label_w],
    )
    record_table.setStyle(grid)
    story += [p("服务记录 Service record", head), record_table, Spacer(1, 3 * mm)]

    rows = [
        [
            p("设备名称 Device"),
            p("数量 Qty"),
            p("维修类型 Type"),
            p("原设备序列号 Old serial"),
            p("更换后设备序列号 New serial"),
        ]
    ]
    for r in service.visit_replacements(session, visit):
        rows.append(
            [
                p(r.device_name),
                p(str(r.quantity)),
                p(_boxes(REPLACEMENT_KINDS, r.kind, KIND_ZH)),
                p(r.old_serial),
                p(r.new_serial),
            ]
        )
    if len(rows) == 1:
        rows.append([p("—"), p(""), p(""), p(""), p("")])
    replacements = Table(
        rows, colWidths=[30 * mm, 12 * mm, width - 122 * mm, 40 * mm, 40 * mm], repeatRows=1
    )
    replacements.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.5, colors.black),
                ("BACKGROUND", (0, 0), (-1, 0), colors.Color(0.94, 0.95, 0.97)),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    story += [p("设备更换记录 Device replacements", head), replacements, Spacer(1, 3 * mm)]

    checks = service.visit_checks(session, visit)
    check_rows = [[p(("■ " if c.checked else "□ ") + c.label), p(c.note)] for c in checks] or [
        [p("—"), p("")]
    ]
    check_table = Table(check_rows, colWidths=[60 * mm, width - 60 * mm])
    check_table.setStyle(
        TableStyle(
            [("GRID", (0, 0), (-1, -1), 0.5, colors.black), ("VALIGN", (0, 0), (-1, -1), "TOP")]
        )
    )
    story += [p("预防性检查 Preventive checklist", head), check_table, Spacer(1, 3 * mm)]

    signature_png = service.signature_bytes(session, visit)
    signature: Flowable = p("")
    if signature_png:
        image = Image(io.BytesIO(signature_png))
        scale = min(60 * mm / max(image.imageWidth, 1), 22 * mm / max(image.imageHeight, 1))
        image.drawWidth = image.imageWidth * scale
        image.drawHeight = image.imageHeight * scale
        signature = image
    ok = {True: "■ 是 Yes  □ 否 No", False: "□ 是 Yes  ■ 否 No", None: "□ 是 Yes  □ 否 No"}
    result = Table(
        [
            [
                p("满意度 Satisfaction"),
                p(_boxes(SATISFACTION, visit.satisfaction or "", SATISFACTION_ZH)),
            ],
            [p("不满意原因及建议 Remarks"), p(visit.satisfaction_note)],
            [p("仪器是否正常工作 Device works"), p(ok[visit.device_ok])],
            [p("存在其他问题 Other issues"), p(visit.other_issues)],
            [p("客户确认签章 Customer sign-off"), signature],
            [
                p("签名人 Signed by"),
                p(f"{visit.signed_name}    {_when(visit.signed_at)}"),
            ],
            [p("呼叫中心登记 Call-centre no."), p(visit.registration_number)],
        ],
        colWidths=[label_w + 10 * mm, width - label_w - 10 * mm],
    )
    result.setStyle(grid)
    story += [p("服务结果 Service result", head), result]
    doc.build(story)
    return buffer.getvalue()
