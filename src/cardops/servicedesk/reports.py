"""Service desk reports: tickets by kind / state / age, SLA attainment, first-contact
resolution, repair turnaround (from the repairs domain's cases), top fault types per terminal
model, satisfaction, agent KPIs; an Excel workbook and inline SVG bar charts.

The period is the creation date of the tickets (local dates, both ends included); surveys count
by the day they were answered, repair cases by the day they were returned.
"""

from __future__ import annotations

import io
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from statistics import median
from typing import Any
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape
from openpyxl import Workbook
from openpyxl.styles import Font
from sqlalchemy import select
from sqlalchemy.orm import Session

from cardops.auth.models import User
from cardops.auth.service import require
from cardops.core.clock import as_utc, utcnow
from cardops.core.config import get_settings
from cardops.core.errors import ValidationFailed
from cardops.core.i18n import gettext
from cardops.servicedesk import service
from cardops.servicedesk.models import (
    ACTIVE_STATES,
    KINDS,
    SLA_TARGETS,
    STATE_LABELS,
    Survey,
    Team,
    Ticket,
)
from cardops.servicedesk.permissions import REPORTS_VIEW

MAX_DAYS = 366
AGE_BUCKETS: tuple[tuple[str, int], ...] = (("< 1d", 1), ("1–3d", 3), ("3–7d", 7), ("> 7d", 10**6))


def period(start: str, end: str) -> tuple[date, date]:
    """Parse the report period (YYYY-MM-DD, default: the last 30 days)."""
    today = utcnow().astimezone(ZoneInfo(get_settings().timezone)).date()
    try:
        last = date.fromisoformat(end) if end.strip() else today
    except ValueError:
        raise ValidationFailed("Enter the date as YYYY-MM-DD.", field="end") from None
    try:
        first = date.fromisoformat(start) if start.strip() else last - timedelta(days=29)
    except ValueError:
        raise ValidationFailed("Enter the date as YYYY-MM-DD.", field="start") from None
    if first > last:
        raise ValidationFailed("The start date is after the end date.", field="start")
    if (last - first).days >= MAX_DAYS:
        raise ValidationFailed("A report covers at most {n} days.", field="start", n=MAX_DAYS)
    return first, last


@dataclass
class Rate:
    met: int = 0
    total: int = 0

    @property
    def percent(self) -> float | None:
        return round(100 * self.met / self.total, 1) if self.total else None


@dataclass
class AgentKpi:
    user_id: int
    name: str
    handled: int = 0
    resolved: int = 0
    sla: Rate = field(default_factory=Rate)
    scores: list[int] = field(default_factory=list)

    @property
    def satisfaction(self) -> float | None:
        return round(sum(self.scores) / len(self.scores), 2) if self.scores else None


@dataclass
class Report:
    start: date
    end: date
    total: int = 0
    by_kind_state: dict[str, Counter[str]] = field(default_factory=dict)
    age: dict[str, Counter[str]] = field(default_factory=dict)  # open tickets: bucket → kind
    sla: dict[str, Rate] = field(default_factory=dict)
    sla_by_kind: dict[str, Rate] = field(default_factory=dict)
    fcr: Rate = field(default_factory=Rate)
    repairs_available: bool = False
    repair_turnaround: list[tuple[str, int, float | None, float | None]] = field(
        default_factory=list
    )  # route, count, median hours, average hours
    faults: list[tuple[str, str, int]] = field(default_factory=list)  # model, fault, count
    satisfaction_kind: dict[str, list[int]] = field(default_factory=dict)
    satisfaction_team: dict[str, list[int]] = field(default_factory=dict)
    satisfaction_agent: dict[str, list[int]] = field(default_factory=dict)
    surveys_sent: int = 0
    agents: list[AgentKpi] = field(default_factory=list)

    @property
    def kinds(self) -> list[str]:
        return list(KINDS)

    @property
    def states(self) -> list[str]:
        return list(STATE_LABELS)

    @staticmethod
    def average(scores: list[int]) -> float | None:
        return round(sum(scores) / len(scores), 2) if scores else None


def _bounds(start: date, end: date) -> tuple[datetime, datetime]:
    zone = ZoneInfo(get_settings().timezone)
    return (
        datetime.combine(start, time(0), zone),
        datetime.combine(end + timedelta(days=1), time(0), zone),
    )


