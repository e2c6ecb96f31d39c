"""REST API of the warranty domain: service-card ranges, issuing, registration, the lookup
(open to anyone: the number is the question), installer points, returns and exchanges."""

from __future__ import annotations

import base64
import binascii
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, File, Path, Query, Request, UploadFile

from cardops.auth.models import User
from cardops.auth.service import has_permission, require, resolve_token
from cardops.channel.models import Provider
from cardops.core.clock import as_utc
from cardops.core.errors import NotFound, ValidationFailed
from cardops.warranty import service
from cardops.warranty.models import CardAllocation, ServiceCard, WarrantyReturn
from cardops.warranty.permissions import WARRANTY_MANAGE, WARRANTY_VIEW
from cardops.warranty.schemas import (
    AllocationOut,
    CardOut,
    CompensationIn,
    CompleteIn,
    EventOut,
    IssueIn,
    LookupOut,
    ModelTermsIn,
    ModelTermsOut,
    NoteIn,
    PhotoOut,
    PointEntryOut,
    PointsRowOut,
    ProviderRef,
    RangeIn,
    RangeOut,
    ReasonIn,
    RegisterIn,
    ReturnIn,
    ReturnOut,
    SettingsIn,
    SettingsOut,
    StatementOut,
)
from cardops.web.deps import DB, ApiUser, RecordId, oauth2_scheme

router = APIRouter(tags=["warranty"])
CardNumber = Annotated[str, Path(min_length=1, max_length=40)]
# The lookup answers any text (a made-up number is the question, not an error).
LookupNumber = Annotated[str, Path(min_length=1, max_length=500)]
MAX_UPLOAD = 15_000_000


def optional_user(db: DB, token: Annotated[str | None, Depends(oauth2_scheme)]) -> User | None:
    return resolve_token(db, token) if token else None


MaybeUser = Annotated[User | None, Depends(optional_user)]


def provider_ref(p: Provider | None) -> ProviderRef | None:
    if p is None:
        return None
    return ProviderRef(id=p.id, code=p.code, name=p.name, level=p.level)


def card_out(c: ServiceCard) -> CardOut:
    branch = provider_ref(c.branch)
    assert branch is not None
    return CardOut(
        id=c.id,
        number=c.number,
        state=c.state,
        branch=branch,
        dealer=provider_ref(c.dealer),
        model_id=c.model_id,
        model=c.model.code,
        serial=c.serial,
        buyer_name=c.buyer_name,
        buyer_phone=c.buyer_phone,
        province=c.province,
        city=c.city,
        address=c.address,
        price=c.price,
        floor_price=c.floor_price,
        installer_id=c.installer_id,
        installer=c.installer.name if c.installer else None,
        sale_date=c.sale_date,
        warranty_end=c.warranty_end,
        points=c.points,
        cross_region=c.cross_region,
        below_floor=c.below_floor,
        created_at=c.created_at,
    )


def allocation_out(a: CardAllocation) -> AllocationOut:
    provider = provider_ref(a.provider)
    assert provider is not None
    return AllocationOut(
        id=a.id,
        range_id=a.range_id,
        level=a.level,
        provider=provider,
        first=service.first_number(a),
        last=service.last_number(a),
        count=a.size,
        issued_at=a.issued_at,
        note=a.note,
    )


def range_out(row: service.RangeRow, allocations: list[CardAllocation] | None = None) -> RangeOut:
    r = row.card_range
    return RangeOut(
        id=r.id,
        prefix=r.prefix,
        width=r.width,
        first=service.first_number(r),
        last=service.last_number(r),
        count=r.size,
        issued_to_branches=row.issued,
        registered=row.registered,
        note=r.note,
        created_at=r.created_at,
        allocations=[allocation_out(a) for a in allocations] if allocations is not None else None,
    )


