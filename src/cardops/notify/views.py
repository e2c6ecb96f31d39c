"""Console page: the notification outbox (list, retry, send now, test e-mail)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response

from cardops.auth.service import require
from cardops.core.errors import CardopsError
from cardops.core.i18n import N_
from cardops.notify import jobs, service
from cardops.notify.models import (
    CHANNEL_LABELS,
    RETRYABLE,
    STATE_LABELS,
    MessageState,
    OutboxMessage,
)
from cardops.notify.permissions import NOTIFY_MANAGE, NOTIFY_VIEW
from cardops.web.deps import Console, ConsoleForm, ConsolePage, form_error_context
from cardops.web.nav import NavItem

router = APIRouter()
NAV = [
    NavItem(N_("Outbox"), "/notifications", NOTIFY_VIEW, section=N_("Administration"), order=920)
]
PAGE = 50

BADGES = {
    MessageState.PENDING: "",
    MessageState.SENDING: "warn",
    MessageState.SENT: "ok",
    MessageState.FAILED: "warn",
    MessageState.DEAD: "bad",
}


def _page(
    console: Console,
    *,
    state: str = "",
    channel: str = "",
    q: str = "",
    page: int = 1,
    status_code: int = 200,
    **extra: Any,
) -> HTMLResponse:
    require(console.user, NOTIFY_VIEW)
    state = state if state in STATE_LABELS else ""
    channel = channel if channel in CHANNEL_LABELS else ""
    page = max(1, min(page, 100_000))
    rows = service.list_messages(
        session=console.db,
        actor=console.user,
        state=state or None,
        channel=channel or None,
        q=q[:254] or None,
        limit=PAGE + 1,
        offset=(page - 1) * PAGE,
    )
    return console.render(
        "notify/outbox.html",
        status_code=status_code,
        rows=rows[:PAGE],
        has_more=len(rows) > PAGE,
        page=page,
        filters={"state": state, "channel": channel, "q": q},
        counts=service.count_by_state(session=console.db, actor=console.user),
        state_labels=STATE_LABELS,
        channel_labels=CHANNEL_LABELS,
        badges=BADGES,
        retryable=RETRYABLE,
        can_manage=console.can(NOTIFY_MANAGE),
        **extra,
    )


@router.get("/notifications", response_class=HTMLResponse)
def outbox(
    console: ConsolePage, state: str = "", channel: str = "", q: str = "", page: int = 1
) -> HTMLResponse:
    return _page(console, state=state, channel=channel, q=q, page=page)


@router.post("/notifications/dispatch")
def dispatch(console: ConsoleForm) -> Response:
    require(console.user, NOTIFY_MANAGE)
    console.db.commit()  # hold no transaction (on SQLite: no lock) while sending
    sent, failed = jobs.dispatch_once()
    console.flash("Sent: {sent}. Failed: {failed}.", sent=sent, failed=failed)
    console.db.commit()
    return console.redirect("/notifications")


@router.post("/notifications/test-email")
def test_email(console: ConsoleForm) -> Response:
    require(console.user, NOTIFY_MANAGE)
    address = str(console.form.get("recipient") or "")
    try:
        message = service.send_test_email(session=console.db, actor=console.user, address=address)
    except CardopsError as exc:
        console.db.rollback()
        return _page(
            console, status_code=exc.status, test_address=address, **form_error_context(exc)
        )
    message_id = message.id
    console.db.commit()
    jobs.dispatch_once(ids=[message_id])
    sent = console.db.get(OutboxMessage, message_id, populate_existing=True)
    if sent is not None and sent.state == MessageState.SENT:
        console.flash("The test e-mail to {address} was sent.", address=sent.recipient)
    else:
        console.flash(
            "The test e-mail to {address} was not sent yet; see its row below for the reason.",
            address=address,
        )
    console.db.commit()
    return console.redirect("/notifications")


@router.post("/notifications/{message_id}/retry")
def retry(console: ConsoleForm, message_id: int) -> Response:
    try:
        service.retry(session=console.db, actor=console.user, message_id=message_id)
    except CardopsError as exc:
        console.db.rollback()
        if exc.status == 403:
            raise
        return _page(console, status_code=exc.status, **form_error_context(exc))
    console.flash("Message {id} will be sent again.", id=message_id)
    console.db.commit()
    return console.redirect("/notifications")
