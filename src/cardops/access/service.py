"""Access control: properties and their doors, access groups, schedules, card grants, the
controllers' credential lists and offline events, and door codes. The only code that changes
them; it never commits.

Every change that can alter a door decision calls :func:`credentials.touch_card` or
:func:`credentials.touch_door` in the same transaction, so that the decision engine of every
process and the next controller pull see it.

Default grants by holder kind (:func:`default_grants_for`) follow one naming convention for
access groups: ``B{building code}`` is the residents' group of a building (its lobby and unit
door), ``RENO`` the designated renovation entrances, ``STAFF`` the doors property staff,
cleaners and lift maintainers use; schedules ``ALWAYS``, ``DAYTIME`` and ``WORKHOURS``.
"""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from cardops.access.credentials import touch_card, touch_door
from cardops.access.models import (
    AccessEvent,
    AccessGroup,
    AccessGroupDoor,
    Building,
    CardGrant,
    Controller,
    CredentialChange,
    Door,
    DoorCode,
    DoorKind,
    Holiday,
    Property,
    Reason,
    SchedulePeriod,
    TimeSchedule,
    Unit,
)
from cardops.access.permissions import (
    ACCESS_DECIDE,
    ACCESS_GRANT,
    ACCESS_LOG,
    ACCESS_MANAGE,
    DOOR_CODES_REVEAL,
    DOOR_CODES_ROTATE,
    DOOR_CODES_VIEW,
)
from cardops.approvals import service as approvals
from cardops.approvals.models import ApprovalRequest, RequestState
from cardops.audit.service import record, snapshot
from cardops.auth.models import User
from cardops.auth.service import require
from cardops.cards.models import Card, CardState, HolderKind
from cardops.core.clock import as_utc, utcnow
from cardops.core.config import get_settings
from cardops.core.errors import Conflict, NotFound, ValidationFailed
from cardops.parties.models import Person

CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,31}$")
NAME_MAX = 128
HOLIDAY_MODES = ("periods", "deny", "weekday")
WEEKDAYS = 7  # 0 = Monday … 6 = Sunday; 7 = holiday
TENANT_EXTRA_KIND = "tenant_extra_doors"
RESIDENT_KINDS = frozenset(
    {HolderKind.OWNER, HolderKind.FAMILY, HolderKind.RELATIVE, HolderKind.TENANT, HolderKind.NANNY}
)
STAFF_KINDS = frozenset({HolderKind.STAFF, HolderKind.CLEANER, HolderKind.LIFT_MAINTAINER})
CODE_DOOR_KINDS = (DoorKind.LOBBY.value, DoorKind.UNIT_DOOR.value)
MAX_UPLOAD = 1000


# --- small helpers --------------------------------------------------------------------------


def _code(value: str | None, *, field: str = "code") -> str:
    text = (value or "").strip()
    if not CODE.match(text):
        raise ValidationFailed(
            "A code is 1–32 letters, digits, '.', '_' or '-', starting with a letter or digit.",
            field=field,
        )
    return text


def _name(value: str | None, *, field: str = "name") -> str:
    text = (value or "").strip()
    if not text:
        raise ValidationFailed("Enter a name.", field=field)
    if len(text) > NAME_MAX or "\x00" in text:
        raise ValidationFailed("Too long: at most {n} characters.", field=field, n=NAME_MAX)
    return text


def _in_range(value: int) -> bool:
    return 1 <= value <= 2_147_483_647


def _get(session: Session, model: Any, ident: int, message: str, field: str) -> Any:
    obj = session.get(model, ident) if _in_range(ident) else None
    if obj is None:
        raise NotFound(message, field=field, id=ident)
    return obj


# --- properties, buildings, units -----------------------------------------------------------


def find_property(session: Session, code: str) -> Property | None:
    return session.execute(
        select(Property).where(Property.code == (code or "").strip())
    ).scalar_one_or_none()


def get_property(session: Session, ref: int | str | Property) -> Property:
    if isinstance(ref, Property):
        return ref
    if isinstance(ref, int):
        prop: Property | None = session.get(Property, ref) if _in_range(ref) else None
    else:
        prop = find_property(session, ref)
    if prop is None:
        raise NotFound("No property “{ref}”.", field="property", ref=ref)
    return prop


def list_properties(session: Session) -> list[Property]:
    return list(session.execute(select(Property).order_by(Property.code)).scalars())


def create_property(
    *, session: Session, actor: User, code: str, name: str, address: str = ""
) -> Property:
    require(actor, ACCESS_MANAGE)
    code = _code(code)
    if find_property(session, code) is not None:
        raise Conflict("The property code “{ref}” is taken.", field="code", ref=code)
    prop = Property(
        code=code,
        name=_name(name),
        address=(address or "").strip()[:255],
        card_policy={},
        replacement_warranty_days=30,
    )
    session.add(prop)
    session.flush()
    record(session, actor, "property.created", prop)
    return prop


def update_property(
    *,
    session: Session,
    actor: User,
    property_id: int,
    name: str | None = None,
    address: str | None = None,
    is_active: bool | None = None,
) -> Property:
    require(actor, ACCESS_MANAGE)
    prop = get_property(session, property_id)
    before = snapshot(prop)
    if name is not None:
        prop.name = _name(name)
    if address is not None:
        prop.address = address.strip()[:255]
    if is_active is not None:
        prop.is_active = is_active
    session.flush()
    record(session, actor, "property.updated", prop, before=before)
    return prop


def find_building(session: Session, property_id: int, code: str) -> Building | None:
    return session.execute(
        select(Building).where(Building.property_id == property_id, Building.code == code)
    ).scalar_one_or_none()


def create_building(
    *, session: Session, actor: User, property_id: int, code: str, name: str
) -> Building:
    require(actor, ACCESS_MANAGE)
    prop = get_property(session, property_id)
    code = _code(code)
    if find_building(session, prop.id, code) is not None:
        raise Conflict("The building “{ref}” exists already.", field="code", ref=code)
    building = Building(property_id=prop.id, code=code, name=_name(name))
    session.add(building)
    session.flush()
    record(session, actor, "building.created", building)
    return building


def get_building(session: Session, building_id: int) -> Building:
    building: Building = _get(
        session, Building, building_id, "No building with id {id}.", "building_id"
    )
    return building


