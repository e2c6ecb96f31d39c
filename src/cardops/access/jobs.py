"""Background work of access control, run by the web server for its whole life:

* the access-log writer thread (``access.events``), flushed on shutdown;
* building the decision index at start, so the first decision does not wait for it;
* once a day: if the next quarter starts within ``LEAD_DAYS`` and some lobby or unit door has
  no code for it yet, make the codes and queue the residents' notices (sent one week ahead).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from cardops.access import service
from cardops.access.engine import warm
from cardops.access.events import event_log
from cardops.auth.service import system_user
from cardops.core.db import unit_of_work

log = logging.getLogger("cardops.access")

DAY = 24 * 3600.0
LEAD_DAYS = 14


def rotate_if_due() -> int:
    """Make the next quarter's door codes when they are due; returns the codes created."""
    with unit_of_work() as session:
        start = service.codes_due(session, service.local_today(), LEAD_DAYS)
        if start is None:
            return 0
        result = service.rotate_door_codes(
            session=session, actor=system_user(session), quarter_start=start
        )
        log.info(
            "door codes for the quarter from %s: %d made, %d notices queued",
            start,
            len(result.created),
            result.notified,
        )
        return len(result.created)


async def run(stop: asyncio.Event, interval: float = DAY) -> None:
    event_log.start()
    try:
        try:
            await asyncio.to_thread(warm)
        except Exception:
            log.exception("could not build the door decision index; it is built on first use")
        while not stop.is_set():
            try:
                await asyncio.to_thread(rotate_if_due)
            except Exception:
                log.exception("door code rotation failed; trying again tomorrow")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
    finally:
        await asyncio.to_thread(event_log.stop)
