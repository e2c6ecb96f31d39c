"""``cardops serve --with-gateway --with-issuer-sim`` (what ``make run`` starts) takes its
gateway and issuer simulator down with it, stopped with SIGTERM or killed outright. On
SIGTERM uvicorn used to raise the signal again after its shutdown, which ended the process
before it stopped the gateway: it stayed on its port, serving a database that may be gone."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


def _wait(condition, seconds: float = 30) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_the_gateway_goes_with_the_server(tmp_path: Path, stop: signal.Signals) -> None:
    web, gateway, sim = _free_port(), _free_port(), _free_port()
    env = dict(
        os.environ,
        CARDOPS_VAR_DIR=str(tmp_path),
        CARDOPS_DATABASE_URL=f"sqlite:///{tmp_path / 'serve.db'}",
        CARDOPS_PORT=str(web),
        CARDOPS_GATEWAY_PORT=str(gateway),
    )
    cli = [sys.executable, "-m", "cardops.cli"]
    subprocess.run([*cli, "db", "upgrade"], env=env, check=True, capture_output=True)
    server = subprocess.Popen(
        [*cli, "serve", "--with-gateway", "--with-issuer-sim", "--issuer-sim-port", str(sim)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert _wait(lambda: _listening(web) and _listening(gateway) and _listening(sim))
        server.send_signal(stop)
        server.wait(30)
        assert _wait(lambda: not _listening(gateway), 15), "the gateway outlived the server"
        assert _wait(lambda: not _listening(sim), 15), "the simulator outlived the server"
    finally:
        if server.poll() is None:
            server.kill()