def find_unit(session: Session, property_id: int, code: str) -> Unit | None:
    return session.execute(
        select(Unit)
        .join(Building, Unit.building_id == Building.id)
        .where(Building.property_id == property_id, Unit.code == code)
    ).scalar_one_or_none()


def _check_person(session: Session, person_id: int | None) -> int | None:
    if person_id is None:
        return None
    _get(session, Person, person_id, "No person with id {id}.", "owner_person_id")
    return person_id


def create_unit(
    *,
    session: Session,
    actor: User,
    building_id: int,
    code: str,
    floor: int | None = None,
    is_shop: bool = False,
    owner_person_id: int | None = None,
) -> Unit:
    require(actor, ACCESS_MANAGE)
    building = get_building(session, building_id)
    code = _code(code)
    if find_unit(session, building.property_id, code) is not None:
        raise Conflict("The unit “{ref}” exists already.", field="code", ref=code)
    if floor is not None and not -10 <= floor <= 300:
        raise ValidationFailed("The floor is out of range.", field="floor")
    unit = Unit(
        building_id=building.id,
        code=code,
        floor=floor,
        is_shop=is_shop,
        owner_person_id=_check_person(session, owner_person_id),
    )
    session.add(unit)
    session.flush()
    record(session, actor, "unit.created", unit)
    return unit


def set_unit_owner(
    *, session: Session, actor: User, unit_id: int, owner_person_id: int | None
) -> Unit:
    """Record who owns a unit. Cancelling the former owner's cards is the cards domain's job."""
    require(actor, ACCESS_MANAGE)
    unit: Unit = _get(session, Unit, unit_id, "No unit with id {id}.", "unit_id")
    before = snapshot(unit)
    unit.owner_person_id = _check_person(session, owner_person_id)
    session.flush()
    record(session, actor, "unit.owner_changed", unit, before=before)
    return unit


# --- controllers and doors ------------------------------------------------------------------


def find_controller(session: Session, code: str) -> Controller | None:
    return session.execute(
        select(Controller).where(Controller.code == (code or "").strip())
    ).scalar_one_or_none()


def get_controller(session: Session, code: str) -> Controller:
    controller = find_controller(session, code)
    if controller is None:
        raise NotFound("No door controller “{ref}”.", field="controller", ref=code)
    return controller


def create_controller(
    *, session: Session, actor: User, property_id: int, code: str, name: str, serial: str = ""
) -> Controller:
    require(actor, ACCESS_MANAGE)
    prop = get_property(session, property_id)
    code = _code(code)
    if find_controller(session, code) is not None:
        raise Conflict("The controller code “{ref}” is taken.", field="code", ref=code)
    controller = Controller(
        property_id=prop.id, code=code, name=_name(name), serial=(serial or "").strip()[:64]
    )
    session.add(controller)
    session.flush()
    record(session, actor, "controller.created", controller)
    return controller


def list_controllers(session: Session, property_id: int | None = None) -> list[Controller]:
    stmt = select(Controller).order_by(Controller.code)
    if property_id is not None:
        stmt = stmt.where(Controller.property_id == property_id)
    return list(session.execute(stmt).scalars())


def find_door(session: Session, code: str) -> Door | None:
    return session.execute(
        select(Door).where(Door.code == (code or "").strip())
    ).scalar_one_or_none()


def get_door(session: Session, ref: int | str | Door) -> Door:
    if isinstance(ref, Door):
        return ref
    if isinstance(ref, int):
        door: Door | None = session.get(Door, ref) if _in_range(ref) else None
    else:
        door = find_door(session, ref)
    if door is None:
        raise NotFound("No door “{ref}”.", field="door", ref=ref)
    return door


def list_doors(session: Session, property_id: int | None = None) -> list[Door]:
    stmt = select(Door).order_by(Door.code)
    if property_id is not None:
        stmt = stmt.where(Door.property_id == property_id)
    return list(session.execute(stmt).scalars())


def _door_links(
    session: Session, prop: Property, building_id: int | None, controller_id: int | None
) -> None:
    if building_id is not None:
        building = get_building(session, building_id)
        if building.property_id != prop.id:
            raise ValidationFailed("The building belongs to another property.", field="building_id")
    if controller_id is not None:
        controller: Controller = _get(
            session, Controller, controller_id, "No controller with id {id}.", "controller_id"
        )
        if controller.property_id != prop.id:
            raise ValidationFailed(
                "The controller belongs to another property.", field="controller_id"
            )


def _kind(value: str) -> str:
    try:
        return DoorKind(value).value
    except ValueError:
        raise ValidationFailed("Choose a door kind.", field="kind") from None


def create_door(
    *,
    session: Session,
    actor: User,
    property_id: int,
    code: str,
    name: str,
    kind: str,
    building_id: int | None = None,
    controller_id: int | None = None,
    is_active: bool = True,
) -> Door:
    require(actor, ACCESS_MANAGE)
    prop = get_property(session, property_id)
    code = _code(code)
    if find_door(session, code) is not None:
        raise Conflict("The door code “{ref}” is taken.", field="code", ref=code)
    kind = _kind(kind)
    name = _name(name)
    _door_links(session, prop, building_id, controller_id)
    door = Door(
        property_id=prop.id,
        code=code,
        name=name,
        kind=kind,
        building_id=building_id,
        controller_id=controller_id,
        is_active=is_active,
    )
    session.add(door)
    session.flush()
    record(session, actor, "door.created", door)
    touch_door(session, door_id=door.id, property_id=prop.id, reason="door.created")
    return door


def update_door(
    *,
    session: Session,
    actor: User,
    door_id: int,
    name: str,
    kind: str,
    building_id: int | None,
    controller_id: int | None,
    is_active: bool,
) -> Door:
    require(actor, ACCESS_MANAGE)
    door = get_door(session, door_id)
    prop = get_property(session, door.property_id)
    before = snapshot(door)
    kind = _kind(kind)
    name = _name(name)
    _door_links(session, prop, building_id, controller_id)
    door.name, door.kind, door.is_active = name, kind, is_active
    door.building_id, door.controller_id = building_id, controller_id
    session.flush()
    record(session, actor, "door.updated", door, before=before)
    touch_door(session, door_id=door.id, property_id=prop.id, reason="door.updated")
    return door


