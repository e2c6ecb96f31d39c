"""Console pages of the auth domain: sign in/out, password change, users, roles, review."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from cardops.auth import service
from cardops.auth.permissions import PERMISSION_REVIEW, USERS_VIEW
from cardops.core.config import get_settings
from cardops.core.errors import AuthenticationFailed, CardopsError, PermissionDenied
from cardops.core.i18n import N_
from cardops.web.deps import (
    DB,
    PRELOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    ConsoleForm,
    ConsolePage,
    form_error_context,
)
from cardops.web.nav import NavItem
from cardops.web.templating import render

router = APIRouter()

NAV = [
    NavItem(N_("Users"), "/users", USERS_VIEW, section=N_("Administration"), order=900),
    NavItem(N_("Roles"), "/roles", USERS_VIEW, section=N_("Administration"), order=901),
    NavItem(
        N_("Permission review"),
        "/users/review",
        PERMISSION_REVIEW,
        section=N_("Administration"),
        order=902,
    ),
]


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/"


def _login_page(
    request: Request,
    *,
    next_url: str,
    error: str | None = None,
    username: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    token = request.cookies.get(PRELOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
    html = render(
        "auth/login.html",
        request=request,
        user=None,
        next_url=next_url,
        error=error,
        username=username,
        login_csrf=token,
    )
    response = HTMLResponse(html, status_code=status_code)
    response.set_cookie(PRELOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict")
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/") -> HTMLResponse:
    return _login_page(request, next_url=_safe_next(next))


@router.post("/login", response_class=HTMLResponse)
async def login_submit(request: Request, db: DB) -> Response:
    form = await request.form()
    username = str(form.get("username") or "")
    password = str(form.get("password") or "")
    next_url = _safe_next(str(form.get("next") or "/"))
    cookie_token = request.cookies.get(PRELOGIN_CSRF_COOKIE) or ""
    sent = str(form.get("csrf_token") or "")
    if not cookie_token or not secrets.compare_digest(cookie_token, sent):
        error = PermissionDenied(
            "The form has expired or did not come from this site. Reload the page and try again.",
        ).localized()
        return _login_page(
            request, next_url=next_url, error=error, username=username, status_code=403
        )
    try:
        user = service.authenticate(db, username, password)
    except AuthenticationFailed as exc:
        db.commit()  # keep the failure count and any lock
        return _login_page(
            request, next_url=next_url, error=exc.localized(), username=username, status_code=401
        )
    raw, _ = service.start_login_session(db, user)
    db.commit()
    target = "/password" if service.password_expired(user) else next_url
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        raw,
        httponly=True,
        samesite="lax",
        secure=get_settings().cookie_secure,
        max_age=get_settings().session_hours * 3600,
    )
    response.delete_cookie(PRELOGIN_CSRF_COOKIE)
    return response


@router.post("/logout")
def logout(console: ConsoleForm) -> RedirectResponse:
    service.end_login_session(console.db, console.login)
    console.db.commit()
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/password", response_class=HTMLResponse)
def password_form(console: ConsolePage) -> HTMLResponse:
    return console.render("auth/password.html", expired=service.password_expired(console.user))


@router.post("/password", response_class=HTMLResponse)
def password_submit(console: ConsoleForm) -> Response:
    form = console.form
    new = str(form.get("new_password") or "")
    try:
        if new != str(form.get("confirm_password") or ""):
            from cardops.core.errors import ValidationFailed

            raise ValidationFailed("The two new passwords differ.", field="confirm_password")
        service.change_own_password(
            session=console.db,
            user=console.user,
            old_password=str(form.get("old_password") or ""),
            new_password=new,
        )
    except CardopsError as exc:
        console.db.rollback()
        return console.render(
            "auth/password.html",
            status_code=exc.status,
            expired=service.password_expired(console.user),
            **form_error_context(exc),
        )
    console.flash("Your password has been changed.")
    console.db.commit()
    return console.redirect("/")
