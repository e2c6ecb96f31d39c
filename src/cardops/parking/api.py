"""REST API of parking permits. Amounts in fen; dates local (Asia/Shanghai by default)."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from sqlalchemy.orm import Session

from cardops.cards.models import Card
from cardops.core.errors import ValidationFailed
from cardops.core.i18n import gettext
from cardops.parking import service
from cardops.parking.models import ParkingPermit
from cardops.parking.schemas import (
    EndIn,
    PeriodOut,
    PermitIn,
    PermitOut,
    RequirementOut,
    TopUpIn,
)
from cardops.web.deps import DB, ApiUser

router = APIRouter(tags=["parking"])
Number = Annotated[str, Path(min_length=1, max_length=32)]


def permit_out(session: Session, permit: ParkingPermit) -> PermitOut:
    card = session.get(Card, permit.card_id)
    items = service.checklist(session, card=card, person_id=permit.person_id, permit=permit)
    return PermitOut(
        number=permit.number,
        card_number=card.number if card else "",
        person_id=permit.person_id,
        plate=permit.plate,
        space=permit.space,
        kind=permit.kind,
        state=permit.state,
        valid_from=permit.valid_from,
        valid_until=permit.valid_until,
        current=service.is_current(permit),
        monthly_fee=permit.monthly_fee,
        ended_at=permit.ended_at,
        end_reason=permit.end_reason,
        owner_confirmation=permit.owner_confirmation,
        periods=[
            PeriodOut(
                period_from=p.period_from,
                period_until=p.period_until,
                months=p.months,
                amount=p.amount,
                receipt=p.receipt_no,
                at=p.at,
            )
            for p in permit.periods
        ],
        documents=[
            RequirementOut(
                code=i.code,
                label=gettext(i.label),
                satisfied=i.satisfied,
                document_id=i.document.id if i.document else None,
                where=i.where,
            )
            for i in items
        ],
    )


@router.get("/parking/permits", response_model=list[PermitOut], summary="Parking permits")
def list_permits(
    db: DB,
    user: ApiUser,
    state: Literal["active", "ended"] | None = None,
    q: str | None = Query(None, max_length=64, description="permit, plate, space or card"),
    expiring_within: int | None = Query(None, ge=0, le=3660, description="days"),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=10_000_000),
) -> list[PermitOut]:
    rows = service.list_permits(
        session=db,
        actor=user,
        state=state,
        q=q,
        expiring_within=expiring_within,
        limit=limit,
        offset=offset,
    )
    return [permit_out(db, p) for p in rows]


def _decode(body: PermitIn) -> dict[str, service.Upload]:
    uploads: dict[str, service.Upload] = {}
    for item in body.documents:
        try:
            data = base64.b64decode(item.content_base64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValidationFailed(
                "The file is not valid base64.", field=f"doc_{item.requirement}"
            ) from exc
        uploads[item.requirement] = service.Upload(item.filename, data, item.content_type)
    return uploads


@router.post("/parking/permits", response_model=PermitOut, status_code=201)
def issue_permit(db: DB, user: ApiUser, body: PermitIn) -> PermitOut:
    """Issue a permit. Documents not already on the person's file are sent with it."""
    permit = service.issue_permit(
        session=db,
        actor=user,
        card_number=body.card_number,
        plate=body.plate,
        monthly_fee=body.monthly_fee,
        person_id=body.person_id,
        space=body.space,
        kind=body.kind,
        months=body.months,
        payment_method=body.payment_method,
        start=body.start,
        documents=_decode(body),
        note=body.note,
        idempotency_key=body.idempotency_key,
    )
    db.commit()
    return permit_out(db, permit)


@router.get("/parking/permits/{number}", response_model=PermitOut)
def get_permit(db: DB, user: ApiUser, number: Number) -> PermitOut:
    return permit_out(db, service.get_permit(session=db, actor=user, number=number))


@router.post("/parking/permits/{number}/top-up", response_model=PermitOut)
def top_up(db: DB, user: ApiUser, number: Number, body: TopUpIn) -> PermitOut:
    service.top_up(
        session=db,
        actor=user,
        number=number,
        months=body.months,
        payment_method=body.payment_method,
        monthly_fee=body.monthly_fee,
        idempotency_key=body.idempotency_key,
    )
    db.commit()
    return permit_out(db, service.get_permit(session=db, actor=user, number=number))


@router.post("/parking/permits/{number}/end", response_model=PermitOut)
def end_permit(db: DB, user: ApiUser, number: Number, body: EndIn) -> PermitOut:
    permit = service.end_permit(
        session=db,
        actor=user,
        number=number,
        reason=body.reason,
        owner_confirmed=body.owner_confirmed,
        confirmation=body.confirmation,
    )
    db.commit()
    return permit_out(db, permit)
