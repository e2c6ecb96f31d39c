"""Daily expiry reminders for cards (run by the web server's background jobs)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from cardops.cards.service import queue_expiry_reminders
from cardops.core.db import unit_of_work

log = logging.getLogger("cardops.cards")

INTERVAL = 24 * 3600.0
DAYS_AHEAD = 30


def remind_once(days_ahead: int = DAYS_AHEAD) -> int:
    """Queue the reminders that are due now; returns how many messages were queued."""
    with unit_of_work() as session:
        return queue_expiry_reminders(session, days_ahead=days_ahead)


async def run(stop: asyncio.Event, interval: float = INTERVAL) -> None:
    """Queue expiry reminders once a day until ``stop`` is set."""
    while not stop.is_set():
        try:
            queued = await asyncio.to_thread(remind_once)
            if queued:
                log.info("queued %d card expiry reminders", queued)
        except Exception:  # a failed run is retried the next day; the server keeps going
            log.exception("card expiry reminders failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