# --- access groups --------------------------------------------------------------------------


def find_group(session: Session, property_id: int, code: str) -> AccessGroup | None:
    return session.execute(
        select(AccessGroup).where(AccessGroup.property_id == property_id, AccessGroup.code == code)
    ).scalar_one_or_none()


def get_group(session: Session, ref: int | str | AccessGroup, property_id: int) -> AccessGroup:
    if isinstance(ref, AccessGroup):
        return ref
    group: AccessGroup | None
    if isinstance(ref, int):
        group = session.get(AccessGroup, ref) if _in_range(ref) else None
        if group is not None and group.property_id != property_id:
            group = None
    else:
        group = find_group(session, property_id, ref)
    if group is None:
        raise NotFound("No access group “{ref}” in this property.", field="group", ref=ref)
    return group


def list_groups(session: Session, property_id: int | None = None) -> list[AccessGroup]:
    stmt = select(AccessGroup).order_by(AccessGroup.property_id, AccessGroup.code)
    if property_id is not None:
        stmt = stmt.where(AccessGroup.property_id == property_id)
    return list(session.execute(stmt).scalars())


def _resolve_doors(session: Session, prop: Property, doors: Iterable[int | str]) -> list[Door]:
    found: dict[int, Door] = {}
    for ref in doors:
        door = get_door(session, ref)
        if door.property_id != prop.id:
            raise ValidationFailed(
                "The door {ref} belongs to another property.", field="doors", ref=door.code
            )
        found[door.id] = door
    return list(found.values())


def create_group(
    *,
    session: Session,
    actor: User,
    property_id: int,
    code: str,
    name: str,
    doors: Sequence[int | str] = (),
) -> AccessGroup:
    require(actor, ACCESS_MANAGE)
    prop = get_property(session, property_id)
    code = _code(code)
    if find_group(session, prop.id, code) is not None:
        raise Conflict("The access group “{ref}” exists already.", field="code", ref=code)
    group = AccessGroup(property_id=prop.id, code=code, name=_name(name))
    resolved = _resolve_doors(session, prop, doors)
    group.doors = [AccessGroupDoor(door_id=d.id) for d in resolved]
    session.add(group)
    session.flush()
    record(session, actor, "access_group.created", group, doors=[d.code for d in resolved])
    for door in resolved:
        touch_door(session, door_id=door.id, property_id=prop.id, reason="group.changed")
    return group


def set_group_doors(
    *,
    session: Session,
    actor: User,
    group_id: int,
    doors: Sequence[int | str],
    name: str | None = None,
) -> AccessGroup:
    require(actor, ACCESS_MANAGE)
    group: AccessGroup = _get(
        session, AccessGroup, group_id, "No access group with id {id}.", "group"
    )
    prop = get_property(session, group.property_id)
    before = {"name": group.name, "doors": sorted(link.door_id for link in group.doors)}
    if name is not None:
        group.name = _name(name)
    wanted = {d.id for d in _resolve_doors(session, prop, doors)}
    current = {link.door_id for link in group.doors}
    group.doors = [link for link in group.doors if link.door_id in wanted]
    group.doors.extend(AccessGroupDoor(door_id=i) for i in sorted(wanted - current))
    session.flush()
    record(
        session,
        actor,
        "access_group.updated",
        group,
        before=before,
        after={"name": group.name, "doors": sorted(wanted)},
    )
    for door_id in sorted(wanted ^ current):
        touch_door(session, door_id=door_id, property_id=prop.id, reason="group.changed")
    return group


# --- schedules and holidays -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Period:
    weekday: int  # 0 = Monday … 6 = Sunday, 7 = holiday
    start_minute: int
    end_minute: int


def _check_periods(periods: Iterable[Period | tuple[int, int, int]]) -> list[Period]:
    checked = []
    for item in periods:
        p = item if isinstance(item, Period) else Period(*item)
        if not 0 <= p.weekday <= WEEKDAYS:
            raise ValidationFailed(
                "A weekday is 0 (Monday) to 6 (Sunday), or 7 for holidays.", field="periods"
            )
        if not 0 <= p.start_minute < p.end_minute <= 1440:
            raise ValidationFailed(
                "A period starts before it ends, within 00:00–24:00.", field="periods"
            )
        checked.append(p)
    if len(checked) > 200:
        raise ValidationFailed("A schedule has at most {n} periods.", field="periods", n=200)
    return checked


def parse_hhmm(text: str, *, field: str = "periods") -> int:
    """``"08:30"`` → 510; ``"24:00"`` → 1440."""
    match = re.match(r"^\s*(\d{1,2}):(\d{2})\s*$", text or "")
    if match is None:
        raise ValidationFailed("Enter a time as HH:MM.", field=field)
    hours, minutes = int(match.group(1)), int(match.group(2))
    if minutes > 59 or hours > 24 or (hours == 24 and minutes):
        raise ValidationFailed("Enter a time as HH:MM.", field=field)
    return hours * 60 + minutes


