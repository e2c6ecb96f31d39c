"""Users, roles, passwords, login sessions and API tokens. The only code that changes them."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cardops.audit.service import record, snapshot
from cardops.auth.models import (
    ApiToken,
    DefaultGrantApplied,
    LoginSession,
    Role,
    RolePermission,
    User,
    UserRole,
)
from cardops.auth.permissions import (
    DEFAULT_GRANTS,
    DEFAULT_ROLES,
    PERMISSION_REVIEW,
    PERMISSIONS,
    ROLES_MANAGE,
    USERS_MANAGE,
    USERS_VIEW,
    load_all,
)
from cardops.core.clock import as_utc, utcnow
from cardops.core.config import get_settings
from cardops.core.errors import (
    AuthenticationFailed,
    Conflict,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)

_hasher = PasswordHasher()
_USERNAME = re.compile(r"^[a-z][a-z0-9_.-]{1,63}$")
SYSTEM_USERNAME = "system"


# --- permissions --------------------------------------------------------------------------


def permissions_of(user: User) -> frozenset[str]:
    """The permission codes a user holds through their roles (cached on the instance)."""
    cached: frozenset[str] | None = getattr(user, "_cardops_perms", None)
    if cached is not None:
        return cached
    if user.is_system:
        perms = frozenset(PERMISSIONS)
    else:
        perms = frozenset(p.permission for ur in user.roles for p in ur.role.permissions)
    user._cardops_perms = perms  # type: ignore[attr-defined]
    return perms


def role_codes_of(user: User) -> frozenset[str]:
    return frozenset(ur.role.code for ur in user.roles)


def has_permission(user: User | None, permission: str) -> bool:
    return user is not None and user.is_active and permission in permissions_of(user)


def require(user: User | None, permission: str) -> None:
    """Refuse with 403 unless ``user`` holds ``permission``."""
    if permission not in PERMISSIONS:
        raise RuntimeError(f"undeclared permission {permission!r}")
    if not has_permission(user, permission):
        raise PermissionDenied(
            "You do not have the permission “{permission}” needed for this action.",
            permission=permission,
        )


def _forget_permissions(user: User) -> None:
    if hasattr(user, "_cardops_perms"):
        del user._cardops_perms


# --- passwords ----------------------------------------------------------------------------


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_password_policy(password: str, *, username: str, field: str = "password") -> None:
    settings = get_settings()
    if len(password) < settings.password_min_length:
        raise ValidationFailed(
            "The password must have at least {n} characters.",
            field=field,
            n=settings.password_min_length,
        )
    if not (re.search(r"[A-Za-z]", password) and re.search(r"\d", password)):
        raise ValidationFailed("The password must contain both letters and digits.", field=field)
    if username and username.lower() in password.lower():
        raise ValidationFailed("The password must not contain the user name.", field=field)


def _verify_hash(stored: str, password: str) -> bool:
    if not stored:
        return False
    try:
        return _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def password_expired(user: User) -> bool:
    if user.must_change_password:
        return True
    max_age = get_settings().password_max_age_days
    return max_age > 0 and utcnow() - as_utc(user.password_changed_at) > timedelta(days=max_age)


def change_own_password(
    *, session: Session, user: User, old_password: str, new_password: str
) -> None:
    if not _verify_hash(user.password_hash, old_password):
        raise ValidationFailed("The current password is wrong.", field="old_password")
    if old_password == new_password:
        raise ValidationFailed(
            "The new password must differ from the current one.", field="new_password"
        )
    check_password_policy(new_password, username=user.username, field="new_password")
    user.password_hash = hash_password(new_password)
    user.password_changed_at = utcnow()
    user.must_change_password = False
    record(session, user, "user.password_changed", user, after={"username": user.username})


def reset_password(*, session: Session, actor: User, user_id: int, new_password: str) -> User:
    """An administrator sets a temporary password; the user must change it at next login."""
    require(actor, USERS_MANAGE)
    user = get_user(session=session, user_id=user_id)
    check_password_policy(new_password, username=user.username)
    user.password_hash = hash_password(new_password)
    user.password_changed_at = utcnow()
    user.must_change_password = True
    user.failed_logins = 0
    user.locked_until = None
    record(session, actor, "user.password_reset", user, after={"username": user.username})
    return user


# --- users --------------------------------------------------------------------------------


def get_user(*, session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None or user.is_system:
        raise NotFound("No user with id {id}.", id=user_id)
    return user


def find_user(session: Session, username: str) -> User | None:
    return session.execute(
        select(User).where(User.username == username.strip().lower())
    ).scalar_one_or_none()


def list_users(*, session: Session, actor: User) -> list[User]:
    require(actor, USERS_VIEW)
    return list(
        session.execute(
            select(User).where(User.is_system.is_(False)).order_by(User.username)
        ).scalars()
    )


def get_role(session: Session, code: str) -> Role:
    role = session.execute(select(Role).where(Role.code == code)).scalar_one_or_none()
    if role is None:
        raise NotFound("No role with code “{role}”.", role=code, field="roles")
    return role


def create_user(
    *,
    session: Session,
    actor: User,
    username: str,
    display_name: str,
    password: str,
    roles: list[str] | None = None,
    email: str | None = None,
    mobile: str | None = None,
    must_change_password: bool = True,
) -> User:
    require(actor, USERS_MANAGE)
    username = username.strip().lower()
    if not _USERNAME.match(username):
        raise ValidationFailed(
            "A user name is 2–64 lower-case letters, digits, '.', '_' or '-', starting with a letter.",
            field="username",
        )
    if not display_name.strip():
        raise ValidationFailed("Enter the person's name.", field="display_name")
    if find_user(session, username) is not None:
        raise Conflict("The user name “{username}” is taken.", field="username", username=username)
    check_password_policy(password, username=username)
    user = User(
        username=username,
        display_name=display_name.strip(),
        email=(email or "").strip() or None,
        mobile=(mobile or "").strip() or None,
        password_hash=hash_password(password),
        password_changed_at=utcnow(),
        must_change_password=must_change_password,
    )
    session.add(user)
    session.flush()
    record(session, actor, "user.created", user)
    for code in roles or []:
        grant_role(session=session, actor=actor, user_id=user.id, role_code=code)
    return user


def update_user(
    *,
    session: Session,
    actor: User,
    user_id: int,
    display_name: str | None = None,
    email: str | None = None,
    mobile: str | None = None,
    is_active: bool | None = None,
) -> User:
    require(actor, USERS_MANAGE)
    user = get_user(session=session, user_id=user_id)
    before = snapshot(user)
    if display_name is not None:
        if not display_name.strip():
            raise ValidationFailed("Enter the person's name.", field="display_name")
        user.display_name = display_name.strip()
    if email is not None:
        user.email = email.strip() or None
    if mobile is not None:
        user.mobile = mobile.strip() or None
    if is_active is not None:
        if not is_active and user.id == actor.id:
            raise ValidationFailed("You cannot deactivate your own account.", field="is_active")
        user.is_active = is_active
    session.flush()
    record(session, actor, "user.updated", user, before=before)
    return user


def unlock_user(*, session: Session, actor: User, user_id: int) -> User:
    require(actor, USERS_MANAGE)
    user = get_user(session=session, user_id=user_id)
    user.failed_logins = 0
    user.locked_until = None
    record(session, actor, "user.unlocked", user, after={"username": user.username})
    return user


def grant_role(*, session: Session, actor: User, user_id: int, role_code: str) -> UserRole:
    require(actor, USERS_MANAGE)
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("No user with id {id}.", id=user_id)
    role = get_role(session, role_code)
    for existing in user.roles:
        if existing.role_id == role.id:
            return existing
    link = UserRole(user=user, role=role, granted_at=utcnow(), granted_by_id=actor.id)
    session.add(link)
    session.flush()
    _forget_permissions(user)
    record(
        session, actor, "user.role_granted", user, after={"role": role.code}, username=user.username
    )
    return link


def revoke_role(*, session: Session, actor: User, user_id: int, role_code: str) -> None:
    require(actor, USERS_MANAGE)
    user = get_user(session=session, user_id=user_id)
    role = get_role(session, role_code)
    for link in list(user.roles):
        if link.role_id == role.id:
            user.roles.remove(link)
            session.flush()
            _forget_permissions(user)
            record(
                session,
                actor,
                "user.role_revoked",
                user,
                before={"role": role.code},
                username=user.username,
            )
            return
    raise NotFound("The user does not hold the role “{role}”.", role=role_code, field="roles")


def set_user_roles(*, session: Session, actor: User, user_id: int, role_codes: list[str]) -> User:
    user = get_user(session=session, user_id=user_id)
    wanted = set(role_codes)
    current = {link.role.code for link in user.roles}
    for code in sorted(wanted - current):
        grant_role(session=session, actor=actor, user_id=user_id, role_code=code)
    for code in sorted(current - wanted):
        revoke_role(session=session, actor=actor, user_id=user_id, role_code=code)
    return user


# --- roles --------------------------------------------------------------------------------


def list_roles(*, session: Session, actor: User) -> list[Role]:
    require(actor, USERS_VIEW)
    return list(session.execute(select(Role).order_by(Role.code)).scalars())


def create_role(
    *, session: Session, actor: User, code: str, name_en: str, name_zh: str, description: str = ""
) -> Role:
    require(actor, ROLES_MANAGE)
    code = code.strip().lower()
    if not re.match(r"^[a-z][a-z0-9_]{1,63}$", code):
        raise ValidationFailed(
            "A role code is 2–64 lower-case letters, digits or '_', starting with a letter.",
            field="code",
        )
    if not name_en.strip():
        raise ValidationFailed("Enter the English name.", field="name_en")
    if not name_zh.strip():
        raise ValidationFailed("Enter the Chinese name.", field="name_zh")
    if session.execute(select(Role).where(Role.code == code)).scalar_one_or_none():
        raise Conflict("The role code “{role}” is taken.", field="code", role=code)
    role = Role(
        code=code, name_en=name_en.strip(), name_zh=name_zh.strip(), description=description
    )
    session.add(role)
    session.flush()
    record(session, actor, "role.created", role)
    return role


def set_role_permissions(
    *, session: Session, actor: User, role_code: str, permissions: list[str]
) -> Role:
    require(actor, ROLES_MANAGE)
    role = get_role(session, role_code)
    unknown = sorted(set(permissions) - set(PERMISSIONS))
    if unknown:
        raise ValidationFailed(
            "Unknown permission: {names}.", field="permissions", names=", ".join(unknown)
        )
    before = sorted(role.permission_codes)
    wanted = set(permissions)
    if role.code == "sysadmin" and not {USERS_MANAGE, ROLES_MANAGE} <= wanted:
        raise ValidationFailed(
            "The system administrator role must keep user and role management.",
            field="permissions",
        )
    role.permissions = [p for p in role.permissions if p.permission in wanted]
    have = role.permission_codes
    for code in sorted(wanted - have):
        role.permissions.append(RolePermission(permission=code))
    session.flush()
    for link in session.execute(select(UserRole).where(UserRole.role_id == role.id)).scalars():
        _forget_permissions(link.user)
    record(
        session,
        actor,
        "role.permissions_changed",
        role,
        before={"permissions": before},
        after={"permissions": sorted(wanted)},
    )
    return role


def sync_default_roles(session: Session) -> int:
    """Create missing default roles and apply each default grant once. Returns grants added."""
    load_all()
    added = 0
    applied = {
        (row.role_code, row.permission)
        for row in session.execute(select(DefaultGrantApplied)).scalars()
    }
    for code, (name_en, name_zh) in DEFAULT_ROLES.items():
        role = session.execute(select(Role).where(Role.code == code)).scalar_one_or_none()
        if role is None:
            role = Role(code=code, name_en=name_en, name_zh=name_zh, is_builtin=True)
            session.add(role)
            session.flush()
            record(session, None, "role.created", role)
        for perm in sorted(DEFAULT_GRANTS.get(code, set())):
            if (code, perm) in applied:
                continue
            if perm not in role.permission_codes:
                role.permissions.append(RolePermission(permission=perm))
                added += 1
            session.add(DefaultGrantApplied(role_code=code, permission=perm))
    session.flush()
    return added


def system_user(session: Session) -> User:
    """The actor for work started from the CLI or by the scheduler; it cannot log in."""
    user = find_user(session, SYSTEM_USERNAME)
    if user is None:
        user = User(
            username=SYSTEM_USERNAME,
            display_name="System",
            password_hash="",
            is_system=True,
            is_active=True,
        )
        session.add(user)
        session.flush()
    return user


# --- login --------------------------------------------------------------------------------


def authenticate(session: Session, username: str, password: str) -> User:
    """Check a password; count failures and lock the account after too many.

    Raises AuthenticationFailed. The caller must commit even on failure, so that the failure
    count is kept.
    """
    settings = get_settings()
    user = find_user(session, username or "")
    now = utcnow()
    if user is None or user.is_system or not user.is_active:
        _hasher.hash(password or "x")  # spend the same time as a real check
        raise AuthenticationFailed("Wrong user name or password.")
    if user.locked_until and as_utc(user.locked_until) > now:
        raise AuthenticationFailed(
            "This account is locked after repeated failed logins. Try again after {minutes} minutes or ask an administrator to unlock it.",
            code="account_locked",
            minutes=max(1, int((as_utc(user.locked_until) - now).total_seconds() // 60) + 1),
        )
    if not _verify_hash(user.password_hash, password or ""):
        user.failed_logins += 1
        if user.failed_logins >= settings.lockout_threshold:
            user.locked_until = now + timedelta(minutes=settings.lockout_minutes)
            user.failed_logins = 0
            record(session, None, "user.locked", user, after={"username": user.username})
        session.flush()
        raise AuthenticationFailed("Wrong user name or password.")
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    session.flush()
    return user


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def start_login_session(session: Session, user: User) -> tuple[str, LoginSession]:
    raw = secrets.token_urlsafe(32)
    login = LoginSession(
        token_hash=_digest(raw),
        user_id=user.id,
        csrf_token=secrets.token_urlsafe(24),
        created_at=utcnow(),
        expires_at=utcnow() + timedelta(hours=get_settings().session_hours),
    )
    session.add(login)
    session.flush()
    record(session, user, "user.login", ("users", user.id), after={"channel": "console"})
    return raw, login


def resolve_login_session(session: Session, raw: str | None) -> LoginSession | None:
    if not raw:
        return None
    login = session.execute(
        select(LoginSession).where(LoginSession.token_hash == _digest(raw))
    ).scalar_one_or_none()
    if login is None or login.revoked_at is not None or as_utc(login.expires_at) <= utcnow():
        return None
    if not login.user.is_active:
        return None
    return login


def end_login_session(session: Session, login: LoginSession) -> None:
    login.revoked_at = utcnow()
    session.flush()


def issue_token(session: Session, user: User) -> tuple[str, ApiToken]:
    raw = secrets.token_urlsafe(32)
    token = ApiToken(
        user_id=user.id,
        token_hash=_digest(raw),
        created_at=utcnow(),
        expires_at=utcnow() + timedelta(hours=get_settings().token_hours),
    )
    session.add(token)
    session.flush()
    record(session, user, "user.token_issued", ("users", user.id), after={"token_id": token.id})
    return raw, token


def resolve_token(session: Session, raw: str | None) -> User | None:
    if not raw:
        return None
    token = session.execute(
        select(ApiToken).where(ApiToken.token_hash == _digest(raw))
    ).scalar_one_or_none()
    if token is None or token.revoked_at is not None or as_utc(token.expires_at) <= utcnow():
        return None
    if not token.user.is_active or password_expired(token.user):
        return None
    return token.user


# --- permission review --------------------------------------------------------------------


@dataclass(slots=True)
class ReviewRow:
    username: str
    display_name: str
    is_active: bool
    role_code: str | None
    role_name_en: str | None
    role_name_zh: str | None
    granted_at: datetime | None
    granted_by: str | None
    last_login_at: datetime | None
    password_changed_at: datetime
    locked: bool


def permission_review(*, session: Session, actor: User) -> list[ReviewRow]:
    """Who holds which role, since when and granted by whom, and when they last logged in."""
    require(actor, PERMISSION_REVIEW)
    rows: list[ReviewRow] = []
    now = utcnow()
    users = session.execute(
        select(User).where(User.is_system.is_(False)).order_by(User.username)
    ).scalars()
    for user in users:
        locked = bool(user.locked_until and as_utc(user.locked_until) > now)
        links: list[UserRole | None] = [*sorted(user.roles, key=lambda link: link.role.code)] or [
            None
        ]
        for link in links:
            rows.append(
                ReviewRow(
                    username=user.username,
                    display_name=user.display_name,
                    is_active=user.is_active,
                    role_code=link.role.code if link else None,
                    role_name_en=link.role.name_en if link else None,
                    role_name_zh=link.role.name_zh if link else None,
                    granted_at=link.granted_at if link else None,
                    granted_by=link.granted_by.username if link and link.granted_by else None,
                    last_login_at=user.last_login_at,
                    password_changed_at=user.password_changed_at,
                    locked=locked,
                )
            )
    return rows


def count_users(session: Session) -> int:
    return session.execute(
        select(func.count()).select_from(User).where(User.is_system.is_(False))
    ).scalar_one()


def role_holder_counts(session: Session) -> dict[int, int]:
    """Number of users holding each role, by role id."""
    rows = session.execute(select(UserRole.role_id, func.count()).group_by(UserRole.role_id))
    return {role_id: n for role_id, n in rows.tuples()}


def display_names(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    """User id → display name, for the ids given (None and unknown ids are left out)."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.execute(select(User.id, User.display_name).where(User.id.in_(wanted)))
    return {user_id: name for user_id, name in rows}
