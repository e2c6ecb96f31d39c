"""Background work of the service desk, run by the web server for its whole life:

* the inbound SMTP endpoint of the support address, when ``CARDOPS_SUPPORT_SMTP_PORT`` is set;
* the SLA scan every ``CARDOPS_SLA_SCAN_SECONDS`` (default 60): breaches are recorded and the
  supervisors told through the outbox (``cardops tickets sla-scan`` runs it once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from cardops.auth.service import system_user
from cardops.core.config import get_settings
from cardops.core.db import unit_of_work
from cardops.servicedesk import service
from cardops.servicedesk.inbound import from_environment

log = logging.getLogger("cardops.servicedesk")


def scan_once() -> int:
    """One SLA scan in its own transaction; returns the breaches found."""
    with unit_of_work() as session:
        found = service.sla_scan(session=session, actor=system_user(session))
        return len(found)


async def run(stop: asyncio.Event, interval: float | None = None) -> None:
    every = interval or get_settings().sla_scan_seconds or 60.0
    smtp = None
    try:
        smtp = from_environment()
        if smtp is not None:
            await asyncio.to_thread(smtp.start)
    except Exception:
        log.exception("the support SMTP endpoint could not start")
        smtp = None
    try:
        while not stop.is_set():
            try:
                found = await asyncio.to_thread(scan_once)
                if found:
                    log.info("SLA scan: %d new breaches escalated", found)
            except Exception:
                log.exception("SLA scan failed; trying again later")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=every)
    finally:
        if smtp is not None:
            await asyncio.to_thread(smtp.stop)
