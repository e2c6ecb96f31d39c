"""The notification outbox: one row per e-mail or SMS, and its delivery lifecycle.

Other domains put messages here (:func:`cardops.notify.service.enqueue`) in the same
transaction as the change they announce; a dispatcher sends them later and retries failures
with exponential backoff until ``settings.notify_max_attempts`` is reached.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cardops.core.clock import utcnow
from cardops.core.db import Base
from cardops.core.errors import InvalidTransition
from cardops.core.i18n import N_, gettext


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"


class MessageState(StrEnum):
    PENDING = "pending"  # waiting for its first attempt (or for the channel to be configured)
    SENDING = "sending"  # claimed by a dispatcher; the claim expires at next_attempt_at
    SENT = "sent"  # accepted by the SMTP server or the SMS gateway
    FAILED = "failed"  # the last attempt failed; the next one is due at next_attempt_at
    DEAD = "dead"  # given up; only a manual retry brings it back


# The whole lifecycle of a message: where each state may go next.
TRANSITIONS: dict[MessageState, frozenset[MessageState]] = {
    MessageState.PENDING: frozenset({MessageState.SENDING}),
    MessageState.SENDING: frozenset({MessageState.SENT, MessageState.FAILED, MessageState.DEAD}),
    MessageState.FAILED: frozenset({MessageState.SENDING, MessageState.PENDING}),
    MessageState.DEAD: frozenset({MessageState.PENDING}),
    MessageState.SENT: frozenset(),
}

# States a manual retry starts again from.
RETRYABLE = frozenset({MessageState.FAILED, MessageState.DEAD})

STATE_LABELS: dict[str, str] = {
    MessageState.PENDING: N_("Waiting to send"),
    MessageState.SENDING: N_("Sending"),
    MessageState.SENT: N_("Sent"),
    MessageState.FAILED: N_("Failed, will retry"),
    MessageState.DEAD: N_("Given up"),
}

CHANNEL_LABELS: dict[str, str] = {
    Channel.EMAIL: N_("Mail"),
    Channel.SMS: N_("SMS"),
}


class OutboxMessage(Base):
    __tablename__ = "notify_outbox"
    __table_args__ = (Index("ix_notify_outbox_due", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(8))
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(200), default="")
    body: Mapped[str] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), default=MessageState.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(String(1000))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    sent_at: Mapped[datetime | None] = mapped_column()
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    ref: Mapped[str | None] = mapped_column(String(64), index=True)  # e.g. "card:12"
    dedupe_key: Mapped[str | None] = mapped_column(String(128), unique=True)

    def __repr__(self) -> str:
        return f"<OutboxMessage {self.id} {self.channel} {self.state}>"

    # --- lifecycle --------------------------------------------------------------------------

    def can_become(self, target: MessageState) -> bool:
        return target in TRANSITIONS[MessageState(self.state)]

    def transition(self, target: MessageState) -> None:
        """Move to ``target``; refuse (409) a move the transition table does not allow."""
        if not self.can_become(target):
            raise InvalidTransition(
                "Message {id} is “{state}” and cannot become “{target}”.",
                id=self.id,
                state=gettext(STATE_LABELS[self.state]),
                target=gettext(STATE_LABELS[target]),
            )
        self.state = target

    @property
    def state_label(self) -> str:
        return STATE_LABELS.get(self.state, self.state)

    @property
    def channel_label(self) -> str:
        return CHANNEL_LABELS.get(self.channel, self.channel)
