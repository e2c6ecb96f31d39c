"""Console pages of access control: properties, doors and controllers, access groups,
schedules and holidays, card grants, the access log and door codes."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from cardops.access import service
from cardops.access.models import AccessGroup, DoorKind, Property, TimeSchedule, Unit
from cardops.access.permissions import (
    ACCESS_GRANT,
    ACCESS_LOG,
    ACCESS_MANAGE,
    ACCESS_VIEW,
    DOOR_CODES_REVEAL,
    DOOR_CODES_ROTATE,
    DOOR_CODES_VIEW,
)
from cardops.auth.service import require
from cardops.cards.models import Card
from cardops.core.errors import CardopsError, NotFound, ValidationFailed
from cardops.core.i18n import N_
from cardops.parties.models import Person
from cardops.web.deps import Console, ConsoleForm, ConsolePage, RecordId, form_error_context
from cardops.web.nav import NavItem

router = APIRouter()
SECTION = N_("Access control")
NAV = [
    NavItem(N_("Properties"), "/access/properties", ACCESS_VIEW, section=SECTION, order=300),
    NavItem(N_("Doors & controllers"), "/access/doors", ACCESS_VIEW, section=SECTION, order=301),
    NavItem(N_("Access groups"), "/access/groups", ACCESS_VIEW, section=SECTION, order=302),
    NavItem(N_("Schedules"), "/access/schedules", ACCESS_VIEW, section=SECTION, order=303),
    NavItem(N_("Access log"), "/access/log", ACCESS_LOG, section=SECTION, order=304),
    NavItem(N_("Door codes"), "/access/door-codes", DOOR_CODES_VIEW, section=SECTION, order=305),
]
PAGE = 50
KIND_LABELS = {
    DoorKind.LOBBY.value: N_("Lobby"),
    DoorKind.UNIT_DOOR.value: N_("Unit door"),
    DoorKind.CARPARK_GATE.value: N_("Car-park gate"),
    DoorKind.RENOVATION.value: N_("Renovation entrance"),
    DoorKind.OTHER.value: N_("Other"),
}
HOLIDAY_LABELS = {
    "periods": N_("Holiday periods apply"),
    "deny": N_("Closed on holidays"),
    "weekday": N_("Holidays are ordinary days"),
}
WEEKDAY_LABELS = [
    N_("Mon"),
    N_("Tue"),
    N_("Wed"),
    N_("Thu"),
    N_("Fri"),
    N_("Sat"),
    N_("Sun"),
    N_("Holiday"),
]
REASON_LABELS = {
    "ok": N_("Allowed"),
    "unknown_card": N_("Unknown card"),
    "unknown_door": N_("Unknown door"),
    "door_disabled": N_("Door disabled"),
    "not_issued": N_("Card not issued"),
    "lost": N_("Card reported lost"),
    "cancelled": N_("Card cancelled"),
    "returned": N_("Card returned"),
    "replaced": N_("Card replaced"),
    "expired": N_("Card expired"),
    "not_yet_valid": N_("Card not yet valid"),
    "door_not_in_group": N_("Door not in the card's groups"),
    "outside_schedule": N_("Outside the schedule"),
    "no_parking": N_("No parking permit"),
    "parking_expired": N_("Parking permit expired"),
}


def _text(form: dict[str, Any], name: str) -> str:
    value = form.get(name)
    if isinstance(value, list):
        value = value[0] if value else ""
    return str(value or "").strip()


def _list(form: dict[str, Any], name: str) -> list[str]:
    value = form.get(name)
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _int(form: dict[str, Any], name: str, *, required: bool = False) -> int | None:
    text = _text(form, name)
    if not text:
        if required:
            raise ValidationFailed("This field is required.", field=name)
        return None
    try:
        value = int(text)
    except ValueError:
        raise ValidationFailed("Enter a whole number.", field=name) from None
    if not 1 <= value <= 2_147_483_647:
        raise ValidationFailed("The number is out of range.", field=name)
    return value


def _day(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def _door_options(console: Console, prop: Property | None) -> dict[str, Any]:
    from cardops.core.i18n import gettext

    controllers = service.list_controllers(console.db, prop.id) if prop else []
    return {
        "kind_options": [(k, gettext(v)) for k, v in KIND_LABELS.items()],
        "building_options": [(b.id, b.name) for b in prop.buildings] if prop else [],
        "controller_options": [(c.id, c.code) for c in controllers],
    }


def _common() -> dict[str, Any]:
    return {
        "kind_labels": KIND_LABELS,
        "holiday_labels": HOLIDAY_LABELS,
        "weekday_labels": WEEKDAY_LABELS,
        "reason_labels": REASON_LABELS,
        "fmt_minute": service.format_minute,
    }


def _property(console: Console, code: str = "") -> Property | None:
    if code:
        return service.find_property(console.db, code[:32])
    props = service.list_properties(console.db)
    return props[0] if props else None


def _properties(console: Console) -> list[Property]:
    return service.list_properties(console.db)


# --- properties -----------------------------------------------------------------------------


@router.get("/access/properties", response_class=HTMLResponse)
def properties(console: ConsolePage) -> HTMLResponse:
    require(console.user, ACCESS_VIEW)
    return _properties_page(console)


def _properties_page(
    console: Console, *, status_code: int = 200, form: dict[str, Any] | None = None, **extra: Any
) -> HTMLResponse:
    return console.render(
        "access/properties.html",
        status_code=status_code,
        properties=_properties(console),
        form=form or {},
        **_common(),
        **extra,
    )


@router.post("/access/properties", response_class=HTMLResponse)
def create_property(console: ConsoleForm) -> Response:
    require(console.user, ACCESS_MANAGE)
    form = console.form
    try:
        prop = service.create_property(
            session=console.db,
            actor=console.user,
            code=_text(form, "code"),
            name=_text(form, "name"),
            address=_text(form, "address"),
        )
    except CardopsError as exc:
        console.db.rollback()
        return _properties_page(
            console, status_code=exc.status, form=form, **form_error_context(exc)
        )
    console.flash("Saved.")
    console.db.commit()
    return console.redirect(f"/access/properties/{prop.id}")


def _property_page(
    console: Console,
    property_id: int,
    *,
    status_code: int = 200,
    form: dict[str, Any] | None = None,
    **extra: Any,
) -> HTMLResponse:
    prop = service.get_property(console.db, property_id)
    owners = {
        p.id: p
        for p in console.db.execute(
            select(Person)
            .join(Unit, Unit.owner_person_id == Person.id)
            .where(Unit.building_id.in_([b.id for b in prop.buildings] or [-1]))
        ).scalars()
    }
    doors = service.list_doors(console.db, prop.id)
    return console.render(
        "access/property.html",
        status_code=status_code,
        prop=prop,
        owners=owners,
        doors=doors,
        form=form or {},
        **_common(),
        **extra,
    )


@router.get("/access/properties/{property_id}", response_class=HTMLResponse)
def property_detail(console: ConsolePage, property_id: RecordId) -> HTMLResponse:
    require(console.user, ACCESS_VIEW)
    return _property_page(console, property_id)


@router.post("/access/properties/{property_id}/buildings", response_class=HTMLResponse)
def create_building(console: ConsoleForm, property_id: RecordId) -> Response:
    require(console.user, ACCESS_MANAGE)
    form = console.form
    try:
        service.create_building(
            session=console.db,
            actor=console.user,
            property_id=property_id,
            code=_text(form, "building_code"),
            name=_text(form, "building_name"),
        )
    except CardopsError as exc:
        console.db.rollback()
        return _property_page(
            console, property_id, status_code=exc.status, form=form, **_renamed(exc, "building_")
        )
    console.flash("Saved.")
    console.db.commit()
    return console.redirect(f"/access/properties/{property_id}")


def _renamed(exc: CardopsError, prefix: str) -> dict[str, Any]:
    """Errors of a form whose fields carry a prefix (several forms on one page)."""
    context = form_error_context(exc)
    context["field_errors"] = {
        (k if k.startswith(prefix) else prefix + k): v for k, v in context["field_errors"].items()
    }
    return context


@router.post("/access/properties/{property_id}/units", response_class=HTMLResponse)
def create_unit(console: ConsoleForm, property_id: RecordId) -> Response:
    require(console.user, ACCESS_MANAGE)
    form = console.form
    try:
        building_id = _int(form, "unit_building", required=True)
        assert building_id is not None
        building = service.get_building(console.db, building_id)
        if building.property_id != property_id:
            raise ValidationFailed("Choose a building of this property.", field="unit_building")
        floor_text = _text(form, "unit_floor")
        try:
            floor = int(floor_text) if floor_text else None
        except ValueError:
            raise ValidationFailed("Enter a whole number.", field="unit_floor") from None
        service.create_unit(
            session=console.db,
            actor=console.user,
            building_id=building.id,
            code=_text(form, "unit_code"),
            floor=floor,
            is_shop=_text(form, "unit_is_shop") == "1",
            owner_person_id=_int(form, "unit_owner_person_id"),
        )
    except CardopsError as exc:
        console.db.rollback()
        return _property_page(
            console, property_id, status_code=exc.status, form=form, **_renamed(exc, "unit_")
        )
    console.flash("Saved.")
    console.db.commit()
    return console.redirect(f"/access/properties/{property_id}")


@router.post("/access/units/{unit_id}/owner", response_class=HTMLResponse)
def set_owner(console: ConsoleForm, unit_id: RecordId) -> Response:
    require(console.user, ACCESS_MANAGE)
    unit = console.db.get(Unit, unit_id)
    if unit is None:
        raise NotFound("No unit with id {id}.", id=unit_id)
    property_id = service.get_building(console.db, unit.building_id).property_id
    form = console.form
    try:
        service.set_unit_owner(
            session=console.db,
            actor=console.user,
            unit_id=unit_id,
            owner_person_id=_int(form, "owner_person_id"),
        )
    except CardopsError as exc:
        console.db.rollback()
        return _property_page(
            console,
            property_id,
            status_code=exc.status,
            form={**form, "owner_unit": unit_id},
            **form_error_context(exc),
        )
    console.flash("Saved.")
    console.db.commit()
    return console.redirect(f"/access/properties/{property_id}")


# --- doors and controllers ------------------------------------------------------------------


def _doors_page(
    console: Console,
    prop: Property | None,
    *,
    status_code: int = 200,
    form: dict[str, Any] | None = None,
    **extra: Any,
) -> HTMLResponse:
    doors = service.list_doors(console.db, prop.id) if prop else []
    controllers = service.list_controllers(console.db, prop.id) if prop else []
    return console.render(
        "access/doors.html",
        status_code=status_code,
        prop=prop,
        properties=_properties(console),
        doors=doors,
        controllers=controllers,
        buildings={b.id: b for b in prop.buildings} if prop else {},
        controller_names={c.id: c for c in controllers},
        form=form or {},
        **_door_options(console, prop),
        **_common(),
        **extra,
    )


@router.get("/access/doors", response_class=HTMLResponse)
def doors(console: ConsolePage, property: str = "") -> HTMLResponse:
    require(console.user, ACCESS_VIEW)
    return _doors_page(console, _property(console, property))


def _door_fields(form: dict[str, Any]) -> dict[str, Any]:
    building_id = _int(form, "building_id")
    controller_id = _int(form, "controller_id")
    return {
        "name": _text(form, "name"),
        "kind": _text(form, "kind"),
        "building_id": building_id,
        "controller_id": controller_id,
        "is_active": _text(form, "is_active") in ("1", "on", "true"),
    }


@router.post("/access/doors", response_class=HTMLResponse)
def create_door(console: ConsoleForm) -> Response:
    require(console.user, ACCESS_MANAGE)
    form = console.form
    prop = _property(console, _text(form, "property"))
    try:
        if prop is None:
            raise ValidationFailed("Create a property first.", field="property")
        fields = _door_fields(form)
        service.create_door(
            session=console.db,
            actor=console.user,
            property_id=prop.id,
            code=_text(form, "code"),
            **fields,
        )
    except CardopsError as exc:
        console.db.rollback()
        return _doors_page(
            console, prop, status_code=exc.status, form=form, **form_error_context(exc)
        )
    console.flash("Saved.")
    console.db.commit()
    return console.redirect(f"/access/doors?property={prop.code}")


@router.post("/access/controllers", response_class=HTMLResponse)
def create_controller(console: ConsoleForm) -> Response:
    require(console.user, ACCESS_MANAGE)
    form = console.form
    prop = _property(console, _text(form, "property"))
    try:
        if prop is None:
            raise ValidationFailed("Create a property first.", field="property")
        service.create_controller(
            session=console.db,
            actor=console.user,
            property_id=prop.id,
            code=_text(form, "ctrl_code"),
            name=_text(form, "ctrl_name"),
            serial=_text(form, "ctrl_serial"),
        )
    except CardopsError as exc:
        console.db.rollback()
        return _doors_page(
            console, prop, status_code=exc.status, form=form, **_renamed(exc, "ctrl_")
        )
    console.flash("Saved.")
    console.db.commit()
    return console.redirect(f"/access/doors?property={prop.code}")


def _door_page(
    console: Console,
    door_id: int,
    *,
    status_code: int = 200,
    form: dict[str, Any] | None = None,
    **extra: Any,
) -> HTMLResponse:
    door = service.get_door(console.db, door_id)
    prop = service.get_property(console.db, door.property_id)
    events = (
        service.search_events(session=console.db, actor=console.user, door_id=door.id, limit=20)
        if console.can(ACCESS_LOG)
        else []
    )
    return console.render(
        "access/door.html",
        status_code=status_code,
        door=door,
        prop=prop,
        controllers=service.list_controllers(console.db, prop.id),
        events=events,
        **_door_options(console, prop),
        form=form
        or {
            "name": door.name,
            "kind": door.kind,
            "building_id": door.building_id or "",
            "controller_id": door.controller_id or "",
            "is_active": "1" if door.is_active else "",
        },
        **_common(),
        **extra,
    )


@router.get("/access/doors/{door_id}", response_class=HTMLResponse)
def door_detail(console: ConsolePage, door_id: RecordId) -> HTMLResponse:
    require(console.user, ACCESS_VIEW)
    return _door_page(console, door_id)


@router.post("/access/doors/{door_id}", response_class=HTMLResponse)
def update_door(console: ConsoleForm, door_id: RecordId) -> Response:
    require(console.user, ACCESS_MANAGE)
    form = console.form
    door = service.get_door(console.db, door_id)
    try:
        service.update_door(
            session=console.db, actor=console.user, door_id=door.id, **_door_fields(form)
        )
    except CardopsError as exc:
        console.db.rollback()
        return _door_page(
            console, door_id, status_code=exc.status, form=form, **form_error_context(exc)
        )
    console.flash("Saved.")
    console.db.commit()
    return console.redirect(f"/access/doors/{door_id}")


# --- access groups --------------------------------------------------------------------------


def _groups_page(
    console: Console,
    prop: Property | None,
    *,
    status_code: int = 200,
    form: dict[str, Any] | None = None,
    **extra: Any,
) -> HTMLResponse:
    groups = service.list_groups(console.db, prop.id) if prop else []
    doors = service.list_doors(console.db, prop.id) if prop else []
    return console.render(
        "access/groups.html",
        status_code=status_code,
        prop=prop,
        properties=_properties(console),
        groups=groups,
        doors=doors,
        door_codes={d.id: d.code for d in doors},
        form=form or {},
        **_common(),
        **extra,
    )


@router.get("/access/groups", response_class=HTMLResponse)
def groups(console: ConsolePage, property: str = "") -> HTMLResponse:
    require(console.user, ACCESS_VIEW)
    return _groups_page(console, _property(console, property))


@router.post("/access/groups", response_class=HTMLResponse)
def create_group(console: ConsoleForm) -> Response:
    require(console.user, ACCESS_MANAGE)
    form = console.form
    prop = _property(console, _text(form, "property"))
    try:
        if prop is None:
            raise ValidationFailed("Create a property first.", field="property")
        service.create_group(
            session=console.db,
            actor=console.user,
            property_id=prop.id,
            code=_text(form, "code"),
            name=_text(form, "name"),
            doors=[int(d) for d in _list(form, "doors") if d.isdigit()],
        )
    except CardopsError as exc:
        console.db.rollback()
        return _groups_page(
            console, prop, status_code=exc.status, form=form, **form_error_context(exc)
        )
    console.flash("Saved.")
    console.db.commit()
    return console.redirect(f"/access/groups?property={prop.code}")


@router.post("/access/groups/{group_id}", response_class=HTMLResponse)
def update_group(console: ConsoleForm, group_id: RecordId) -> Response:
    require(console.user, ACCESS_MANAGE)
    group = console.db.get(AccessGroup, group_id)
    if group is None:
        raise NotFound("No access group with id {id}.", id=group_id)
    prop = service.get_property(console.db, group.property_id)
    form = console.form
    try:
        service.set_group_doors(
            session=console.db,
            actor=console.user,
            group_id=group.id,
            name=_text(form, f"name_{group.id}"),
            doors=[int(d) for d in _list(form, f"doors_{group.id}") if d.isdigit()],
        )
    except CardopsError as exc:
        console.db.rollback()
        return _groups_page(
            console,
            prop,
            status_code=exc.status,
            form=form,
            editing=group.id,
            **_renamed(exc, f"g{group.id}_"),
        )
    console.flash("Saved.")
    console.db.commit()
    return console.redirect(f"/access/groups?property={prop.code}")


# --- schedules and holidays -----------------------------------------------------------------


def parse_periods(text: str) -> list[service.Period]:
    """One period per line: ``<weekdays> HH:MM-HH:MM``; weekdays are 0–7 or ranges like 0-4,
    e.g. ``0-5 08:00-18:00`` (Monday to Saturday) or ``7 10:00-12:00`` (holidays)."""
    periods: list[service.Period] = []
    for raw in (text or "").splitlines():
        line = raw.strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2 or "-" not in parts[1]:
            raise ValidationFailed(
                "Write one period per line as “weekdays HH:MM-HH:MM”, e.g. “0-4 08:00-18:00”.",
                field="periods",
            )
        start_text, _, end_text = parts[1].partition("-")
        start = service.parse_hhmm(start_text)
        end = service.parse_hhmm(end_text)
        days: list[int] = []
        for chunk in parts[0].split(","):
            first, _, last = chunk.partition("-")
            if not first.isdigit() or (last and not last.isdigit()):
                raise ValidationFailed(
                    "Write one period per line as “weekdays HH:MM-HH:MM”, e.g. “0-4 08:00-18:00”.",
                    field="periods",
                )
            low, high = int(first), int(last or first)
            if high < low or high > 7:
                raise ValidationFailed(
                    "A weekday is 0 (Monday) to 6 (Sunday), or 7 for holidays.", field="periods"
                )
            days.extend(range(low, high + 1))
        periods.extend(service.Period(d, start, end) for d in days)
    return periods


def periods_text(schedule: TimeSchedule) -> str:
    return "\n".join(
        f"{p.weekday} {service.format_minute(p.start_minute)}-{service.format_minute(p.end_minute)}"
        for p in schedule.periods
    )


def _schedules_page(
    console: Console,
    prop: Property | None,
    *,
    status_code: int = 200,
    form: dict[str, Any] | None = None,
    **extra: Any,
) -> HTMLResponse:
    return console.render(
        "access/schedules.html",
        status_code=status_code,
        prop=prop,
        properties=_properties(console),
        schedules=service.list_schedules(console.db, prop.id) if prop else [],
        holidays=service.list_holidays(console.db, prop.id) if prop else [],
        periods_text=periods_text,
        form=form or {},
        **_common(),
        **extra,
    )


@router.get("/access/schedules", response_class=HTMLResponse)
def schedules(console: ConsolePage, property: str = "") -> HTMLResponse:
    require(console.user, ACCESS_VIEW)
    return _schedules_page(console, _property(console, property))


@router.post("/access/schedules", response_class=HTMLResponse)
def save_schedule(console: ConsoleForm) -> Response:
    """Create a schedule, or replace one's name, holiday rule and periods (``schedule_id``)."""
    require(console.user, ACCESS_MANAGE)
    form = console.form
    prop = _property(console, _text(form, "property"))
    try:
        if prop is None:
            raise ValidationFailed("Create a property first.", field="property")
        periods = parse_periods(_text(form, "periods"))
        schedule_id = _int(form, "schedule_id")
        if schedule_id:
            service.update_schedule(
                session=console.db,
                actor=console.user,
                schedule_id=schedule_id,
                name=_text(form, "name"),
                holiday_mode=_text(form, "holiday_mode"),
                periods=periods,
            )
        else:
            service.create_schedule(
                session=console.db,
                actor=console.user,
                property_id=prop.id,
                code=_text(form, "code"),
                name=_text(form, "name"),
                holiday_mode=_text(form, "holiday_mode"),
                periods=periods,
            )
    except CardopsError as exc:
        console.db.rollback()
        return _schedules_page(
            console, prop, status_code=exc.status, form=form, **form_error_context(exc)
        )
    console.flash("Saved.")
    console.db.commit()
    return console.redirect(f"/access/schedules?property={prop.code}")


