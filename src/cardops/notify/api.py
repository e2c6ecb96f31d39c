"""REST API of the notification outbox."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Response

from cardops.auth.service import require
from cardops.notify import jobs, service
from cardops.notify.permissions import NOTIFY_MANAGE, NOTIFY_SEND
from cardops.notify.schemas import DispatchOut, MessageDetailOut, MessageIn, MessageOut
from cardops.web.deps import DB, ApiUser

router = APIRouter(tags=["notify"])


@router.get("/notifications", response_model=list[MessageOut], summary="List the outbox")
def list_messages(
    db: DB,
    user: ApiUser,
    state: Literal["pending", "sending", "sent", "failed", "dead"] | None = None,
    channel: Literal["email", "sms"] | None = None,
    q: str | None = Query(None, max_length=254),
    limit: int = Query(100, ge=1, le=500),
    offset: int = Query(0, ge=0, le=10_000_000),
) -> list[MessageOut]:
    rows = service.list_messages(
        session=db, actor=user, state=state, channel=channel, q=q, limit=limit, offset=offset
    )
    return [MessageOut.model_validate(m) for m in rows]


@router.post(
    "/notifications",
    response_model=MessageDetailOut,
    status_code=201,
    summary="Queue an e-mail or SMS",
    description="Answers 201 when queued, 200 with the earlier message when `dedupe_key` "
    "was queued before.",
)
def enqueue(db: DB, user: ApiUser, body: MessageIn, response: Response) -> MessageDetailOut:
    require(user, NOTIFY_SEND)
    message, created = service.enqueue_checked(
        db,
        actor=user,
        channel=body.channel,
        recipient=body.recipient,
        subject=body.subject,
        body=body.body,
        html=body.html,
        ref=body.ref,
        dedupe_key=body.dedupe_key,
        send_after=body.send_after,
    )
    db.commit()
    if not created:
        response.status_code = 200
    return MessageDetailOut.model_validate(message)


@router.post("/notifications/dispatch", response_model=DispatchOut, summary="Send due messages now")
def dispatch(db: DB, user: ApiUser) -> DispatchOut:
    require(user, NOTIFY_MANAGE)
    db.commit()  # hold no transaction (on SQLite: no lock) while the dispatcher sends
    sent, failed = jobs.dispatch_once()
    return DispatchOut(sent=sent, failed=failed)


@router.get("/notifications/{message_id}", response_model=MessageDetailOut)
def get_message(db: DB, user: ApiUser, message_id: int) -> MessageDetailOut:
    message = service.get_message(session=db, actor=user, message_id=message_id)
    return MessageDetailOut.model_validate(message)


@router.post(
    "/notifications/{message_id}/retry",
    response_model=MessageOut,
    summary="Send a failed or given-up message again",
)
def retry(db: DB, user: ApiUser, message_id: int) -> MessageOut:
    message = service.retry(session=db, actor=user, message_id=message_id)
    db.commit()
    return MessageOut.model_validate(message)
