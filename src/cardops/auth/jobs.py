"""The scheduled permission review: at the start of each quarter, holders of ``users.review``
get the review by e-mail (SPEC §1: a scheduled permission review lists who holds what)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import date

from sqlalchemy.orm import Session

from cardops.auth import service
from cardops.auth.models import User
from cardops.auth.permissions import PERMISSION_REVIEW
from cardops.core.clock import local, utcnow
from cardops.core.db import unit_of_work
from cardops.core.i18n import translate

log = logging.getLogger("cardops.auth.jobs")


def quarter_of(day: date) -> str:
    return f"{day.year}Q{(day.month - 1) // 3 + 1}"


def queue_permission_review(session: Session, today: date | None = None) -> int:
    """Queue this quarter's review to every reviewer with an e-mail address (once per quarter)."""
    from cardops.notify.service import enqueue

    today = today or local(utcnow()).date()
    quarter = quarter_of(today)
    system = service.system_user(session)
    rows = service.permission_review(session=session, actor=system)
    reviewers = [
        u
        for u in service.list_users(session=session, actor=system)
        if u.is_active and u.email and service.has_permission(u, PERMISSION_REVIEW)
    ]
    queued = 0
    for reviewer in reviewers:
        locale = reviewer.locale or "zh_CN"
        lines = [
            f"{r.username:<20} {r.role_code or '-':<24} "
            f"{r.granted_at.date().isoformat() if r.granted_at else '':<12} "
            f"{r.last_login_at.date().isoformat() if r.last_login_at else '-'}"
            for r in rows
        ]
        body = (
            translate(
                "Permission review for {quarter}: who holds which role, since when, last sign-in. Check it and remove what is no longer needed.",
                locale,
                quarter=quarter,
            )
            + "\n\n"
            + "\n".join(lines)
        )
        enqueue(
            session,
            channel="email",
            recipient=_email(reviewer),
            subject=translate("Permission review {quarter}", locale, quarter=quarter),
            body=body,
            ref="permission-review",
            dedupe_key=f"permission-review:{quarter}:{reviewer.id}",
        )
        queued += 1
    return queued


def _email(user: User) -> str:
    return user.email or ""


async def run(stop: asyncio.Event, interval: float = 3600.0) -> None:
    """Check hourly; the dedupe key makes the review go out once per quarter per reviewer."""
    while not stop.is_set():
        try:
            await asyncio.to_thread(_run_once)
        except Exception:
            log.exception("permission review job failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)


def _run_once() -> None:
    with unit_of_work() as session:
        queue_permission_review(session)
