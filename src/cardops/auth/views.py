"""Console pages of the auth domain: sign in/out, password change, users, roles, review."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from cardops.auth import service
from cardops.auth.permissions import (
    PERMISSION_REVIEW,
    PERMISSIONS,
    USERS_MANAGE,
    USERS_VIEW,
    Permission,
)
from cardops.auth.service import require
from cardops.core.clock import as_utc, utcnow
from cardops.core.config import get_settings
from cardops.core.errors import AuthenticationFailed, CardopsError, PermissionDenied
from cardops.core.i18n import N_
from cardops.web.deps import (
    DB,
    PRELOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    ConsoleForm,
    ConsolePage,
    RecordId,
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


# --- users --------------------------------------------------------------------------------


def _role_options(console: ConsolePage | ConsoleForm) -> list[tuple[str, str]]:
    roles = service.list_roles(session=console.db, actor=console.user)
    return [(r.code, r.name(console.locale)) for r in roles]


def _checked(form: dict[str, object], name: str) -> list[str]:
    value = form.get(name)
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


@router.get("/users", response_class=HTMLResponse)
def users_list(console: ConsolePage, q: str = "") -> HTMLResponse:
    users = service.list_users(session=console.db, actor=console.user)
    if q:
        needle = q.strip().lower()
        users = [u for u in users if needle in u.username or needle in u.display_name.lower()]
    return console.render(
        "auth/users.html",
        users=users,
        q=q,
        now=utcnow(),
        as_utc=as_utc,
        role_codes=service.role_codes_of,
        expired=service.password_expired,
    )


@router.get("/users/new", response_class=HTMLResponse)
def user_new(console: ConsolePage) -> HTMLResponse:
    require(console.user, USERS_MANAGE)
    return console.render(
        "auth/user_new.html", roles=_role_options(console), values={}, selected=[]
    )


@router.post("/users/new", response_class=HTMLResponse)
def user_create(console: ConsoleForm) -> Response:
    require(console.user, USERS_MANAGE)
    form = console.form
    selected = _checked(form, "roles")
    try:
        user = service.create_user(
            session=console.db,
            actor=console.user,
            username=str(form.get("username") or ""),
            display_name=str(form.get("display_name") or ""),
            password=str(form.get("password") or ""),
            email=str(form.get("email") or ""),
            mobile=str(form.get("mobile") or ""),
            roles=selected,
        )
    except CardopsError as exc:
        console.db.rollback()
        return console.render(
            "auth/user_new.html",
            status_code=exc.status,
            roles=_role_options(console),
            values=form,
            selected=selected,
            **form_error_context(exc),
        )
    console.flash(
        "User {username} created; they must change the password at first login.",
        username=user.username,
    )
    console.db.commit()
    return console.redirect(f"/users/{user.id}")


def _user_page(
    console: ConsolePage | ConsoleForm, user_id: int, status_code: int = 200, **extra: object
) -> HTMLResponse:
    from cardops.audit.service import history

    target = service.get_user(session=console.db, user_id=user_id)
    return console.render(
        "auth/user_detail.html",
        status_code=status_code,
        target=target,
        roles=_role_options(console),
        selected=sorted(service.role_codes_of(target)),
        links=sorted(target.roles, key=lambda link: link.role.code),
        locked=bool(target.locked_until and as_utc(target.locked_until) > utcnow()),
        expired=service.password_expired(target),
        history=list(reversed(history(console.db, "users", target.id)))[:50],
        **extra,
    )


@router.get("/users/review", response_class=HTMLResponse)
def review_page(console: ConsolePage, format: str = "html") -> Response:
    rows = service.permission_review(session=console.db, actor=console.user)
    if format == "csv":
        import csv
        import io

        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(
            [
                "username",
                "name",
                "active",
                "role",
                "granted_at",
                "granted_by",
                "last_login_at",
                "password_changed_at",
                "locked",
            ]
        )
        for r in rows:
            writer.writerow(
                [
                    r.username,
                    r.display_name,
                    r.is_active,
                    r.role_code or "",
                    r.granted_at.isoformat() if r.granted_at else "",
                    r.granted_by or "",
                    r.last_login_at.isoformat() if r.last_login_at else "",
                    r.password_changed_at.isoformat(),
                    r.locked,
                ]
            )
        return Response(
            "\ufeff" + buffer.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="permission-review.csv"'},
        )
    return console.render("auth/review.html", rows=rows, generated_at=utcnow())


@router.get("/users/{user_id}", response_class=HTMLResponse)
def user_detail(console: ConsolePage, user_id: RecordId) -> HTMLResponse:
    require(console.user, USERS_VIEW)
    return _user_page(console, user_id)


@router.post("/users/{user_id}", response_class=HTMLResponse)
def user_update(console: ConsoleForm, user_id: RecordId) -> Response:
    require(console.user, USERS_MANAGE)
    form = console.form
    try:
        service.update_user(
            session=console.db,
            actor=console.user,
            user_id=user_id,
            display_name=str(form.get("display_name") or ""),
            email=str(form.get("email") or ""),
            mobile=str(form.get("mobile") or ""),
            is_active=form.get("is_active") == "on",
        )
        service.set_user_roles(
            session=console.db,
            actor=console.user,
            user_id=user_id,
            role_codes=_checked(form, "roles"),
        )
    except CardopsError as exc:
        console.db.rollback()
        return _user_page(console, user_id, status_code=exc.status, **form_error_context(exc))
    console.flash("Saved.")
    console.db.commit()
    return console.redirect(f"/users/{user_id}")


@router.post("/users/{user_id}/password", response_class=HTMLResponse)
def user_reset_password(console: ConsoleForm, user_id: RecordId) -> Response:
    try:
        service.reset_password(
            session=console.db,
            actor=console.user,
            user_id=user_id,
            new_password=str(console.form.get("new_password") or ""),
        )
    except CardopsError as exc:
        console.db.rollback()
        return _user_page(console, user_id, status_code=exc.status, **form_error_context(exc))
    console.flash("Temporary password set; the user must change it at next login.")
    console.db.commit()
    return console.redirect(f"/users/{user_id}")


@router.post("/users/{user_id}/unlock", response_class=HTMLResponse)
def user_unlock(console: ConsoleForm, user_id: RecordId) -> Response:
    service.unlock_user(session=console.db, actor=console.user, user_id=user_id)
    console.flash("Account unlocked.")
    console.db.commit()
    return console.redirect(f"/users/{user_id}")


# --- roles --------------------------------------------------------------------------------


@router.get("/roles", response_class=HTMLResponse)
def roles_list(console: ConsolePage) -> HTMLResponse:
    roles = service.list_roles(session=console.db, actor=console.user)
    holders = service.role_holder_counts(console.db)
    return console.render("auth/roles.html", roles=roles, holders=holders, values={})


@router.post("/roles", response_class=HTMLResponse)
def role_create(console: ConsoleForm) -> Response:
    form = console.form
    try:
        role = service.create_role(
            session=console.db,
            actor=console.user,
            code=str(form.get("code") or ""),
            name_en=str(form.get("name_en") or ""),
            name_zh=str(form.get("name_zh") or ""),
            description=str(form.get("description") or "")[:500],
        )
    except CardopsError as exc:
        console.db.rollback()
        roles = service.list_roles(session=console.db, actor=console.user)
        return console.render(
            "auth/roles.html",
            status_code=exc.status,
            roles=roles,
            holders=service.role_holder_counts(console.db),
            values=form,
            **form_error_context(exc),
        )
    console.flash("Role created. Now choose its permissions.")
    console.db.commit()
    return console.redirect(f"/roles/{role.code}")


def _permission_groups() -> list[tuple[str, list[Permission]]]:
    groups: dict[str, list[Permission]] = {}
    for perm in sorted(PERMISSIONS.values(), key=lambda p: p.code):
        groups.setdefault(perm.group, []).append(perm)
    return sorted(groups.items())


@router.get("/roles/{code}", response_class=HTMLResponse)
def role_detail(console: ConsolePage, code: str) -> HTMLResponse:
    require(console.user, USERS_VIEW)
    role = service.get_role(console.db, code)
    return console.render(
        "auth/role_detail.html",
        role=role,
        groups=_permission_groups(),
        granted=role.permission_codes,
    )


@router.post("/roles/{code}", response_class=HTMLResponse)
def role_update(console: ConsoleForm, code: str) -> Response:
    wanted = _checked(console.form, "permissions")
    try:
        service.set_role_permissions(
            session=console.db, actor=console.user, role_code=code, permissions=wanted
        )
    except CardopsError as exc:
        console.db.rollback()
        role = service.get_role(console.db, code)
        return console.render(
            "auth/role_detail.html",
            status_code=exc.status,
            role=role,
            groups=_permission_groups(),
            granted=set(wanted),
            **form_error_context(exc),
        )
    console.flash("Permissions saved.")
    console.db.commit()
    return console.redirect(f"/roles/{code}")
