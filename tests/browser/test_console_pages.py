"""Every console page in the navigation opens without an error for the admin, in both languages."""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import LiveServer
from tests.browser.test_console_flow import _sign_in


def test_every_navigation_page_opens(page: Any, live_server: LiveServer) -> None:
    _sign_in(page, live_server)
    links = page.eval_on_selector_all(".sidebar a", "els => els.map(e => e.getAttribute('href'))")
    assert len(links) >= 8
    failures = []
    for href in links:
        response = page.goto(href)
        if response is None or response.status >= 400:
            failures.append((href, response.status if response else None))
    page.goto("/lang/en?next=/")
    for href in links:
        response = page.goto(href)
        if response is None or response.status >= 400:
            failures.append((href, response.status if response else None))
    assert failures == []
