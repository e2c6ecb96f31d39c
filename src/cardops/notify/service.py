"""The outbox: queue e-mails and SMS, send the due ones, retry failures with backoff.

Other domains call :func:`enqueue` in the same transaction as the change they announce, so a
message exists exactly when the change was committed. Sending happens later:
:func:`dispatch_due` sends within the caller's session (tests, one-off use), while
:func:`cardops.notify.jobs.dispatch_once` — used by the web server's background job and by
``cardops notify dispatch`` / ``run`` — claims, sends and records in short separate
transactions so that no database lock is held while talking to a mail server.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cardops.audit.service import record
from cardops.auth.service import require
from cardops.core.clock import utcnow
from cardops.core.config import get_settings
from cardops.core.errors import NotFound, ValidationFailed
from cardops.core.i18n import N_
from cardops.notify.models import Channel, MessageState, OutboxMessage
from cardops.notify.permissions import NOTIFY_MANAGE, NOTIFY_VIEW
from cardops.notify.transport import Deliverer, DeliveryError, Outgoing, channel_problems

if TYPE_CHECKING:
    from cardops.auth.models import User

# How long a dispatcher's claim on a message lasts. A message still "sending" after that
# belongs to a dispatcher that stopped half-way; it is counted as a failed attempt and retried.
CLAIM_LEASE = timedelta(minutes=15)
INTERRUPTED = N_("The dispatcher stopped before this attempt finished.")
BACKOFF_BASE = timedelta(minutes=1)
BACKOFF_MAX = timedelta(hours=6)

MAX_SUBJECT = 200
MAX_EMAIL_BODY = 200_000
MAX_SMS_BODY = 500

_EMAIL_LOCAL = re.compile(r"^[^\s@<>()\[\],;:\"\\]{1,64}$")
_DOMAIN_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_MOBILE = re.compile(r"^1[3-9]\d{9}$")


# --- validation ---------------------------------------------------------------------------


def normalize_email(value: str) -> str:
    """The address, trimmed; refuse (422, field ``recipient``) what cannot be one."""
    address = value.strip()
    local_part, at, domain = address.rpartition("@")
    valid = bool(at) and len(address) <= 254 and bool(_EMAIL_LOCAL.match(local_part))
    if valid:
        try:
            ascii_domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            valid = False
        else:
            labels = ascii_domain.split(".")
            valid = (
                len(labels) >= 2
                and all(_DOMAIN_LABEL.match(label) for label in labels)
                and not labels[-1].isdigit()
            )
    if not valid:
        raise ValidationFailed(
            "“{value}” is not a valid e-mail address.", field="recipient", value=value[:80]
        )
    return address


def normalize_mobile(value: str) -> str:
    """A mainland China mobile number, 11 digits starting 13–19 (``+86`` and spaces allowed)."""
    number = re.sub(r"[\s-]", "", value)
    for prefix in ("+86", "0086"):
        if number.startswith(prefix):
            number = number[len(prefix) :]
    if not _MOBILE.match(number):
        raise ValidationFailed(
            "“{value}” is not a valid mainland mobile number (11 digits starting with 13–19).",
            field="recipient",
            value=value[:40],
        )
    return number


def normalize_recipient(channel: str, recipient: str) -> str:
    return normalize_email(recipient) if channel == Channel.EMAIL else normalize_mobile(recipient)


def _check_channel(channel: str) -> Channel:
    try:
        return Channel(channel)
    except ValueError:
        raise ValidationFailed(
            "Choose e-mail or SMS as the channel.", field="channel", value=channel[:20]
        ) from None


def _check_text(channel: Channel, subject: str, body: str) -> tuple[str, str]:
    subject = subject.strip()
    if channel == Channel.EMAIL and not subject:
        raise ValidationFailed("Enter a subject.", field="subject")
    if len(subject) > MAX_SUBJECT:
        raise ValidationFailed(
            "The subject is longer than {n} characters.", field="subject", n=MAX_SUBJECT
        )
    if "\n" in subject or "\r" in subject:
        raise ValidationFailed("The subject must be a single line.", field="subject")
    if not body.strip():
        raise ValidationFailed("Enter the message text.", field="body")
    limit = MAX_EMAIL_BODY if channel == Channel.EMAIL else MAX_SMS_BODY
    if len(body) > limit:
        raise ValidationFailed(
            "The message text is longer than {n} characters.", field="body", n=limit
        )
    return subject, body


# --- queueing -----------------------------------------------------------------------------


def find_by_dedupe_key(session: Session, dedupe_key: str) -> OutboxMessage | None:
    return session.execute(
        select(OutboxMessage).where(OutboxMessage.dedupe_key == dedupe_key)
    ).scalar_one_or_none()


def enqueue_checked(
    session: Session,
    *,
    channel: str,
    recipient: str,
    subject: str,
    body: str,
    actor: User | None = None,
    ref: str | None = None,
    dedupe_key: str | None = None,
    html: str | None = None,
    send_after: datetime | None = None,
) -> tuple[OutboxMessage, bool]:
    """Like :func:`enqueue`; also says whether a new message was queued (False: the
    ``dedupe_key`` was queued before and that message is returned)."""
    kind = _check_channel(channel)
    recipient = normalize_recipient(kind, recipient)
    subject, body = _check_text(kind, subject, body)
    if html and (kind != Channel.EMAIL or len(html) > MAX_EMAIL_BODY):
        raise ValidationFailed("An HTML part is only for e-mails of normal size.", field="html")
    ref = (ref or "").strip() or None
    dedupe_key = (dedupe_key or "").strip() or None
    if ref and len(ref) > 64:
        raise ValidationFailed("The reference is longer than {n} characters.", field="ref", n=64)
    if dedupe_key and len(dedupe_key) > 128:
        raise ValidationFailed(
            "The de-duplication key is longer than {n} characters.", field="dedupe_key", n=128
        )
    if dedupe_key:
        existing = find_by_dedupe_key(session, dedupe_key)
        if existing is not None:
            return existing, False
    now = utcnow()
    message = OutboxMessage(
        channel=kind.value,
        recipient=recipient,
        subject=subject,
        body=body,
        html=html or None,
        state=MessageState.PENDING,
        attempts=0,
        next_attempt_at=max(send_after, now) if send_after else now,
        created_at=now,
        created_by_id=actor.id if actor is not None else None,
        ref=ref,
        dedupe_key=dedupe_key,
    )
    if dedupe_key:
        # Two writers may queue the same reminder at once: the unique key lets one win.
        try:
            with session.begin_nested():
                session.add(message)
                session.flush()
        except IntegrityError:
            existing = find_by_dedupe_key(session, dedupe_key)
            if existing is None:
                raise
            return existing, False
    else:
        session.add(message)
        session.flush()
    record(
        session,
        actor,
        "notify.queued",
        message,
        after={
            "channel": message.channel,
            "recipient": message.recipient,
            "subject": message.subject,
            "ref": message.ref,
            "dedupe_key": message.dedupe_key,
            "next_attempt_at": message.next_attempt_at,
        },
    )
    return message, True


def enqueue(
    session: Session,
    *,
    channel: str,
    recipient: str,
    subject: str,
    body: str,
    actor: User | None = None,
    ref: str | None = None,
    dedupe_key: str | None = None,
    html: str | None = None,
    send_after: datetime | None = None,
) -> OutboxMessage:
    """Queue an e-mail (``channel="email"``) or SMS (``"sms"``); it is sent by the dispatcher.

    Called by other domains as part of an action the actor is already allowed to take, so no
    permission is checked here (the notifications API checks ``notify.send``). A message with
    a ``dedupe_key`` that was queued before is not queued again: the earlier one is returned.
    ``ref`` points at what the message is about (``"card:12"``); ``send_after`` delays it.
    """
    message, _ = enqueue_checked(
        session,
        channel=channel,
        recipient=recipient,
        subject=subject,
        body=body,
        actor=actor,
        ref=ref,
        dedupe_key=dedupe_key,
        html=html,
        send_after=send_after,
    )
    return message


def send_test_email(*, session: Session, actor: User, address: str) -> OutboxMessage:
    """Queue a short bilingual e-mail that shows whether the SMTP settings work."""
    require(actor, NOTIFY_MANAGE)
    stamp = utcnow().strftime("%Y-%m-%d %H:%M:%S UTC")
    return enqueue(
        session,
        channel=Channel.EMAIL,
        recipient=address,
        subject="cardops 测试邮件 / test e-mail",
        body=(
            f"这是 cardops 发出的测试邮件（{stamp}）。收到此邮件说明邮件发送配置正确。\n\n"
            f"This is a test e-mail from cardops ({stamp}). "
            "If you can read it, e-mail delivery works.\n"
        ),
        actor=actor,
        ref="test",
    )


# --- sending ------------------------------------------------------------------------------


def backoff(attempts: int) -> timedelta:
    """Wait before the next attempt after ``attempts`` failed ones: 1, 2, 4, 8 … minutes."""
    return min(BACKOFF_BASE * 2 ** max(attempts - 1, 0), BACKOFF_MAX)


def _mark_waiting(session: Session, problems: dict[str, str]) -> None:
    """Explain on each waiting message why its channel cannot send (without failing it)."""
    for channel, reason in problems.items():
        waiting = session.execute(
            select(OutboxMessage).where(
                OutboxMessage.channel == channel,
                OutboxMessage.state == MessageState.PENDING,
                or_(OutboxMessage.last_error.is_(None), OutboxMessage.last_error != reason),
            )
        ).scalars()
        for message in waiting:  # only those not yet told, so this is empty after one round
            message.last_error = reason


def claim_due(
    session: Session,
    *,
    now: datetime | None = None,
    limit: int = 100,
    ids: Collection[int] | None = None,
) -> list[OutboxMessage]:
    """Mark up to ``limit`` due messages "sending" and count the attempt.

    Messages of a channel that is not configured stay pending with the reason in
    ``last_error``. On PostgreSQL rows locked by another dispatcher are skipped.
    """
    now = now or utcnow()
    problems = channel_problems()
    _mark_waiting(session, problems)
    ready = [c.value for c in Channel if c.value not in problems]
    if not ready:
        return []
    stmt = (
        select(OutboxMessage)
        .where(
            OutboxMessage.state.in_(
                [MessageState.PENDING, MessageState.FAILED, MessageState.SENDING]
            ),
            OutboxMessage.next_attempt_at <= now,
            OutboxMessage.channel.in_(ready),
        )
        .order_by(OutboxMessage.next_attempt_at, OutboxMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if ids is not None:
        stmt = stmt.where(OutboxMessage.id.in_(list(ids)))
    max_attempts = max(1, get_settings().notify_max_attempts)
    claimed: list[OutboxMessage] = []
    for message in session.execute(stmt).scalars():
        if message.state == MessageState.SENDING:
            # Its dispatcher stopped before recording the outcome.
            message.last_error = INTERRUPTED
            if message.attempts >= max_attempts:
                message.transition(MessageState.DEAD)
                record(session, None, "notify.dead", message, after=_outcome(message))
                continue
            message.transition(MessageState.FAILED)
        message.transition(MessageState.SENDING)
        message.attempts += 1
        message.next_attempt_at = now + CLAIM_LEASE
        claimed.append(message)
    session.flush()
    return claimed


def _outcome(message: OutboxMessage) -> dict[str, Any]:
    return {
        "state": message.state,
        "attempts": message.attempts,
        "next_attempt_at": message.next_attempt_at,
        "last_error": message.last_error,
    }


def record_outcome(
    session: Session,
    *,
    message_id: int,
    error: DeliveryError | None,
    now: datetime | None = None,
) -> OutboxMessage:
    """After an attempt: sent, or failed with the next attempt scheduled, or dead."""
    now = now or utcnow()
    message = session.get(OutboxMessage, message_id, populate_existing=True)
    if message is None:
        raise NotFound("No notification with id {id}.", id=message_id)
    if message.state != MessageState.SENDING:
        return message  # another dispatcher took over after the claim expired
    if error is None:
        message.transition(MessageState.SENT)
        message.sent_at = now
        message.last_error = None
        session.flush()
        record(session, None, "notify.sent", message, after=_outcome(message))
        return message
    message.last_error = str(error)[:1000]
    if error.permanent or message.attempts >= max(1, get_settings().notify_max_attempts):
        message.transition(MessageState.DEAD)
        message.next_attempt_at = now
        action = "notify.dead"
    else:
        message.transition(MessageState.FAILED)
        message.next_attempt_at = now + backoff(message.attempts)
        action = "notify.failed"
    session.flush()
    record(session, None, action, message, after=_outcome(message))
    return message


def dispatch_due(
    session: Session, now: datetime | None = None, limit: int = 100
) -> tuple[int, int]:
    """Send up to ``limit`` due messages within ``session``; returns (sent, failed).

    The caller commits. Long batches hold the transaction open while sending; the background
    job uses :func:`cardops.notify.jobs.dispatch_once` instead.
    """
    sent = failed = 0
    messages = claim_due(session, now=now, limit=limit)
    with Deliverer() as deliverer:
        for message in messages:
            error = deliverer.deliver(Outgoing.of(message))
            record_outcome(session, message_id=message.id, error=error, now=now)
            if error is None:
                sent += 1
            else:
                failed += 1
    return sent, failed


# --- operators ----------------------------------------------------------------------------


def retry(*, session: Session, actor: User, message_id: int) -> OutboxMessage:
    """Send a failed or given-up message again, with a fresh count of attempts."""
    require(actor, NOTIFY_MANAGE)
    message = session.get(OutboxMessage, message_id)
    if message is None:
        raise NotFound("No notification with id {id}.", id=message_id)
    before = _outcome(message)
    message.transition(MessageState.PENDING)
    message.attempts = 0
    message.next_attempt_at = utcnow()
    message.last_error = None
    session.flush()
    record(session, actor, "notify.retried", message, before=before, after=_outcome(message))
    return message


def get_message(*, session: Session, actor: User, message_id: int) -> OutboxMessage:
    require(actor, NOTIFY_VIEW)
    message = session.get(OutboxMessage, message_id)
    if message is None:
        raise NotFound("No notification with id {id}.", id=message_id)
    return message


def list_messages(
    *,
    session: Session,
    actor: User,
    state: str | None = None,
    channel: str | None = None,
    q: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[OutboxMessage]:
    """Newest first."""
    require(actor, NOTIFY_VIEW)
    stmt = select(OutboxMessage).order_by(OutboxMessage.id.desc())
    if state:
        stmt = stmt.where(OutboxMessage.state == state)
    if channel:
        stmt = stmt.where(OutboxMessage.channel == channel)
    if q:
        like = f"%{q}%"
        stmt = stmt.where(
            or_(
                OutboxMessage.recipient.like(like),
                OutboxMessage.subject.like(like),
                OutboxMessage.ref == q,
            )
        )
    return list(session.execute(stmt.limit(limit).offset(offset)).scalars())


def count_by_state(*, session: Session, actor: User) -> dict[str, int]:
    require(actor, NOTIFY_VIEW)
    rows = session.execute(
        select(OutboxMessage.state, func.count()).group_by(OutboxMessage.state)
    ).all()
    counts = {state.value: 0 for state in MessageState}
    counts.update({state: n for state, n in rows})
    return counts