def build(session: Session, actor: User, start: date, end: date) -> Report:
    require(actor, REPORTS_VIEW)
    since, until = _bounds(start, end)
    now = utcnow()
    report = Report(start=start, end=end)
    tickets = list(
        session.scalars(select(Ticket).where(Ticket.created_at >= since, Ticket.created_at < until))
    )
    report.total = len(tickets)
    report.by_kind_state = {k: Counter() for k in KINDS}
    report.sla = {t: Rate() for t in SLA_TARGETS if t != "update"}
    report.sla_by_kind = {k: Rate() for k in KINDS}
    agents: dict[int, AgentKpi] = {}
    users = {u.id: u.display_name for u in session.scalars(select(User))}

    def kpi(user_id: int) -> AgentKpi:
        if user_id not in agents:
            agents[user_id] = AgentKpi(user_id, users.get(user_id, str(user_id)))
        return agents[user_id]

    for ticket in tickets:
        if ticket.state == "merged":
            continue
        report.by_kind_state.setdefault(ticket.kind, Counter())[ticket.state] += 1
        view = service.sla_view(ticket, now)
        all_met = True
        counted = False
        for target in view.targets:
            if target.target == "update" or target.due is None:
                continue
            decided = target.met_at is not None or target.breached
            if not decided:
                continue
            counted = True
            ok = not target.breached
            all_met = all_met and ok
            rate = report.sla[target.target]
            rate.total += 1
            rate.met += int(ok)
        if counted:
            report.sla_by_kind[ticket.kind].total += 1
            report.sla_by_kind[ticket.kind].met += int(all_met)
        if ticket.state in ("resolved", "closed"):
            report.fcr.total += 1
            report.fcr.met += int(ticket.first_contact_resolution)
        owner = ticket.assignee_id or ticket.created_by_id
        if owner and owner in users:
            agent = kpi(owner)
            agent.handled += 1
            agent.resolved += int(ticket.state in ("resolved", "closed"))
            if counted:
                agent.sla.total += 1
                agent.sla.met += int(all_met)
    # age of the tickets still open (whenever they were created)
    report.age = {label: Counter() for label, _ in AGE_BUCKETS}
    for created, kind in session.execute(
        select(Ticket.created_at, Ticket.kind).where(Ticket.state.in_(ACTIVE_STATES))
    ):
        days = (now - as_utc(created)).total_seconds() / 86400
        label = next(lbl for lbl, limit in AGE_BUCKETS if days < limit)
        report.age[label][kind] += 1
    _faults_and_repairs(session, report, since, until)
    # satisfaction (answered in the period)
    teams = {t.id: t.name for t in session.scalars(select(Team))}
    sent = session.scalars(
        select(Survey).where(Survey.sent_at >= since, Survey.sent_at < until)
    ).all()
    report.surveys_sent = len(sent)
    for survey in session.scalars(
        select(Survey).where(Survey.answered_at >= since, Survey.answered_at < until)
    ):
        if survey.score is None:
            continue
        report.satisfaction_kind.setdefault(survey.kind, []).append(survey.score)
        team = teams.get(survey.team_id or 0, "—")
        report.satisfaction_team.setdefault(team, []).append(survey.score)
        if survey.agent_id:
            name = users.get(survey.agent_id, str(survey.agent_id))
            report.satisfaction_agent.setdefault(name, []).append(survey.score)
            if survey.agent_id in users:
                kpi(survey.agent_id).scores.append(survey.score)
    report.agents = sorted(agents.values(), key=lambda a: (-a.handled, a.name))
    return report


def _faults_and_repairs(session: Session, report: Report, since: datetime, until: datetime) -> None:
    from cardops.terminals.models import Terminal, TerminalModel

    models = {m.id: m.name for m in session.scalars(select(TerminalModel))}
    counts: Counter[tuple[str, str]] = Counter()
    for fault, model_id in session.execute(
        select(Ticket.fault_type, Terminal.model_id)
        .join(Terminal, Terminal.id == Ticket.terminal_id)
        .where(
            Ticket.kind == "fault",
            Ticket.fault_type != "",
            Ticket.created_at >= since,
            Ticket.created_at < until,
        )
    ):
        counts[(models.get(model_id, "?"), fault)] += 1
    try:
        from cardops.repairs.models import RepairCase
    except ImportError:  # pragma: no cover - the repairs domain is optional
        RepairCase = None  # type: ignore[assignment,misc]
    if RepairCase is not None:
        report.repairs_available = True
        for code, inspected, model_id in session.execute(
            select(
                RepairCase.fault_code, RepairCase.inspected_fault_code, RepairCase.model_id
            ).where(RepairCase.received_at >= since, RepairCase.received_at < until)
        ):
            counts[(models.get(model_id, "?"), inspected or code)] += 1
        hours: dict[str, list[float]] = defaultdict(list)
        for route, received, returned in session.execute(
            select(RepairCase.route, RepairCase.received_at, RepairCase.returned_at).where(
                RepairCase.returned_at >= since, RepairCase.returned_at < until
            )
        ):
            if returned is None:
                continue
            spent = (as_utc(returned) - as_utc(received)).total_seconds() / 3600
            hours[route or "none"].append(spent)
            hours["all"].append(spent)
        for route, values in sorted(hours.items()):
            report.repair_turnaround.append(
                (route, len(values), round(median(values), 1), round(sum(values) / len(values), 1))
            )
    by_model: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for (model, fault), n in counts.most_common():
        if len(by_model[model]) < 5:
            by_model[model].append((fault, n))
    report.faults = [(model, fault, n) for model, rows in by_model.items() for fault, n in rows]


# --- charts ---------------------------------------------------------------------------------