def format_minute(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def find_schedule(session: Session, property_id: int, code: str) -> TimeSchedule | None:
    return session.execute(
        select(TimeSchedule).where(
            TimeSchedule.property_id == property_id, TimeSchedule.code == code
        )
    ).scalar_one_or_none()


def get_schedule(session: Session, ref: int | str | TimeSchedule, property_id: int) -> TimeSchedule:
    if isinstance(ref, TimeSchedule):
        return ref
    schedule: TimeSchedule | None
    if isinstance(ref, int):
        schedule = session.get(TimeSchedule, ref) if _in_range(ref) else None
        if schedule is not None and schedule.property_id != property_id:
            schedule = None
    else:
        schedule = find_schedule(session, property_id, ref)
    if schedule is None:
        raise NotFound("No schedule “{ref}” in this property.", field="schedule", ref=ref)
    return schedule


def list_schedules(session: Session, property_id: int | None = None) -> list[TimeSchedule]:
    stmt = select(TimeSchedule).order_by(TimeSchedule.property_id, TimeSchedule.code)
    if property_id is not None:
        stmt = stmt.where(TimeSchedule.property_id == property_id)
    return list(session.execute(stmt).scalars())


def _holiday_mode(value: str) -> str:
    if value not in HOLIDAY_MODES:
        raise ValidationFailed("Choose what happens on holidays.", field="holiday_mode")
    return value


def create_schedule(
    *,
    session: Session,
    actor: User,
    property_id: int,
    code: str,
    name: str,
    holiday_mode: str = "periods",
    periods: Iterable[Period | tuple[int, int, int]] = (),
) -> TimeSchedule:
    require(actor, ACCESS_MANAGE)
    prop = get_property(session, property_id)
    code = _code(code)
    if find_schedule(session, prop.id, code) is not None:
        raise Conflict("The schedule “{ref}” exists already.", field="code", ref=code)
    schedule = TimeSchedule(
        property_id=prop.id, code=code, name=_name(name), holiday_mode=_holiday_mode(holiday_mode)
    )
    schedule.periods = [
        SchedulePeriod(weekday=p.weekday, start_minute=p.start_minute, end_minute=p.end_minute)
        for p in _check_periods(periods)
    ]
    session.add(schedule)
    session.flush()
    record(session, actor, "schedule.created", schedule, periods=schedule_periods(schedule))
    touch_door(session, door_id=None, property_id=prop.id, reason="schedule.changed")
    return schedule


def schedule_periods(schedule: TimeSchedule) -> list[list[int]]:
    return [[p.weekday, p.start_minute, p.end_minute] for p in schedule.periods]


def update_schedule(
    *,
    session: Session,
    actor: User,
    schedule_id: int,
    name: str,
    holiday_mode: str,
    periods: Iterable[Period | tuple[int, int, int]],
) -> TimeSchedule:
    require(actor, ACCESS_MANAGE)
    schedule: TimeSchedule = _get(
        session, TimeSchedule, schedule_id, "No schedule with id {id}.", "schedule"
    )
    before = {
        "name": schedule.name,
        "holiday_mode": schedule.holiday_mode,
        "periods": schedule_periods(schedule),
    }
    name = _name(name)
    mode = _holiday_mode(holiday_mode)
    checked = _check_periods(periods)
    schedule.name, schedule.holiday_mode = name, mode
    schedule.periods = [
        SchedulePeriod(weekday=p.weekday, start_minute=p.start_minute, end_minute=p.end_minute)
        for p in checked
    ]
    session.flush()
    record(
        session,
        actor,
        "schedule.updated",
        schedule,
        before=before,
        after={"name": name, "holiday_mode": mode, "periods": schedule_periods(schedule)},
    )
    touch_door(session, door_id=None, property_id=schedule.property_id, reason="schedule.changed")
    return schedule


def list_holidays(session: Session, property_id: int) -> list[Holiday]:
    return list(
        session.execute(
            select(Holiday).where(Holiday.property_id == property_id).order_by(Holiday.day)
        ).scalars()
    )


def add_holiday(
    *, session: Session, actor: User, property_id: int, day: date, name: str = ""
) -> Holiday:
    require(actor, ACCESS_MANAGE)
    prop = get_property(session, property_id)
    exists = session.execute(
        select(Holiday).where(Holiday.property_id == prop.id, Holiday.day == day)
    ).scalar_one_or_none()
    if exists is not None:
        raise Conflict("{day} is a holiday already.", field="day", day=day.isoformat())
    holiday = Holiday(property_id=prop.id, day=day, name=(name or "").strip()[:64])
    session.add(holiday)
    session.flush()
    record(session, actor, "holiday.added", holiday)
    touch_door(session, door_id=None, property_id=prop.id, reason="holiday.changed")
    return holiday


def remove_holiday(*, session: Session, actor: User, holiday_id: int) -> None:
    require(actor, ACCESS_MANAGE)
    holiday: Holiday = _get(session, Holiday, holiday_id, "No holiday with id {id}.", "holiday")
    record(session, actor, "holiday.removed", holiday, before=snapshot(holiday), after={})
    touch_door(session, door_id=None, property_id=holiday.property_id, reason="holiday.changed")
    session.delete(holiday)
    session.flush()


# --- grants ---------------------------------------------------------------------------------

GroupRef = int | str | AccessGroup
ScheduleRef = int | str | TimeSchedule | None


def _card_property(card: Card) -> int:
    if card.property_id is None:
        raise ValidationFailed(
            "Card {number} belongs to no property yet.", field="card", number=card.number
        )
    return card.property_id


def grants_of(session: Session, card: Card) -> list[CardGrant]:
    return list(
        session.execute(
            select(CardGrant).where(CardGrant.card_id == card.id).order_by(CardGrant.id)
        ).scalars()
    )


def grant_rows(
    session: Session, card: Card
) -> list[tuple[CardGrant, AccessGroup, TimeSchedule | None]]:
    """A card's grants with their group and schedule, for display."""
    rows = session.execute(
        select(CardGrant, AccessGroup, TimeSchedule)
        .join(AccessGroup, CardGrant.group_id == AccessGroup.id)
        .outerjoin(TimeSchedule, CardGrant.schedule_id == TimeSchedule.id)
        .where(CardGrant.card_id == card.id)
        .order_by(AccessGroup.code)
    )
    return list(rows)


def default_grants_for(
    session: Session, property: Property | int | str, holder_kind: str, unit: Unit | int | None
) -> list[tuple[AccessGroup, TimeSchedule | None]]:
    """The grants a new card of ``holder_kind`` gets (see the module docstring for codes).

    Owners, family, relatives, nannies and tenants: their building's residents' group
    ``B{building}`` (its lobby and unit door) at all times; merchants: the shop's building
    group; renovation workers: ``RENO`` in ``DAYTIME``; staff, cleaners and lift maintainers:
    ``STAFF`` in ``WORKHOURS``.
    """
    prop = get_property(session, property)
    try:
        kind = HolderKind(holder_kind)
    except ValueError:
        raise ValidationFailed(
            "Unknown holder kind “{kind}”.", field="holder_kind", kind=holder_kind
        ) from None

    def group(code: str) -> AccessGroup:
        found = find_group(session, prop.id, code)
        if found is None:
            raise ValidationFailed(
                "The property {ref} has no access group {group}; create it first.",
                field="group",
                ref=prop.code,
                group=code,
            )
        return found

    def schedule(code: str) -> TimeSchedule | None:
        return find_schedule(session, prop.id, code)

    if kind in RESIDENT_KINDS or kind == HolderKind.MERCHANT:
        if unit is None:
            raise ValidationFailed(
                "Choose the unit: the default doors depend on its building.", field="unit_id"
            )
        unit_obj: Unit = (
            unit
            if isinstance(unit, Unit)
            else _get(session, Unit, unit, "No unit with id {id}.", "unit_id")
        )
        building = get_building(session, unit_obj.building_id)
        if building.property_id != prop.id:
            raise ValidationFailed("The unit belongs to another property.", field="unit_id")
        return [(group(f"B{building.code}"), schedule("ALWAYS"))]
    if kind == HolderKind.RENOVATION:
        return [(group("RENO"), schedule("DAYTIME"))]
    return [(group("STAFF"), schedule("WORKHOURS"))]


def _within_defaults(session: Session, card: Card, group: AccessGroup) -> bool:
    if card.holder_kind != HolderKind.TENANT.value:
        return True
    defaults = default_grants_for(session, _card_property(card), card.holder_kind, card.unit_id)
    return any(g.id == group.id for g, _ in defaults)


def _apply_grant(
    session: Session,
    actor: User,
    card: Card,
    group: AccessGroup,
    schedule: TimeSchedule | None,
    **extra: Any,
) -> CardGrant:
    existing = session.execute(
        select(CardGrant).where(CardGrant.card_id == card.id, CardGrant.group_id == group.id)
    ).scalar_one_or_none()
    schedule_id = schedule.id if schedule is not None else None
    if existing is not None:
        if existing.schedule_id == schedule_id:
            return existing
        before = snapshot(existing)
        existing.schedule_id = schedule_id
        existing.granted_at = utcnow()
        existing.granted_by_id = actor.id
        row = existing
        session.flush()
        record(session, actor, "card.grant_changed", row, before=before, card=card.number, **extra)
    else:
        row = CardGrant(
            card_id=card.id,
            group_id=group.id,
            schedule_id=schedule_id,
            granted_at=utcnow(),
            granted_by_id=actor.id,
        )
        session.add(row)
        session.flush()
        record(session, actor, "card.granted", row, card=card.number, group=group.code, **extra)
    touch_card(session, card_id=card.id, property_id=group.property_id, reason="card.granted")
    return row


def grant(
    *,
    session: Session,
    actor: User,
    card: Card,
    group: GroupRef,
    schedule: ScheduleRef = None,
) -> CardGrant:
    """Let ``card`` use the doors of ``group`` within ``schedule`` (None: at any time).

    A tenant's card may only get its default doors here; more doors need an approved
    ``tenant_extra_doors`` request (:func:`request_extra_grant`).
    """
    require(actor, ACCESS_GRANT)
    property_id = _card_property(card)
    group_obj = get_group(session, group, property_id)
    schedule_obj = get_schedule(session, schedule, property_id) if schedule is not None else None
    if not _within_defaults(session, card, group_obj):
        raise ValidationFailed(
            "A tenant's card opens only its own building's doors; more doors need a supervisor's approval (request extra doors).",
            field="group",
        )
    return _apply_grant(session, actor, card, group_obj, schedule_obj)


def revoke_grant(*, session: Session, actor: User, card: Card, group: GroupRef) -> None:
    require(actor, ACCESS_GRANT)
    property_id = _card_property(card)
    group_obj = get_group(session, group, property_id)
    row = session.execute(
        select(CardGrant).where(CardGrant.card_id == card.id, CardGrant.group_id == group_obj.id)
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(
            "Card {number} has no access to the group {group}.",
            field="group",
            number=card.number,
            group=group_obj.code,
        )
    record(
        session,
        actor,
        "card.grant_revoked",
        row,
        before=snapshot(row),
        after={},
        card=card.number,
        group=group_obj.code,
    )
    session.delete(row)
    session.flush()
    touch_card(session, card_id=card.id, property_id=property_id, reason="card.revoked")


def set_grants(
    *,
    session: Session,
    actor: User,
    card: Card,
    grants: Sequence[tuple[GroupRef, ScheduleRef]],
) -> list[CardGrant]:
    """Make the card's grants exactly ``grants`` (group, schedule) pairs."""
    require(actor, ACCESS_GRANT)
    property_id = _card_property(card)
    wanted: dict[int, tuple[AccessGroup, TimeSchedule | None]] = {}
    for group_ref, schedule_ref in grants:
        group_obj = get_group(session, group_ref, property_id)
        schedule_obj = (
            get_schedule(session, schedule_ref, property_id) if schedule_ref is not None else None
        )
        if not _within_defaults(session, card, group_obj):
            raise ValidationFailed(
                "A tenant's card opens only its own building's doors; more doors need a supervisor's approval (request extra doors).",
                field="group",
            )
        wanted[group_obj.id] = (group_obj, schedule_obj)
    for row in grants_of(session, card):
        if row.group_id not in wanted:
            record(
                session,
                actor,
                "card.grant_revoked",
                row,
                before=snapshot(row),
                after={},
                card=card.number,
            )
            session.delete(row)
    session.flush()
    result = [_apply_grant(session, actor, card, g, s) for g, s in wanted.values()]
    touch_card(session, card_id=card.id, property_id=property_id, reason="card.grants_set")
    return result


def request_extra_grant(
    *,
    session: Session,
    actor: User,
    card: Card,
    group: GroupRef,
    schedule: ScheduleRef = None,
    reason: str = "",
) -> ApprovalRequest:
    """Ask a supervisor to let a tenant's card open more doors (``tenant_extra_doors``).

    The grant is applied when the request is approved at its last step.
    """
    require(actor, ACCESS_GRANT)
    property_id = _card_property(card)
    group_obj = get_group(session, group, property_id)
    schedule_obj = get_schedule(session, schedule, property_id) if schedule is not None else None
    if card.holder_kind != HolderKind.TENANT.value:
        raise ValidationFailed(
            "Only tenants' cards need approval for more doors; grant them directly.",
            field="card",
        )
    return approvals.submit(
        session=session,
        actor=actor,
        kind=TENANT_EXTRA_KIND,
        title=f"{card.number}: {group_obj.code}",
        description=(reason or "").strip()[:4000],
        payload={
            "card_id": card.id,
            "group_id": group_obj.id,
            "schedule_id": schedule_obj.id if schedule_obj is not None else None,
        },
        subject=card,
        check_permission=False,
    )


def _on_tenant_extra_decided(*, session: Session, request: ApprovalRequest, actor: User) -> None:
    if request.state != RequestState.APPROVED or request.subject_id is None:
        return
    payload = request.payload or {}
    card = session.get(Card, int(payload.get("card_id") or 0) or -1)
    group = session.get(AccessGroup, int(payload.get("group_id") or 0) or -1)
    if card is None or group is None or card.property_id != group.property_id:
        return
    schedule_id = payload.get("schedule_id")
    schedule = session.get(TimeSchedule, int(schedule_id)) if schedule_id else None
    _apply_grant(session, actor, card, group, schedule, approval=request.number)


approvals.on_decided(TENANT_EXTRA_KIND, _on_tenant_extra_decided)


# --- controllers: credential pull and offline events ----------------------------------------


def safe_version(
    rows: Sequence[tuple[int, datetime]],
    since: int,
    now: datetime,
    settle: timedelta = timedelta(seconds=10),
) -> int:
    """The version up to which the change log is known to be complete.

    Ids are handed out when a row is written but become visible when its transaction commits,
    so a later id can be seen before an earlier one. A gap in ``rows`` (id, at), ordered by id,
    that is followed by a row younger than ``settle`` may still fill in: stop before it.
    Older gaps are rolled-back transactions and never fill in.
    """
    version = since
    for ident, at in rows:
        if ident != version + 1 and now - as_utc(at) < settle:
            return version
        version = ident
    return version


def _controller_doors(session: Session, controller: Controller) -> dict[int, Door]:
    doors = session.execute(select(Door).where(Door.controller_id == controller.id)).scalars()
    return {d.id: d for d in doors}


def _credential(card: Card, doors: list[dict[str, Any]], active: bool) -> dict[str, Any]:
    wiegand = (
        f"{card.wiegand_facility}:{card.wiegand_number}"
        if card.wiegand_facility is not None and card.wiegand_number is not None
        else None
    )
    return {
        "card": card.number,
        "uid": card.uid,
        "wiegand": wiegand,
        "doors": doors if active else [],
        "valid_from": card.valid_from,
        "valid_until": card.valid_until,
        "active": active,
    }


def _credentials_for(
    session: Session,
    controller: Controller,
    doors: dict[int, Door],
    card_ids: Sequence[int] | None,
) -> list[dict[str, Any]]:
    """Credentials of the controller's doors: every active card (``card_ids`` None) or the
    given cards, active or not."""
    from cardops.parking.models import ParkingPermit

    schedules = {s.id: s.code for s in list_schedules(session, controller.property_id)}
    stmt = (
        select(Card, CardGrant.schedule_id, AccessGroupDoor.door_id)
        .join(CardGrant, CardGrant.card_id == Card.id)
        .join(AccessGroupDoor, AccessGroupDoor.group_id == CardGrant.group_id)
        .where(AccessGroupDoor.door_id.in_(list(doors) or [-1]))
        .order_by(Card.id)
    )
    if card_ids is not None:
        stmt = stmt.where(Card.id.in_(list(card_ids) or [-1]))
    else:
        stmt = stmt.where(Card.state == CardState.ACTIVE.value)
    cards: dict[int, Card] = {}
    door_maps: dict[int, dict[str, str | None]] = {}
    for card, schedule_id, door_id in session.execute(stmt):
        cards[card.id] = card
        door_map = door_maps.setdefault(card.id, {})
        door = doors[door_id]
        if door.kind == DoorKind.CARPARK_GATE.value:
            continue  # gates follow parking permits, below
        sched = schedules.get(schedule_id) if schedule_id else None
        # two grants covering one door: "always" wins over a schedule
        if door.code not in door_map or sched is None:
            door_map[door.code] = sched
    parking: dict[int, ParkingPermit] = {}
    gates = [d for d in doors.values() if d.kind == DoorKind.CARPARK_GATE.value]
    if gates:
        pstmt = (
            select(Card, ParkingPermit)
            .join(ParkingPermit, ParkingPermit.card_id == Card.id)
            .where(
                ParkingPermit.state == "active",
                ParkingPermit.property_id == controller.property_id,
                ParkingPermit.valid_until >= local_today(),
            )
            .order_by(ParkingPermit.valid_until)
        )
        if card_ids is not None:
            pstmt = pstmt.where(Card.id.in_(list(card_ids) or [-1]))
        else:
            pstmt = pstmt.where(Card.state == CardState.ACTIVE.value)
        for card, permit in session.execute(pstmt):
            cards[card.id] = card
            parking[card.id] = permit
            door_map = door_maps.setdefault(card.id, {})
            for gate in gates:
                door_map[gate.code] = None
    if card_ids is not None:
        missing = [i for i in card_ids if i not in cards]
        for card in session.execute(select(Card).where(Card.id.in_(missing or [-1]))).scalars():
            cards[card.id] = card
    result = []
    for card_id, card in sorted(cards.items()):
        door_map = door_maps.get(card_id, {})
        door_list = [{"door": code, "schedule": sched} for code, sched in sorted(door_map.items())]
        active = card.state == CardState.ACTIVE.value and bool(door_list)
        item = _credential(card, door_list, active)
        held = parking.get(card_id)
        item["parking"] = (
            {"valid_from": held.valid_from, "valid_until": held.valid_until}
            if held is not None and active
            else None
        )
        result.append(item)
    return result


def local_today() -> date:
    from zoneinfo import ZoneInfo

    return utcnow().astimezone(ZoneInfo(get_settings().timezone)).date()


FULL_AFTER = 50_000  # more changed cards than this since a controller's version: send all


def pull_credentials(
    *, session: Session, actor: User, controller_code: str, since: int = 0
) -> dict[str, Any]:
    """The credential list of a controller's doors: all of it (``since`` 0), or the cards
    changed after version ``since`` (a lost card comes with ``active`` false).

    ``version`` is where the change log is complete (see :func:`safe_version`); pull with
    ``since=version`` next time. Records the controller's last pull.
    """
    require(actor, ACCESS_DECIDE)
    controller = get_controller(session, controller_code)
    doors = _controller_doors(session, controller)
    now = utcnow()
    latest = session.execute(select(func.max(CredentialChange.id))).scalar_one() or 0
    since = max(0, since)
    full = since == 0 or since > latest  # since > latest: the database was restored
    base = max(0, latest - 1000) if full else since
    rows = list(
        session.execute(
            select(
                CredentialChange.id,
                CredentialChange.at,
                CredentialChange.card_id,
                CredentialChange.door_id,
                CredentialChange.property_id,
            )
            .where(CredentialChange.id > base)
            .order_by(CredentialChange.id)
        )
    )
    pairs = [(r[0], r[1]) for r in rows]
    if full:  # nothing to compare before the first row: start from it
        version = safe_version(pairs[1:], pairs[0][0], now) if pairs else latest
    else:
        version = safe_version(pairs, base, now)
    mine = [r for r in rows if r[0] <= version and r[4] == controller.property_id]
    if not full:
        full = any(r[2] is None and (r[3] is None or r[3] in doors) for r in mine)
    changed = sorted({r[2] for r in mine if r[2] is not None})
    if len(changed) > FULL_AFTER:
        full = True
    credentials = _credentials_for(session, controller, doors, None if full else changed)
    controller.last_pulled_version = version
    controller.last_seen_at = now
    session.flush()
    schedules = {
        s.code: {
            "holiday_mode": s.holiday_mode,
            "periods": [
                {
                    "weekday": p.weekday,
                    "start": format_minute(p.start_minute),
                    "end": format_minute(p.end_minute),
                }
                for p in s.periods
            ],
        }
        for s in list_schedules(session, controller.property_id)
    }
    return {
        "controller": controller.code,
        "version": version,
        "full": full,
        "doors": sorted(d.code for d in doors.values()),
        "credentials": credentials,
        "removed": [c["card"] for c in credentials if not c["active"]],
        "schedules": schedules,
        "holidays": [h.day for h in list_holidays(session, controller.property_id)],
    }


@dataclass(slots=True)
class OfflineEvent:
    external_id: str
    at: datetime
    card: str
    door: str
    allowed: bool
    reason: str


@dataclass(slots=True)
class UploadResult:
    accepted: int
    duplicates: int


def upload_events(
    *, session: Session, actor: User, controller_code: str, events: Sequence[OfflineEvent]
) -> UploadResult:
    """Store the decisions a controller made offline; an event sent twice is stored once."""
    require(actor, ACCESS_DECIDE)
    from cardops.access.engine import get_engine

    controller = get_controller(session, controller_code)
    if len(events) > MAX_UPLOAD:
        raise ValidationFailed("At most {n} events per upload.", field="events", n=MAX_UPLOAD)
    reasons = {r.value for r in Reason}
    ids = [e.external_id for e in events]
    seen = set(
        session.execute(
            select(AccessEvent.external_id).where(
                AccessEvent.controller_id == controller.id, AccessEvent.external_id.in_(ids)
            )
        ).scalars()
    )
    doors = {d.code: d for d in list_doors(session, controller.property_id)}
    engine = get_engine()
    accepted = duplicates = 0
    for event in events:
        if event.external_id in seen:
            duplicates += 1
            continue
        seen.add(event.external_id)
        if event.reason not in reasons:
            raise ValidationFailed(
                "Unknown reason code “{reason}”.", field="events", reason=event.reason
            )
        door = doors.get(event.door)
        session.add(
            AccessEvent(
                at=as_utc(event.at) if event.at.tzinfo else event.at.replace(tzinfo=UTC),
                presented=event.card[:64],
                card_id=engine.card_id_of(event.card),
                door_code=event.door[:32],
                door_id=door.id if door is not None else None,
                allowed=event.allowed,
                reason=event.reason,
                source="offline",
                controller_id=controller.id,
                external_id=event.external_id,
            )
        )
        accepted += 1
    controller.last_seen_at = utcnow()
    session.flush()
    return UploadResult(accepted=accepted, duplicates=duplicates)


# --- the access log -------------------------------------------------------------------------


def search_events(
    *,
    session: Session,
    actor: User,
    card: str = "",
    door: str = "",
    day_from: date | None = None,
    day_to: date | None = None,
    allowed: bool | None = None,
    card_id: int | None = None,
    door_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[AccessEvent]:
    require(actor, ACCESS_LOG)
    stmt = select(AccessEvent).order_by(AccessEvent.at.desc(), AccessEvent.id.desc())
    if card:
        stmt = stmt.outerjoin(Card, AccessEvent.card_id == Card.id).where(
            or_(
                AccessEvent.presented == card.strip(),
                Card.number == card.strip(),
                Card.uid == card.strip().upper(),
            )
        )
    if door:
        stmt = stmt.where(AccessEvent.door_code == door.strip())
    if card_id is not None:
        stmt = stmt.where(AccessEvent.card_id == card_id)
    if door_id is not None:
        stmt = stmt.where(AccessEvent.door_id == door_id)
    if day_from is not None:
        stmt = stmt.where(AccessEvent.at >= _local_midnight(day_from))
    if day_to is not None:
        stmt = stmt.where(AccessEvent.at < _local_midnight(day_to + timedelta(days=1)))
    if allowed is not None:
        stmt = stmt.where(AccessEvent.allowed.is_(allowed))
    limit = max(1, min(limit, 1000))
    offset = max(0, min(offset, 10_000_000))
    return list(session.execute(stmt.limit(limit).offset(offset)).scalars())


def _local_midnight(day: date) -> datetime:
    from zoneinfo import ZoneInfo

    return datetime(
        day.year, day.month, day.day, tzinfo=ZoneInfo(get_settings().timezone)
    ).astimezone(UTC)


# --- door codes -----------------------------------------------------------------------------


def _fernet() -> Fernet:
    secret = get_settings().effective_secret_key().encode()
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"cardops-door-codes", info=b"door-code v1"
    ).derive(secret)
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt_code(code: str) -> str:
    return _fernet().encrypt(code.encode()).decode()


def decrypt_code(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise Conflict(
            "This door code cannot be decrypted with the current secret key.", field="door_code"
        ) from None


def quarter_start_of(day: date) -> date:
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def next_quarter_start(day: date) -> date:
    start = quarter_start_of(day)
    return date(start.year + 1, 1, 1) if start.month == 10 else date(start.year, start.month + 3, 1)


def quarter_end(start: date) -> date:
    return next_quarter_start(start) - timedelta(days=1)


@dataclass(slots=True)
class RotationResult:
    quarter_start: date
    created: list[DoorCode]
    notified: int


def _residents_of(session: Session, building_id: int) -> list[Person]:
    today = local_today()
    stmt = (
        select(Person)
        .join(Card, Card.person_id == Person.id)
        .join(Unit, Card.unit_id == Unit.id)
        .where(
            Unit.building_id == building_id,
            Card.state == CardState.ACTIVE.value,
            Card.holder_kind.in_([k.value for k in RESIDENT_KINDS]),
            or_(Card.valid_until.is_(None), Card.valid_until >= today),
        )
        .distinct()
        .order_by(Person.id)
    )
    return list(session.execute(stmt).scalars())


def rotate_door_codes(
    *, session: Session, actor: User, quarter_start: date, property_id: int | None = None
) -> RotationResult:
    """Give every active lobby and unit door a new random 6-digit code for the quarter that
    starts on ``quarter_start``, and queue an e-mail and/or SMS with the codes of their
    building to every resident with a current card, to go out one week before the quarter.
    Doors that have a code for that quarter already keep it; running it twice is harmless.
    """
    require(actor, DOOR_CODES_ROTATE)
    from cardops.notify.service import enqueue

    if quarter_start != quarter_start_of(quarter_start):
        raise ValidationFailed(
            "A quarter starts on 1 January, April, July or October.", field="quarter_start"
        )
    until = quarter_end(quarter_start)
    stmt = select(Door).where(Door.kind.in_(CODE_DOOR_KINDS), Door.is_active.is_(True))
    if property_id is not None:
        stmt = stmt.where(Door.property_id == property_id)
    doors = list(session.execute(stmt.order_by(Door.code)).scalars())
    have = {
        row.door_id: row
        for row in session.execute(
            select(DoorCode).where(DoorCode.valid_from == quarter_start)
        ).scalars()
    }
    created = []
    by_building: dict[int, list[tuple[Door, DoorCode]]] = {}
    for door in doors:
        row = have.get(door.id)
        if row is None:
            row = DoorCode(
                door_id=door.id,
                code_encrypted=encrypt_code(f"{secrets.randbelow(1_000_000):06d}"),
                valid_from=quarter_start,
                valid_until=until,
                created_at=utcnow(),
            )
            session.add(row)
            session.flush()
            created.append(row)
            record(
                session,
                actor,
                "door_code.created",
                row,
                after={"door": door.code, "valid_from": quarter_start, "valid_until": until},
            )
        if door.building_id is not None:
            by_building.setdefault(door.building_id, []).append((door, row))
    send_after = _local_midnight(quarter_start - timedelta(days=7))
    notified = 0
    for building_id, pairs in by_building.items():
        building = get_building(session, building_id)
        lines = [
            f"{door.name} ({door.code}): {decrypt_code(row.code_encrypted)}" for door, row in pairs
        ]
        body = (
            f"New door codes for building {building.name}, valid "
            f"{quarter_start.isoformat()} – {until.isoformat()}:\n"
            + "\n".join(lines)
            + "\nDo not share or post these codes. 请勿外传或张贴门禁密码。"
        )
        subject = f"门禁密码 Door codes {quarter_start.isoformat()}"
        for person in _residents_of(session, building_id):
            for channel, recipient in (("email", person.email), ("sms", person.mobile)):
                if not recipient:
                    continue
                enqueue(
                    session,
                    channel=channel,
                    recipient=recipient,
                    subject=subject,
                    body=body,
                    actor=actor,
                    ref=f"building:{building_id}",
                    dedupe_key=f"doorcode:{quarter_start}:{building_id}:{person.id}:{channel}",
                    send_after=send_after,
                )
                notified += 1
        for _door, row in pairs:
            if row.notified_at is None:
                row.notified_at = utcnow()
    session.flush()
    return RotationResult(quarter_start=quarter_start, created=created, notified=notified)


def codes_due(session: Session, today: date, lead_days: int = 14) -> date | None:
    """The next quarter's start when its codes should be made now (within ``lead_days``) and
    some lobby or unit door has none yet; else None."""
    start = next_quarter_start(today)
    if (start - today).days > lead_days:
        return None
    doors = session.execute(
        select(func.count())
        .select_from(Door)
        .where(Door.kind.in_(CODE_DOOR_KINDS), Door.is_active.is_(True))
    ).scalar_one()
    coded = session.execute(
        select(func.count())
        .select_from(DoorCode)
        .join(Door, DoorCode.door_id == Door.id)
        .where(
            DoorCode.valid_from == start, Door.kind.in_(CODE_DOOR_KINDS), Door.is_active.is_(True)
        )
    ).scalar_one()
    return start if coded < doors else None


@dataclass(slots=True)
class DoorCodeRow:
    id: int
    door: Door
    valid_from: date
    valid_until: date
    created_at: datetime
    notified_at: datetime | None
    current: bool


def list_door_codes(*, session: Session, actor: User, limit: int = 500) -> list[DoorCodeRow]:
    """Door codes with their validity — never the code itself."""
    require(actor, DOOR_CODES_VIEW)
    today = local_today()
    rows = session.execute(
        select(DoorCode, Door)
        .join(Door, DoorCode.door_id == Door.id)
        .order_by(DoorCode.valid_from.desc(), Door.code)
        .limit(max(1, min(limit, 5000)))
    )
    return [
        DoorCodeRow(
            id=code.id,
            door=door,
            valid_from=code.valid_from,
            valid_until=code.valid_until,
            created_at=code.created_at,
            notified_at=code.notified_at,
            current=code.valid_from <= today <= code.valid_until,
        )
        for code, door in rows
    ]


def reveal_door_code(*, session: Session, actor: User, door_code_id: int, why: str = "") -> str:
    """Show one door code to a permitted user; the audit log records who saw it."""
    require(actor, DOOR_CODES_REVEAL)
    row: DoorCode = _get(session, DoorCode, door_code_id, "No door code with id {id}.", "door_code")
    door = get_door(session, row.door_id)
    code = decrypt_code(row.code_encrypted)
    record(
        session,
        actor,
        "door_code.revealed",
        row,
        after={"door": door.code, "valid_from": row.valid_from, "valid_until": row.valid_until},
        why=(why or "").strip()[:200],
    )
    return code