@router.post("/access/holidays", response_class=HTMLResponse)
def add_holiday(console: ConsoleForm) -> Response:
    require(console.user, ACCESS_MANAGE)
    form = console.form
    prop = _property(console, _text(form, "property"))
    try:
        if prop is None:
            raise ValidationFailed("Create a property first.", field="property")
        day = _day(_text(form, "holiday_day"))
        if day is None:
            raise ValidationFailed("Enter a valid date.", field="holiday_day")
        service.add_holiday(
            session=console.db,
            actor=console.user,
            property_id=prop.id,
            day=day,
            name=_text(form, "holiday_name"),
        )
    except CardopsError as exc:
        console.db.rollback()
        return _schedules_page(
            console, prop, status_code=exc.status, form=form, **_renamed(exc, "holiday_")
        )
    console.flash("Saved.")
    console.db.commit()
    return console.redirect(f"/access/schedules?property={prop.code}")


@router.post("/access/holidays/{holiday_id}/delete", response_class=HTMLResponse)
def remove_holiday(console: ConsoleForm, holiday_id: RecordId) -> Response:
    require(console.user, ACCESS_MANAGE)
    service.remove_holiday(session=console.db, actor=console.user, holiday_id=holiday_id)
    console.flash("Saved.")
    console.db.commit()
    return console.redirect("/access/schedules")


