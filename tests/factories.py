"""Small factory functions for tests."""

from __future__ import annotations

import itertools
import re

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from cardops.auth import service as auth
from cardops.auth.models import User
from cardops.web.deps import SESSION_COOKIE

PASSWORD = "Secret-Pass-2026"
_counter = itertools.count(1)


def make_user(
    db: Session, *roles: str, username: str | None = None, password: str = PASSWORD
) -> User:
    """A user holding ``roles`` (role codes), created by the system user."""
    name = username or f"user{next(_counter)}"
    user = auth.create_user(
        session=db,
        actor=auth.system_user(db),
        username=name,
        display_name=name.title(),
        password=password,
        roles=list(roles),
        must_change_password=False,
    )
    db.flush()
    return user


def bearer(db: Session, user: User) -> dict[str, str]:
    """API headers for ``user`` (a real token, issued without the password round-trip)."""
    raw, _ = auth.issue_token(db, user)
    db.flush()
    return {"Authorization": f"Bearer {raw}"}


def api_headers(db: Session, *roles: str) -> dict[str, str]:
    return bearer(db, make_user(db, *roles))


class ConsoleClient:
    """A TestClient signed in to the console as one user; ``post`` adds the CSRF token."""

    def __init__(self, app: FastAPI, db: Session, user: User) -> None:
        raw, login = auth.start_login_session(db, user)
        db.flush()
        self.user = user
        self.csrf = login.csrf_token
        self.http = TestClient(app, raise_server_exceptions=False, follow_redirects=False)
        self.http.cookies.set(SESSION_COOKIE, raw)

    def get(self, url: str, **kwargs):  # type: ignore[no-untyped-def]
        return self.http.get(url, **kwargs)

    def post(self, url: str, data: dict | None = None, **kwargs):  # type: ignore[no-untyped-def]
        form = dict(data or {})
        form.setdefault("csrf_token", self.csrf)
        return self.http.post(url, data=form, **kwargs)


def console(app: FastAPI, db: Session, *roles: str) -> ConsoleClient:
    return ConsoleClient(app, db, make_user(db, *roles))


def field_error(html: str, field: str) -> str | None:
    """The error message shown next to a form field, if any."""
    match = re.search(rf'data-field="{re.escape(field)}">([^<]*)<', html)
    return match.group(1) if match else None
