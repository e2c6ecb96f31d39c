"""Console page: search the audit log."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from cardops.audit import service
from cardops.audit.permissions import AUDIT_VIEW
from cardops.auth.service import require
from cardops.core.i18n import N_
from cardops.web.deps import ConsolePage
from cardops.web.nav import NavItem

router = APIRouter()
NAV = [NavItem(N_("Audit log"), "/audit", AUDIT_VIEW, section=N_("Administration"), order=910)]
PAGE = 50


def _parse_day(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        from zoneinfo import ZoneInfo

        from cardops.core.config import get_settings

        day = datetime.strptime(text, "%Y-%m-%d")
        return day.replace(tzinfo=ZoneInfo(get_settings().timezone))
    except ValueError:
        return None


@router.get("/audit", response_class=HTMLResponse)
def audit_search(
    console: ConsolePage,
    q: str = "",
    actor: str = "",
    action: str = "",
    entity_type: str = "",
    entity_id: str = "",
    since: str = "",
    until: str = "",
    page: int = 1,
) -> HTMLResponse:
    require(console.user, AUDIT_VIEW)
    page = max(1, min(page, 100_000))
    until_day = _parse_day(until)
    rows = service.search(
        console.db,
        q=q[:200] or None,
        actor=actor[:64] or None,
        action=action[:96] or None,
        entity_type=entity_type[:64] or None,
        entity_id=entity_id[:64] or None,
        since=_parse_day(since),
        until=until_day + timedelta(days=1) if until_day else None,
        limit=PAGE + 1,
        offset=(page - 1) * PAGE,
    )
    return console.render(
        "audit/search.html",
        rows=rows[:PAGE],
        has_more=len(rows) > PAGE,
        page=page,
        filters={
            "q": q,
            "actor": actor,
            "action": action,
            "entity_type": entity_type,
            "entity_id": entity_id,
            "since": since,
            "until": until,
        },
        pretty=lambda v: json.dumps(v, ensure_ascii=False, indent=1) if v else "",
    )
