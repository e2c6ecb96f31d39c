"""Background sending of the outbox.

The web server runs :func:`run` for its whole life (started and stopped in the app's
lifespan)::

    stop = asyncio.Event()
    task = asyncio.create_task(notify_jobs.run(stop))
    ...
    stop.set()
    await task

``cardops notify run`` does the same from the command line, ``cardops notify dispatch``
sends once. Several dispatchers may run at the same time: each claims messages before sending
(on PostgreSQL skipping rows another dispatcher holds), and a claim expires after
``service.CLAIM_LEASE`` if its dispatcher stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection

from cardops.core.db import unit_of_work
from cardops.notify import service
from cardops.notify.transport import Deliverer, Outgoing

log = logging.getLogger("cardops.notify")

DEFAULT_INTERVAL = 30.0
# Messages claimed per short transaction. Small enough that a batch is sent well within
# service.CLAIM_LEASE even when every message waits for the SMTP timeout.
BATCH = 10


def dispatch_once(*, limit: int = 100, ids: Collection[int] | None = None) -> tuple[int, int]:
    """Send up to ``limit`` due messages; returns (sent, failed).

    Each claim and each outcome is its own committed transaction; no transaction is open
    while a message is being handed to the SMTP server or SMS gateway.
    """
    sent = failed = 0
    with Deliverer() as deliverer:
        while sent + failed < limit:
            size = min(BATCH, limit - sent - failed)
            with unit_of_work() as session:
                batch = [Outgoing.of(m) for m in service.claim_due(session, limit=size, ids=ids)]
            for outgoing in batch:
                error = deliverer.deliver(outgoing)
                with unit_of_work() as session:
                    service.record_outcome(session, message_id=outgoing.id, error=error)
                if error is None:
                    sent += 1
                else:
                    failed += 1
            if len(batch) < size:
                break
    return sent, failed


async def run(stop: asyncio.Event, interval: float = DEFAULT_INTERVAL) -> None:
    """Dispatch due messages every ``interval`` seconds until ``stop`` is set.

    The sending runs in a worker thread (``asyncio.to_thread``) so the event loop stays free;
    an error is logged and the next round tries again.
    """
    log.info("notification dispatcher started (every %s s)", interval)
    while not stop.is_set():
        try:
            sent, failed = await asyncio.to_thread(dispatch_once)
        except Exception:
            log.exception("notification dispatch failed; trying again in %s s", interval)
        else:
            if sent or failed:
                log.info("notifications: %d sent, %d failed", sent, failed)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
    log.info("notification dispatcher stopped")
