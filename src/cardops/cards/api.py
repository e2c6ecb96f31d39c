"""REST API of the cards domain. Card paths take the printed number or the chip UID.

Integrators rely on ``GET /cards/{number}``, ``POST /cards/{number}/report-lost`` and
``POST /cards/{number}/cancel-loss`` (mounted under ``/api/v1``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response
from sqlalchemy.orm import Session

from cardops.access.models import Property
from cardops.auth.service import require
from cardops.cards import report as card_report
from cardops.cards import service
from cardops.cards.models import Card
from cardops.cards.permissions import CARDS_POLICY, CARDS_STOCK, CARDS_VIEW
from cardops.cards.schemas import (
    ApprovalIn,
    ApprovalOut,
    BatchIn,
    BatchOut,
    CancelIn,
    CancelLossIn,
    CardOut,
    EventOut,
    ExtendIn,
    FulfilIn,
    GrantOut,
    IssueIn,
    LostIn,
    OwnershipChangeIn,
    PolicyIn,
    PolicyOut,
    ReissueIn,
    ReplaceIn,
    RequisitionIn,
    RequisitionOut,
    ReturnIn,
    ReturnOut,
)
from cardops.parties.models import Person
from cardops.web.deps import DB, ApiUser, RecordId

router = APIRouter(tags=["cards"])
CardNumber = Annotated[str, Path(min_length=1, max_length=64)]
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def card_out(session: Session, card: Card, *, full: bool = True) -> CardOut:
    person = session.get(Person, card.person_id) if card.person_id else None
    prop = session.get(Property, card.property_id) if card.property_id else None
    replaces = session.get(Card, card.replaces_id) if card.replaces_id else None
    wiegand = (
        f"{card.wiegand_facility}:{card.wiegand_number}"
        if card.wiegand_facility is not None and card.wiegand_number is not None
        else None
    )
    out = CardOut(
        number=card.number,
        uid=card.uid,
        wiegand=wiegand,
        state=card.state,
        state_reason=card.state_reason or "",
        property=prop.code if prop else None,
        holder_kind=card.holder_kind,
        card_class=card.card_class,
        person_id=card.person_id,
        person=person.name if person else None,
        unit=service.unit_label(session, card.unit_id) or None,
        organisation_id=card.organisation_id,
        valid_from=card.valid_from,
        valid_until=card.valid_until,
        expired=service.is_expired(card),
        issued_at=card.issued_at,
        acknowledged_at=card.acknowledged_at,
        is_gift=card.is_gift,
        is_free=card.is_free,
        fee=card.fee,
        deposit=card.deposit,
        fee_receipt_no=card.fee_receipt_no,
        deposit_receipt_no=card.deposit_receipt_no,
        deposit_refund_receipt_no=card.deposit_refund_receipt_no,
        replaces=replaces.number if replaces else None,
    )
    if full:
        out.grants = [
            GrantOut(group=g.code, schedule=s.code if s else None)
            for g, s in service.grants_of(session, card)
        ]
        out.history = [
            EventOut(at=e.at, kind=e.kind, actor_id=e.actor_id, data=e.data or {})
            for e in service.history(session, card)
        ]
    return out


# --- stock --------------------------------------------------------------------------------


@router.post("/cards/batches", response_model=BatchOut, status_code=201)
def receive_batch(body: BatchIn, db: DB, user: ApiUser) -> BatchOut:
    specs = None
    if body.cards:
        specs = []
        for n, c in enumerate(body.cards, start=1):
            spec = service.CardSpec(number=c.number, uid=c.uid, row=n)
            parsed = service.parse_wiegand(c.wiegand, field="cards")
            if parsed:
                spec.wiegand_format, spec.wiegand_facility, spec.wiegand_number = parsed
            specs.append(spec)
    batch = service.receive_batch(
        session=db,
        actor=user,
        number=body.number,
        supplier=body.supplier,
        quantity=body.quantity,
        first_number=body.first_number,
        cards=specs,
        csv_text=body.csv,
        unit_cost=body.unit_cost,
        note=body.note,
    )
    db.commit()
    return BatchOut(
        id=batch.id,
        number=batch.number,
        supplier=batch.supplier,
        quantity=batch.quantity,
        unit_cost=batch.unit_cost,
        received_at=batch.received_at,
    )


@router.get("/cards/batches", response_model=list[BatchOut])
def list_batches(db: DB, user: ApiUser) -> list[BatchOut]:
    require(user, CARDS_STOCK)
    return [
        BatchOut(
            id=b.id,
            number=b.number,
            supplier=b.supplier,
            quantity=b.quantity,
            unit_cost=b.unit_cost,
            received_at=b.received_at,
        )
        for b in service.list_batches(db)
    ]


def _requisition_out(r: object) -> RequisitionOut:
    return RequisitionOut.model_validate(r, from_attributes=True)


@router.post("/cards/requisitions", response_model=RequisitionOut, status_code=201)
def request_cards(body: RequisitionIn, db: DB, user: ApiUser) -> RequisitionOut:
    row = service.request_cards(
        session=db, actor=user, property_id=body.property_id, quantity=body.quantity, note=body.note
    )
    db.commit()
    return _requisition_out(row)


@router.get("/cards/requisitions", response_model=list[RequisitionOut])
def list_requisitions(db: DB, user: ApiUser) -> list[RequisitionOut]:
    require(user, CARDS_VIEW)
    return [_requisition_out(r) for r in service.list_requisitions(db)]


@router.post("/cards/requisitions/{requisition_id}/fulfil", response_model=RequisitionOut)
def fulfil_requisition(
    requisition_id: RecordId, body: FulfilIn, db: DB, user: ApiUser
) -> RequisitionOut:
    service.fulfil_requisition(
        session=db, actor=user, requisition_id=requisition_id, card_numbers=body.card_numbers
    )
    db.commit()
    return _requisition_out(service.get_requisition(db, requisition_id))


# --- policy -------------------------------------------------------------------------------


@router.get("/cards/policy/{property_id}", response_model=PolicyOut)
def get_policy(property_id: RecordId, db: DB, user: ApiUser) -> PolicyOut:
    require(user, CARDS_VIEW)
    prop = service.get_property(db, property_id)
    return PolicyOut(
        property_id=prop.id,
        property_code=prop.code,
        policy=service.get_policy(prop),
        replacement_warranty_days=prop.replacement_warranty_days,
    )


@router.put("/cards/policy/{property_id}", response_model=PolicyOut)
def set_policy(property_id: RecordId, body: PolicyIn, db: DB, user: ApiUser) -> PolicyOut:
    require(user, CARDS_POLICY)
    prop = service.set_policy(
        session=db,
        actor=user,
        property_id=property_id,
        policy=body.policy,
        replacement_warranty_days=body.replacement_warranty_days,
    )
    db.commit()
    return PolicyOut(
        property_id=prop.id,
        property_code=prop.code,
        policy=service.get_policy(prop),
        replacement_warranty_days=prop.replacement_warranty_days,
    )


# --- issuing ------------------------------------------------------------------------------


@router.post("/cards/approvals", response_model=ApprovalOut, status_code=201)
def request_approval(body: ApprovalIn, db: DB, user: ApiUser) -> ApprovalOut:
    request = service.request_card_approval(
        session=db,
        actor=user,
        holder_kind=body.holder_kind,
        person_id=body.person_id,
        property_id=body.property_id,
        organisation_id=body.organisation_id,
        unit_id=body.unit_id,
        reason=body.reason,
    )
    db.commit()
    return ApprovalOut(id=request.id, number=request.number, kind=request.kind, state=request.state)


@router.post("/cards/issue", response_model=CardOut, status_code=201)
def issue(body: IssueIn, db: DB, user: ApiUser) -> CardOut:
    """Evidence documents are those on file for the person (or merchant): upload them first
    with ``POST /api/v1/documents`` (owner_type ``person``)."""
    confirmation = (
        service.OwnerConfirmation(
            phoned_at=body.owner_confirmation.phoned_at,
            owner_person_id=body.owner_confirmation.owner_person_id,
            note=body.owner_confirmation.note,
        )
        if body.owner_confirmation
        else None
    )
    card = service.issue_card(
        session=db,
        actor=user,
        card_number=body.card_number,
        holder_kind=body.holder_kind,
        person_id=body.person_id,
        unit_id=body.unit_id,
        organisation_id=body.organisation_id,
        owner_confirmation=confirmation,
        approval_request_id=body.approval_request_id,
        valid_months=body.valid_months,
        is_gift=body.is_gift,
        payment_method=body.payment_method,
        acknowledged=body.acknowledged,
        note=body.note,
    )
    db.commit()
    return card_out(db, card)


@router.post("/cards/ownership-change", response_model=list[CardOut])
def ownership_change(body: OwnershipChangeIn, db: DB, user: ApiUser) -> list[CardOut]:
    cards = service.cancel_cards_for_ownership_change(
        session=db,
        actor=user,
        unit_id=body.unit_id,
        reason=body.reason,
        new_owner_person_id=body.new_owner_person_id,
    )
    db.commit()
    return [card_out(db, c, full=False) for c in cards]


# --- reports ------------------------------------------------------------------------------


@router.get("/cards/reports/quarterly.xlsx")
def quarterly_excel(
    db: DB, user: ApiUser, quarter: Annotated[str, Query(max_length=8)] = ""
) -> Response:
    rep = card_report.quarterly_report(session=db, actor=user, quarter=quarter or None)
    return Response(
        card_report.to_excel(rep),
        media_type=XLSX,
        headers={"Content-Disposition": f'attachment; filename="cards-{rep.quarter}.xlsx"'},
    )


# --- one card -----------------------------------------------------------------------------


@router.get("/cards", response_model=list[CardOut])
def search(
    db: DB,
    user: ApiUser,
    q: Annotated[str, Query(max_length=64)] = "",
    state: Annotated[str, Query(max_length=16)] = "",
    holder_kind: Annotated[str, Query(max_length=16)] = "",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[CardOut]:
    cards = service.search_cards(
        session=db,
        actor=user,
        q=q,
        state=state or None,
        holder_kind=holder_kind or None,
        limit=limit,
        offset=offset,
    )
    return [card_out(db, c, full=False) for c in cards]


@router.get("/cards/{number}", response_model=CardOut)
def get_card(number: CardNumber, db: DB, user: ApiUser) -> CardOut:
    require(user, CARDS_VIEW)
    return card_out(db, service.get_card(db, number))


@router.post("/cards/{number}/report-lost", response_model=CardOut)
def report_lost(number: CardNumber, db: DB, user: ApiUser, body: LostIn | None = None) -> CardOut:
    body = body or LostIn()
    card = service.report_lost(
        session=db, actor=user, card_number=number, channel=body.channel, note=body.note
    )
    db.commit()
    return card_out(db, card)


@router.post("/cards/{number}/cancel-loss", response_model=CardOut)
def cancel_loss(
    number: CardNumber, db: DB, user: ApiUser, body: CancelLossIn | None = None
) -> CardOut:
    body = body or CancelLossIn()
    card = service.cancel_loss(
        session=db, actor=user, card_number=number, id_checked=body.id_checked, note=body.note
    )
    db.commit()
    return card_out(db, card)


@router.post("/cards/{number}/acknowledge", response_model=CardOut)
def acknowledge(number: CardNumber, db: DB, user: ApiUser) -> CardOut:
    card = service.acknowledge(session=db, actor=user, card_number=number)
    db.commit()
    return card_out(db, card)


@router.post("/cards/{number}/reissue", response_model=CardOut)
def reissue(number: CardNumber, body: ReissueIn, db: DB, user: ApiUser) -> CardOut:
    card = service.reissue(
        session=db,
        actor=user,
        card_number=number,
        new_card_number=body.new_card_number,
        payment_method=body.payment_method,
    )
    db.commit()
    return card_out(db, card)


@router.post("/cards/{number}/replace", response_model=CardOut)
def replace(number: CardNumber, body: ReplaceIn, db: DB, user: ApiUser) -> CardOut:
    card = service.replace(
        session=db,
        actor=user,
        card_number=number,
        new_card_number=body.new_card_number,
        damage=body.damage,
        note=body.note,
        payment_method=body.payment_method,
    )
    db.commit()
    return card_out(db, card)


@router.post("/cards/{number}/return", response_model=ReturnOut)
def return_card(number: CardNumber, body: ReturnIn, db: DB, user: ApiUser) -> ReturnOut:
    result = service.return_card(
        session=db,
        actor=user,
        card_number=number,
        receipt_number=body.receipt_number,
        damaged=body.damaged,
        damage_note=body.damage_note,
        refund_method=body.refund_method,
    )
    db.commit()
    return ReturnOut(
        card=card_out(db, result.card),
        refunded=result.refunded,
        forfeited=result.forfeited,
        refund_number=result.refund_number,
    )


@router.post("/cards/{number}/extend", response_model=CardOut)
def extend(number: CardNumber, body: ExtendIn, db: DB, user: ApiUser) -> CardOut:
    card = service.extend(
        session=db,
        actor=user,
        card_number=number,
        months=body.months,
        payment_method=body.payment_method,
    )
    db.commit()
    return card_out(db, card)


@router.post("/cards/{number}/cancel", response_model=CardOut)
def cancel_staff(number: CardNumber, body: CancelIn, db: DB, user: ApiUser) -> CardOut:
    card = service.cancel_staff_card(
        session=db, actor=user, card_number=number, reason=body.reason, note=body.note
    )
    db.commit()
    return card_out(db, card)
