"""The inbound SMTP endpoint of the support address: every message becomes a ticket, or a
line on the ticket it answers (see :func:`cardops.servicedesk.service.receive_email`).

``cardops serve`` starts it through :mod:`cardops.servicedesk.jobs` when
``CARDOPS_SUPPORT_SMTP_PORT`` is set (``CARDOPS_SUPPORT_SMTP_HOST``, default 127.0.0.1). Point
the MX (or a forwarding rule of the mail server) for the support address at it.
"""

from __future__ import annotations

import asyncio
import logging
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from cardops.core.config import get_settings
from cardops.core.db import unit_of_work
from cardops.servicedesk import service

log = logging.getLogger("cardops.servicedesk")

MAX_MESSAGE_BYTES = 25 * 1024 * 1024


def ingest(raw: bytes) -> str:
    """Store one raw message; returns the ticket number it landed on."""
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    with unit_of_work() as session:
        ticket, created = service.receive_email(session, message)
        number = ticket.number
    log.info("support mail %s ticket %s", "opened" if created else "threaded into", number)
    return number


class SupportHandler:
    """aiosmtpd handler: accept, store in a worker thread, answer 250 or 451."""

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content
        data = raw if isinstance(raw, bytes) else str(raw or "").encode("utf-8")
        try:
            number = await asyncio.to_thread(ingest, data)
        except Exception:
            log.exception("could not store a support e-mail")
            return "451 4.3.0 Could not store the message; try again later"
        return f"250 2.0.0 Ticket {number}"


class SupportSmtp:
    """The SMTP server in its own thread (aiosmtpd's Controller)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 2525) -> None:
        self.controller = Controller(
            SupportHandler(),
            hostname=host,
            port=port,
            data_size_limit=MAX_MESSAGE_BYTES,
            server_hostname="cardops-support",
        )

    @property
    def port(self) -> int:
        return int(self.controller.port)

    def start(self) -> SupportSmtp:
        self.controller.start()
        log.info("support SMTP endpoint on %s:%s", self.controller.hostname, self.port)
        return self

    def stop(self) -> None:
        self.controller.stop()

    def __enter__(self) -> SupportSmtp:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def from_environment() -> SupportSmtp | None:
    """The endpoint configured by ``CARDOPS_SUPPORT_SMTP_PORT`` (unset or 0: none)."""
    settings = get_settings()
    if not settings.support_smtp_port:
        return None
    return SupportSmtp(
        settings.support_smtp_host.strip() or "127.0.0.1", settings.support_smtp_port
    )
