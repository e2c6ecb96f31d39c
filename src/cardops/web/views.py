"""The console shell: home page, language switch, health check."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.exc import SQLAlchemyError

import cardops
from cardops.core.db import ping
from cardops.core.i18n import normalize
from cardops.web.deps import DB, LANG_COOKIE, ConsolePage

router = APIRouter()
api_router = APIRouter(tags=["platform"])


@router.get("/", response_class=HTMLResponse)
def home(console: ConsolePage) -> HTMLResponse:
    from cardops.approvals.service import inbox

    pending = inbox(session=console.db, user=console.user)
    return console.render("home.html", pending=pending)


@router.get("/lang/{code}")
def switch_language(code: str, request: Request, next: str = "/") -> RedirectResponse:
    locale = normalize(code) or "zh_CN"
    target = next if next.startswith("/") and not next.startswith("//") else "/"
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(LANG_COOKIE, locale, max_age=365 * 24 * 3600, samesite="lax")
    return response


@api_router.get("/health", summary="Health check")
def health(db: DB) -> dict[str, Any]:
    """``{"status": "ok"}`` once the database answers."""
    try:
        ping(db)
        database = "ok"
    except SQLAlchemyError:
        database = "unreachable"
    status = "ok" if database == "ok" else "degraded"
    return {"status": status, "database": database, "version": cardops.__version__}
