"""API models of the risk domain (bounded so that bad input is a 422)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ScenarioIn(BaseModel):
    code: str = Field(max_length=32)
    name: str = Field(max_length=128)
    kinds: list[str] = Field(default=["purchase", "preauth", "completion"], max_length=5)
    review_threshold: int = Field(50, ge=-(10**9), le=10**9)
    decline_threshold: int = Field(100, ge=-(10**9), le=10**9)
    decline_code: str = Field("59", max_length=2)
    active: bool = True


class ScenarioUpdate(BaseModel):
    name: str = Field(max_length=128)
    kinds: list[str] = Field(max_length=5)
    review_threshold: int = Field(ge=-(10**9), le=10**9)
    decline_threshold: int = Field(ge=-(10**9), le=10**9)
    decline_code: str = Field(max_length=2)
    active: bool = True


class ScenarioOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    code: str
    name: str
    kind_list: list[str]
    review_threshold: int
    decline_threshold: int
    decline_code: str
    active: bool


class RuleIn(BaseModel):
    scenario_id: int = Field(ge=1, le=2_147_483_647)
    code: str = Field(max_length=32)
    name: str = Field(max_length=128)
    expression: str = Field(max_length=4000)
    score: int = Field(10, ge=-(10**9), le=10**9)
    decline_code: str = Field("", max_length=2)
    active: bool = True
    note: str = Field("", max_length=500)


class RuleUpdate(BaseModel):
    name: str = Field(max_length=128)
    expression: str = Field(max_length=4000)
    score: int = Field(ge=-(10**9), le=10**9)
    decline_code: str = Field("", max_length=2)
    active: bool = True
    note: str = Field("", max_length=500)


class RuleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    scenario_id: int
    code: str
    name: str
    expression: str
    score: int
    decline_code: str
    active: bool
    version: int
    error_count: int
    last_error: str
    last_error_at: datetime | None


class RuleVersionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    version: int
    expression: str
    score: int
    decline_code: str
    active: bool
    note: str
    saved_by_id: int | None
    saved_at: datetime


class ExpressionIn(BaseModel):
    expression: str = Field(max_length=4000)


class ExpressionOut(BaseModel):
    fields: list[str]


class AlertOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    scenario_id: int | None
    decision: str
    score: int
    rules: list[dict[str, Any]]
    kind: str
    tid: str
    mid: str
    merchant_id: int | None
    pan_masked: str
    amount: int
    state: str
    assignee_id: int | None
    created_at: datetime
    due_at: datetime
    first_looked_at: datetime | None
    overdue: bool = False
    outcome: str
    closed_at: datetime | None
    response_code: str | None = None


class AlertEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    code: str
    text: str
    data: dict[str, Any]
    actor_id: int | None
    at: datetime


class AssignIn(BaseModel):
    assignee: str = Field(max_length=64)


class NoteIn(BaseModel):
    text: str = Field(max_length=4000)


class CloseIn(BaseModel):
    outcome: str = Field(max_length=24)
    note: str = Field("", max_length=4000)
    stop_card: bool = False
    suspend_merchant: bool = False


class LimitIn(BaseModel):
    single_limit: int | None = Field(None, description="fen; null = no limit")
    daily_limit: int | None = None
    monthly_limit: int | None = None


class LimitOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    rating: str
    single_limit: int | None
    daily_limit: int | None
    monthly_limit: int | None


class RatingIn(BaseModel):
    rating: str = Field(max_length=1)
    note: str = Field("", max_length=500)


class RatedMerchantOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    merchant_id: int
    name: str
    mid: str
    state: str
    rating: str
    reviewed_at: datetime | None
    next_review_on: date | None
    due: bool


class RatingReviewOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    rating_from: str
    rating_to: str
    note: str
    actor_id: int | None
    at: datetime


class BacktestIn(BaseModel):
    scenario_id: int = Field(ge=1, le=2_147_483_647)
    start: date
    end: date
    include_inactive: bool = True


class RuleResultOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    code: str
    name: str
    active: bool
    fired: int
    errors: int
    outcomes: dict[str, int]


class BacktestOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    scenario: str
    start: date
    end: date
    requests: int
    decisions: dict[str, int]
    rules: list[RuleResultOut]
    samples: list[dict[str, Any]]
    truncated: bool


class ReportOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    start: date
    end: date
    alerts_by_rule: list[tuple[str, dict[str, int], int]]
    declines_by_reason: list[tuple[str, int]]
    merchants_by_rating: list[tuple[str, int]]
    days: list[str]
    alerts_per_day: list[int]
    declines_per_day: list[int]
    open_alerts: int
    overdue_alerts: int
