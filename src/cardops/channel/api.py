"""REST API of the channel: providers, regions, provider orders, cross-region units, reports.

Every list and record is filtered by the caller's provider scope (``visible_provider_ids``):
another provider's order answers 404.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Path, Query, UploadFile
from fastapi.responses import Response

from cardops.auth.service import require
from cardops.channel import service
from cardops.channel.delivery_note import render_delivery_note
from cardops.channel.models import Provider, ProviderOrder, Region
from cardops.channel.permissions import CHANNEL_VIEW
from cardops.channel.schemas import (
    CrossRegionOut,
    DispatchIn,
    LinkUserIn,
    OrderEventOut,
    OrderIn,
    OrderLineOut,
    OrderOut,
    OrderSerialOut,
    OrderSummaryOut,
    ProviderFieldsIn,
    ProviderIn,
    ProviderOut,
    PurchaseRowOut,
    ReasonIn,
    RegionIn,
    RegionOut,
    SerialsIn,
)
from cardops.core.config import get_settings
from cardops.core.errors import NotFound
from cardops.web.deps import DB, ApiUser, RecordId

router = APIRouter(tags=["channel"])
RegionCode = Annotated[str, Path(min_length=1, max_length=16)]


def provider_out(p: Provider) -> ProviderOut:
    return ProviderOut(
        id=p.id,
        code=p.code,
        name=p.name,
        level=p.level,
        parent_id=p.parent_id,
        provinces=list(p.provinces or []),
        cities=list(p.cities or []),
        contract_no=p.contract_no,
        contract_start=p.contract_start,
        contract_end=p.contract_end,
        rate_card=p.rate_card or {},
        activation_reward=p.activation_reward,
        is_active=p.is_active,
    )


def region_out(r: Region) -> RegionOut:
    return RegionOut(
        code=r.code,
        name_zh=r.name_zh,
        name_en=r.name_en,
        provinces=list(r.provinces or []),
        reviewer_id=r.reviewer_id,
    )


def _kind(order: ProviderOrder) -> str:
    return "county" if service.is_county_order(order) else "to_hq"


def summary_out(o: ProviderOrder) -> OrderSummaryOut:
    return OrderSummaryOut.model_validate(
        {
            "id": o.id,
            "number": o.number,
            "kind": _kind(o),
            "state": o.state,
            "seller": o.seller.code,
            "buyer": o.buyer.code,
            "total": o.total,
            "created_at": o.created_at,
            "filed_with_hq_at": o.filed_with_hq_at,
        }
    )


def order_out(o: ProviderOrder) -> OrderOut:
    codes = {line.model_id: line.model.code for line in o.lines}
    return OrderOut.model_validate(
        {
            **summary_out(o).model_dump(),
            "paid_amount": o.paid_amount,
            "payment_reference": o.payment_reference,
            "payment_slip_document_id": o.payment_slip_document_id,
            "order_form_document_id": o.order_form_document_id,
            "approval_request_id": o.approval_request_id,
            "carrier": o.carrier,
            "tracking_no": o.tracking_no,
            "dispatched_at": o.dispatched_at,
            "received_at": o.received_at,
            "note": o.note,
            "lines": [
                OrderLineOut(
                    model=line.model.code,
                    quantity=line.quantity,
                    unit_price=line.unit_price,
                    amount=line.amount,
                )
                for line in o.lines
            ],
            "serials": [
                OrderSerialOut(
                    serial=s.terminal.serial,
                    model=codes.get(s.terminal.model_id, ""),
                    imei=s.terminal.imei,
                    iccid=s.terminal.iccid,
                    state=s.terminal.state,
                    picked=s.picked_at is not None,
                    checked=s.checked_at is not None,
                )
                for s in o.serials
            ],
            "events": [
                OrderEventOut(
                    at=e.at,
                    kind=e.kind,
                    actor=e.actor.username if e.actor else None,
                    data=e.data or {},
                )
                for e in o.events
            ],
        }
    )


def _fields(body: ProviderFieldsIn) -> service.ProviderFields:
    return service.ProviderFields(
        name=body.name,
        parent_id=body.parent_id,
        provinces=list(body.provinces),
        cities=list(body.cities),
        contract_no=body.contract_no,
        contract_start=body.contract_start,
        contract_end=body.contract_end,
        rate_card=body.rate_card.model_dump(exclude_none=True),
        activation_reward=body.activation_reward,
        is_active=body.is_active,
    )


# --- providers and regions ------------------------------------------------------------------


@router.get("/channel/providers", response_model=list[ProviderOut], summary="Visible providers")
def list_providers(db: DB, user: ApiUser) -> list[ProviderOut]:
    return [provider_out(p) for p in service.list_providers(session=db, actor=user)]


@router.post("/channel/providers", response_model=ProviderOut, status_code=201)
def create_provider(db: DB, user: ApiUser, body: ProviderIn) -> ProviderOut:
    provider = service.create_provider(
        session=db, actor=user, code=body.code, level=body.level, fields=_fields(body)
    )
    db.commit()
    return provider_out(provider)


@router.get("/channel/providers/{provider_id}", response_model=ProviderOut)
def get_provider(db: DB, user: ApiUser, provider_id: RecordId) -> ProviderOut:
    return provider_out(service.get_provider(db, provider_id, actor=user))


@router.get("/channel/providers/{provider_id}/rate-history")
def provider_rate_history(db: DB, user: ApiUser, provider_id: RecordId) -> list[dict[str, Any]]:
    """The provider's rate card versions, newest first (settlement prices a closed day with
    the version in force when it closed)."""
    return [
        {"rate_card": v.rate_card, "recorded_at": v.recorded_at, "actor_id": v.actor_id}
        for v in service.rate_history(db, user, provider_id)
    ]


@router.put("/channel/providers/{provider_id}", response_model=ProviderOut)
def update_provider(
    db: DB, user: ApiUser, provider_id: RecordId, body: ProviderFieldsIn
) -> ProviderOut:
    provider = service.update_provider(
        session=db, actor=user, provider_id=provider_id, fields=_fields(body)
    )
    db.commit()
    return provider_out(provider)


@router.post("/channel/providers/{provider_id}/users", status_code=204)
def link_user(db: DB, user: ApiUser, provider_id: RecordId, body: LinkUserIn) -> Response:
    service.link_user(session=db, actor=user, user_id=body.user_id, provider_id=provider_id)
    db.commit()
    return Response(status_code=204)


@router.get("/channel/regions", response_model=list[RegionOut])
def list_regions(db: DB, user: ApiUser) -> list[RegionOut]:
    require(user, CHANNEL_VIEW)
    return [region_out(r) for r in service.list_regions(db)]


@router.put("/channel/regions/{code}", response_model=RegionOut)
def set_region(db: DB, user: ApiUser, code: RegionCode, body: RegionIn) -> RegionOut:
    region = service.set_region(
        session=db, actor=user, code=code, provinces=body.provinces, reviewer_id=body.reviewer_id
    )
    db.commit()
    return region_out(region)


# --- orders ---------------------------------------------------------------------------------


@router.get("/channel/orders", response_model=list[OrderSummaryOut], summary="Provider orders")
def list_orders(
    db: DB,
    user: ApiUser,
    state: str | None = Query(None, max_length=16),
    kind: str | None = Query(None, pattern="^(to_hq|county)$"),
    filed: bool = Query(False, description="Only county orders filed with HQ"),
    limit: int = Query(100, ge=1, le=500),
    offset: int = Query(0, ge=0, le=1_000_000),
) -> list[OrderSummaryOut]:
    rows = service.list_orders(
        session=db,
        actor=user,
        state=state,
        county=None if kind is None else kind == "county",
        filed_only=filed,
        limit=limit,
        offset=offset,
    )
    return [summary_out(o) for o in rows]


@router.post("/channel/orders", response_model=OrderOut, status_code=201)
def create_order(db: DB, user: ApiUser, body: OrderIn) -> OrderOut:
    order = service.create_order(
        session=db,
        actor=user,
        buyer_id=body.buyer_id,
        lines=[(line.model_id, line.quantity) for line in body.lines],
        note=body.note,
    )
    db.commit()
    return order_out(order)


@router.get("/channel/orders/{order_id}", response_model=OrderOut)
def get_order(db: DB, user: ApiUser, order_id: RecordId) -> OrderOut:
    return order_out(service.get_order(session=db, actor=user, order_id=order_id))


@router.post("/channel/orders/{order_id}/payment-slip", response_model=OrderOut)
def upload_payment_slip(
    db: DB,
    user: ApiUser,
    order_id: RecordId,
    file: Annotated[UploadFile, File(description="scan or photo of the bank's payment slip")],
    paid_amount: Annotated[int, Form(ge=1, le=10**12, description="fen")],
    reference: Annotated[str, Form(min_length=1, max_length=64)],
) -> OrderOut:
    data = file.file.read(get_settings().documents_max_bytes + 1)
    order = service.upload_payment_slip(
        session=db,
        actor=user,
        order_id=order_id,
        filename=file.filename or "",
        data=data,
        paid_amount=paid_amount,
        reference=reference,
        content_type=file.content_type,
    )
    db.commit()
    return order_out(order)


@router.post("/channel/orders/{order_id}/order-form", response_model=OrderOut)
def upload_order_form(
    db: DB,
    user: ApiUser,
    order_id: RecordId,
    file: Annotated[UploadFile, File(description="the signed and stamped order form")],
) -> OrderOut:
    data = file.file.read(get_settings().documents_max_bytes + 1)
    order = service.upload_order_form(
        session=db,
        actor=user,
        order_id=order_id,
        filename=file.filename or "",
        data=data,
        content_type=file.content_type,
    )
    db.commit()
    return order_out(order)


@router.post("/channel/orders/{order_id}/submit", response_model=OrderOut)
def submit_order(db: DB, user: ApiUser, order_id: RecordId) -> OrderOut:
    order = service.submit_order(session=db, actor=user, order_id=order_id)
    db.commit()
    return order_out(order)


@router.post("/channel/orders/{order_id}/serials", response_model=OrderOut)
def select_serials(db: DB, user: ApiUser, order_id: RecordId, body: SerialsIn) -> OrderOut:
    order = service.select_serials(session=db, actor=user, order_id=order_id, serials=body.serials)
    db.commit()
    return order_out(order)


@router.post("/channel/orders/{order_id}/approve", response_model=OrderOut)
def approve_county_order(db: DB, user: ApiUser, order_id: RecordId) -> OrderOut:
    order = service.approve_county_order(session=db, actor=user, order_id=order_id)
    db.commit()
    return order_out(order)


@router.post("/channel/orders/{order_id}/pick", response_model=OrderOut)
def pick(db: DB, user: ApiUser, order_id: RecordId, body: SerialsIn) -> OrderOut:
    order = service.pick(session=db, actor=user, order_id=order_id, serials=body.serials)
    db.commit()
    return order_out(order)


@router.post("/channel/orders/{order_id}/check", response_model=OrderOut)
def check(db: DB, user: ApiUser, order_id: RecordId, body: SerialsIn) -> OrderOut:
    order = service.check(session=db, actor=user, order_id=order_id, serials=body.serials)
    db.commit()
    return order_out(order)


@router.post("/channel/orders/{order_id}/dispatch", response_model=OrderOut)
def dispatch(db: DB, user: ApiUser, order_id: RecordId, body: DispatchIn) -> OrderOut:
    order = service.dispatch(
        session=db,
        actor=user,
        order_id=order_id,
        carrier=body.carrier,
        tracking_no=body.tracking_no,
    )
    db.commit()
    return order_out(order)


@router.post("/channel/orders/{order_id}/receive", response_model=OrderOut)
def receive(db: DB, user: ApiUser, order_id: RecordId) -> OrderOut:
    order = service.receive(session=db, actor=user, order_id=order_id)
    db.commit()
    return order_out(order)


@router.post("/channel/orders/{order_id}/file-with-hq", response_model=OrderOut)
def file_with_hq(db: DB, user: ApiUser, order_id: RecordId) -> OrderOut:
    order = service.file_with_hq(session=db, actor=user, order_id=order_id)
    db.commit()
    return order_out(order)


@router.post("/channel/orders/{order_id}/cancel", response_model=OrderOut)
def cancel_order(db: DB, user: ApiUser, order_id: RecordId, body: ReasonIn) -> OrderOut:
    order = service.cancel_order(session=db, actor=user, order_id=order_id, reason=body.reason)
    db.commit()
    return order_out(order)


@router.get(
    "/channel/orders/{order_id}/delivery-note.pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}},
)
def delivery_note(db: DB, user: ApiUser, order_id: RecordId) -> Response:
    order = service.get_order(session=db, actor=user, order_id=order_id)
    if not order.serials:
        raise NotFound("Order {number} has no serials picked yet.", number=order.number)
    return Response(
        render_delivery_note(order),
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{order.number}.pdf"'},
    )


@router.get(
    "/channel/orders/{order_id}/serials.{fmt}",
    response_class=Response,
    summary="The serial list (serial, model, IMEI, ICCID) as CSV or Excel",
)
def serial_list(
    db: DB,
    user: ApiUser,
    order_id: RecordId,
    fmt: Annotated[str, Path(pattern="^(csv|xlsx)$")],
) -> Response:
    order = service.get_order(session=db, actor=user, order_id=order_id)
    if fmt == "csv":
        data, media = service.serial_list_csv(order), "text/csv; charset=utf-8"
    else:
        data = service.serial_list_xlsx(order)
        media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return Response(
        data,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{order.number}-serials.{fmt}"'},
    )


# --- cross-region and reports --------------------------------------------------------------


@router.get("/channel/cross-region", response_model=list[CrossRegionOut])
def cross_region(
    db: DB,
    user: ApiUser,
    limit: int = Query(200, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=1_000_000),
) -> list[CrossRegionOut]:
    rows = service.cross_region_units(session=db, actor=user, limit=limit, offset=offset)
    return [
        CrossRegionOut(
            serial=t.serial,
            provider=p.code if p else None,
            provider_provinces=service.effective_area(p)[0] if p else [],
            install_province=t.install_province,
            install_city=t.install_city,
            install_address=t.install_address,
            tid=t.tid,
            activated_at=t.activated_at,
        )
        for t, p in rows
    ]


@router.get("/channel/reports/purchases", response_model=list[PurchaseRowOut])
def purchases(
    db: DB, user: ApiUser, since: date | None = None, until: date | None = None
) -> list[PurchaseRowOut]:
    rows = service.purchases_report(session=db, actor=user, since=since, until=until)
    return [
        PurchaseRowOut(
            month=r.month,
            provider=r.provider.code,
            provider_name=r.provider.name,
            orders=r.orders,
            quantity=r.quantity,
            amount=r.amount,
        )
        for r in rows
    ]