# --- card grants ----------------------------------------------------------------------------


def _card(console: Console, number: str) -> Card:
    card = console.db.execute(select(Card).where(Card.number == number[:32])).scalar_one_or_none()
    if card is None:
        raise NotFound("No card {number}.", field="card", number=number)
    return card


def _grants_page(
    console: Console,
    card: Card,
    *,
    status_code: int = 200,
    form: dict[str, Any] | None = None,
    **extra: Any,
) -> HTMLResponse:
    prop_id = card.property_id
    return console.render(
        "access/grants.html",
        status_code=status_code,
        card=card,
        rows=service.grant_rows(console.db, card),
        groups=service.list_groups(console.db, prop_id) if prop_id else [],
        schedules=service.list_schedules(console.db, prop_id) if prop_id else [],
        form=form or {},
        **_common(),
        **extra,
    )


@router.get("/access/cards/{number}/grants", response_class=HTMLResponse)
def card_grants(console: ConsolePage, number: str) -> HTMLResponse:
    require(console.user, ACCESS_VIEW)
    return _grants_page(console, _card(console, number))


@router.post("/access/cards/{number}/grants", response_class=HTMLResponse)
def change_grants(console: ConsoleForm, number: str) -> Response:
    """Grant a group (``action=grant``), revoke one (``revoke``), or ask for a tenant's extra
    doors (``request``)."""
    require(console.user, ACCESS_GRANT)
    card = _card(console, number)
    form = console.form
    action = _text(form, "action")
    try:
        group_id = _int(form, "group", required=True)
        assert group_id is not None
        schedule_id = _int(form, "schedule")
        if action == "revoke":
            service.revoke_grant(session=console.db, actor=console.user, card=card, group=group_id)
            console.flash("Saved.")
        elif action == "request":
            request = service.request_extra_grant(
                session=console.db,
                actor=console.user,
                card=card,
                group=group_id,
                schedule=schedule_id,
                reason=_text(form, "reason"),
            )
            console.flash("Request {ref} sent for approval.", ref=request.number)
        else:
            service.grant(
                session=console.db,
                actor=console.user,
                card=card,
                group=group_id,
                schedule=schedule_id,
            )
            console.flash("Saved.")
    except CardopsError as exc:
        console.db.rollback()
        return _grants_page(
            console, card, status_code=exc.status, form=form, **form_error_context(exc)
        )
    console.db.commit()
    return console.redirect(f"/access/cards/{card.number}/grants")


