"""A real SMTP server (aiosmtpd) on 127.0.0.1 and helpers to point the settings at it."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from cardops.core.config import reset_settings

Configure = Callable[..., None]


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class Collector:
    """An aiosmtpd handler that keeps every message it accepts."""

    messages: list[Received] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if isinstance(auth_data, LoginPassword):
            login = (auth_data.login.decode(), auth_data.password.decode())
            self.logins.append(login)
            return AuthResult(success=login == ("mailer", "p@ss word"))
        return AuthResult(success=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch) -> Iterator[Configure]:
    """``configure(smtp_url=..., notify_max_attempts=...)`` sets CARDOPS_* and reloads the
    settings; everything is put back after the test."""

    def apply(**values: Any) -> None:
        for key, value in values.items():
            name = f"CARDOPS_{key.upper()}"
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, str(value))
        reset_settings()

    apply(smtp_url=None, smtp_from=None, sms_adapter=None, notify_max_attempts=None)
    yield apply
    monkeypatch.undo()
    reset_settings()


@pytest.fixture
def smtp_server() -> Iterator[tuple[Collector, int]]:
    """A real SMTP server on 127.0.0.1 (AUTH allowed without TLS, for the login test)."""
    collector = Collector()
    port = free_port()
    controller = Controller(
        collector,
        hostname="127.0.0.1",
        port=port,
        authenticator=collector.authenticate,
        auth_require_tls=False,
    )
    controller.start()
    try:
        yield collector, port
    finally:
        controller.stop()


@pytest.fixture
def smtp(smtp_server: tuple[Collector, int], configure: Configure) -> Collector:
    """The SMTP server, with CARDOPS_SMTP_URL pointing at it."""
    collector, port = smtp_server
    configure(smtp_url=f"smtp://127.0.0.1:{port}", smtp_from="运营中心 <ops@cardops.test>")
    return collector


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port where nothing listens (bound, not listening: connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])
