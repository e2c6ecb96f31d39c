"""REST API of the gateway: the stop list, on-us card numbers and PINs, transactions, and the
Prometheus metrics of the running gateway processes."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import PlainTextResponse

from cardops.auth.service import require
from cardops.core.clock import as_utc, utcnow
from cardops.gateway import service
from cardops.gateway.engine import Metrics
from cardops.gateway.permissions import GATEWAY_VIEW
from cardops.gateway.schemas import (
    PanIn,
    PanOut,
    PinIn,
    StopIn,
    StopOut,
    StopRemoveIn,
    TransactionOut,
    TransactionPage,
)
from cardops.web.deps import DB, ApiUser, RecordId

router = APIRouter(tags=["gateway"])
CardNumber = Annotated[str, Path(min_length=1, max_length=32)]


def _stop(entry: object) -> StopOut:
    return StopOut.model_validate(entry, from_attributes=True)


@router.get("/gateway/stoplist", response_model=list[StopOut])
def stop_list(db: DB, user: ApiUser, active_only: bool = True) -> list[StopOut]:
    return [_stop(e) for e in service.list_stops(session=db, actor=user, active_only=active_only)]


@router.post("/gateway/stoplist", response_model=StopOut, status_code=201)
def stop_add(body: StopIn, db: DB, user: ApiUser) -> StopOut:
    entry = service.add_stop(
        session=db, actor=user, pan=body.pan, reason=body.reason, note=body.note
    )
    db.commit()
    return _stop(entry)


@router.post("/gateway/stoplist/{entry_id}/remove", response_model=StopOut)
def stop_remove(entry_id: RecordId, body: StopRemoveIn, db: DB, user: ApiUser) -> StopOut:
    entry = service.remove_stop(session=db, actor=user, entry_id=entry_id, note=body.note)
    db.commit()
    return _stop(entry)


@router.post("/gateway/cards/{card_number}/pan", response_model=PanOut, status_code=201)
def card_pan(card_number: CardNumber, body: PanIn, db: DB, user: ApiUser) -> PanOut:
    assigned = service.assign_pan(
        session=db, actor=user, card_number=card_number, expiry=body.expiry, replace=body.replace
    )
    if body.pin:
        service.set_pin(session=db, actor=user, card_number=card_number, pin=body.pin)
    db.commit()
    return PanOut(
        card_number=card_number,
        pan=assigned.pan,
        pan_masked=assigned.onus.pan_masked,
        expiry=assigned.onus.expiry,
    )


@router.post("/gateway/cards/{card_number}/pin", status_code=204)
def card_pin(card_number: CardNumber, body: PinIn, db: DB, user: ApiUser) -> None:
    service.set_pin(session=db, actor=user, card_number=card_number, pin=body.pin)
    db.commit()


@router.get("/gateway/transactions", response_model=TransactionPage)
def transactions(
    db: DB,
    user: ApiUser,
    tid: Annotated[str, Query(max_length=8)] = "",
    mid: Annotated[str, Query(max_length=15)] = "",
    card: Annotated[str, Query(max_length=19)] = "",
    rrn: Annotated[str, Query(max_length=12)] = "",
    day: date | None = None,
    result: Annotated[str, Query(max_length=8)] = "",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> TransactionPage:
    filters = service.TxFilter(tid=tid, mid=mid, card=card, rrn=rrn, day=day, result=result)
    rows, total = service.search(
        session=db, actor=user, filters=filters, limit=limit, offset=offset
    )
    return TransactionPage(
        total=total,
        items=[TransactionOut.model_validate(r, from_attributes=True) for r in rows],
    )


@router.get("/gateway/metrics", response_class=PlainTextResponse)
def metrics(db: DB, user: ApiUser) -> PlainTextResponse:
    """Prometheus text exposition of every gateway process that reported in the last minute."""
    require(user, GATEWAY_VIEW)
    lines: list[str] = []
    for node in service.nodes(session=db, actor=user):
        if utcnow() - as_utc(node.heartbeat_at) > timedelta(minutes=1):
            continue
        snap = node.metrics or {}
        m = Metrics()
        for key, n in snap.get("requests", {}).items():
            mti, _, rc = key.partition(":")
            m.requests[(mti, rc)] = int(n)
        m.latency = {k: list(v) for k, v in snap.get("latency", {}).items()}
        m.latency_sum = dict(snap.get("latency_sum", {}))
        m.journal_lag = float(snap.get("journal_lag", 0))
        m.upstream_up = int(snap.get("upstream_up", 0))
        m.saf_depth = int(snap.get("saf_depth", 0))
        m.connections = int(snap.get("connections", 0))
        lines.append(m.exposition(node.name))
    return PlainTextResponse(
        "".join(lines) or "# no gateway process has reported\n",
        media_type="text/plain; version=0.0.4",
    )
