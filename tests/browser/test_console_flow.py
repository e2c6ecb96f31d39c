"""The console end to end in Chromium: sign in, switch language, create a person (an invalid
resident ID is refused next to the field, a valid one is saved), approve a request."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.browser.conftest import LiveServer

SHOTS = Path("test-results")


def _sign_in(page: Any, server: LiveServer, username: str = "admin") -> None:
    page.goto("/login")
    page.fill("#f-username", username)
    page.fill("#f-password", server.password)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(re.compile(r"/$"))


def test_sign_in_language_person_and_approval(page: Any, live_server: LiveServer) -> None:
    SHOTS.mkdir(exist_ok=True)
    _sign_in(page, live_server)
    # The browser asks for Chinese: the console answers in Chinese.
    assert page.locator("header").inner_text().count("退出") == 1
    assert "欢迎" in page.locator("h1").inner_text()

    # Switch to English with the switch in the top bar.
    page.click("a[data-lang=en]")
    page.wait_for_load_state()
    assert "Welcome" in page.locator("h1").inner_text()
    assert "Sign out" in page.locator("header").inner_text()

    # A person with an invalid resident ID is refused, with the reason next to the field.
    page.goto("/persons/new")
    page.fill("input[name=name]", "Zhang San")
    page.fill("input[name=id_number]", "110105194912310021")
    page.fill("input[name=mobile]", "13800138000")
    page.click("#save-person")
    error = page.locator('.field-error[data-field="id_number"]')
    error.wait_for()
    assert error.inner_text().strip()
    assert page.input_value("input[name=name]") == "Zhang San"
    page.screenshot(path=str(SHOTS / "person-invalid-id.png"), full_page=True)

    # The valid one is saved and shown.
    page.fill("input[name=id_number]", "11010519491231002X")
    page.click("#save-person")
    page.wait_for_url(re.compile(r"/persons/\d+$"))
    assert "Zhang San" in page.content()
    assert "11010519491231002X" in page.content()

    # The demo request waits in the admin's inbox; approve it.
    page.goto("/approvals")
    link = page.locator("main table a[href^='/approvals/']").first
    number = link.inner_text().strip()
    link.click()
    page.wait_for_url(re.compile(r"/approvals/\d+$"))
    request_url = page.url
    page.fill("textarea[name=comment]", "Checked, fine.")
    page.click("#approve-button")
    page.locator(".flash").wait_for()
    page.screenshot(path=str(SHOTS / "approval-approved.png"), full_page=True)
    assert number in page.locator(".flash").inner_text()
    assert number not in page.locator("main table").inner_text()
    page.goto(request_url)
    history = page.locator("#history-table").inner_text()
    assert "Checked, fine." in history
    assert "Administrator" in history
