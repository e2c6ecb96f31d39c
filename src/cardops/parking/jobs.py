"""Daily reminders for parking permits about to end (run by the web server's background jobs)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from cardops.core.db import unit_of_work
from cardops.parking.service import queue_expiry_reminders

log = logging.getLogger("cardops.parking")

INTERVAL = 24 * 3600.0
DAYS_AHEAD = 7


def remind_once(days_ahead: int = DAYS_AHEAD) -> int:
    """Queue the reminders that are due now; returns how many messages were queued."""
    with unit_of_work() as session:
        return queue_expiry_reminders(session, days_ahead=days_ahead)


async def run(stop: asyncio.Event, interval: float = INTERVAL) -> None:
    """Queue parking expiry reminders once a day until ``stop`` is set."""
    while not stop.is_set():
        try:
            queued = await asyncio.to_thread(remind_once)
            if queued:
                log.info("queued %d parking expiry reminders", queued)
        except Exception:  # a failed run is retried the next day; the server keeps going
            log.exception("parking expiry reminders failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
