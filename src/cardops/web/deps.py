"""Request dependencies: the database session, the API caller and the console context."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session

from cardops.auth.models import LoginSession, User
from cardops.auth.service import (
    has_permission,
    password_expired,
    resolve_login_session,
    resolve_token,
)
from cardops.core.db import session_factory
from cardops.core.errors import AuthenticationFailed, CardopsError, PermissionDenied
from cardops.core.i18n import current_locale, gettext
from cardops.web.templating import render

SESSION_COOKIE = "cardops_session"
LANG_COOKIE = "cardops_lang"
PRELOGIN_CSRF_COOKIE = "cardops_csrf"


def get_session(request: Request) -> Iterator[Session]:
    """A session per request. Endpoints that change state commit it themselves, once."""
    maker = getattr(request.app.state, "session_maker", None)
    session = maker() if maker is not None else session_factory()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


DB = Annotated[Session, Depends(get_session)]

# A database id in a URL path: bounded so that an absurd number is a 422, not a driver error.
RecordId = Annotated[int, Path(ge=1, le=2_147_483_647)]

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


def api_user(db: DB, token: Annotated[str | None, Depends(oauth2_scheme)]) -> User:
    user = resolve_token(db, token)
    if user is None:
        raise AuthenticationFailed(
            "Sign in first: send a valid bearer token (POST /api/v1/auth/token).",
            code="not_authenticated",
        )
    return user


ApiUser = Annotated[User, Depends(api_user)]


# --- console ------------------------------------------------------------------------------


class LoginRequired(Exception):
    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


class PasswordChangeRequired(Exception):
    pass


@dataclass
class Console:
    """What a console page needs: the request, the session, the signed-in user."""

    request: Request
    db: Session
    user: User
    login: LoginSession
    form: dict[str, Any] = field(default_factory=dict)

    @property
    def locale(self) -> str:
        return current_locale.get()

    def can(self, permission: str) -> bool:
        return has_permission(self.user, permission)

    def flash(self, message: str, **params: Any) -> None:
        """Show a message on the next page (translated now, in the user's language)."""
        self.login.flash = gettext(message, **params)[:500]
        self.db.flush()

    def redirect(self, url: str) -> RedirectResponse:
        return RedirectResponse(url, status_code=303)

    def render(self, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        from cardops.web.nav import navigation

        flash = self.login.flash
        if flash:
            self.login.flash = None
            self.db.commit()
        html = render(
            template,
            request=self.request,
            user=self.user,
            can=self.can,
            csrf_token=self.login.csrf_token,
            nav=navigation(self.user),
            flash=flash,
            **context,
        )
        return HTMLResponse(html, status_code=status_code)


def _login(request: Request, db: Session) -> LoginSession:
    login = resolve_login_session(db, request.cookies.get(SESSION_COOKIE))
    if login is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(quote(target, safe="/?=&"))
    if password_expired(login.user) and request.url.path != "/password":
        raise PasswordChangeRequired()
    return login


def console_page(request: Request, db: DB) -> Console:
    login = _login(request, db)
    return Console(request=request, db=db, user=login.user, login=login)


async def console_form(request: Request, db: DB) -> Console:
    """For POST pages: signed in, and the form carries the session's CSRF token."""
    login = _login(request, db)
    form = await request.form()
    sent = request.headers.get("x-csrf-token") or str(form.get("csrf_token") or "")
    if not secrets.compare_digest(sent, login.csrf_token):
        raise PermissionDenied(
            "The form has expired or did not come from this site. Reload the page and try again.",
            code="csrf_failed",
        )
    data: dict[str, Any] = {}
    for key in form:
        values = form.getlist(key)
        data[key] = values if len(values) > 1 or key.endswith("[]") else values[0]
    return Console(request=request, db=db, user=login.user, login=login, form=data)


ConsolePage = Annotated[Console, Depends(console_page)]
ConsoleForm = Annotated[Console, Depends(console_form)]


def form_error_context(exc: CardopsError) -> dict[str, Any]:
    """Errors for a form: a message at the top and one per field."""
    errors = {item["field"]: item["message"] for item in exc.field_errors()}
    return {"error": exc.localized(), "field_errors": errors}