def return_out(db: DB, item: WarrantyReturn) -> ReturnOut:
    deadline = service.photo_deadline(db, item)
    return ReturnOut(
        id=item.id,
        number=item.number,
        card_number=item.card.number,
        kind=item.kind,
        reason=item.reason,
        description=item.description,
        state=item.state,
        requested_at=item.requested_at,
        photo_deadline=deadline,
        shipping_paid_by=item.shipping_paid_by,
        shipping_cost=item.shipping_cost,
        refund_amount=item.refund_amount,
        exchange_model_id=item.exchange_model_id,
        exchange_serial=item.exchange_serial,
        price_difference=item.price_difference,
        compensation=item.compensation,
        compensation_state=item.compensation_state,
        compensation_cap=item.compensation_cap,
        approval_request_id=item.approval_request_id,
        payment_method=item.payment_method,
        posting_id=item.posting_id,
        receipt_id=item.receipt_id,
        photos=[
            PhotoOut(
                id=d.id,
                filename=d.filename,
                uploaded_at=d.uploaded_at,
                in_time=as_utc(d.uploaded_at) <= deadline,
            )
            for d in service.photos(db, item)
        ],
        events=[
            EventOut(
                at=e.at, kind=e.kind, actor=e.actor.username if e.actor else None, data=e.data or {}
            )
            for e in item.events
        ],
    )


# --- lookup (public) ------------------------------------------------------------------------


@router.get(
    "/service-cards/{number}",
    response_model=LookupOut,
    summary="Is this service card genuine? (no sign-in needed)",
)
def lookup_card(request: Request, db: DB, number: LookupNumber, user: MaybeUser) -> LookupOut:
    if user is None:
        service.check_public_lookup(request.client.host if request.client else None)
    found = service.lookup(db, number)
    out = LookupOut(number=found.number, genuine=found.genuine, reason=found.reason or None)
    if not found.genuine:
        return out
    out.branch, out.dealer = provider_ref(found.branch), provider_ref(found.dealer)
    card = found.card
    if card is not None:
        out.registered = True
        out.state = card.state
        out.model = card.model.name
        out.sale_date = card.sale_date
        out.warranty_end = card.warranty_end
        out.warranty_days_left = found.days_left
        out.in_warranty = found.in_warranty
        if user is not None and has_permission(user, WARRANTY_VIEW):
            try:
                out.registration = card_out(service.get_card(db, card.number, actor=user))
            except NotFound:  # another provider's card: the public answer only
                out.registration = None
    return out


# --- registered cards -----------------------------------------------------------------------


