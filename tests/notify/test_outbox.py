"""The outbox against a real SMTP server: sending, backoff, giving up, SMS, de-duplication."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cardops.audit import service as audit
from cardops.auth.service import system_user
from cardops.core.clock import freeze
from cardops.core.errors import InvalidTransition, ValidationFailed
from cardops.notify import service
from cardops.notify.models import MessageState, OutboxMessage
from cardops.notify.transport import (
    NO_SMS_ADAPTER,
    NO_SMTP,
    DeliveryError,
    parse_smtp_url,
    register_sms_adapter,
)
from tests.factories import make_user
from tests.notify.conftest import Collector, Configure

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def _email(db: Session, **kwargs: object) -> OutboxMessage:
    values: dict[str, object] = {
        "channel": "email",
        "recipient": "zhang.wei@example.cn",
        "subject": "您的卡将于 30 天后到期",
        "body": "尊敬的张伟：\n您的一卡通将于 2026-04-01 到期，请及时到前台办理续期。\n",
    }
    values.update(kwargs)
    return service.enqueue(db, **values)  # type: ignore[arg-type]


def test_email_with_chinese_goes_over_real_smtp(db: Session, smtp: Collector) -> None:
    message = _email(db, ref="card:12")
    assert message.state == MessageState.PENDING
    assert service.dispatch_due(db) == (1, 0)

    assert len(smtp.messages) == 1
    received = smtp.messages[0]
    assert received.rcpt_tos == ["zhang.wei@example.cn"]
    assert received.mail_from == "ops@cardops.test"
    assert received.message["Subject"] == "您的卡将于 30 天后到期"
    assert received.message["To"] == "zhang.wei@example.cn"
    assert "运营中心" in str(received.message["From"])
    body = received.message.get_body(("plain",))
    assert body is not None
    assert "请及时到前台办理续期" in body.get_content()

    assert message.state == MessageState.SENT
    assert message.attempts == 1
    assert message.sent_at is not None
    actions = [e.action for e in audit.history(db, "notify_outbox", message.id)]
    assert actions == ["notify.queued", "notify.sent"]
    assert service.dispatch_due(db) == (0, 0)  # nothing is sent twice


def test_html_part_and_smtp_login(
    db: Session, smtp_server: tuple[Collector, int], configure: Configure
) -> None:
    collector, port = smtp_server
    configure(smtp_url=f"smtp://mailer:p%40ss%20word@127.0.0.1:{port}")
    _email(db, html="<p>您的卡<b>即将到期</b></p>")
    assert service.dispatch_due(db) == (1, 0)
    assert collector.logins == [("mailer", "p@ss word")]
    html = collector.messages[0].message.get_body(("html",))
    assert html is not None and "即将到期" in html.get_content()


def test_smtp_down_backs_off_then_gives_up(
    db: Session, configure: Configure, closed_port: int
) -> None:
    configure(smtp_url=f"smtp://127.0.0.1:{closed_port}", notify_max_attempts=3)
    freeze(T0)
    message = _email(db)

    assert service.dispatch_due(db) == (0, 1)
    assert message.state == MessageState.FAILED
    assert message.attempts == 1
    assert message.next_attempt_at == T0 + timedelta(minutes=1)
    assert message.last_error and "refused" in message.last_error.lower()

    assert service.dispatch_due(db) == (0, 0)  # not due yet
    freeze(T0 + timedelta(minutes=1))
    assert service.dispatch_due(db) == (0, 1)
    assert message.attempts == 2
    assert message.next_attempt_at == T0 + timedelta(minutes=1 + 2)

    freeze(T0 + timedelta(minutes=3))
    assert service.dispatch_due(db) == (0, 1)
    assert message.state == MessageState.DEAD
    assert message.attempts == 3

    freeze(T0 + timedelta(days=1))
    assert service.dispatch_due(db) == (0, 0)  # dead stays dead
    actions = [e.action for e in audit.history(db, "notify_outbox", message.id)]
    assert actions == ["notify.queued", "notify.failed", "notify.failed", "notify.dead"]


def test_backoff_doubles_and_is_capped() -> None:
    assert [service.backoff(n).total_seconds() / 60 for n in (1, 2, 3, 4, 5)] == [1, 2, 4, 8, 16]
    assert service.backoff(30) == timedelta(hours=6)


def test_manual_retry_after_giving_up_then_delivery(
    db: Session, smtp_server: tuple[Collector, int], configure: Configure, closed_port: int
) -> None:
    configure(smtp_url=f"smtp://127.0.0.1:{closed_port}", notify_max_attempts=1)
    message = _email(db)
    assert service.dispatch_due(db) == (0, 1)
    assert message.state == MessageState.DEAD

    admin = make_user(db, "sysadmin")
    service.retry(session=db, actor=admin, message_id=message.id)
    assert (message.state, message.attempts, message.last_error) == (MessageState.PENDING, 0, None)
    with pytest.raises(InvalidTransition):
        service.retry(session=db, actor=admin, message_id=message.id)

    collector, port = smtp_server
    configure(smtp_url=f"smtp://127.0.0.1:{port}")
    assert service.dispatch_due(db) == (1, 0)
    assert message.state == MessageState.SENT
    assert len(collector.messages) == 1


def test_without_smtp_url_emails_wait_with_the_reason(db: Session, configure: Configure) -> None:
    configure(smtp_url=None)
    message = _email(db)
    assert service.dispatch_due(db) == (0, 0)
    assert message.state == MessageState.PENDING
    assert message.attempts == 0
    assert message.last_error == NO_SMTP


def test_sms_log_adapter_marks_sent(
    db: Session, configure: Configure, caplog: pytest.LogCaptureFixture
) -> None:
    configure(sms_adapter="log")
    message = service.enqueue(
        db, channel="sms", recipient="+86 138-0013-8000", subject="", body="您的门禁密码已更新。"
    )
    assert message.recipient == "13800138000"
    with caplog.at_level(logging.INFO, logger="cardops.notify"):
        assert service.dispatch_due(db) == (1, 0)
    assert message.state == MessageState.SENT
    assert "您的门禁密码已更新" in caplog.text and "13800138000" in caplog.text


class RefusingGateway:
    """A gateway plug-in that refuses every message (loaded as ``module:factory``)."""

    def send(self, *, recipient: str, body: str, message_id: int) -> None:
        raise DeliveryError("gateway answered 4031 quota exceeded")


def test_sms_adapter_plugin_by_import_path(db: Session, configure: Configure) -> None:
    configure(sms_adapter="tests.notify.test_outbox:RefusingGateway")
    message = service.enqueue(db, channel="sms", recipient="13900139000", subject="", body="测试")
    assert service.dispatch_due(db) == (0, 1)
    assert message.state == MessageState.FAILED
    assert message.last_error == "gateway answered 4031 quota exceeded"

    sent: list[tuple[str, str]] = []

    class Recording:
        def send(self, *, recipient: str, body: str, message_id: int) -> None:
            sent.append((recipient, body))

    register_sms_adapter("recording-test", Recording)
    configure(sms_adapter="recording-test")
    freeze(message.next_attempt_at)
    assert service.dispatch_due(db) == (1, 0)
    assert sent == [("13900139000", "测试")]


def test_unknown_sms_adapter_keeps_messages_waiting(db: Session, configure: Configure) -> None:
    configure(sms_adapter="no-such-gateway")
    message = service.enqueue(db, channel="sms", recipient="13900139000", subject="", body="x")
    assert service.dispatch_due(db) == (0, 0)
    assert (message.state, message.last_error) == (MessageState.PENDING, NO_SMS_ADAPTER)


@pytest.mark.parametrize(
    ("channel", "recipient"),
    [
        ("email", "not-an-address"),
        ("email", "a@b"),
        ("email", "two@@example.cn"),
        ("email", "x@exa mple.cn"),
        ("sms", "12345"),
        ("sms", "12800138000"),
        ("sms", "1380013800a"),
    ],
)
def test_invalid_recipient_is_refused(db: Session, channel: str, recipient: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        service.enqueue(db, channel=channel, recipient=recipient, subject="s", body="b")
    assert caught.value.field == "recipient"


def test_dedupe_key_queues_a_reminder_once(db: Session) -> None:
    first = _email(db, dedupe_key="card-expiry:12:2026-04-01")
    again = _email(db, dedupe_key="card-expiry:12:2026-04-01", subject="another subject")
    assert again.id == first.id
    count = db.execute(
        select(func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.dedupe_key == "card-expiry:12:2026-04-01")
    ).scalar_one()
    assert count == 1
    other = _email(db, dedupe_key="card-expiry:13:2026-04-01")
    assert other.id != first.id


def test_send_after_delays_the_message(db: Session, configure: Configure) -> None:
    configure(sms_adapter="log")
    freeze(T0)
    message = service.enqueue(
        db,
        channel="sms",
        recipient="13700137000",
        subject="",
        body="提醒",
        send_after=T0 + timedelta(hours=2),
    )
    assert service.dispatch_due(db) == (0, 0)
    freeze(T0 + timedelta(hours=2))
    assert service.dispatch_due(db) == (1, 0)
    assert message.state == MessageState.SENT


def test_a_claim_left_by_a_stopped_dispatcher_expires(db: Session, configure: Configure) -> None:
    configure(sms_adapter="log")
    freeze(T0)
    message = service.enqueue(db, channel="sms", recipient="13700137000", subject="", body="x")
    assert service.claim_due(db) == [message]  # ... and the dispatcher dies here
    assert message.state == MessageState.SENDING
    assert service.dispatch_due(db) == (0, 0)
    freeze(T0 + service.CLAIM_LEASE)
    assert service.dispatch_due(db) == (1, 0)
    assert message.attempts == 2


def test_test_email_needs_manage(db: Session) -> None:
    from cardops.core.errors import PermissionDenied

    clerk = make_user(db, "cs_supervisor")
    with pytest.raises(PermissionDenied):
        service.send_test_email(session=db, actor=clerk, address="a@example.cn")
    message = service.send_test_email(session=db, actor=system_user(db), address="a@example.cn")
    assert "测试" in message.subject and "test" in message.body


def test_parse_smtp_url() -> None:
    plain = parse_smtp_url("smtp://mail.example.cn")
    assert (plain.host, plain.port, plain.use_ssl, plain.starttls) == (
        "mail.example.cn",
        25,
        False,
        False,
    )
    tls = parse_smtp_url("smtps://u%40x:p%3Aw@mail.example.cn")
    assert (tls.port, tls.use_ssl, tls.username, tls.password) == (465, True, "u@x", "p:w")
    sub = parse_smtp_url("smtp://mail.example.cn:587?starttls=1&timeout=5")
    assert (sub.port, sub.starttls, sub.timeout) == (587, True, 5.0)
    for bad in ("http://mail.example.cn", "smtp://", "smtp://h:notaport", "smtp://h?timeout=0"):
        with pytest.raises(ValueError):
            parse_smtp_url(bad)
