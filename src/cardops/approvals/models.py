"""Approval chains (ordered role steps per kind of request), requests and their history.

A request copies its chain's steps when it is submitted (``ApprovalRequestStep``), so editing
a chain later changes new requests only, never those already in flight.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Boolean, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cardops.core.clock import utcnow
from cardops.core.db import Base, TimestampMixin
from cardops.core.errors import InvalidTransition
from cardops.core.i18n import N_, gettext

if TYPE_CHECKING:
    from cardops.auth.models import Role, User


class RequestState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


# The whole lifecycle of a request: where each state may go next.
TRANSITIONS: dict[RequestState, frozenset[RequestState]] = {
    RequestState.PENDING: frozenset(
        {RequestState.APPROVED, RequestState.REJECTED, RequestState.WITHDRAWN}
    ),
    RequestState.REJECTED: frozenset({RequestState.PENDING, RequestState.WITHDRAWN}),
    RequestState.APPROVED: frozenset(),
    RequestState.WITHDRAWN: frozenset(),
}

STATE_LABELS: dict[str, str] = {
    RequestState.PENDING: N_("Pending"),
    RequestState.APPROVED: N_("Approved"),
    RequestState.REJECTED: N_("Rejected"),
    RequestState.WITHDRAWN: N_("Withdrawn"),
}


class ActionKind(StrEnum):
    SUBMIT = "submit"
    APPROVE = "approve"
    REJECT = "reject"
    RESUBMIT = "resubmit"
    WITHDRAW = "withdraw"


ACTION_LABELS: dict[str, str] = {
    ActionKind.SUBMIT: N_("Submit"),
    ActionKind.APPROVE: N_("Approve"),
    ActionKind.REJECT: N_("Reject"),
    ActionKind.RESUBMIT: N_("Resubmit"),
    ActionKind.WITHDRAW: N_("Withdraw"),
}


class ApprovalChain(TimestampMixin, Base):
    """The ordered role steps that one kind of request goes through."""

    __tablename__ = "approval_chains"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(64), unique=True)
    name_en: Mapped[str] = mapped_column(String(128))
    name_zh: Mapped[str] = mapped_column(String(128))
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    steps: Mapped[list[ApprovalStep]] = relationship(
        back_populates="chain",
        cascade="all, delete-orphan",
        lazy="selectin",
        order_by="ApprovalStep.position",
    )

    def name(self, locale: str) -> str:
        return self.name_zh if locale.startswith("zh") else self.name_en


class ApprovalStep(Base):
    __tablename__ = "approval_steps"
    __table_args__ = (UniqueConstraint("chain_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    chain_id: Mapped[int] = mapped_column(
        ForeignKey("approval_chains.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column()  # 1, 2, 3 …
    role_id: Mapped[int] = mapped_column(ForeignKey("roles.id"))
    label: Mapped[str] = mapped_column(String(128), default="")

    chain: Mapped[ApprovalChain] = relationship(back_populates="steps")
    role: Mapped[Role] = relationship(lazy="joined")


class ApprovalRequest(TimestampMixin, Base):
    """One thing waiting for (or past) approval, with a copy of its chain's steps."""

    __tablename__ = "approval_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[str] = mapped_column(String(64), index=True)
    chain_id: Mapped[int] = mapped_column(ForeignKey("approval_chains.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    subject_type: Mapped[str | None] = mapped_column(String(64))
    subject_id: Mapped[str | None] = mapped_column(String(64))
    submitter_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    state: Mapped[str] = mapped_column(String(16), default=RequestState.PENDING, index=True)
    current_step: Mapped[int | None] = mapped_column()  # position waiting for a decision
    round: Mapped[int] = mapped_column(default=1)
    submitted_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column()

    chain: Mapped[ApprovalChain] = relationship(lazy="selectin")
    submitter: Mapped[User] = relationship(lazy="selectin")
    steps: Mapped[list[ApprovalRequestStep]] = relationship(
        back_populates="request",
        cascade="all, delete-orphan",
        lazy="selectin",
        order_by="ApprovalRequestStep.position",
    )
    actions: Mapped[list[ApprovalAction]] = relationship(
        back_populates="request",
        cascade="all, delete-orphan",
        order_by="ApprovalAction.id",
    )

    # --- lifecycle --------------------------------------------------------------------------

    def can_become(self, target: RequestState) -> bool:
        return target in TRANSITIONS[RequestState(self.state)]

    def check_transition(self, target: RequestState) -> None:
        """Refuse (409) a move the transition table does not allow."""
        if not self.can_become(target):
            raise InvalidTransition(
                "Request {number} is “{state}” and cannot become “{target}”.",
                number=self.number,
                state=gettext(STATE_LABELS[self.state]),
                target=gettext(STATE_LABELS[target]),
            )

    def transition(self, target: RequestState) -> None:
        self.check_transition(target)
        self.state = target

    # --- convenience for pages and callers ---------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self.state == RequestState.PENDING

    @property
    def current(self) -> ApprovalRequestStep | None:
        """The step waiting for a decision, while the request is pending."""
        if self.state != RequestState.PENDING or self.current_step is None:
            return None
        for step in self.steps:
            if step.position == self.current_step:
                return step
        return None

    @property
    def state_label(self) -> str:
        return STATE_LABELS.get(self.state, self.state)


class ApprovalRequestStep(Base):
    """A request's own copy of a chain step, fixed when it was submitted."""

    __tablename__ = "approval_request_steps"
    __table_args__ = (UniqueConstraint("request_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("approval_requests.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column()
    role_id: Mapped[int] = mapped_column(ForeignKey("roles.id"), index=True)
    label: Mapped[str] = mapped_column(String(128), default="")

    request: Mapped[ApprovalRequest] = relationship(back_populates="steps")
    role: Mapped[Role] = relationship(lazy="joined")

    def title(self, locale: str) -> str:
        return self.label or self.role.name(locale)


class ApprovalAction(Base):
    """One line of a request's history: who did what at which step, with what comment."""

    __tablename__ = "approval_actions"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("approval_requests.id", ondelete="CASCADE"), index=True
    )
    round: Mapped[int] = mapped_column()
    step: Mapped[int | None] = mapped_column()  # position decided on; none for submit/withdraw
    role_id: Mapped[int | None] = mapped_column(ForeignKey("roles.id"))
    action: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    comment: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(default=utcnow)

    request: Mapped[ApprovalRequest] = relationship(back_populates="actions")
    actor: Mapped[User] = relationship(lazy="joined")
    role: Mapped[Role | None] = relationship(lazy="joined")

    @property
    def action_label(self) -> str:
        return ACTION_LABELS.get(self.action, self.action)
