"""Browser tests: Playwright driving Debian's Chromium against a live server on 127.0.0.1.

The server gets a database of its own (SQLite file or a fresh PostgreSQL database), migrated
and loaded with the demo data, so these tests see exactly what `make run` shows a new user.
Set CARDOPS_REQUIRE_BROWSER=1 (CI does) to fail instead of skip when Chromium is missing.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy.orm import sessionmaker

from cardops.core import config as config_module
from cardops.core.db import make_engine
from cardops.core.demo_loader import load_demo
from tests.conftest import POSTGRES_URL, _create_postgres_database, _drop_postgres_database

CHROMIUM = os.environ.get("CARDOPS_CHROMIUM", "/usr/bin/chromium")
DEMO_PASSWORD = "Browser-demo-2026"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@dataclass
class LiveServer:
    url: str
    password: str
    database_url: str


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="package")
def live_server(tmp_path_factory: pytest.TempPathFactory, var_dir: Path) -> Iterator[LiveServer]:
    from rich.console import Console

    from cardops.core.db import get_engine
    from cardops.web.app import create_app

    if POSTGRES_URL:
        url, name = _create_postgres_database(POSTGRES_URL)
    else:
        url, name = f"sqlite:///{tmp_path_factory.mktemp('live') / 'live.db'}", ""
    saved = {k: os.environ.get(k) for k in ("CARDOPS_DATABASE_URL", "CARDOPS_DEMO_PASSWORD")}
    os.environ["CARDOPS_DATABASE_URL"] = url
    os.environ["CARDOPS_DEMO_PASSWORD"] = DEMO_PASSWORD
    config_module.reset_settings()
    get_engine.cache_clear()
    try:
        load_demo(if_empty=False, console=Console(quiet=True))
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        config_module.reset_settings()
        get_engine.cache_clear()
    engine = make_engine(url)
    app = create_app(session_maker=sessionmaker(engine, expire_on_commit=False))
    port = _free_port()
    # loop="asyncio": uvloop would replace the event loop policy for the whole test process
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", loop="asyncio")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "live server did not start"
    yield LiveServer(url=f"http://127.0.0.1:{port}", password=DEMO_PASSWORD, database_url=url)
    server.should_exit = True
    thread.join(timeout=10)
    engine.dispose()
    if name and POSTGRES_URL:
        _drop_postgres_database(POSTGRES_URL, name)


# Package scope: Playwright's sync API keeps an event loop running in the main thread while it is
# open, which would break asyncio.run() in every later test; close it when this package is done.
@pytest.fixture(scope="package")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CARDOPS_REQUIRE_BROWSER") == "1":
            pytest.fail(f"Chromium not found at {CHROMIUM}; install Debian's chromium package")
        pytest.skip(f"Chromium not found at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: object, live_server: LiveServer) -> Iterator[object]:
    context = browser.new_context(locale="zh-CN", base_url=live_server.url)  # type: ignore[attr-defined]
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()
