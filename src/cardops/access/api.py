"""REST API of access control: door decisions, controller pulls and uploads, topology, grants,
the access log and door codes."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from cardops.access import service
from cardops.access.engine import get_engine
from cardops.access.events import event_log
from cardops.access.models import AccessGroup, Door, Property, TimeSchedule
from cardops.access.permissions import ACCESS_DECIDE, ACCESS_GRANT, ACCESS_VIEW
from cardops.access.schemas import (
    ApprovalRefOut,
    BuildingIn,
    BuildingOut,
    ControllerIn,
    ControllerOut,
    CredentialsOut,
    DecisionIn,
    DecisionOut,
    DoorCodeOut,
    DoorIn,
    DoorOut,
    DoorPatch,
    EventOut,
    ExtraGrantIn,
    GrantIn,
    GrantOut,
    GroupDoorsIn,
    GroupIn,
    GroupOut,
    HolidayIn,
    HolidayOut,
    OfflineUploadIn,
    PeriodOut,
    PropertyIn,
    PropertyOut,
    RevealOut,
    RotateIn,
    RotateOut,
    ScheduleIn,
    ScheduleOut,
    UnitIn,
    UnitOut,
    UploadOut,
)
from cardops.auth.service import has_permission, require, resolve_token
from cardops.cards.models import Card
from cardops.core.clock import utcnow
from cardops.core.db import session_factory
from cardops.core.errors import AuthenticationFailed, NotFound
from cardops.web.deps import DB, ApiUser, RecordId, oauth2_scheme

router = APIRouter(tags=["access"])
CodePath = Annotated[str, Path(min_length=1, max_length=32)]
NumberPath = Annotated[str, Path(min_length=1, max_length=32)]

# --- door decisions: the hot path -----------------------------------------------------------

TOKEN_CACHE_SECONDS = 5.0
_token_cache: dict[str, float] = {}
_token_lock = threading.Lock()


async def _decider(request: Request, token: Annotated[str | None, Depends(oauth2_scheme)]) -> None:
    """A caller holding ``access.decide``. A token that passed is trusted for
    ``TOKEN_CACHE_SECONDS`` without reading the database again, so a revoked token or
    permission stops working within that time."""
    digest = hashlib.sha256((token or "").encode()).hexdigest()
    until = _token_cache.get(digest)
    if until is not None and until > time.monotonic():
        return
    await run_in_threadpool(_check_token, request, token)
    with _token_lock:
        if len(_token_cache) > 10_000:
            _token_cache.clear()
        _token_cache[digest] = time.monotonic() + TOKEN_CACHE_SECONDS


def _check_token(request: Request, token: str | None) -> None:
    maker = getattr(request.app.state, "session_maker", None)
    session = maker() if maker is not None else session_factory()
    try:
        user = resolve_token(session, token)
        if user is None:
            raise AuthenticationFailed(
                "Sign in first: send a valid bearer token (POST /api/v1/auth/token).",
                code="not_authenticated",
            )
        if not has_permission(user, ACCESS_DECIDE):
            require(user, ACCESS_DECIDE)
    finally:
        session.rollback()
        session.close()


@router.post(
    "/access/decisions",
    response_model=DecisionOut,
    summary="May this card open this door now?",
    description=(
        "Answers from memory: `allowed` and a `reason` code (ok, unknown_card, unknown_door, "
        "door_disabled, not_issued, lost, cancelled, returned, replaced, not_yet_valid, expired, "
        "no_parking, parking_expired, door_not_in_group, outside_schedule). An unknown card or "
        "door is a decision (200), not an error. Every attempt is logged."
    ),
)
async def decide(body: DecisionIn, _: Annotated[None, Depends(_decider)]) -> Response:
    at = body.at
    if at is not None and at.tzinfo is None:
        at = at.replace(tzinfo=get_engine().tz)  # a controller's local time
    decision = get_engine().decide(body.card, body.door, at)
    event_log.add(
        at=at or utcnow(),
        presented=body.card,
        door_code=body.door,
        allowed=decision.allowed,
        reason=decision.reason,
        card_id=decision.card_id,
        door_id=decision.door_id,
    )
    # answered as bytes: skips re-validating the response model on the hot path
    return Response(
        content=json.dumps(
            {
                "allowed": decision.allowed,
                "reason": decision.reason,
                "card_id": decision.card_id,
                "door_id": decision.door_id,
            }
        ),
        media_type="application/json",
    )


# --- controllers ----------------------------------------------------------------------------


@router.get(
    "/access/controllers/{code}/credentials",
    response_model=CredentialsOut,
    summary="A controller's credential list (all, or the changes since a version)",
)
def credentials(
    db: DB,
    user: ApiUser,
    code: CodePath,
    since: Annotated[int, Query(ge=0, le=2**62)] = 0,
) -> dict[str, Any]:
    result = service.pull_credentials(session=db, actor=user, controller_code=code, since=since)
    db.commit()
    return result


@router.post(
    "/access/controllers/{code}/events",
    response_model=UploadOut,
    summary="Upload decisions a controller made offline (idempotent on external_id)",
)
def upload(db: DB, user: ApiUser, code: CodePath, body: OfflineUploadIn) -> UploadOut:
    result = service.upload_events(
        session=db,
        actor=user,
        controller_code=code,
        events=[
            service.OfflineEvent(
                external_id=e.external_id,
                at=e.at,
                card=e.card,
                door=e.door,
                allowed=e.allowed,
                reason=e.reason,
            )
            for e in body.events
        ],
    )
    db.commit()
    return UploadOut(accepted=result.accepted, duplicates=result.duplicates)


# --- topology -------------------------------------------------------------------------------


def _door_out(door: Door, buildings: dict[int, str], controllers: dict[int, str]) -> DoorOut:
    return DoorOut(
        id=door.id,
        code=door.code,
        name=door.name,
        kind=door.kind,
        building=buildings.get(door.building_id) if door.building_id else None,
        controller=controllers.get(door.controller_id) if door.controller_id else None,
        is_active=door.is_active,
    )


def _property_out(db: DB, prop: Property, *, deep: bool = False) -> PropertyOut:
    out = PropertyOut(
        id=prop.id,
        code=prop.code,
        name=prop.name,
        address=prop.address,
        is_active=prop.is_active,
        replacement_warranty_days=prop.replacement_warranty_days,
        card_policy=prop.card_policy or {},
    )
    if deep:
        buildings = {b.id: b.code for b in prop.buildings}
        controllers = {c.id: c.code for c in service.list_controllers(db, prop.id)}
        out.buildings = [
            BuildingOut(
                id=b.id,
                code=b.code,
                name=b.name,
                units=[
                    UnitOut(
                        id=u.id,
                        code=u.code,
                        floor=u.floor,
                        is_shop=u.is_shop,
                        owner_person_id=u.owner_person_id,
                    )
                    for u in b.units
                ],
            )
            for b in prop.buildings
        ]
        out.doors = [_door_out(d, buildings, controllers) for d in service.list_doors(db, prop.id)]
    return out


@router.get("/access/properties", response_model=list[PropertyOut])
def list_properties(db: DB, user: ApiUser) -> list[PropertyOut]:
    require(user, ACCESS_VIEW)
    return [_property_out(db, p) for p in service.list_properties(db)]


@router.post("/access/properties", response_model=PropertyOut, status_code=201)
def create_property(db: DB, user: ApiUser, body: PropertyIn) -> PropertyOut:
    prop = service.create_property(
        session=db, actor=user, code=body.code, name=body.name, address=body.address
    )
    db.commit()
    return _property_out(db, prop)


@router.get("/access/properties/{code}", response_model=PropertyOut)
def get_property(db: DB, user: ApiUser, code: CodePath) -> PropertyOut:
    require(user, ACCESS_VIEW)
    return _property_out(db, service.get_property(db, code), deep=True)


@router.post("/access/properties/{code}/buildings", response_model=BuildingOut, status_code=201)
def create_building(db: DB, user: ApiUser, code: CodePath, body: BuildingIn) -> BuildingOut:
    prop = service.get_property(db, code)
    building = service.create_building(
        session=db, actor=user, property_id=prop.id, code=body.code, name=body.name
    )
    db.commit()
    return BuildingOut(id=building.id, code=building.code, name=building.name)


def _building(db: DB, prop: Property, code: str) -> int:
    building = service.find_building(db, prop.id, code)
    if building is None:
        raise NotFound("No building “{ref}”.", field="building", ref=code)
    return building.id


@router.post(
    "/access/properties/{code}/buildings/{building}/units", response_model=UnitOut, status_code=201
)
def create_unit(db: DB, user: ApiUser, code: CodePath, building: CodePath, body: UnitIn) -> UnitOut:
    prop = service.get_property(db, code)
    unit = service.create_unit(
        session=db,
        actor=user,
        building_id=_building(db, prop, building),
        code=body.code,
        floor=body.floor,
        is_shop=body.is_shop,
        owner_person_id=body.owner_person_id,
    )
    db.commit()
    return UnitOut(
        id=unit.id,
        code=unit.code,
        floor=unit.floor,
        is_shop=unit.is_shop,
        owner_person_id=unit.owner_person_id,
    )


@router.get("/access/properties/{code}/controllers", response_model=list[ControllerOut])
def list_controllers(db: DB, user: ApiUser, code: CodePath) -> list[ControllerOut]:
    require(user, ACCESS_VIEW)
    prop = service.get_property(db, code)
    return [
        ControllerOut.model_validate(c, from_attributes=True)
        for c in service.list_controllers(db, prop.id)
    ]


@router.post("/access/properties/{code}/controllers", response_model=ControllerOut, status_code=201)
def create_controller(db: DB, user: ApiUser, code: CodePath, body: ControllerIn) -> ControllerOut:
    prop = service.get_property(db, code)
    controller = service.create_controller(
        session=db,
        actor=user,
        property_id=prop.id,
        code=body.code,
        name=body.name,
        serial=body.serial,
    )
    db.commit()
    return ControllerOut.model_validate(controller, from_attributes=True)


def _controller_id(db: DB, code: str | None) -> int | None:
    return service.get_controller(db, code).id if code else None


@router.post("/access/properties/{code}/doors", response_model=DoorOut, status_code=201)
def create_door(db: DB, user: ApiUser, code: CodePath, body: DoorIn) -> DoorOut:
    prop = service.get_property(db, code)
    door = service.create_door(
        session=db,
        actor=user,
        property_id=prop.id,
        code=body.code,
        name=body.name,
        kind=body.kind,
        building_id=_building(db, prop, body.building) if body.building else None,
        controller_id=_controller_id(db, body.controller),
        is_active=body.is_active,
    )
    db.commit()
    return _one_door(db, door)


def _one_door(db: DB, door: Door) -> DoorOut:
    prop = service.get_property(db, door.property_id)
    buildings = {b.id: b.code for b in prop.buildings}
    controllers = {c.id: c.code for c in service.list_controllers(db, prop.id)}
    return _door_out(door, buildings, controllers)


@router.get("/access/doors/{code}", response_model=DoorOut)
def get_door(db: DB, user: ApiUser, code: CodePath) -> DoorOut:
    require(user, ACCESS_VIEW)
    return _one_door(db, service.get_door(db, code))


@router.patch("/access/doors/{code}", response_model=DoorOut)
def patch_door(db: DB, user: ApiUser, code: CodePath, body: DoorPatch) -> DoorOut:
    door = service.get_door(db, code)
    prop = service.get_property(db, door.property_id)
    fields = body.model_fields_set
    door = service.update_door(
        session=db,
        actor=user,
        door_id=door.id,
        name=body.name if body.name is not None else door.name,
        kind=body.kind if body.kind is not None else door.kind,
        building_id=(
            (_building(db, prop, body.building) if body.building else None)
            if "building" in fields
            else door.building_id
        ),
        controller_id=(
            _controller_id(db, body.controller) if "controller" in fields else door.controller_id
        ),
        is_active=body.is_active if body.is_active is not None else door.is_active,
    )
    db.commit()
    return _one_door(db, door)


def _group_out(db: DB, group: AccessGroup) -> GroupOut:
    codes = {d.id: d.code for d in service.list_doors(db, group.property_id)}
    return GroupOut(
        id=group.id,
        code=group.code,
        name=group.name,
        doors=sorted(codes[link.door_id] for link in group.doors if link.door_id in codes),
    )


@router.get("/access/properties/{code}/groups", response_model=list[GroupOut])
def list_groups(db: DB, user: ApiUser, code: CodePath) -> list[GroupOut]:
    require(user, ACCESS_VIEW)
    prop = service.get_property(db, code)
    return [_group_out(db, g) for g in service.list_groups(db, prop.id)]


@router.post("/access/properties/{code}/groups", response_model=GroupOut, status_code=201)
def create_group(db: DB, user: ApiUser, code: CodePath, body: GroupIn) -> GroupOut:
    prop = service.get_property(db, code)
    group = service.create_group(
        session=db,
        actor=user,
        property_id=prop.id,
        code=body.code,
        name=body.name,
        doors=body.doors,
    )
    db.commit()
    return _group_out(db, group)


@router.put("/access/groups/{group_id}/doors", response_model=GroupOut)
def set_group_doors(db: DB, user: ApiUser, group_id: RecordId, body: GroupDoorsIn) -> GroupOut:
    group = service.set_group_doors(
        session=db, actor=user, group_id=group_id, doors=body.doors, name=body.name
    )
    db.commit()
    return _group_out(db, group)


def _schedule_out(schedule: TimeSchedule) -> ScheduleOut:
    return ScheduleOut(
        id=schedule.id,
        code=schedule.code,
        name=schedule.name,
        holiday_mode=schedule.holiday_mode,
        periods=[
            PeriodOut(
                weekday=p.weekday,
                start=service.format_minute(p.start_minute),
                end=service.format_minute(p.end_minute),
            )
            for p in schedule.periods
        ],
    )


@router.get("/access/properties/{code}/schedules", response_model=list[ScheduleOut])
def list_schedules(db: DB, user: ApiUser, code: CodePath) -> list[ScheduleOut]:
    require(user, ACCESS_VIEW)
    prop = service.get_property(db, code)
    return [_schedule_out(s) for s in service.list_schedules(db, prop.id)]


def _periods(body: ScheduleIn) -> list[service.Period]:
    return [
        service.Period(p.weekday, service.parse_hhmm(p.start), service.parse_hhmm(p.end))
        for p in body.periods
    ]


@router.post("/access/properties/{code}/schedules", response_model=ScheduleOut, status_code=201)
def create_schedule(db: DB, user: ApiUser, code: CodePath, body: ScheduleIn) -> ScheduleOut:
    prop = service.get_property(db, code)
    schedule = service.create_schedule(
        session=db,
        actor=user,
        property_id=prop.id,
        code=body.code,
        name=body.name,
        holiday_mode=body.holiday_mode,
        periods=_periods(body),
    )
    db.commit()
    return _schedule_out(schedule)


@router.get("/access/properties/{code}/holidays", response_model=list[HolidayOut])
def list_holidays(db: DB, user: ApiUser, code: CodePath) -> list[HolidayOut]:
    require(user, ACCESS_VIEW)
    prop = service.get_property(db, code)
    return [HolidayOut(id=h.id, day=h.day, name=h.name) for h in service.list_holidays(db, prop.id)]


@router.post("/access/properties/{code}/holidays", response_model=HolidayOut, status_code=201)
def add_holiday(db: DB, user: ApiUser, code: CodePath, body: HolidayIn) -> HolidayOut:
    prop = service.get_property(db, code)
    holiday = service.add_holiday(
        session=db, actor=user, property_id=prop.id, day=body.day, name=body.name
    )
    db.commit()
    return HolidayOut(id=holiday.id, day=holiday.day, name=holiday.name)


# --- grants ---------------------------------------------------------------------------------


def _card(db: DB, number: str) -> Card:
    from sqlalchemy import select

    card = db.execute(select(Card).where(Card.number == number)).scalar_one_or_none()
    if card is None:
        raise NotFound("No card {number}.", field="card", number=number)
    return card


def _grants_out(db: DB, card: Card) -> list[GrantOut]:
    return [
        GrantOut(group=g.code, schedule=s.code if s else None, granted_at=row.granted_at)
        for row, g, s in service.grant_rows(db, card)
    ]


@router.get("/access/cards/{number}/grants", response_model=list[GrantOut])
def card_grants(db: DB, user: ApiUser, number: NumberPath) -> list[GrantOut]:
    require(user, ACCESS_VIEW)
    return _grants_out(db, _card(db, number))


@router.post("/access/cards/{number}/grants", response_model=list[GrantOut])
def add_grant(db: DB, user: ApiUser, number: NumberPath, body: GrantIn) -> list[GrantOut]:
    card = _card(db, number)
    service.grant(session=db, actor=user, card=card, group=body.group, schedule=body.schedule)
    db.commit()
    return _grants_out(db, card)


@router.delete("/access/cards/{number}/grants/{group}", response_model=list[GrantOut])
def delete_grant(db: DB, user: ApiUser, number: NumberPath, group: CodePath) -> list[GrantOut]:
    card = _card(db, number)
    service.revoke_grant(session=db, actor=user, card=card, group=group)
    db.commit()
    return _grants_out(db, card)


@router.post(
    "/access/cards/{number}/extra-doors",
    response_model=ApprovalRefOut,
    status_code=201,
    summary="Ask a supervisor to let a tenant's card open more doors",
)
def request_extra(db: DB, user: ApiUser, number: NumberPath, body: ExtraGrantIn) -> ApprovalRefOut:
    require(user, ACCESS_GRANT)
    card = _card(db, number)
    request = service.request_extra_grant(
        session=db,
        actor=user,
        card=card,
        group=body.group,
        schedule=body.schedule,
        reason=body.reason,
    )
    db.commit()
    return ApprovalRefOut(number=request.number, state=str(request.state))


# --- access log -----------------------------------------------------------------------------


@router.get("/access/events", response_model=list[EventOut], summary="The door access log")
def events(
    db: DB,
    user: ApiUser,
    card: Annotated[str, Query(max_length=64)] = "",
    door: Annotated[str, Query(max_length=32)] = "",
    day_from: date | None = None,
    day_to: date | None = None,
    allowed: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> list[EventOut]:
    rows = service.search_events(
        session=db,
        actor=user,
        card=card,
        door=door,
        day_from=day_from,
        day_to=day_to,
        allowed=allowed,
        limit=limit,
        offset=offset,
    )
    return [
        EventOut(
            id=e.id,
            at=e.at,
            presented=e.presented,
            card_id=e.card_id,
            door=e.door_code,
            allowed=e.allowed,
            reason=e.reason,
            source=e.source,
        )
        for e in rows
    ]


# --- door codes -----------------------------------------------------------------------------


@router.get(
    "/access/door-codes", response_model=list[DoorCodeOut], summary="Door codes (never the code)"
)
def door_codes(db: DB, user: ApiUser) -> list[DoorCodeOut]:
    return [
        DoorCodeOut(
            id=r.id,
            door=r.door.code,
            valid_from=r.valid_from,
            valid_until=r.valid_until,
            current=r.current,
            notified_at=r.notified_at,
        )
        for r in service.list_door_codes(session=db, actor=user)
    ]


@router.post(
    "/access/door-codes/{code_id}/reveal",
    response_model=RevealOut,
    summary="Show one door code (audited)",
)
def reveal(db: DB, user: ApiUser, code_id: RecordId) -> RevealOut:
    from cardops.access.models import DoorCode

    code = service.reveal_door_code(session=db, actor=user, door_code_id=code_id)
    row = db.get(DoorCode, code_id)
    assert row is not None
    door = service.get_door(db, row.door_id)
    db.commit()
    return RevealOut(
        door=door.code, code=code, valid_from=row.valid_from, valid_until=row.valid_until
    )


@router.post(
    "/access/door-codes/rotate",
    response_model=RotateOut,
    summary="Make the next quarter's door codes and notify residents",
)
def rotate(db: DB, user: ApiUser, body: RotateIn) -> RotateOut:
    start = body.quarter_start or service.next_quarter_start(service.local_today())
    result = service.rotate_door_codes(session=db, actor=user, quarter_start=start)
    db.commit()
    return RotateOut(
        quarter_start=result.quarter_start, created=len(result.created), notified=result.notified
    )
