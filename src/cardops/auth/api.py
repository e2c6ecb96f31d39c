"""REST API of the auth domain: tokens, users, roles, permission review."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.security import OAuth2PasswordRequestForm

from cardops.auth import service
from cardops.auth.models import Role, User
from cardops.auth.permissions import PERMISSIONS
from cardops.auth.schemas import (
    PasswordChangeIn,
    PasswordResetIn,
    PermissionOut,
    ReviewRowOut,
    RoleIn,
    RoleOut,
    RolePermissionsIn,
    TokenOut,
    UserIn,
    UserOut,
    UserPatch,
)
from cardops.core.errors import AuthenticationFailed
from cardops.core.i18n import gettext
from cardops.web.deps import DB, ApiUser, RecordId

router = APIRouter(tags=["auth"])


def user_out(user: User, *, with_permissions: bool = False) -> UserOut:
    return UserOut(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        email=user.email,
        mobile=user.mobile,
        is_active=user.is_active,
        last_login_at=user.last_login_at,
        password_changed_at=user.password_changed_at,
        roles=sorted(service.role_codes_of(user)),
        permissions=sorted(service.permissions_of(user)) if with_permissions else None,
    )


def role_out(role: Role) -> RoleOut:
    return RoleOut(
        code=role.code,
        name_en=role.name_en,
        name_zh=role.name_zh,
        description=role.description,
        is_builtin=role.is_builtin,
        permissions=sorted(role.permission_codes),
    )


@router.post(
    "/auth/token", response_model=TokenOut, summary="Get a bearer token (OAuth2 password flow)"
)
def token(db: DB, form: Annotated[OAuth2PasswordRequestForm, Depends()]) -> TokenOut:
    try:
        user = service.authenticate(db, form.username, form.password)
    except AuthenticationFailed:
        db.commit()  # keep the failure count
        raise
    if service.password_expired(user):
        db.commit()
        raise AuthenticationFailed(
            "Your password has expired. Change it first (POST /api/v1/auth/password or the console).",
            code="password_expired",
        )
    raw, api_token = service.issue_token(db, user)
    db.commit()
    return TokenOut(access_token=raw, expires_at=api_token.expires_at)


@router.post("/auth/password", status_code=204, summary="Change your own password")
def change_password(db: DB, body: PasswordChangeIn) -> None:
    try:
        user = service.authenticate(db, body.username, body.old_password)
    except AuthenticationFailed:
        db.commit()
        raise
    service.change_own_password(
        session=db, user=user, old_password=body.old_password, new_password=body.new_password
    )
    db.commit()


@router.get("/auth/me", response_model=UserOut, summary="Who am I")
def me(user: ApiUser) -> UserOut:
    return user_out(user, with_permissions=True)


@router.get("/users", response_model=list[UserOut])
def list_users(db: DB, user: ApiUser) -> list[UserOut]:
    return [user_out(u) for u in service.list_users(session=db, actor=user)]


@router.post("/users", response_model=UserOut, status_code=201)
def create_user(db: DB, user: ApiUser, body: UserIn) -> UserOut:
    created = service.create_user(
        session=db,
        actor=user,
        username=body.username,
        display_name=body.display_name,
        password=body.password,
        roles=body.roles,
        email=body.email,
        mobile=body.mobile,
    )
    db.commit()
    return user_out(created)


@router.get("/users/review", response_model=list[ReviewRowOut], summary="Permission review")
def review(db: DB, user: ApiUser) -> list[ReviewRowOut]:
    return [
        ReviewRowOut.model_validate(r) for r in service.permission_review(session=db, actor=user)
    ]


@router.get("/users/{user_id}", response_model=UserOut)
def get_user(db: DB, user: ApiUser, user_id: RecordId) -> UserOut:
    service.require(user, "users.view")
    return user_out(service.get_user(session=db, user_id=user_id), with_permissions=True)


@router.patch("/users/{user_id}", response_model=UserOut)
def patch_user(db: DB, user: ApiUser, user_id: RecordId, body: UserPatch) -> UserOut:
    target = service.update_user(
        session=db,
        actor=user,
        user_id=user_id,
        display_name=body.display_name,
        email=body.email,
        mobile=body.mobile,
        is_active=body.is_active,
    )
    if body.roles is not None:
        service.set_user_roles(session=db, actor=user, user_id=user_id, role_codes=body.roles)
    db.commit()
    return user_out(target)


@router.post("/users/{user_id}/password", response_model=UserOut, summary="Reset a user's password")
def reset_password(db: DB, user: ApiUser, user_id: RecordId, body: PasswordResetIn) -> UserOut:
    target = service.reset_password(
        session=db, actor=user, user_id=user_id, new_password=body.new_password
    )
    db.commit()
    return user_out(target)


@router.post("/users/{user_id}/unlock", response_model=UserOut)
def unlock(db: DB, user: ApiUser, user_id: RecordId) -> UserOut:
    target = service.unlock_user(session=db, actor=user, user_id=user_id)
    db.commit()
    return user_out(target)


@router.get("/roles", response_model=list[RoleOut])
def list_roles(db: DB, user: ApiUser) -> list[RoleOut]:
    return [role_out(r) for r in service.list_roles(session=db, actor=user)]


@router.post("/roles", response_model=RoleOut, status_code=201)
def create_role(db: DB, user: ApiUser, body: RoleIn) -> RoleOut:
    role = service.create_role(
        session=db,
        actor=user,
        code=body.code,
        name_en=body.name_en,
        name_zh=body.name_zh,
        description=body.description,
    )
    if body.permissions:
        service.set_role_permissions(
            session=db, actor=user, role_code=role.code, permissions=body.permissions
        )
    db.commit()
    return role_out(role)


@router.put("/roles/{code}/permissions", response_model=RoleOut)
def set_permissions(db: DB, user: ApiUser, code: str, body: RolePermissionsIn) -> RoleOut:
    role = service.set_role_permissions(
        session=db, actor=user, role_code=code, permissions=body.permissions
    )
    db.commit()
    return role_out(role)


@router.get("/permissions", response_model=list[PermissionOut])
def list_permissions(user: ApiUser) -> list[PermissionOut]:
    service.require(user, "users.view")
    return [
        PermissionOut(code=p.code, label=gettext(p.label), group=p.group)
        for p in sorted(PERMISSIONS.values(), key=lambda p: p.code)
    ]
