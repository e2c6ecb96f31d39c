"""The quarterly card audit (《智能卡季度整理表》): counts by holder kind × state × building,
and the anomalies to check, with an Excel export and a server-side SVG bar chart.

Anomalies (as of the day the report is made):

* **expired but active**: state active and ``valid_until`` before today;
* **departed staff**: a live (active or lost) card of any kind held by a person who has a staff
  card cancelled with reason "left" (``cancel_staff_card(reason="left")``);
* **former owners**: a live owner, family, relative or nanny card whose unit's owner at issue
  (``Card.evidence["owner_person_id"]``, or the holder for an owner card) is no longer the
  unit's recorded owner;
* **lost cards used at a door**: door decisions with reason ``lost`` in the quarter;
* **expiring soon**: active cards that expire within 30 days.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from markupsafe import Markup, escape
from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cardops.access.models import AccessEvent, Building, Unit
from cardops.auth.models import User
from cardops.auth.service import require
from cardops.cards.models import Card, CardState, HolderKind
from cardops.cards.permissions import CARDS_REPORT
from cardops.cards.policy import HOLDER_LABELS, STAFF_KINDS, STATE_LABELS
from cardops.cards.service import LIVE_STATES, today
from cardops.core.i18n import N_, gettext
from cardops.parties.models import Person

ANOMALY_LABELS: dict[str, str] = {
    "expired_active": N_("Expired but active"),
    "departed_staff": N_("Cards of departed staff"),
    "former_owners": N_("Cards of former owners"),
    "lost_used": N_("Lost cards used at a door"),
    "expiring": N_("Expiring within 30 days"),
}
STATES = tuple(s.value for s in CardState if s not in (CardState.STOCK, CardState.OFFICE))


@dataclass(slots=True)
class AnomalyRow:
    card: str
    holder_kind: str
    person: str
    unit: str
    detail: str


@dataclass(slots=True)
class QuarterlyReport:
    quarter: str
    start: date
    end: date
    made_on: date
    # (holder kind, building code or "") -> state -> count
    counts: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)
    by_kind: dict[str, dict[str, int]] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)
    anomalies: dict[str, list[AnomalyRow]] = field(default_factory=dict)


def parse_quarter(text: str | None, *, on: date | None = None) -> tuple[str, date, date]:
    """``2026Q4`` → ("2026Q4", 2026-10-01, 2026-12-31); empty: the current quarter."""
    day = on or today()
    raw = (text or "").strip().upper()
    year, q = day.year, (day.month - 1) // 3 + 1
    if raw:
        try:
            y, qq = raw.split("Q")
            year, q = int(y), int(qq)
        except ValueError:
            year, q = 0, 0
        if not (2000 <= year <= 2100 and 1 <= q <= 4):
            from cardops.core.errors import ValidationFailed

            raise ValidationFailed("Enter a quarter like 2026Q4.", field="quarter")
    start = date(year, 3 * (q - 1) + 1, 1)
    end = (date(year + 1, 1, 1) if q == 4 else date(year, 3 * q + 1, 1)) - timedelta(days=1)
    return f"{year}Q{q}", start, end


def _row(card: Card, persons: dict[int, Person], units: dict[int, str], detail: str) -> AnomalyRow:
    person = persons.get(card.person_id or 0)
    return AnomalyRow(
        card=card.number,
        holder_kind=card.holder_kind or "",
        person=person.name if person else "",
        unit=units.get(card.unit_id or 0, ""),
        detail=detail,
    )


def quarterly_report(
    *, session: Session, actor: User, quarter: str | None = None
) -> QuarterlyReport:
    require(actor, CARDS_REPORT)
    label, start, end = parse_quarter(quarter)
    now = today()
    report = QuarterlyReport(quarter=label, start=start, end=end, made_on=now)
    unit_building = {
        uid: code
        for uid, code in session.execute(
            select(Unit.id, Building.code).join(Building, Building.id == Unit.building_id)
        ).all()
    }
    units = dict(session.execute(select(Unit.id, Unit.code)).all())
    rows = session.execute(
        select(Card.holder_kind, Card.unit_id, Card.state, func.count())
        .where(Card.holder_kind.is_not(None))
        .group_by(Card.holder_kind, Card.unit_id, Card.state)
    ).all()
    for kind, unit_id, state, n in rows:
        key = (str(kind), unit_building.get(unit_id, "") if unit_id else "")
        report.counts.setdefault(key, {})
        report.counts[key][state] = report.counts[key].get(state, 0) + int(n)
        report.by_kind.setdefault(str(kind), {})
        report.by_kind[str(kind)][state] = report.by_kind[str(kind)].get(state, 0) + int(n)
        report.totals[state] = report.totals.get(state, 0) + int(n)

    live = list(
        session.execute(
            select(Card).where(Card.state.in_(LIVE_STATES)).order_by(Card.number)
        ).scalars()
    )
    person_ids = {c.person_id for c in live if c.person_id}
    persons = {
        p.id: p
        for p in session.execute(select(Person).where(Person.id.in_(person_ids or {0}))).scalars()
    }
    owners = dict(session.execute(select(Unit.id, Unit.owner_person_id)).all())

    # departed staff: persons with a staff card cancelled because they left
    departed_ids = {
        pid
        for (pid,) in session.execute(
            select(Card.person_id).where(
                Card.state == CardState.CANCELLED.value,
                Card.state_reason == "staff_left",
                Card.holder_kind.in_([k.value for k in STAFF_KINDS]),
            )
        ).all()
        if pid
    }
    anomalies: dict[str, list[AnomalyRow]] = {k: [] for k in ANOMALY_LABELS}
    for card in live:
        if card.state == CardState.ACTIVE.value and card.valid_until and card.valid_until < now:
            anomalies["expired_active"].append(
                _row(card, persons, units, card.valid_until.isoformat())
            )
        if card.person_id in departed_ids:
            anomalies["departed_staff"].append(_row(card, persons, units, card.state))
        if (
            card.holder_kind
            in (
                HolderKind.OWNER.value,
                HolderKind.FAMILY.value,
                HolderKind.RELATIVE.value,
                HolderKind.NANNY.value,
            )
            and card.unit_id
        ):
            at_issue = (card.evidence or {}).get("owner_person_id")
            if card.holder_kind == HolderKind.OWNER.value:
                at_issue = card.person_id
            current = owners.get(card.unit_id)
            if at_issue and current != at_issue:
                anomalies["former_owners"].append(_row(card, persons, units, card.state))
        if (
            card.state == CardState.ACTIVE.value
            and card.valid_until
            and now <= card.valid_until <= now + timedelta(days=30)
        ):
            anomalies["expiring"].append(_row(card, persons, units, card.valid_until.isoformat()))

    lost_rows = session.execute(
        select(AccessEvent.card_id, func.count(), func.max(AccessEvent.at))
        .where(
            AccessEvent.reason == "lost",
            AccessEvent.card_id.is_not(None),
            AccessEvent.at >= datetime.combine(start, datetime.min.time()),
            AccessEvent.at < datetime.combine(end + timedelta(days=1), datetime.min.time()),
        )
        .group_by(AccessEvent.card_id)
    ).all()
    for card_id, n, last in lost_rows:
        used = session.get(Card, card_id)
        if used is None:
            continue
        if used.person_id and used.person_id not in persons:
            person = session.get(Person, used.person_id)
            if person:
                persons[person.id] = person
        last_text = last.strftime("%Y-%m-%d %H:%M") if last else ""
        anomalies["lost_used"].append(_row(used, persons, units, f"{n} × · {last_text}"))
    report.anomalies = anomalies
    return report


def kind_label(kind: str) -> str:
    return gettext(HOLDER_LABELS.get(kind, kind))


def chart_svg(report: QuarterlyReport, *, width: int = 640) -> Markup:
    """A horizontal bar chart: cards per holder kind, active and other states stacked."""
    kinds = [k.value for k in HolderKind]
    bar_h, gap, left, top = 18, 8, 150, 10
    height = top + len(kinds) * (bar_h + gap) + 30
    most = max([sum(report.by_kind.get(k, {}).values()) for k in kinds] + [1])
    scale = (width - left - 60) / most
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" id="cards-chart" aria-label="{escape(gettext("Cards by holder kind"))}">'
    ]
    colours = {"active": "#2e7d32", "lost": "#c62828"}
    for i, kind in enumerate(kinds):
        y = top + i * (bar_h + gap)
        states = report.by_kind.get(kind, {})
        parts.append(
            f'<text x="{left - 6}" y="{y + bar_h - 5}" text-anchor="end" font-size="12">'
            f"{escape(kind_label(kind))}</text>"
        )
        x = float(left)
        for state in ("active", "lost", *[s for s in STATES if s not in ("active", "lost")]):
            n = states.get(state, 0)
            if not n:
                continue
            w = n * scale
            parts.append(
                f'<rect x="{x:.1f}" y="{y}" width="{max(w, 1):.1f}" height="{bar_h}" '
                f'fill="{colours.get(state, "#9e9e9e")}" data-kind="{kind}" data-state="{state}">'
                f"<title>{escape(kind_label(kind))} · {escape(gettext(STATE_LABELS.get(state, state)))}: {n}</title></rect>"
            )
            x += w
        total = sum(states.values())
        parts.append(f'<text x="{x + 4:.1f}" y="{y + bar_h - 5}" font-size="12">{total}</text>')
    ly = height - 12
    for j, (state, colour) in enumerate(
        (("active", "#2e7d32"), ("lost", "#c62828"), ("other", "#9e9e9e"))
    ):
        lx = left + j * 110
        parts.append(f'<rect x="{lx}" y="{ly - 10}" width="12" height="12" fill="{colour}"/>')
        parts.append(
            f'<text x="{lx + 16}" y="{ly}" font-size="12">{escape(gettext(STATE_LABELS[state]))}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def to_excel(report: QuarterlyReport) -> bytes:
    """One sheet per table: counts, and each anomaly."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Counts 统计"
    sheet.append(
        [f"智能卡季度整理表 {report.quarter}", report.start.isoformat(), report.end.isoformat()]
    )
    sheet.append(["Holder kind 持卡人类别", "Building 楼栋", *STATES, "Total 合计"])
    for (kind, building), states in sorted(report.counts.items()):
        sheet.append(
            [kind_label(kind), building, *[states.get(s, 0) for s in STATES], sum(states.values())]
        )
    sheet.append(
        ["Total 合计", "", *[report.totals.get(s, 0) for s in STATES], sum(report.totals.values())]
    )
    titles = {
        "expired_active": "Expired active 过期未停",
        "departed_staff": "Departed staff 离职员工",
        "former_owners": "Former owners 原业主",
        "lost_used": "Lost used 挂失后刷卡",
        "expiring": "Expiring 即将到期",
    }
    for key, rows in report.anomalies.items():
        ws = book.create_sheet(titles[key][:31])
        ws.append(["Card 卡号", "Holder kind 类别", "Holder 持卡人", "Unit 房号", "Detail 说明"])
        for row in rows:
            ws.append([row.card, kind_label(row.holder_kind), row.person, row.unit, row.detail])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def register_excel(rows: list[Any], *, title: str) -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = title[:31]
    sheet.append(
        [
            "Time 时间",
            "Event 事项",
            "Card 卡号",
            "Class 卡类",
            "Holder kind 类别",
            "Holder 持卡人",
            "Unit 房号",
            "Fee 工本费",
            "Deposit 押金",
            "Receipt 收据",
            "Signed 签收",
            "Clerk 经办",
        ]
    )
    from cardops.core.clock import local

    for r in rows:
        sheet.append(
            [
                local(r.at).strftime("%Y-%m-%d %H:%M"),
                r.kind,
                r.card.number,
                r.card.card_class or "",
                kind_label(r.card.holder_kind or ""),
                r.person.name if r.person else "",
                r.unit,
                r.data.get("fee", ""),
                r.data.get("deposit", ""),
                r.data.get("receipt", ""),
                "✓" if r.card.acknowledged_at else "",
                r.actor,
            ]
        )
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
