"""Support e-mail: a real SMTP endpoint (aiosmtpd) on a free port, real mail sent with smtplib;
replies are threaded into the same ticket."""

from __future__ import annotations

import smtplib
import socket
from collections.abc import Iterator
from datetime import datetime
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cardops.notify.models import OutboxMessage
from cardops.notify.transport import Outgoing, build_email
from cardops.parties.models import Document
from cardops.servicedesk import service
from cardops.servicedesk.inbound import SupportSmtp
from cardops.servicedesk.models import Ticket, TicketEvent
from tests.factories import make_user


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp(db: Session) -> Iterator[SupportSmtp]:
    server = SupportSmtp("127.0.0.1", _free_port()).start()
    yield server
    server.stop()


def _send(server: SupportSmtp | int, message: EmailMessage) -> None:
    port = server if isinstance(server, int) else server.port
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        assert client.send_message(message) == {}


def _mail(subject: str, body: str, **headers: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "张经理 <zhang@shop.example>"
    message["To"] = "support@cardops.example"
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain="shop.example")
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return message


def _ticket_of(db: Session, msgid: str) -> Ticket:
    event = db.scalars(select(TicketEvent).where(TicketEvent.message_id == msgid)).one()
    ticket = db.get(Ticket, event.ticket_id)
    assert ticket is not None
    return ticket


def test_mail_opens_a_ticket_and_replies_thread_into_it(
    db: Session, smtp: SupportSmtp, monday: datetime
) -> None:
    first = _mail("刷卡机黑屏", "我们店的 POS 机今天早上开机黑屏。")
    first.add_attachment(
        b"\x89PNG\r\n\x1a\nphoto", maintype="image", subtype="png", filename="screen.png"
    )
    _send(smtp, first)
    db.expire_all()
    ticket = _ticket_of(db, first["Message-ID"])
    assert ticket.channel == "email" and ticket.contact_email == "zhang@shop.example"
    assert ticket.contact_name == "张经理" and ticket.subject == "刷卡机黑屏"
    assert "黑屏" in ticket.description
    docs = db.scalars(
        select(Document).where(Document.owner_type == "ticket", Document.owner_id == ticket.id)
    ).all()
    assert [d.filename for d in docs] == ["screen.png"]

    # 1. the customer writes again in the same thread (References names the first message)
    follow = _mail("Re: 刷卡机黑屏", "补充：型号 A920", References=first["Message-ID"])
    _send(smtp, follow)
    # 2. the agent answers; the customer replies to that e-mail (In-Reply-To its Message-ID)
    agent = make_user(db, "call_agent")
    service.reply(session=db, actor=agent, ticket_id=ticket.id, text="请拍下屏幕", pending=True)
    outbound = db.scalars(
        select(OutboxMessage).where(OutboxMessage.ref == f"ticket:{ticket.id}")
    ).one()
    sent = build_email(Outgoing.of(outbound), sender="support@cardops.example")
    assert f"[{ticket.number}]" in str(sent["Subject"])
    answer = _mail("Re: 刷卡机", "已拍照", In_Reply_To=sent["Message-ID"])
    _send(smtp, answer)
    # 3. another mail client that drops the headers but keeps the [number] in the subject
    tagged = _mail(f"Re: [{ticket.number}] 刷卡机黑屏", "还是不行")
    _send(smtp, tagged)
    db.expire_all()
    for message in (follow, answer, tagged):
        assert _ticket_of(db, message["Message-ID"]).id == ticket.id
    assert db.scalar(select(Ticket).where(Ticket.subject == "Re: 刷卡机")) is None
    db.refresh(ticket)
    assert ticket.state == "open"  # the customer's answer ended the wait
    assert ticket.sla_pauses and ticket.sla_pauses[-1][1] is not None

    # the same message delivered twice is stored once
    _send(smtp, tagged)
    db.expire_all()
    count = db.scalars(
        select(TicketEvent).where(TicketEvent.message_id == tagged["Message-ID"])
    ).all()
    assert len(count) == 1

    # an unrelated mail is a new ticket
    other = _mail("发票问题", "请开具发票")
    _send(smtp, other)
    db.expire_all()
    assert _ticket_of(db, other["Message-ID"]).id != ticket.id


def test_serve_starts_the_endpoint_from_the_environment(
    db: Session, monkeypatch: pytest.MonkeyPatch, monday: datetime
) -> None:
    """``cardops serve`` runs every domain's ``jobs.run``: ours opens the SMTP endpoint on
    CARDOPS_SUPPORT_SMTP_PORT and runs the SLA scan; both stop with the server."""
    import asyncio
    import threading

    from cardops.core.config import reset_settings
    from cardops.servicedesk import jobs

    port = _free_port()
    monkeypatch.setenv("CARDOPS_SUPPORT_SMTP_PORT", str(port))
    reset_settings()
    scanned = threading.Event()
    monkeypatch.setattr(jobs, "scan_once", lambda: scanned.set() or 0)

    async def serve_and_mail() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(jobs.run(stop, interval=3600))
        await asyncio.to_thread(scanned.wait, 10)
        message = _mail("来自 serve 的邮件", "测试")
        await asyncio.to_thread(_send, port, message)
        stop.set()
        await asyncio.wait_for(task, 10)

    try:
        asyncio.run(serve_and_mail())
    finally:
        monkeypatch.delenv("CARDOPS_SUPPORT_SMTP_PORT")
        reset_settings()
    assert scanned.is_set()
    db.expire_all()
    assert db.scalars(select(Ticket).where(Ticket.subject == "来自 serve 的邮件")).one()
    with pytest.raises(OSError):  # the endpoint closed with the server
        smtplib.SMTP("127.0.0.1", port, timeout=2)


@pytest.mark.parametrize(
    ("subject", "body", "headers", "kind", "priority"),
    [
        ("投诉：收银员态度差", "上周的事情", {}, "complaint", "normal"),
        ("刷卡机黑屏", "开机就黑屏", {}, "fault", "normal"),
        ("紧急！POS 故障", "整个店不能收款", {}, "fault", "urgent"),
        ("Terminal broken", "It is not working since this morning.", {}, "fault", "normal"),
        ("结算账户变更", "请把结算卡换成新卡", {"Importance": "high"}, "change", "high"),
        ("发票问题", "请开具发票", {"X-Priority": "1 (Highest)"}, "inquiry", "high"),
        ("你好", "我要投诉你们的客服", {}, "complaint", "normal"),
    ],
)
def test_mail_is_classified_by_its_words_and_importance(
    db: Session,
    monday: datetime,
    subject: str,
    body: str,
    headers: dict[str, str],
    kind: str,
    priority: str,
) -> None:
    ticket, created = service.receive_email(db, _mail(subject, body, **headers))
    assert created
    assert (ticket.kind, ticket.priority) == (kind, priority)
