from __future__ import annotations

import re
from datetime import timedelta

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from cardops.auth import service as auth
from cardops.core.clock import freeze, utcnow
from tests.factories import PASSWORD, console, field_error, make_user


def _login(app: FastAPI, username: str, password: str) -> tuple[TestClient, httpx.Response]:
    http = TestClient(app, raise_server_exceptions=False, follow_redirects=False)
    page = http.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    response = http.post(
        "/login", data={"username": username, "password": password, "csrf_token": token.group(1)}
    )
    return http, response


def test_login_logout_round_trip(app: FastAPI, db: Session) -> None:
    make_user(db, "front_desk_clerk", username="desk1")
    http, response = _login(app, "desk1", PASSWORD)
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    home = http.get("/")
    assert home.status_code == 200
    assert "desk1" in home.text


def test_login_without_csrf_token_is_refused(app: FastAPI, db: Session) -> None:
    make_user(db, username="desk2")
    http = TestClient(app, raise_server_exceptions=False, follow_redirects=False)
    response = http.post("/login", data={"username": "desk2", "password": PASSWORD})
    assert response.status_code == 403


def test_wrong_password_shows_message(app: FastAPI, db: Session) -> None:
    make_user(db, username="desk3")
    _http, response = _login(app, "desk3", "wrong-password-1")
    assert response.status_code == 401
    assert "Wrong user name or password" in response.text or "用户名或密码错误" in response.text


def test_pages_need_login(client: TestClient) -> None:
    response = client.get("/users", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=/users")


def test_form_post_without_csrf_is_refused(app: FastAPI, db: Session) -> None:
    admin = console(app, db, "sysadmin")
    response = admin.http.post("/users/new", data={"username": "x1", "display_name": "X"})
    assert response.status_code == 403


def test_console_refuses_user_admin_without_permission(app: FastAPI, db: Session) -> None:
    clerk = console(app, db, "front_desk_clerk")
    assert clerk.get("/users").status_code == 403
    assert clerk.get("/roles").status_code == 403
    assert clerk.get("/users/review").status_code == 403
    assert clerk.get("/audit").status_code == 403
    response = clerk.post(
        "/users/new", {"username": "sneaky", "display_name": "S", "password": "Abcdefgh12345"}
    )
    assert response.status_code == 403
    assert auth.find_user(db, "sneaky") is None
    home = clerk.get("/")
    assert 'href="/users"' not in home.text


def test_admin_creates_user_with_field_errors_then_success(app: FastAPI, db: Session) -> None:
    admin = console(app, db, "sysadmin")
    response = admin.post(
        "/users/new",
        {
            "username": "newclerk",
            "display_name": "New Clerk",
            "password": "short",
            "roles": "front_desk_clerk",
        },
        headers={"Accept-Language": "en"},
    )
    assert response.status_code == 422
    assert (
        field_error(response.text, "password") == "The password must have at least 10 characters."
    )
    assert 'value="newclerk"' in response.text
    response = admin.post(
        "/users/new",
        {
            "username": "newclerk",
            "display_name": "New Clerk",
            "password": "Longer-pass-77",
            "roles": ["front_desk_clerk", "cashier"],
        },
    )
    assert response.status_code == 303
    user = auth.find_user(db, "newclerk")
    assert user is not None
    assert auth.role_codes_of(user) == {"front_desk_clerk", "cashier"}
    assert user.must_change_password


def test_first_login_forces_password_change(app: FastAPI, db: Session) -> None:
    admin = make_user(db, "sysadmin")
    auth.create_user(
        session=db,
        actor=admin,
        username="fresh",
        display_name="Fresh",
        password="Initial-pass-1",
        roles=["cashier"],
    )
    db.flush()
    http, response = _login(app, "fresh", "Initial-pass-1")
    assert response.headers["location"] == "/password"
    assert http.get("/", follow_redirects=False).headers["location"] == "/password"
    page = http.get("/password")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    response = http.post(
        "/password",
        data={
            "csrf_token": token.group(1),
            "old_password": "Initial-pass-1",
            "new_password": "Changed-pass-2",
            "confirm_password": "Changed-pass-2",
        },
    )
    assert response.status_code == 303
    assert http.get("/").status_code == 200


def test_quarterly_password_age_redirects_to_change(app: FastAPI, db: Session) -> None:
    make_user(db, "cashier", username="oldpw")
    freeze(utcnow() + timedelta(days=95))
    _http, response = _login(app, "oldpw", PASSWORD)
    assert response.headers["location"] == "/password"


def test_role_permissions_edit_and_review_page(app: FastAPI, db: Session) -> None:
    admin = console(app, db, "sysadmin", "operations_director")
    page = admin.get("/roles/data_analyst")
    assert page.status_code == 200
    response = admin.post("/roles/data_analyst", {"permissions": ["users.view", "audit.view"]})
    assert response.status_code == 303
    role = auth.get_role(db, "data_analyst")
    db.refresh(role)
    assert role.permission_codes == {"users.view", "audit.view"}
    review = admin.get("/users/review")
    assert review.status_code == 200
    assert admin.user.username in review.text
    csv = admin.get("/users/review?format=csv")
    assert csv.headers["content-type"].startswith("text/csv")


def test_language_switch(app: FastAPI, db: Session) -> None:
    clerk = console(app, db, "front_desk_clerk")
    zh = clerk.get("/", headers={"Accept-Language": "zh-CN"})
    assert "退出" in zh.text
    switch = clerk.get("/lang/en?next=/")
    assert switch.status_code == 303
    clerk.http.cookies.set("cardops_lang", "en")
    en = clerk.get("/", headers={"Accept-Language": "zh-CN"})
    assert "Sign out" in en.text
