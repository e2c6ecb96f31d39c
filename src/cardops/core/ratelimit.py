"""A small in-process sliding-window limiter for public, unauthenticated endpoints.

Counts live in the web process (each worker counts for itself), so the limit is a ceiling per
worker, enough to stop a script walking a number range through one address. Keys are bounded:
the oldest keys are dropped when more than ``max_keys`` addresses are tracked.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque

LIMITERS: list[SlidingWindowLimiter] = []


def reset_all() -> None:
    """Forget every count (tests start each case afresh)."""
    for limiter in LIMITERS:
        limiter.reset()


class SlidingWindowLimiter:
    def __init__(self, limit: int, seconds: float, *, max_keys: int = 50_000) -> None:
        self.limit = limit
        self.seconds = seconds
        self.max_keys = max_keys
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()
        LIMITERS.append(self)

    def allow(self, key: str, *, now: float | None = None) -> bool:
        """Count one hit for ``key``; False when it is over the limit (the hit is not kept)."""
        moment = time.monotonic() if now is None else now
        with self._lock:
            hits = self._hits.get(key)
            if hits is None:
                hits = self._hits[key] = deque()
                while len(self._hits) > self.max_keys:
                    self._hits.popitem(last=False)
            else:
                self._hits.move_to_end(key)
            while hits and hits[0] <= moment - self.seconds:
                hits.popleft()
            if len(hits) >= self.limit:
                return False
            hits.append(moment)
            return True

    def reset(self) -> None:
        with self._lock:
            self._hits.clear()
