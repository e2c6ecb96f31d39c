"""A sliding-window limiter for public, unauthenticated endpoints.

With ``CARDOPS_REDIS_URL`` set, the hits are counted in Redis (one sorted set of hit times per
limiter and key, trimmed and counted by one script on Redis's own clock), so every web worker
and host shares one count per address. Without it, or while Redis cannot be reached, each web
process counts for itself: the limit is then a ceiling per process, still enough to stop a
script walking a number range through one address. In-process keys are bounded: the oldest
keys are dropped when more than ``max_keys`` addresses are tracked.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict, deque
from typing import Any

from cardops.core.config import get_settings

log = logging.getLogger(__name__)

LIMITERS: list[SlidingWindowLimiter] = []
RETRY_AFTER = 10.0  # seconds without trying Redis after it could not be reached

# KEYS[1]: the key's sorted set; ARGV: window (ms), limit, a unique member.
# Returns 1 and counts the hit, or 0 (over the limit; the hit is not kept).
_SCRIPT = """
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], ms, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return 1
"""


def reset_all() -> None:
    """Forget every in-process count (tests start each case afresh)."""
    for limiter in LIMITERS:
        limiter.reset()


class SlidingWindowLimiter:
    """At most ``limit`` hits per key in any ``seconds``. ``name`` keeps one limiter's keys
    apart from another's in Redis; ``redis_url`` overrides ``CARDOPS_REDIS_URL`` (None:
    the setting; "": in-process only)."""

    def __init__(
        self,
        limit: int,
        seconds: float,
        *,
        name: str,
        max_keys: int = 50_000,
        redis_url: str | None = None,
        prefix: str = "cardops:ratelimit",
    ) -> None:
        self.limit = limit
        self.seconds = seconds
        self.name = name
        self.max_keys = max_keys
        self.redis_url = redis_url
        self.prefix = prefix
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()
        self._client: Any = None
        self._client_url = ""
        self._script: Any = None
        self._warned_at = -1e9
        self._down_until = -1e9
        LIMITERS.append(self)

    def allow(self, key: str, *, now: float | None = None) -> bool:
        """Count one hit for ``key``; False when it is over the limit (the hit is not kept).
        ``now`` (monotonic seconds, for tests) counts in process."""
        if now is None:
            shared = self._allow_shared(key)
            if shared is not None:
                return shared
        return self._allow_here(key, time.monotonic() if now is None else now)

    def _allow_shared(self, key: str) -> bool | None:
        """Redis's answer, or None when there is no Redis or it cannot be reached."""
        url = get_settings().redis_url if self.redis_url is None else self.redis_url
        if not url or time.monotonic() < self._down_until:
            return None
        import redis

        try:
            if self._client is None or self._client_url != url:
                self._client = redis.Redis.from_url(
                    url, socket_timeout=0.5, socket_connect_timeout=0.5
                )
                self._client_url = url
                self._script = self._client.register_script(_SCRIPT)
            allowed = self._script(
                keys=[f"{self.prefix}:{self.name}:{key}"],
                args=[int(self.seconds * 1000), self.limit, uuid.uuid4().hex],
            )
        except redis.RedisError:
            moment = time.monotonic()
            self._down_until = moment + RETRY_AFTER  # no connection timeout per request
            if moment - self._warned_at > 60:  # once a minute, not once per request
                self._warned_at = moment
                log.warning(
                    "rate limit %s: Redis cannot be reached, counting in this process",
                    self.name,
                    exc_info=True,
                )
            return None
        return bool(allowed)

    def _allow_here(self, key: str, moment: float) -> bool:
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
