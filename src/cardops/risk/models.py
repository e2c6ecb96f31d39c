"""Risk tables: scenarios and their rules (CEL, versioned), alerts worked as cases, merchant
ratings A–D with their limits and review history.

Lifecycles:
* alert: open → in_progress → closed (→ in_progress when reopened);
* rule: a new version per change (``risk_rule_versions``), active or not.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cardops.core.clock import utcnow
from cardops.core.db import Base, TimestampMixin, UTCDateTime
from cardops.core.errors import InvalidTransition
from cardops.core.i18n import N_

CONFIG_VERSION = "risk_config"  # bumped on every rule, scenario, rating or limit change

DECLINE_CODES: dict[str, str] = {
    "59": N_("59 Suspected fraud"),
    "61": N_("61 Exceeds amount limit"),
    "65": N_("65 Exceeds frequency limit"),
}
RATINGS = ("A", "B", "C", "D")
# months between periodic reviews of a merchant's rating
REVIEW_MONTHS = {"A": 12, "B": 6, "C": 3, "D": 1}
SCORED_KINDS: dict[str, str] = {
    "purchase": N_("Purchase"),
    "preauth": N_("Pre-authorization"),
    "completion": N_("Pre-authorization completion"),
    "refund": N_("Refund"),
    "balance": N_("Balance inquiry"),
}


class Decision(enum.StrEnum):
    APPROVE = "approve"
    REVIEW = "review"
    DECLINE = "decline"


class AlertState(enum.StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    CLOSED = "closed"


ALERT_STATES: dict[str, str] = {
    "open": N_("Open"),
    "in_progress": N_("In progress"),
    "closed": N_("Closed"),
}
_A = AlertState
ALERT_TRANSITIONS: dict[AlertState, set[AlertState]] = {
    _A.OPEN: {_A.IN_PROGRESS, _A.CLOSED},
    _A.IN_PROGRESS: {_A.CLOSED},
    _A.CLOSED: {_A.IN_PROGRESS},
}

OUTCOMES: dict[str, str] = {
    "fraud_confirmed": N_("Fraud confirmed"),
    "false_positive": N_("False positive"),
    "merchant_warned": N_("Merchant warned"),
    "merchant_suspended": N_("Merchant suspended"),
    "card_stoplisted": N_("Card stop-listed"),
}

ALERT_EVENTS: dict[str, str] = {
    "opened": N_("Alert opened"),
    "taken": N_("Taken up"),
    "assigned": N_("Assigned"),
    "note": N_("Note"),
    "closed": N_("Closed"),
    "reopened": N_("Reopened"),
    "card_stoplisted": N_("Card stop-listed"),
    "merchant_suspended": N_("Merchant suspended"),
}


class Scenario(TimestampMixin, Base):
    """A set of rules whose scores add up; the thresholds map the total to a decision."""

    __tablename__ = "risk_scenarios"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    kinds: Mapped[str] = mapped_column(String(128), default="purchase,preauth,completion")
    review_threshold: Mapped[int] = mapped_column(Integer, default=50)
    decline_threshold: Mapped[int] = mapped_column(Integer, default=100)
    decline_code: Mapped[str] = mapped_column(String(2), default="59")
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    @property
    def kind_list(self) -> list[str]:
        return [k for k in self.kinds.split(",") if k]


class Rule(TimestampMixin, Base):
    """One CEL condition; when true it adds ``score`` to its scenario's total."""

    __tablename__ = "risk_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    scenario_id: Mapped[int] = mapped_column(ForeignKey("risk_scenarios.id"), index=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    expression: Mapped[str] = mapped_column(Text)
    score: Mapped[int] = mapped_column(Integer, default=10)
    decline_code: Mapped[str] = mapped_column(String(2), default="")  # "" = the scenario's
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    # run-time failures reported by the gateways (a missing value, a type mismatch)
    error_count: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(String(500), default="")
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RuleVersion(Base):
    """Every saved version of a rule: what it said, who saved it, when."""

    __tablename__ = "risk_rule_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    rule_id: Mapped[int] = mapped_column(ForeignKey("risk_rules.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    expression: Mapped[str] = mapped_column(Text)
    score: Mapped[int] = mapped_column(Integer)
    decline_code: Mapped[str] = mapped_column(String(2), default="")
    active: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[str] = mapped_column(String(500), default="")
    saved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    saved_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Alert(Base):
    """A transaction a scenario sent to review (or declined): a case for a risk officer."""

    __tablename__ = "risk_alerts"

    id: Mapped[int] = mapped_column(primary_key=True)
    scenario_id: Mapped[int | None] = mapped_column(ForeignKey("risk_scenarios.id"), index=True)
    decision: Mapped[str] = mapped_column(String(8))  # review | decline
    score: Mapped[int] = mapped_column(Integer)
    rules: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [{"code", "score"}]
    kind: Mapped[str] = mapped_column(String(16), default="")
    tid: Mapped[str] = mapped_column(String(8), default="")
    mid: Mapped[str] = mapped_column(String(15), default="")
    merchant_id: Mapped[int | None] = mapped_column(Integer, index=True)
    pan_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    pan_masked: Mapped[str] = mapped_column(String(19), default="")
    amount: Mapped[int] = mapped_column(Integer, default=0)
    dup_key: Mapped[str | None] = mapped_column(String(32), index=True)  # the journal row
    state: Mapped[str] = mapped_column(String(12), default="open", index=True)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())  # SLA on first look
    first_looked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    outcome: Mapped[str] = mapped_column(String(24), default="")
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def transition(self, target: AlertState) -> AlertState:
        current = AlertState(self.state)
        if target not in ALERT_TRANSITIONS[current]:
            raise InvalidTransition(
                "Alert {id} is {state_from}; it cannot become {state_to}.",
                id=self.id,
                state_from=current.value,
                state_to=target.value,
            )
        self.state = target.value
        return current


class AlertEvent(Base):
    """The history of an alert: typed event, what changed, who, when (notes included)."""

    __tablename__ = "risk_alert_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("risk_alerts.id"), index=True)
    code: Mapped[str] = mapped_column(String(24))
    text: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class RatingLimit(Base):
    """The limits of a rating class (fen; ``None`` = no limit)."""

    __tablename__ = "risk_rating_limits"

    rating: Mapped[str] = mapped_column(String(1), primary_key=True)
    single_limit: Mapped[int | None] = mapped_column(Integer)
    daily_limit: Mapped[int | None] = mapped_column(Integer)
    monthly_limit: Mapped[int | None] = mapped_column(Integer)


class MerchantRating(Base):
    """A merchant's current rating and when it is next reviewed."""

    __tablename__ = "risk_merchant_ratings"

    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), primary_key=True)
    rating: Mapped[str] = mapped_column(String(1))
    reviewed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    next_review_on: Mapped[date] = mapped_column(Date)
    note: Mapped[str] = mapped_column(String(500), default="")


class RatingReview(Base):
    """Every rating decision (a change or a periodic review that kept it)."""

    __tablename__ = "risk_rating_reviews"

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"), index=True)
    rating_from: Mapped[str] = mapped_column(String(1), default="")
    rating_to: Mapped[str] = mapped_column(String(1))
    note: Mapped[str] = mapped_column(String(500), default="")
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