# --- access log -----------------------------------------------------------------------------


@router.get("/access/log", response_class=HTMLResponse)
def access_log(
    console: ConsolePage,
    card: str = "",
    door: str = "",
    day_from: str = "",
    day_to: str = "",
    allowed: str = "",
    page: int = 1,
) -> HTMLResponse:
    require(console.user, ACCESS_LOG)
    page = max(1, min(page, 100_000))
    rows = service.search_events(
        session=console.db,
        actor=console.user,
        card=card[:64],
        door=door[:32],
        day_from=_day(day_from),
        day_to=_day(day_to),
        allowed={"1": True, "0": False}.get(allowed),
        limit=PAGE + 1,
        offset=(page - 1) * PAGE,
    )
    card_numbers = {
        c.id: c.number
        for c in console.db.execute(
            select(Card).where(Card.id.in_({e.card_id for e in rows if e.card_id} or {-1}))
        ).scalars()
    }
    return console.render(
        "access/log.html",
        rows=rows[:PAGE],
        has_more=len(rows) > PAGE,
        page=page,
        card_numbers=card_numbers,
        filters={
            "card": card,
            "door": door,
            "day_from": day_from,
            "day_to": day_to,
            "allowed": allowed,
        },
        **_common(),
    )


@router.get("/access/log/cards/{number}", response_class=HTMLResponse)
def card_log(console: ConsolePage, number: str) -> Response:
    require(console.user, ACCESS_LOG)
    card = _card(console, number)
    return console.redirect(f"/access/log?card={card.number}")


