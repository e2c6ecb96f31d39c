"""Delivery: e-mail over SMTP and SMS through a pluggable adapter. No database access here.

``CARDOPS_SMTP_URL`` has the form ``smtp://[user[:password]@]host[:port][?starttls=1]`` or
``smtps://…`` (TLS from the first byte, port 465 by default); ``timeout=`` (seconds) may be
added to the query. ``CARDOPS_SMS_ADAPTER`` names a registered adapter (``log`` writes the
message to the log, for development) or ``package.module:factory`` for a gateway plug-in.
"""

from __future__ import annotations

import importlib
import logging
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from typing import TYPE_CHECKING, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from cardops.core.clock import utcnow
from cardops.core.config import Settings, get_settings
from cardops.core.i18n import N_

if TYPE_CHECKING:
    from types import TracebackType

    from cardops.notify.models import OutboxMessage

log = logging.getLogger("cardops.notify")

# Why a channel's messages wait instead of being sent. Stored in ``last_error`` in English
# and translated on display.
NO_SMTP = N_("No SMTP server is configured (CARDOPS_SMTP_URL); the e-mail waits until one is.")
BAD_SMTP_URL = N_(
    "CARDOPS_SMTP_URL is not a valid smtp:// or smtps:// address; the e-mail waits until it is fixed."
)
NO_SMS_ADAPTER = N_(
    "The SMS adapter named by CARDOPS_SMS_ADAPTER is not available; the message waits until it is."
)
WAITING_REASONS = frozenset({NO_SMTP, BAD_SMTP_URL, NO_SMS_ADAPTER})


class DeliveryError(Exception):
    """A send attempt failed. ``permanent`` failures (an address the server refuses) are not
    retried."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class NotConfigured(Exception):
    """The channel cannot send at all until the operator configures it; messages wait."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Outgoing:
    """What a sender needs of a message, detached from the database session."""

    id: int
    channel: str
    recipient: str
    subject: str
    body: str
    html: str | None = None

    @classmethod
    def of(cls, message: OutboxMessage) -> Outgoing:
        return cls(
            id=message.id,
            channel=message.channel,
            recipient=message.recipient,
            subject=message.subject,
            body=message.body,
            html=message.html,
        )


# --- e-mail -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SmtpTarget:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    use_ssl: bool = False
    starttls: bool = False
    timeout: float = 30.0


def _flag(values: list[str] | None) -> bool:
    if not values:
        return False
    return values[-1].strip().lower() in {"1", "true", "yes", "on"}


def parse_smtp_url(url: str) -> SmtpTarget:
    """Parse ``CARDOPS_SMTP_URL``; raise ``ValueError`` when it is not one."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("smtp", "smtps"):
        raise ValueError(f"scheme must be smtp or smtps, not {parts.scheme!r}")
    if not parts.hostname:
        raise ValueError("no host")
    port = parts.port or (465 if scheme == "smtps" else 25)
    query = parse_qs(parts.query)
    timeout = float(query.get("timeout", ["30"])[-1])
    if not 0 < timeout <= 600:
        raise ValueError("timeout must be between 0 and 600 seconds")
    return SmtpTarget(
        host=parts.hostname,
        port=port,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        use_ssl=scheme == "smtps",
        starttls=scheme == "smtp" and _flag(query.get("starttls")),
        timeout=timeout,
    )


def build_email(outgoing: Outgoing, *, sender: str) -> EmailMessage:
    """A MIME message in UTF-8 (so Chinese subjects and bodies arrive intact)."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = outgoing.recipient
    message["Subject"] = outgoing.subject
    message["Date"] = format_datetime(utcnow())
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    message["Message-ID"] = make_msgid(idstring=f"cardops.{outgoing.id}", domain=domain)
    message.set_content(outgoing.body)
    if outgoing.html:
        message.add_alternative(outgoing.html, subtype="html")
    return message