def bar_chart(
    rows: list[tuple[str, float]], *, title: str, chart_id: str, unit: str = ""
) -> Markup:
    """Horizontal bars, one per row, value written at the end; no scripts."""
    width, row_h, left = 560, 22, 170
    height = max(1, len(rows)) * row_h + 28
    peak = max((v for _, v in rows), default=0) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'class="chart" id="{escape(chart_id)}" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    for i, (label, value) in enumerate(rows):
        y = 20 + i * row_h
        w = (width - left - 60) * value / peak
        text = f"{value:g}{unit}"
        parts.append(
            f'<text x="{left - 6}" y="{y + 14}" font-size="12" text-anchor="end">'
            f"{escape(label[:26])}</text>"
            f'<rect x="{left}" y="{y + 2}" width="{w:.1f}" height="{row_h - 6}" fill="#0b6bcb">'
            f"<title>{escape(label)}: {escape(text)}</title></rect>"
            f'<text x="{left + w + 4:.1f}" y="{y + 14}" font-size="12">{escape(text)}</text>'
        )
    if not rows:
        parts.append(f'<text x="10" y="30" font-size="12">{escape(gettext("No data"))}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def charts(report: Report) -> dict[str, Markup]:
    kind = [
        (gettext(KINDS[k]), float(sum(report.by_kind_state.get(k, Counter()).values())))
        for k in KINDS
    ]
    sla = [
        (gettext(SLA_TARGETS[t]), rate.percent or 0.0)
        for t, rate in report.sla.items()
        if rate.total
    ]
    sat = [
        (gettext(KINDS.get(k, k)), Report.average(v) or 0.0)
        for k, v in report.satisfaction_kind.items()
    ]
    return {
        "kinds": bar_chart(kind, title=gettext("Tickets by kind"), chart_id="chart-kinds"),
        "sla": bar_chart(sla, title=gettext("SLA attainment"), chart_id="chart-sla", unit="%"),
        "satisfaction": bar_chart(
            sat, title=gettext("Satisfaction by kind"), chart_id="chart-satisfaction"
        ),
    }


# --- Excel ----------------------------------------------------------------------------------


def to_xlsx(report: Report) -> bytes:
    book = Workbook()
    bold = Font(bold=True)

    def sheet(title: str, header: list[str], rows: list[list[Any]], first: bool = False) -> None:
        ws = book.active if first else book.create_sheet()
        assert ws is not None
        ws.title = title[:31]
        ws.append(header)
        for cell in ws[1]:
            cell.font = bold
        for row in rows:
            ws.append(row)
        ws.column_dimensions["A"].width = 24

    states = list(STATE_LABELS)
    sheet(
        gettext("By kind and state"),
        [gettext("Kind"), *[gettext(STATE_LABELS[s]) for s in states], gettext("Total")],
        [
            [
                gettext(KINDS[k]),
                *[report.by_kind_state[k][s] for s in states],
                sum(report.by_kind_state[k].values()),
            ]
            for k in KINDS
        ],
        first=True,
    )
    sheet(
        gettext("Open by age"),
        [gettext("Age"), *[gettext(KINDS[k]) for k in KINDS]],
        [[label, *[report.age[label][k] for k in KINDS]] for label, _ in AGE_BUCKETS],
    )
    sheet(
        gettext("SLA attainment"),
        [gettext("Target"), gettext("Met"), gettext("Total"), "%"],
        [[gettext(SLA_TARGETS[t]), r.met, r.total, r.percent] for t, r in report.sla.items()]
        + [[gettext(KINDS[k]), r.met, r.total, r.percent] for k, r in report.sla_by_kind.items()]
        + [
            [
                gettext("First-contact resolution"),
                report.fcr.met,
                report.fcr.total,
                report.fcr.percent,
            ]
        ],
    )
    if report.repairs_available:
        sheet(
            gettext("Repair turnaround"),
            [gettext("Route"), gettext("Cases"), gettext("Median hours"), gettext("Average hours")],
            [list(row) for row in report.repair_turnaround],
        )
    sheet(
        gettext("Top faults"),
        [gettext("Model"), gettext("Fault"), gettext("Count")],
        [list(row) for row in report.faults],
    )
    sheet(
        gettext("Satisfaction"),
        [gettext("Group"), gettext("Answers"), gettext("Average score")],
        [
            [gettext(KINDS.get(k, k)), len(v), Report.average(v)]
            for k, v in report.satisfaction_kind.items()
        ]
        + [[name, len(v), Report.average(v)] for name, v in report.satisfaction_team.items()]
        + [[name, len(v), Report.average(v)] for name, v in report.satisfaction_agent.items()],
    )
    sheet(
        gettext("Agent KPIs"),
        [
            gettext("Agent"),
            gettext("Tickets handled"),
            gettext("Resolved"),
            gettext("SLA met"),
            "%",
            gettext("Average score"),
        ],
        [
            [a.name, a.handled, a.resolved, a.sla.met, a.sla.percent, a.satisfaction]
            for a in report.agents
        ],
    )
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
