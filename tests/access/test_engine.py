"""Door decisions: every reason code, schedules and holidays at boundary minutes, lookups by
UID and Wiegand, and a loss report enforced by the very next decision."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from cardops.access import service
from cardops.access.engine import decide, get_engine
from cardops.access.models import Property
from cardops.access.wiegand import encode_frame
from cardops.auth import service as auth
from cardops.core.clock import today as local_today
from cardops.parking.models import ParkingPermit
from cardops.parties.models import Person
from tests.access.conftest import make_card, set_state

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(y: int, m: int, d: int, hh: int, mm: int) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=SHANGHAI)


def test_owner_card_opens_its_building_and_not_the_other(db: Session, sunny: Property) -> None:
    make_card(db, sunny, "T-OWNER")
    assert decide("T-OWNER", "LOBBY-1").reason == "ok"
    assert decide("T-OWNER", "LOBBY-1").allowed is True
    denied = decide("T-OWNER", "UNIT-2")
    assert (denied.allowed, denied.reason) == (False, "door_not_in_group")


def test_unknown_door_and_unknown_card(db: Session, sunny: Property) -> None:
    make_card(db, sunny, "T-1")
    assert decide("T-1", "NO-SUCH-DOOR").reason == "unknown_door"
    assert decide("NOBODY", "LOBBY-1").reason == "unknown_card"
    assert decide("NOBODY", "LOBBY-1").allowed is False


def test_disabled_door(db: Session, sunny: Property) -> None:
    make_card(db, sunny, "T-1")
    door = service.get_door(db, "LOBBY-1")
    service.update_door(
        session=db,
        actor=auth.system_user(db),
        door_id=door.id,
        name=door.name,
        kind=door.kind,
        building_id=door.building_id,
        controller_id=door.controller_id,
        is_active=False,
    )
    db.commit()
    assert decide("T-1", "LOBBY-1").reason == "door_disabled"


def test_every_card_state_has_its_reason(db: Session, sunny: Property) -> None:
    expected = {
        "stock": "not_issued",
        "office": "not_issued",
        "scrapped": "not_issued",
        "lost": "lost",
        "cancelled": "cancelled",
        "returned": "returned",
        "replaced": "replaced",
    }
    for state in expected:
        make_card(db, sunny, f"S-{state}", state=state)
    for state, reason in expected.items():
        decision = decide(f"S-{state}", "LOBBY-1")
        assert (decision.allowed, decision.reason) == (False, reason), state


def test_validity_window(db: Session, sunny: Property) -> None:
    today = local_today()
    make_card(db, sunny, "FUTURE", valid_from=today + timedelta(days=2))
    make_card(
        db,
        sunny,
        "OLD",
        valid_from=today - timedelta(days=400),
        valid_until=today - timedelta(days=1),
    )
    make_card(db, sunny, "LASTDAY", valid_until=today)
    assert decide("FUTURE", "LOBBY-1").reason == "not_yet_valid"
    assert decide("OLD", "LOBBY-1").reason == "expired"
    assert decide("LASTDAY", "LOBBY-1").reason == "ok"  # valid_until is inclusive


def test_schedule_boundaries_and_holidays(db: Session, sunny: Property) -> None:
    make_card(
        db,
        sunny,
        "RENO",
        holder_kind="renovation",
        unit=None,
        grants=[("RENO", "DAYTIME")],
        valid_from=date(2026, 1, 1),
        valid_until=date(2027, 12, 31),
    )
    # DAYTIME: Mon–Sat 08:00–18:00 (end exclusive), closed on holidays
    monday = (2026, 9, 28)
    assert decide("RENO", "RENO-EAST", local(*monday, 7, 59)).reason == "outside_schedule"
    assert decide("RENO", "RENO-EAST", local(*monday, 8, 0)).reason == "ok"
    assert decide("RENO", "RENO-EAST", local(*monday, 17, 59)).reason == "ok"
    assert decide("RENO", "RENO-EAST", local(*monday, 18, 0)).reason == "outside_schedule"
    sunday = (2026, 9, 27)
    assert decide("RENO", "RENO-EAST", local(*sunday, 10, 0)).reason == "outside_schedule"
    national_day = (2026, 10, 1)  # a Thursday, but a holiday: DAYTIME denies
    assert decide("RENO", "RENO-EAST", local(*national_day, 10, 0)).reason == "outside_schedule"
    # the same instant in UTC is read in the property's time zone (Asia/Shanghai)
    utc = local(*monday, 8, 0).astimezone(UTC)
    assert decide("RENO", "RENO-EAST", utc).reason == "ok"


def test_holiday_modes(db: Session, sunny: Property) -> None:
    system = auth.system_user(db)
    service.create_schedule(
        session=db,
        actor=system,
        property_id=sunny.id,
        code="HOLI",
        name="Holiday periods",
        holiday_mode="periods",
        periods=[(3, 600, 660), (7, 720, 780)],
    )
    db.commit()
    make_card(
        db,
        sunny,
        "H",
        grants=[("B1", "HOLI")],
        valid_from=date(2026, 1, 1),
        valid_until=date(2027, 12, 31),
    )
    holiday_thursday = (2026, 10, 1)
    ordinary_thursday = (2026, 10, 8)
    assert decide("H", "LOBBY-1", local(*ordinary_thursday, 10, 30)).reason == "ok"
    assert decide("H", "LOBBY-1", local(*ordinary_thursday, 12, 30)).reason == "outside_schedule"
    # on a holiday the weekday-7 periods apply instead of Thursday's
    assert decide("H", "LOBBY-1", local(*holiday_thursday, 10, 30)).reason == "outside_schedule"
    assert decide("H", "LOBBY-1", local(*holiday_thursday, 12, 0)).reason == "ok"
    assert decide("H", "LOBBY-1", local(*holiday_thursday, 13, 0)).reason == "outside_schedule"
    # WORKHOURS treats holidays as ordinary days
    make_card(
        db,
        sunny,
        "W",
        holder_kind="staff",
        unit=None,
        grants=[("STAFF", "WORKHOURS")],
        valid_from=date(2026, 1, 1),
        valid_until=date(2027, 12, 31),
    )
    assert decide("W", "UNIT-2", local(*holiday_thursday, 6, 0)).reason == "ok"
    assert decide("W", "UNIT-2", local(*holiday_thursday, 5, 59)).reason == "outside_schedule"
    assert decide("W", "UNIT-2", local(*holiday_thursday, 22, 0)).reason == "outside_schedule"


def test_car_park_gate_needs_a_parking_permit(db: Session, sunny: Property) -> None:
    today = local_today()
    person = Person(name="张三")
    db.add(person)
    db.flush()
    none = make_card(db, sunny, "NOPARK", person_id=person.id)
    ok = make_card(db, sunny, "PARK", person_id=person.id)
    old = make_card(db, sunny, "OLDPARK", person_id=person.id)
    for number, card, start, end in (
        ("P-1", ok, today - timedelta(days=3), today + timedelta(days=20)),
        ("P-2", old, today - timedelta(days=40), today - timedelta(days=1)),
    ):
        db.add(
            ParkingPermit(
                number=number,
                property_id=sunny.id,
                card_id=card.id,
                person_id=person.id,
                plate="川A12345",
                valid_from=start,
                valid_until=end,
            )
        )
        service.touch_card(db, card_id=card.id, property_id=sunny.id, reason="parking")
    db.commit()
    assert none.id
    assert decide("NOPARK", "GARAGE-IN").reason == "no_parking"
    assert decide("PARK", "GARAGE-IN").reason == "ok"
    assert decide("OLDPARK", "GARAGE-IN").reason == "parking_expired"
    # a lost card stops parking too
    set_state(db, ok, "lost")
    assert decide("PARK", "GARAGE-IN").reason == "lost"


def test_card_found_by_uid_and_wiegand(db: Session, sunny: Property) -> None:
    make_card(db, sunny, "C-UID", uid="04A1B2C3D4", wiegand=(12, 34567))
    for presented in (
        "04A1B2C3D4",
        "04:a1:b2:c3:d4",
        "04 A1 B2 C3 D4",
        "04-a1-b2-c3-d4",
        "12:34567",
        encode_frame(12, 34567, 26),
    ):
        assert decide(presented, "LOBBY-1").reason == "ok", presented
    bad_parity = (
        "1"
        + encode_frame(12, 34567, 26)[1:-1]
        + ("0" if encode_frame(12, 34567, 26)[-1] == "1" else "1")
    )
    assert decide(bad_parity, "LOBBY-1").reason == "unknown_card"
    assert decide("12:34568", "LOBBY-1").reason == "unknown_card"


def test_loss_committed_is_enforced_by_the_next_decision(db: Session, sunny: Property) -> None:
    card = make_card(db, sunny, "LOSE-ME")
    engine = get_engine()
    assert engine.poll_interval >= 3600  # no polling: only the commit hook can refresh
    assert decide("LOSE-ME", "LOBBY-1").allowed is True
    set_state(db, card, "lost")  # commit + touch_card, as the cards service does
    assert decide("LOSE-ME", "LOBBY-1").reason == "lost"
    set_state(db, card, "active")  # found again (解挂)
    assert decide("LOSE-ME", "LOBBY-1").reason == "ok"


def test_loss_committed_by_another_process_is_enforced_by_the_next_decision(
    db: Session, sunny: Property
) -> None:
    """Another process commits the loss and touches the change signal file; this process's
    next decision refreshes because the file moved (no poll, no in-process hook)."""
    from cardops.access import credentials
    from cardops.access.engine import touch_signal

    card = make_card(db, sunny, "ELSEWHERE")
    engine = get_engine()
    assert decide("ELSEWHERE", "LOBBY-1").allowed is True
    card.state = "lost"
    credentials.touch_card(db, card_id=card.id, property_id=sunny.id, reason="card.lost")
    db.info.pop(credentials._PENDING)  # committed "elsewhere": this process's hook stays silent
    db.commit()
    assert decide("ELSEWHERE", "LOBBY-1").allowed is True  # nothing told this process yet
    refreshes = engine.refreshes
    touch_signal()  # what the other process's commit hook does
    assert decide("ELSEWHERE", "LOBBY-1").reason == "lost"
    assert engine.refreshes == refreshes + 1
    assert decide("ELSEWHERE", "LOBBY-1").reason == "lost"
    assert engine.refreshes == refreshes + 1  # the file did not move again: no refresh


def test_grant_changes_and_group_edits_reach_decisions(db: Session, sunny: Property) -> None:
    system = auth.system_user(db)
    card = make_card(db, sunny, "G", grants=[])
    assert decide("G", "LOBBY-1").reason == "door_not_in_group"
    service.grant(session=db, actor=system, card=card, group="B1", schedule="ALWAYS")
    db.commit()
    assert decide("G", "LOBBY-1").reason == "ok"
    group = service.find_group(db, sunny.id, "B1")
    assert group is not None
    service.set_group_doors(session=db, actor=system, group_id=group.id, doors=["UNIT-1"])
    db.commit()
    assert decide("G", "LOBBY-1").reason == "door_not_in_group"
    assert decide("G", "UNIT-1").reason == "ok"
    service.revoke_grant(session=db, actor=system, card=card, group="B1")
    db.commit()
    assert decide("G", "UNIT-1").reason == "door_not_in_group"


def test_rolled_back_change_does_not_stick(db: Session, sunny: Property) -> None:
    card = make_card(db, sunny, "RB")
    assert decide("RB", "LOBBY-1").allowed
    card.state = "lost"
    service.touch_card(db, card_id=card.id, property_id=sunny.id, reason="x")
    db.rollback()
    assert decide("RB", "LOBBY-1").allowed
