"""The event loop the gateway's processes run on."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_loop(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` on uvloop when it is installed (it comes with ``uvicorn[standard]``):
    its event loop and transports cost less CPU per request than the standard library's."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is there on Linux
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)