# --- door codes -----------------------------------------------------------------------------


def _codes_page(
    console: Console, *, status_code: int = 200, form: dict[str, Any] | None = None, **extra: Any
) -> HTMLResponse:
    rows = service.list_door_codes(session=console.db, actor=console.user)
    return console.render(
        "access/door_codes.html",
        status_code=status_code,
        rows=rows,
        next_quarter=service.next_quarter_start(service.local_today()),
        form=form or {},
        **_common(),
        **extra,
    )


@router.get("/access/door-codes", response_class=HTMLResponse)
def door_codes(console: ConsolePage) -> HTMLResponse:
    require(console.user, DOOR_CODES_VIEW)
    return _codes_page(console)


@router.post("/access/door-codes/rotate", response_class=HTMLResponse)
def rotate(console: ConsoleForm) -> Response:
    require(console.user, DOOR_CODES_ROTATE)
    form = console.form
    try:
        start = _day(_text(form, "quarter_start"))
        if start is None:
            raise ValidationFailed("Enter a valid date.", field="quarter_start")
        result = service.rotate_door_codes(
            session=console.db, actor=console.user, quarter_start=start
        )
    except CardopsError as exc:
        console.db.rollback()
        return _codes_page(console, status_code=exc.status, form=form, **form_error_context(exc))
    console.flash(
        "{n} new door codes; {m} notices queued.", n=len(result.created), m=result.notified
    )
    console.db.commit()
    return console.redirect("/access/door-codes")


@router.post("/access/door-codes/{code_id}/reveal", response_class=HTMLResponse)
def reveal(console: ConsoleForm, code_id: RecordId) -> HTMLResponse:
    require(console.user, DOOR_CODES_REVEAL)
    code = service.reveal_door_code(
        session=console.db, actor=console.user, door_code_id=code_id, why=_text(console.form, "why")
    )
    console.db.commit()
    return _codes_page(console, revealed={"id": code_id, "code": code})