class Mailer:
    """Sends e-mails over one SMTP connection, opened on first use and reopened after an error."""

    def __init__(self, target: SmtpTarget, sender: str) -> None:
        self.target = target
        self.sender = sender
        self._smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        t = self.target
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if t.use_ssl:
            smtp = smtplib.SMTP_SSL(t.host, t.port, timeout=t.timeout, context=context)
        else:
            smtp = smtplib.SMTP(t.host, t.port, timeout=t.timeout)
        try:
            if t.starttls:
                smtp.starttls(context=context)
            if t.username:
                smtp.login(t.username, t.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def send(self, outgoing: Outgoing) -> None:
        """Hand one message to the server; raise :class:`DeliveryError` when it fails."""
        envelope_from = parseaddr(self.sender)[1] or self.sender
        try:
            message = build_email(outgoing, sender=self.sender)
            if self._smtp is None:
                self._smtp = self._connect()
            self._smtp.send_message(message, from_addr=envelope_from, to_addrs=[outgoing.recipient])
        except smtplib.SMTPRecipientsRefused as exc:
            self.close()
            codes = [code for code, _ in exc.recipients.values()]
            detail = "; ".join(
                f"{code} {text.decode(errors='replace')}" for code, text in exc.recipients.values()
            )
            raise DeliveryError(
                f"The server refused the recipient: {detail}",
                permanent=bool(codes) and all(code >= 500 for code in codes),
            ) from exc
        except smtplib.SMTPResponseException as exc:
            self.close()
            raw = exc.smtp_error
            text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw or "")
            raise DeliveryError(f"SMTP error {exc.smtp_code}: {text}") from exc
        except (smtplib.SMTPException, OSError, ValueError) as exc:
            self.close()
            raise DeliveryError(
                f"Cannot send through {self.target.host}:{self.target.port}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    def close(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            smtp.close()


# --- SMS ----------------------------------------------------------------------------------


class SmsAdapter(Protocol):
    """A gateway that sends text messages. Raise :class:`DeliveryError` when it refuses one."""

    def send(self, *, recipient: str, body: str, message_id: int) -> None: ...


SmsAdapterFactory = Callable[[], SmsAdapter]
_SMS_ADAPTERS: dict[str, SmsAdapterFactory] = {}


def register_sms_adapter(name: str, factory: SmsAdapterFactory) -> None:
    """Make an adapter available under ``CARDOPS_SMS_ADAPTER=name``."""
    _SMS_ADAPTERS[name] = factory


class LogSmsAdapter:
    """Development adapter: writes the message to the log and reports it sent."""

    def send(self, *, recipient: str, body: str, message_id: int) -> None:
        log.info("SMS %s to %s: %s", message_id, recipient, body)


register_sms_adapter("log", LogSmsAdapter)


def sms_adapter(name: str) -> SmsAdapter:
    """The adapter registered as ``name``, or built by the factory ``package.module:factory``."""
    factory = _SMS_ADAPTERS.get(name)
    if factory is None and ":" in name:
        module_name, _, attr = name.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise NotConfigured(NO_SMS_ADAPTER, f"cannot load SMS adapter {name!r}: {exc}") from exc
    if factory is None:
        raise NotConfigured(NO_SMS_ADAPTER, f"unknown SMS adapter {name!r}")
    return factory()


# --- both ---------------------------------------------------------------------------------


def channel_problems(settings: Settings | None = None) -> dict[str, str]:
    """Channels that cannot send now, with the reason (stored on their waiting messages)."""
    settings = settings or get_settings()
    problems: dict[str, str] = {}
    if not settings.smtp_url.strip():
        problems["email"] = NO_SMTP
    else:
        try:
            parse_smtp_url(settings.smtp_url)
        except ValueError as exc:
            log.warning("CARDOPS_SMTP_URL is not valid: %s", exc)
            problems["email"] = BAD_SMTP_URL
    try:
        sms_adapter(settings.sms_adapter)
    except NotConfigured as exc:
        log.warning("%s", exc)
        problems["sms"] = exc.reason
    return problems


class Deliverer:
    """Sends messages of either channel with the current settings; use as a context manager
    so that the SMTP connection is closed at the end of a batch."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self._mailer: Mailer | None = None
        self._sms: SmsAdapter | None = None

    def __enter__(self) -> Deliverer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._mailer is not None:
            self._mailer.close()
            self._mailer = None

    def deliver(self, outgoing: Outgoing) -> DeliveryError | None:
        """Send one message; the error, or None when the server or gateway accepted it."""
        try:
            if outgoing.channel == "email":
                if self._mailer is None:
                    try:
                        target = parse_smtp_url(self.settings.smtp_url)
                    except ValueError as exc:
                        raise DeliveryError(f"CARDOPS_SMTP_URL is not valid: {exc}") from exc
                    self._mailer = Mailer(target, self.settings.smtp_from)
                self._mailer.send(outgoing)
            elif outgoing.channel == "sms":
                if self._sms is None:
                    self._sms = sms_adapter(self.settings.sms_adapter)
                self._sms.send(
                    recipient=outgoing.recipient, body=outgoing.body, message_id=outgoing.id
                )
            else:
                raise DeliveryError(f"unknown channel {outgoing.channel!r}", permanent=True)
        except DeliveryError as exc:
            log.warning("message %s to %s failed: %s", outgoing.id, outgoing.recipient, exc)
            return exc
        except NotConfigured as exc:
            return DeliveryError(str(exc))
        except Exception as exc:  # a plug-in adapter's bug must not stop the batch
            log.exception("message %s: the %s sender crashed", outgoing.id, outgoing.channel)
            return DeliveryError(f"{type(exc).__name__}: {exc}")
        log.info("message %s sent to %s", outgoing.id, outgoing.recipient)
        return None