@router.get("/service-cards", response_model=list[CardOut], summary="Registered service cards")
def list_cards(
    db: DB,
    user: ApiUser,
    flagged: Annotated[str | None, Query(pattern="^(any|cross_region|below_floor)$")] = None,
    q: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[CardOut]:
    cards = service.list_cards(
        session=db, actor=user, flagged=flagged, q=q, limit=limit, offset=offset
    )
    return [card_out(c) for c in cards]


@router.post("/service-cards", response_model=CardOut, status_code=201)
def register_card(db: DB, user: ApiUser, body: RegisterIn) -> CardOut:
    """Register a card against a sale (flags cross-region selling and prices below the floor)."""
    card = service.register(session=db, actor=user, sale=service.Sale(**body.model_dump()))
    db.commit()
    return card_out(card)


@router.post("/service-cards/{number}/void", response_model=CardOut)
def void_card(db: DB, user: ApiUser, number: CardNumber, body: ReasonIn) -> CardOut:
    card = service.void_card(session=db, actor=user, number=number, reason=body.reason)
    db.commit()
    return card_out(card)


# --- ranges and issuing ---------------------------------------------------------------------


@router.get("/service-card-ranges", response_model=list[RangeOut])
def list_ranges(db: DB, user: ApiUser) -> list[RangeOut]:
    return [range_out(r) for r in service.list_ranges(session=db, actor=user)]


@router.post("/service-card-ranges", response_model=RangeOut, status_code=201)
def generate_range(db: DB, user: ApiUser, body: RangeIn) -> RangeOut:
    row = service.generate_range(session=db, actor=user, **body.model_dump())
    db.commit()
    return range_out(service.RangeRow(row, 0, 0), [])


@router.get("/service-card-ranges/{range_id}", response_model=RangeOut)
def get_range(db: DB, user: ApiUser, range_id: RecordId) -> RangeOut:
    require(user, WARRANTY_VIEW)
    row = service.get_range(db, range_id)
    return range_out(service.range_row(db, row), service.range_allocations(db, row.id))


@router.get("/service-card-issues", response_model=list[AllocationOut])
def list_issues(
    db: DB,
    user: ApiUser,
    provider_id: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
) -> list[AllocationOut]:
    rows = service.list_allocations(session=db, actor=user, provider_id=provider_id)
    return [allocation_out(a) for a in rows]


@router.post("/service-card-issues", response_model=AllocationOut, status_code=201)
def issue_numbers(db: DB, user: ApiUser, body: IssueIn) -> AllocationOut:
    """Issue numbers to a branch, or from a branch's holding to one of its dealers."""
    row = service.issue(session=db, actor=user, **body.model_dump())
    db.commit()
    return allocation_out(row)


# --- settings, model terms, points ----------------------------------------------------------


def _settings_out(db: DB) -> SettingsOut:
    s = service.get_settings(db)
    return SettingsOut(
        warranty_months=s.warranty_months,
        points_per_card=s.points_per_card,
        compensation_cap=s.compensation_cap,
        photo_hours=s.photo_hours,
    )


@router.get("/warranty/settings", response_model=SettingsOut)
def get_settings(db: DB, user: ApiUser) -> SettingsOut:
    require(user, WARRANTY_VIEW)
    return _settings_out(db)


@router.put("/warranty/settings", response_model=SettingsOut)
def put_settings(db: DB, user: ApiUser, body: SettingsIn) -> SettingsOut:
    service.update_settings(session=db, actor=user, **body.model_dump())
    db.commit()
    return _settings_out(db)


@router.put("/warranty/models/{model_id}", response_model=ModelTermsOut)
def put_model_terms(db: DB, user: ApiUser, model_id: RecordId, body: ModelTermsIn) -> ModelTermsOut:
    require(user, WARRANTY_MANAGE)
    terms = service.set_model_terms(session=db, actor=user, model_id=model_id, **body.model_dump())
    db.commit()
    return ModelTermsOut(
        model_id=terms.model_id,
        model=terms.model.code,
        floor_price=terms.floor_price,
        warranty_months=terms.warranty_months,
        points=terms.points,
    )


@router.get("/warranty/points", response_model=list[PointsRowOut], summary="Points per installer")
def points(
    db: DB, user: ApiUser, since: date | None = None, until: date | None = None
) -> list[PointsRowOut]:
    _, _, rows = service.points_summary(session=db, actor=user, since=since, until=until)
    return [
        PointsRowOut(installer_id=p.id, installer=p.name, cards=cards, points=total)
        for p, total, cards in rows
    ]


@router.get("/warranty/installers/{person_id}/statement", response_model=StatementOut)
def statement(
    db: DB,
    user: ApiUser,
    person_id: RecordId,
    since: date | None = None,
    until: date | None = None,
) -> StatementOut:
    st = service.installer_statement(
        session=db, actor=user, installer_id=person_id, since=since, until=until
    )
    return StatementOut(
        installer_id=st.installer.id,
        installer=st.installer.name,
        since=st.since,
        until=st.until,
        cards=st.cards,
        total=st.total,
        entries=[
            PointEntryOut(at=e.at, card=e.card.number, points=e.points, reason=e.reason)
            for e in st.entries
        ],
    )


# --- returns and exchanges ------------------------------------------------------------------


def _decode(photo_b64: str) -> bytes:
    try:
        return base64.b64decode(photo_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValidationFailed("A photo is not valid base64.", field="photos") from exc


@router.get("/returns", response_model=list[ReturnOut], summary="Return and exchange requests")
def list_returns(
    db: DB,
    user: ApiUser,
    state: Annotated[str | None, Query(max_length=16)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[ReturnOut]:
    items = service.list_returns(session=db, actor=user, state=state, limit=limit)
    return [return_out(db, i) for i in items]


@router.post("/returns", response_model=ReturnOut, status_code=201)
def create_return(db: DB, user: ApiUser, body: ReturnIn) -> ReturnOut:
    """A return or exchange; a quality claim carries photos (base64) taken within the window."""
    values = body.model_dump(exclude={"photos"})
    photos = [
        service.Photo(p.filename, _decode(p.content_base64), p.content_type) for p in body.photos
    ]
    item = service.create_return(
        session=db, actor=user, data=service.ReturnInput(**values, photos=photos)
    )
    db.commit()
    return return_out(db, item)


@router.get("/returns/{return_id}", response_model=ReturnOut)
def get_return(db: DB, user: ApiUser, return_id: RecordId) -> ReturnOut:
    require(user, WARRANTY_VIEW)
    return return_out(db, service.get_return(db, return_id, actor=user))


@router.post("/returns/{return_id}/photos", response_model=ReturnOut)
async def add_photos(
    db: DB, user: ApiUser, return_id: RecordId, files: Annotated[list[UploadFile], File()]
) -> ReturnOut:
    photos = []
    for upload in files[: service.MAX_PHOTOS + 1]:
        data = await upload.read(MAX_UPLOAD + 1)
        photos.append(service.Photo(upload.filename or "photo.jpg", data, upload.content_type))
    service.add_photos(session=db, actor=user, return_id=return_id, photos_in=photos)
    db.commit()
    return return_out(db, service.get_return(db, return_id))


@router.post("/returns/{return_id}/accept", response_model=ReturnOut)
def accept(db: DB, user: ApiUser, return_id: RecordId, body: NoteIn | None = None) -> ReturnOut:
    item = service.accept(
        session=db, actor=user, return_id=return_id, note=body.note if body else ""
    )
    db.commit()
    return return_out(db, item)


@router.post("/returns/{return_id}/reject", response_model=ReturnOut)
def reject(db: DB, user: ApiUser, return_id: RecordId, body: ReasonIn) -> ReturnOut:
    item = service.reject(session=db, actor=user, return_id=return_id, reason=body.reason)
    db.commit()
    return return_out(db, item)


@router.post("/returns/{return_id}/cancel", response_model=ReturnOut)
def cancel(db: DB, user: ApiUser, return_id: RecordId, body: ReasonIn) -> ReturnOut:
    item = service.cancel(session=db, actor=user, return_id=return_id, reason=body.reason)
    db.commit()
    return return_out(db, item)


@router.post("/returns/{return_id}/receive", response_model=ReturnOut)
def receive(db: DB, user: ApiUser, return_id: RecordId, body: NoteIn | None = None) -> ReturnOut:
    item = service.receive(
        session=db, actor=user, return_id=return_id, note=body.note if body else ""
    )
    db.commit()
    return return_out(db, item)


@router.post("/returns/{return_id}/compensation", response_model=ReturnOut)
def compensation(db: DB, user: ApiUser, return_id: RecordId, body: CompensationIn) -> ReturnOut:
    item = service.set_compensation(
        session=db,
        actor=user,
        return_id=return_id,
        amount=body.amount,
        request_approval=body.request_approval,
    )
    db.commit()
    return return_out(db, item)


@router.post("/returns/{return_id}/complete", response_model=ReturnOut)
def complete(db: DB, user: ApiUser, return_id: RecordId, body: CompleteIn) -> ReturnOut:
    """Post the refund, compensation and shipping to the ledger (and a receipt for a price
    difference the customer pays); close the card or move it to the exchange unit."""
    item = service.complete(
        session=db, actor=user, return_id=return_id, payment_method=body.payment_method
    )
    db.commit()
    return return_out(db, item)
