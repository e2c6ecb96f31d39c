"""The public pages' rate limiter: a sliding window per address, counted in the process, or
in the real Redis on 127.0.0.1 and then shared by every web process; with Redis out of
reach it counts in the process again."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import pytest

from cardops.core.config import reset_settings
from cardops.core.ratelimit import LIMITERS, SlidingWindowLimiter

REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture
def prefix() -> Iterator[str]:
    import redis

    client = redis.Redis.from_url(REDIS)
    client.ping()
    name = f"test:ratelimit:{uuid.uuid4().hex}"
    yield name
    for key in client.scan_iter(f"{name}:*"):
        client.delete(key)


def _limiter(limit: int, **kwargs: object) -> SlidingWindowLimiter:
    limiter = SlidingWindowLimiter(limit, 60.0, name="lookup", **kwargs)  # type: ignore[arg-type]
    LIMITERS.remove(limiter)  # not the application's: reset_all need not know it
    return limiter


def test_in_process_the_window_slides() -> None:
    limiter = _limiter(3, redis_url="")
    assert [limiter.allow("10.0.0.1", now=t) for t in (0, 1, 2, 3)] == [True] * 3 + [False]
    assert limiter.allow("10.0.0.2", now=3)  # another address has its own count
    assert not limiter.allow("10.0.0.1", now=59.9)
    assert limiter.allow("10.0.0.1", now=60.5)  # the first hit has left the window


def test_two_web_processes_share_one_count_in_redis(prefix: str) -> None:
    one = _limiter(3, redis_url=REDIS, prefix=prefix)
    two = _limiter(3, redis_url=REDIS, prefix=prefix)
    answers = [one.allow("10.0.0.1"), two.allow("10.0.0.1"), one.allow("10.0.0.1")]
    assert answers == [True, True, True]
    assert not two.allow("10.0.0.1") and not one.allow("10.0.0.1")
    assert two.allow("10.0.0.2")
    assert not one._hits  # nothing was counted in the process


def test_the_setting_turns_redis_on(prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CARDOPS_REDIS_URL", REDIS)
    reset_settings()
    try:
        one, two = _limiter(2, prefix=prefix), _limiter(2, prefix=prefix)
        assert one.allow("10.0.0.9") and two.allow("10.0.0.9")
        assert not one.allow("10.0.0.9")
    finally:
        monkeypatch.delenv("CARDOPS_REDIS_URL")
        reset_settings()


def test_without_redis_each_process_counts_for_itself(caplog: pytest.LogCaptureFixture) -> None:
    limiter = _limiter(2, redis_url="redis://127.0.0.1:1/0")  # nothing listens there
    with caplog.at_level(logging.WARNING, logger="cardops.core.ratelimit"):
        answers = [limiter.allow("10.0.0.1") for _ in range(4)]
    assert answers == [True, True, False, False]
    warnings = [r for r in caplog.records if "Redis cannot be reached" in r.getMessage()]
    assert len(warnings) == 1  # once a minute, not once per request
