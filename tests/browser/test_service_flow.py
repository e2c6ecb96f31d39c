"""Issue 6's "done when": a call-centre agent takes a call about a broken terminal, and the
after-sales specialist, the technician and the warehouse see it through inspection, a loaner,
a factory repair (RMA batch), the return and the callback, entirely in the console; the
ticket's SLA clock stays right throughout (first response met, solution met, no breach)."""

from __future__ import annotations

import re
from typing import Any

from tests.browser.conftest import LiveServer


def _sign_in(page: Any, server: LiveServer, username: str) -> None:
    page.goto("/login")
    page.fill("#f-username", username)
    page.fill("#f-password", server.password)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(re.compile(r"/$"))


def _sign_out(page: Any) -> None:
    page.click("header form[action='/logout'] button")
    page.wait_for_load_state()


def _serials(page: Any, url: str) -> list[str]:
    page.goto(url)
    return [
        s
        for s in page.locator("tr[data-serial]").evaluate_all(
            "rows => rows.map(r => r.dataset.serial)"
        )
        if s
    ]


def _sla_met(page: Any, target: str) -> str:
    row = page.locator(f"#sla-{target}")
    assert "breached" not in (row.get_attribute("class") or "")
    return row.locator("td").nth(2).inner_text().strip()


def test_broken_terminal_from_call_to_callback(page: Any, live_server: LiveServer) -> None:
    # --- the call: the agent finds a unit in the field and opens a fault ticket -------------
    _sign_in(page, live_server, "call_agent")
    page.goto("/repairs")
    busy = set(page.locator("tr[data-case] code").all_inner_texts())
    field = [
        s
        for state in ("activated", "installed", "at_provider")
        for s in _serials(page, f"/terminals?state={state}")
        if s not in busy
    ]
    assert field, "the demo has units in the field"
    serial = field[0]
    page.goto("/tickets/new")
    page.select_option("#f-kind", "fault")
    page.select_option("#f-priority", "high")
    page.fill("#f-subject", f"POS {serial} 无法打印 / cannot print")
    page.fill("#f-contact_name", "王老板")
    page.fill("#f-contact_phone", "13800138000")
    page.fill("#f-serial", serial)
    page.click("#create-ticket")
    page.wait_for_url(re.compile(r"/tickets/\d+$"))
    ticket_url = page.url
    number = re.search(r"T\d{8}-\d{4}", page.locator("h1").inner_text()).group(0)  # type: ignore[union-attr]
    assert page.locator("#sla-first_response td").nth(1).inner_text().strip()  # a deadline
    page.fill("#reply-form textarea[name=text]", "请将机具送到售后，我们先为您提供备用机。")
    page.click("#send-reply")
    page.wait_for_url(ticket_url)
    assert _sla_met(page, "first_response")  # answered in time
    _sign_out(page)

    # --- after-sales receives the unit with the appraisal form ------------------------------
    _sign_in(page, live_server, "after_sales_specialist")
    loaners = _serials(page, "/terminals?state=in_stock")
    page.goto(f"/repairs/new?ticket={number}")
    assert page.input_value("#f-serial") == serial
    page.select_option("#f-fault_code", "printer")
    page.check("input[name=accessories][value=adapter]")
    page.fill("#f-appearance", "外壳完好")
    page.click("#intake-submit")
    page.wait_for_url(re.compile(r"/repairs/\d+$"))
    case_url = page.url
    assert number in page.locator("#case-ticket").inner_text()
    assert page.locator("#case-state").get_attribute("data-state") == "received"
    _sign_out(page)

    # --- the technician inspects ------------------------------------------------------------
    _sign_in(page, live_server, "technician")
    page.goto(case_url)
    page.fill("#f-findings", "打印头损坏，需返厂 / print head broken")
    page.select_option("#inspect-form select[name=fault_code]", "printer")
    page.select_option("#f-under_warranty", "yes")
    page.click("#inspect-submit")
    page.wait_for_url(case_url)
    assert page.locator("#case-state").get_attribute("data-state") == "inspected"
    _sign_out(page)

    # --- after-sales lends a loaner and sends the unit to the factory -----------------------
    _sign_in(page, live_server, "after_sales_specialist")
    page.goto(case_url)
    page.fill("#f-loaner_serial", serial)  # not in stock: refused next to the field
    page.click("#loaner-submit")
    page.locator('.field-error[data-field="loaner_serial"]').wait_for()
    page.fill("#f-loaner_serial", loaners[0])
    page.click("#loaner-submit")
    page.wait_for_url(case_url)
    assert page.locator("#loaner-out").count() == 1
    page.select_option("#f-route", "factory")
    page.click("#decide-submit")
    page.wait_for_url(case_url)
    page.click("#case-batch")
    page.wait_for_url(re.compile(r"/rma-batches/\d+$"))
    batch_url = page.url
    page.fill("#f-carrier", "顺丰速运")
    page.fill("#f-tracking_number", "SF1029384756")
    page.click("#send-submit")
    page.wait_for_url(batch_url)
    assert page.locator("#batch-state").get_attribute("data-state") == "sent"
    page.click("#receive-submit")  # the factory sends it back repaired
    page.wait_for_url(batch_url)
    assert page.locator("#batch-state").get_attribute("data-state") == "received"

    # --- return to the user, loaner back, case closed ---------------------------------------
    page.goto(case_url)
    assert page.locator("#case-state").get_attribute("data-state") == "ready"
    page.select_option("#f-return_to", "user")
    page.check("#f-loaner_returned")
    page.click("#return-submit")
    page.wait_for_url(case_url)
    page.click("#close-submit")
    page.wait_for_url(case_url)
    assert page.locator("#case-state").get_attribute("data-state") == "closed"
    events = page.locator("#case-history tr[data-event]").evaluate_all(
        "rows => rows.map(r => r.dataset.event)"
    )
    assert events == [
        "received",
        "inspected",
        "loaner_out",
        "rma_queued",
        "rma_sent",
        "rma_back",
        "returned",
        "loaner_back",
        "closed",
    ]
    page.goto(f"/terminals/units/{serial}")
    history = page.content()
    for kind in ("repair_intake", "rma_send", "rma_back", "repair_return"):
        assert kind in history
    _sign_out(page)

    # --- the agent calls the customer back and closes the ticket ----------------------------
    _sign_in(page, live_server, "call_agent")
    page.goto(ticket_url)
    assert page.locator("#ticket-history li[data-kind=repair]").count() >= 6
    page.select_option("#f-outcome", "satisfied")
    page.fill("#callback-form input[name=note]", "机器已修好，客户满意")
    page.click("#record-callback")
    page.wait_for_url(ticket_url)
    page.select_option("#f-state", "resolved")
    page.click("#change-state")
    page.wait_for_url(ticket_url)
    assert _sla_met(page, "first_response")
    assert _sla_met(page, "solution")  # solved within the target
    assert page.locator("#ticket-breached").count() == 0
    page.select_option("#f-state", "closed")
    page.click("#change-state")
    page.wait_for_url(ticket_url)
    assert page.locator("#ticket-breached").count() == 0
