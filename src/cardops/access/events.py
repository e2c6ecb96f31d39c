"""The door access log, written in batches off the decision path.

``POST /api/v1/access/decisions`` answers from memory and hands its log row to
:data:`event_log`; a background thread (started with the web server's jobs, see
``access.jobs``) inserts the queued rows every ``FLUSH_SECONDS`` or as soon as ``BATCH`` rows
are waiting, in one transaction of its own. So throughput is not bound by one INSERT and
COMMIT per request. The price: if the process crashes, the rows of the last flush interval
(under one second) are lost; a clean shutdown flushes everything. :func:`flush_events`
writes the queue at once (tests, shutdown).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from datetime import datetime
from typing import Any

from sqlalchemy import insert

from cardops.access.models import AccessEvent
from cardops.core.db import session_factory

log = logging.getLogger("cardops.access")

FLUSH_SECONDS = 0.2
BATCH = 1000
MAX_QUEUE = 200_000  # beyond this (no writer running) the oldest rows are dropped


class EventLog:
    def __init__(self) -> None:
        self._queue: deque[dict[str, Any]] = deque(maxlen=MAX_QUEUE)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._flush_lock = threading.Lock()
        self.written = 0

    def add(
        self,
        *,
        at: datetime,
        presented: str,
        door_code: str,
        allowed: bool,
        reason: str,
        card_id: int | None,
        door_id: int | None,
        controller_id: int | None = None,
    ) -> None:
        self._queue.append(
            {
                "at": at,
                "presented": presented[:64],
                "card_id": card_id,
                "door_code": door_code[:32],
                "door_id": door_id,
                "allowed": allowed,
                "reason": reason,
                "source": "online",
                "controller_id": controller_id,
                "external_id": None,
            }
        )
        if len(self._queue) >= BATCH:
            self._wake.set()

    def pending(self) -> int:
        return len(self._queue)

    def discard(self) -> None:
        self._queue.clear()

    def flush(self) -> int:
        """Insert everything queued now; returns the number of rows written."""
        written = 0
        with self._flush_lock:
            while self._queue:
                rows: list[dict[str, Any]] = []
                while self._queue and len(rows) < BATCH * 5:
                    rows.append(self._queue.popleft())
                session = session_factory()
                try:
                    session.execute(insert(AccessEvent), rows)
                    session.commit()
                    written += len(rows)
                except Exception:
                    session.rollback()
                    log.exception("could not write %d access log rows; they are dropped", len(rows))
                finally:
                    session.close()
        self.written += written
        return written

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(FLUSH_SECONDS)
            self._wake.clear()
            self.flush()
        self.flush()

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="access-log-writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.flush()


event_log = EventLog()


def flush_events() -> int:
    return event_log.flush()
