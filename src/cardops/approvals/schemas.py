"""API shapes of the approvals domain (every field bounded)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints

RoleCode = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class StepIn(BaseModel):
    role: str = Field(min_length=1, max_length=64, description="Role code")
    label: str = Field(default="", max_length=128)


class ChainIn(BaseModel):
    name_en: str | None = Field(default=None, max_length=128)
    name_zh: str | None = Field(default=None, max_length=128)
    active: bool = True
    steps: list[RoleCode | StepIn] = Field(
        max_length=20,
        description="In order: role codes, or objects with a role code and a label.",
    )


class StepOut(BaseModel):
    position: int
    role: str
    role_name_en: str
    role_name_zh: str
    label: str


class ChainOut(BaseModel):
    kind: str
    name_en: str
    name_zh: str
    active: bool
    steps: list[StepOut]


class RequestIn(BaseModel):
    kind: str = Field(min_length=1, max_length=64)
    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=4000)
    payload: dict[str, Any] | None = None


class DecisionIn(BaseModel):
    comment: str = Field(default="", max_length=2000)


class ResubmitIn(BaseModel):
    title: str | None = Field(default=None, max_length=200)
    description: str | None = Field(default=None, max_length=4000)
    payload: dict[str, Any] | None = None
    comment: str = Field(default="", max_length=2000)


class ActionOut(BaseModel):
    round: int
    step: int | None
    role: str | None
    action: str
    actor: str
    actor_name: str
    comment: str
    at: datetime


class RequestSummaryOut(BaseModel):
    id: int
    number: str
    kind: str
    title: str
    state: str
    round: int
    current_step: int | None
    current_role: str | None
    submitter: str
    submitted_at: datetime
    decided_at: datetime | None


class RequestOut(RequestSummaryOut):
    description: str
    payload: dict[str, Any] | None
    subject_type: str | None
    subject_id: str | None
    steps: list[StepOut]
    history: list[ActionOut]
    can_decide: bool
    can_resubmit: bool
    can_withdraw: bool
