"""Activation reports: an Excel workbook and an inline SVG bar chart of monthly activations."""

from __future__ import annotations

import io

from markupsafe import Markup, escape
from openpyxl import Workbook
from openpyxl.styles import Font

from cardops.core.clock import local
from cardops.core.i18n import gettext
from cardops.merchants.service import CASE_STATE_LABELS, ActivationReport


def report_xlsx(report: ActivationReport) -> bytes:
    """Sheets: activations by provider, by region (one column per month), overdue cases."""
    book = Workbook()
    bold = Font(bold=True)
    sheets = (
        (gettext("By provider"), gettext("Provider"), report.by_provider),
        (gettext("By region"), gettext("Region"), report.by_region),
    )
    first = True
    for title, label, rows in sheets:
        sheet = book.active if first else book.create_sheet()
        assert sheet is not None
        first = False
        sheet.title = title[:31]
        sheet.append([label, *report.months, gettext("Total")])
        for cell in sheet[1]:
            cell.font = bold
        for name, counts, total in rows:
            sheet.append([name, *counts, total])
        sheet.append([gettext("Total"), *report.totals, sum(report.totals)])
        sheet.column_dimensions["A"].width = 32
    overdue = book.create_sheet(gettext("Overdue activations")[:31])
    overdue.append(
        [
            gettext("Case"),
            gettext("Kind"),
            gettext("State"),
            gettext("Region"),
            gettext("Submitted"),
            gettext("Due"),
        ]
    )
    for cell in overdue[1]:
        cell.font = bold
    for case in report.overdue:
        overdue.append(
            [
                case.number,
                case.kind,
                gettext(CASE_STATE_LABELS.get(case.state, case.state)),
                case.region_code or "",
                local(case.submitted_at).strftime("%Y-%m-%d %H:%M"),
                local(case.due_at).strftime("%Y-%m-%d %H:%M") if case.due_at else "",
            ]
        )
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def bar_chart_svg(labels: list[str], values: list[int], *, title: str) -> Markup:
    """A small accessible bar chart (no scripts) for the console."""
    width, height, left, bottom, top = 640, 220, 36, 28, 24
    count = max(1, len(values))
    peak = max(values or [0]) or 1
    slot = (width - left - 8) / count
    bar = max(4.0, slot * 0.7)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{escape(title)}" class="chart" id="activations-chart">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - 4}" y2="{height - bottom}" '
        'stroke="#9fb3c8"/>',
    ]
    usable = height - bottom - top
    for i, (label, value) in enumerate(zip(labels, values, strict=False)):
        h = usable * value / peak
        x = left + i * slot + (slot - bar) / 2
        y = height - bottom - h
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" fill="#0b6bcb">'
            f"<title>{escape(label)}: {value}</title></rect>"
        )
        if value:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{y - 4:.1f}" font-size="11" '
                f'text-anchor="middle">{value}</text>'
            )
        parts.append(
            f'<text x="{x + bar / 2:.1f}" y="{height - 10}" font-size="10" '
            f'text-anchor="middle">{escape(label[2:])}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
