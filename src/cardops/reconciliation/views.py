"""Console pages: clearing files and import, a day's result (counts, amounts, chart), the
difference cases and working one to closure."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup, escape
from sqlalchemy import select
from starlette.datastructures import UploadFile

from cardops.auth.models import User
from cardops.auth.service import require
from cardops.core.errors import CardopsError, ValidationFailed
from cardops.core.i18n import N_, gettext
from cardops.reconciliation import service
from cardops.reconciliation.models import (
    CASE_STATE_LABELS,
    CLASS_LABELS,
    DIFF_CLASSES,
    RESOLUTION_LABELS,
    ReconCase,
)
from cardops.reconciliation.permissions import (
    RECON_ADJUST,
    RECON_IMPORT,
    RECON_VIEW,
    RECON_WORK,
)
from cardops.web.deps import Console, ConsoleForm, ConsolePage, RecordId, form_error_context
from cardops.web.nav import NavItem

router = APIRouter()

SECTION = N_("Money")
NAV = [
    NavItem(N_("Reconciliation"), "/reconciliation", RECON_VIEW, section=SECTION, order=720),
    NavItem(
        N_("Difference cases"), "/reconciliation/cases", RECON_VIEW, section=SECTION, order=721
    ),
]
COLORS = {
    "matched": "#2e7d32",
    "missing_at_bank": "#c62828",
    "missing_at_ours": "#ad1457",
    "amount_mismatch": "#ef6c00",
    "status_mismatch": "#6a1b9a",
    "duplicate_at_bank": "#1565c0",
    "duplicate_at_ours": "#00838f",
}


def _labels() -> dict[str, Any]:
    return {
        "class_label": lambda code: gettext(CLASS_LABELS.get(code) or str(code)),
        "state_label": lambda code: gettext(CASE_STATE_LABELS.get(code) or str(code)),
        "resolution_label": lambda code: gettext(RESOLUTION_LABELS.get(code or "", code or "")),
    }


def chart_svg(figures: dict[str, dict[str, int]]) -> Markup:
    """A horizontal bar chart of the differences per class (counts), no scripts."""
    width, row, left = 640, 26, 190
    keys = list(DIFF_CLASSES)
    peak = max([figures.get(k, {}).get("count", 0) for k in keys] + [1])
    height = row * len(keys) + 10
    title = gettext("Differences per class")
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" class="chart" id="differences-chart">'
        f"<title>{escape(title)}</title>"
    ]
    for i, key in enumerate(keys):
        count = figures.get(key, {}).get("count", 0)
        y = 5 + i * row
        bar = (width - left - 60) * count / peak
        label = gettext(CLASS_LABELS[key])
        parts.append(
            f'<text x="{left - 8}" y="{y + 16}" font-size="12" text-anchor="end">'
            f"{escape(label)}</text>"
            f'<rect x="{left}" y="{y + 3}" width="{bar:.1f}" height="{row - 8}" '
            f'fill="{COLORS[key]}"><title>{escape(label)}: {count}</title></rect>'
            f'<text x="{left + bar + 6:.1f}" y="{y + 16}" font-size="12">{count}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationFailed(
            "Enter a date as YYYY-MM-DD or YYYYMMDD, e.g. 2026-11-20.", field="date"
        ) from None


def _index(console: Console, status_code: int = 200, **extra: Any) -> HTMLResponse:
    files = service.list_files(session=console.db, actor=console.user)
    return console.render(
        "reconciliation/index.html",
        status_code=status_code,
        files=files,
        values=extra.pop("values", {}),
        **extra,
    )


@router.get("/reconciliation", response_class=HTMLResponse)
def index(console: ConsolePage) -> Response:
    require(console.user, RECON_VIEW)
    return _index(console)


@router.post("/reconciliation/import", response_class=HTMLResponse)
def import_file(console: ConsoleForm) -> Response:
    require(console.user, RECON_IMPORT)
    from cardops.reconciliation.api import save_upload

    upload = console.form.get("file")
    utf8 = console.form.get("encoding") == "utf-8"
    replace = console.form.get("replace") == "1"
    reason = str(console.form.get("reason") or "")[:500]
    path: Path | None = None
    try:
        path, name = save_upload(upload if isinstance(upload, UploadFile) else None)  # type: ignore[arg-type]
        outcome = service.import_file(
            session=console.db,
            actor=console.user,
            path=path,
            utf8=utf8,
            replace=replace,
            reason=reason,
            filename=name,
        )
    except CardopsError as exc:
        console.db.rollback()
        return _index(
            console,
            status_code=exc.status,
            values={"reason": reason, "replace": replace, "encoding": "utf-8" if utf8 else "gbk"},
            **form_error_context(exc),
        )
    finally:
        if path is not None:
            path.unlink(missing_ok=True)
    day = outcome.run.business_date
    console.flash("Imported {name}: {day} reconciled.", name=outcome.file.filename, day=day)
    console.db.commit()
    return console.redirect(f"/reconciliation/days/{day.isoformat()}")


@router.get("/reconciliation/days/{day}", response_class=HTMLResponse)
def day_page(console: ConsolePage, day: str) -> Response:
    require(console.user, RECON_VIEW)
    business_date = _parse_day(day)
    run = service.current_run(session=console.db, actor=console.user, business_date=business_date)
    runs = service.list_runs(session=console.db, actor=console.user, business_date=business_date)
    files = {f.id: f for f in service.list_files(session=console.db, actor=console.user, limit=500)}
    open_cases, _ = service.list_cases(
        session=console.db, actor=console.user, business_date=business_date, limit=1
    )
    return console.render(
        "reconciliation/day.html",
        day=business_date,
        run=run,
        runs=runs,
        files=files,
        rows=[("matched", run.figures.get("matched", {}))]
        + [(k, run.figures.get(k, {})) for k in DIFF_CLASSES],
        chart=chart_svg(run.figures),
        has_cases=bool(open_cases),
        **_labels(),
    )


@router.post("/reconciliation/days/{day}/rerun", response_class=HTMLResponse)
def rerun(console: ConsoleForm, day: str) -> Response:
    require(console.user, RECON_IMPORT)
    business_date = _parse_day(day)
    try:
        service.rerun_day(session=console.db, actor=console.user, business_date=business_date)
    except CardopsError as exc:
        console.db.rollback()
        return _index(console, status_code=exc.status, **form_error_context(exc))
    console.flash("The day was reconciled again.")
    console.db.commit()
    return console.redirect(f"/reconciliation/days/{business_date.isoformat()}")


@router.get("/reconciliation/cases", response_class=HTMLResponse)
def cases(
    console: ConsolePage,
    date: str = "",
    kind: str = "",
    state: str = "",
    page: int = 1,
) -> Response:
    require(console.user, RECON_VIEW)
    page = max(1, min(page, 10_000))
    try:
        business_date = _parse_day(date) if date else None
        rows, total = service.list_cases(
            session=console.db,
            actor=console.user,
            business_date=business_date,
            kind=kind or None,
            state=state or None,
            limit=100,
            offset=(page - 1) * 100,
        )
        error_context: dict[str, Any] = {}
    except CardopsError as exc:
        rows, total, error_context = [], 0, form_error_context(exc)
    return console.render(
        "reconciliation/cases.html",
        status_code=422 if error_context else 200,
        cases=rows,
        total=total,
        page=page,
        date=date,
        kind=kind,
        state=state,
        classes=[(k, gettext(CLASS_LABELS[k])) for k in DIFF_CLASSES],
        states=[(k, gettext(v)) for k, v in CASE_STATE_LABELS.items()],
        **error_context,
        **_labels(),
    )


def _case_page(
    console: Console, case: ReconCase, status_code: int = 200, **extra: Any
) -> HTMLResponse:
    history = service.case_history(console.db, case)
    user_ids = {e.actor_id for e in history} | {case.assignee_id, case.resolved_by_id}
    users = {
        u.id: u
        for u in console.db.execute(
            select(User).where(User.id.in_([i for i in user_ids if i]))
        ).scalars()
    }
    return console.render(
        "reconciliation/case.html",
        status_code=status_code,
        case=case,
        history=history,
        users=users,
        may_work=console.can(RECON_WORK),
        may_adjust=console.can(RECON_ADJUST),
        resolutions=[(k, gettext(v)) for k, v in RESOLUTION_LABELS.items()],
        values=extra.pop("values", {}),
        **extra,
        **_labels(),
    )


@router.get("/reconciliation/cases/{case_id:int}", response_class=HTMLResponse)
def case_page(console: ConsolePage, case_id: RecordId) -> Response:
    case = service.get_case(session=console.db, actor=console.user, case_id=case_id)
    return _case_page(console, case)


@router.post("/reconciliation/cases/{case_id:int}/{action}", response_class=HTMLResponse)
def case_action(console: ConsoleForm, case_id: RecordId, action: str) -> Response:
    require(console.user, RECON_WORK)
    form = {k: str(v)[:1000] for k, v in console.form.items() if isinstance(v, str)}
    try:
        if action == "investigate":
            service.start_investigation(
                session=console.db, actor=console.user, case_id=case_id, note=form.get("note", "")
            )
            message = N_("You are investigating the case.")
        elif action == "hand-back":
            service.hand_back(
                session=console.db, actor=console.user, case_id=case_id, note=form.get("note", "")
            )
            message = N_("The case is open again.")
        elif action == "resolve":
            service.resolve(
                session=console.db,
                actor=console.user,
                case_id=case_id,
                resolution=form.get("resolution", ""),
                note=form.get("note", ""),
                amount=form.get("amount") or None,
                claim_reference=form.get("claim_reference", ""),
            )
            message = N_("The case is resolved.")
        else:
            raise ValidationFailed("Unknown action.", field="action")
    except CardopsError as exc:
        console.db.rollback()
        case = service.get_case(session=console.db, actor=console.user, case_id=case_id)
        return _case_page(
            console,
            case,
            status_code=exc.status,
            values=form,
            action=action,
            **form_error_context(exc),
        )
    console.flash(message)
    console.db.commit()
    return console.redirect(f"/reconciliation/cases/{case_id}")
