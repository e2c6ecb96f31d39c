"""Bad input on the wire: random bytes, truncated frames, oversized lengths, wrong bitmaps,
a replayed message, slow-loris connections. Each is answered per the contract or its
connection is closed; a well-behaved terminal on another connection keeps being served."""

from __future__ import annotations

import socket

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cardops.gateway import codec
from cardops.gateway.terminal import BlockingTerminal
from tests.gateway.conftest import PIN, Running, World

pytestmark = pytest.mark.slow


def _poke(port: int, data: bytes) -> bytes:
    """Send ``data``, then read whatever comes back until the server closes or goes quiet."""
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        received = b""
        try:
            while chunk := sock.recv(4096):
                received += chunk
        except TimeoutError:
            pass
        return received


def _still_served(pos: BlockingTerminal, world: World) -> None:
    assert pos.call(pos.session.purchase(world.pan, 1, pin=PIN))["39"] == "00"


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(st.binary(min_size=0, max_size=300))
def test_random_frames(gateway: Running, world: World, pos: BlockingTerminal, body: bytes) -> None:
    answer = _poke(gateway.port, codec.frame(body) if body else b"\x00")
    if answer:
        response = codec.decode(answer[2:])
        assert response["39"] == "30"
    _still_served(pos, world)


def test_truncated_oversized_wrong_bitmap_and_replay(
    gateway: Running, world: World, pos: BlockingTerminal
) -> None:
    good = pos.session.encode(pos.session.purchase(world.pan, 2, pin=PIN))
    assert _poke(gateway.port, good[: len(good) // 2]) == b""  # truncated: closed
    assert _poke(gateway.port, b"\xff\xff" + b"0" * 100) == b""  # oversized length: closed
    wrong_bitmap = good[:6] + b"FFFFFFFFFFFFFFFF" + good[22:]
    answer = _poke(gateway.port, wrong_bitmap)
    assert answer == b"" or codec.decode(answer[2:])["39"] == "30"
    first = _poke(gateway.port, good)
    replay = _poke(gateway.port, good)
    assert codec.decode(first[2:])["39"] == "00"
    assert codec.decode(replay[2:]) == codec.decode(first[2:])  # same answer, not charged again
    _still_served(pos, world)


def test_slow_loris_does_not_block_others(
    gateway: Running, world: World, pos: BlockingTerminal
) -> None:
    lazy = [socket.create_connection(("127.0.0.1", gateway.port)) for _ in range(20)]
    for sock in lazy:
        sock.sendall(b"\x00")  # half a length header, then nothing
    _still_served(pos, world)
    for sock in lazy:
        sock.close()
