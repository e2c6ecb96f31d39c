"""API shapes of the auth domain."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_at: datetime


class PasswordChangeIn(BaseModel):
    username: str = Field(min_length=1, max_length=64)
    old_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=1, max_length=256)


class RoleRef(BaseModel):
    code: str
    granted_at: datetime


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    display_name: str
    email: str | None
    mobile: str | None
    is_active: bool
    last_login_at: datetime | None
    password_changed_at: datetime
    roles: list[str]
    permissions: list[str] | None = None


class UserIn(BaseModel):
    username: str = Field(min_length=2, max_length=64)
    display_name: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=256)
    email: str | None = Field(default=None, max_length=254)
    mobile: str | None = Field(default=None, max_length=32)
    roles: list[str] = Field(default_factory=list, max_length=50)


class UserPatch(BaseModel):
    display_name: str | None = Field(default=None, max_length=128)
    email: str | None = Field(default=None, max_length=254)
    mobile: str | None = Field(default=None, max_length=32)
    is_active: bool | None = None
    roles: list[str] | None = Field(default=None, max_length=50)


class PasswordResetIn(BaseModel):
    new_password: str = Field(min_length=1, max_length=256)


class RoleOut(BaseModel):
    code: str
    name_en: str
    name_zh: str
    description: str
    is_builtin: bool
    permissions: list[str]


class RoleIn(BaseModel):
    code: str = Field(min_length=2, max_length=64)
    name_en: str = Field(min_length=1, max_length=128)
    name_zh: str = Field(min_length=1, max_length=128)
    description: str = Field(default="", max_length=500)
    permissions: list[str] = Field(default_factory=list, max_length=500)


class RolePermissionsIn(BaseModel):
    permissions: list[str] = Field(max_length=500)


class PermissionOut(BaseModel):
    code: str
    label: str
    group: str


class ReviewRowOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    username: str
    display_name: str
    is_active: bool
    role_code: str | None
    granted_at: datetime | None
    granted_by: str | None
    last_login_at: datetime | None
    password_changed_at: datetime
    locked: bool
