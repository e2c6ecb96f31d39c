"""Demo topology: the property SUNNY (阳光花园 Sunny Garden) with its buildings, units, doors,
controllers, access groups, schedules and holidays. The cards, parking and wallets demos
look these up by code."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy.orm import Session

from cardops.access import service
from cardops.core.demo_loader import DemoContext

PROPERTY = "SUNNY"
UNITS = {"1": ["1-101", "1-102", "1-201"], "2": ["2-101", "2-102"]}
DOORS = [
    # code, name, kind, building, controller
    ("LOBBY-1", "1号楼大堂 Building 1 lobby", "lobby", "1", "CTRL-1"),
    ("UNIT-1", "1号楼单元门 Building 1 unit door", "unit_door", "1", "CTRL-1"),
    ("LOBBY-2", "2号楼大堂 Building 2 lobby", "lobby", "2", "CTRL-1"),
    ("UNIT-2", "2号楼单元门 Building 2 unit door", "unit_door", "2", "CTRL-1"),
    ("GARAGE-IN", "地下车库入口 Car park entrance", "carpark_gate", None, "CTRL-GATE"),
    ("RENO-EAST", "东侧装修通道 East renovation entrance", "renovation", None, "CTRL-GATE"),
]
GROUPS = {
    "ALL-HOMES": ("全部住宅 All homes", ["LOBBY-1", "UNIT-1", "LOBBY-2", "UNIT-2"]),
    "B1": ("1号楼住户 Building 1 residents", ["LOBBY-1", "UNIT-1"]),
    "B2": ("2号楼住户 Building 2 residents", ["LOBBY-2", "UNIT-2"]),
    "RENO": ("装修通道 Renovation entrances", ["RENO-EAST"]),
    "STAFF": ("物业员工 Property staff", ["LOBBY-1", "UNIT-1", "LOBBY-2", "UNIT-2", "RENO-EAST"]),
    "PARKING": ("停车场 Car park", ["GARAGE-IN"]),
}
SCHEDULES = {
    "ALWAYS": ("全天 Always", "periods", [(d, 0, 1440) for d in range(8)]),
    "DAYTIME": ("白天 Daytime (Mon–Sat 08–18)", "deny", [(d, 480, 1080) for d in range(6)]),
    "WORKHOURS": ("工作时间 Work hours (06–22)", "weekday", [(d, 360, 1320) for d in range(7)]),
}
HOLIDAYS = [
    *[(date(2026, 10, 1) + timedelta(days=i), "国庆节 National Day") for i in range(7)],
    (date(2027, 1, 1), "元旦 New Year's Day"),
]


def load(session: Session, ctx: DemoContext) -> None:
    actor = ctx.admin
    if service.find_property(session, PROPERTY) is not None:
        return
    prop = service.create_property(
        session=session,
        actor=actor,
        code=PROPERTY,
        name="阳光花园 Sunny Garden",
        address="成都市高新区阳光路 1 号",
    )
    prop.replacement_warranty_days = 30
    buildings = {}
    for code in ("1", "2"):
        buildings[code] = service.create_building(
            session=session, actor=actor, property_id=prop.id, code=code, name=f"{code}号楼"
        )
        for unit in UNITS[code]:
            service.create_unit(
                session=session,
                actor=actor,
                building_id=buildings[code].id,
                code=unit,
                floor=int(unit.split("-")[1][0]),
            )
    service.create_unit(
        session=session,
        actor=actor,
        building_id=buildings["2"].id,
        code="S-01",
        floor=1,
        is_shop=True,
    )
    controllers = {
        code: service.create_controller(
            session=session, actor=actor, property_id=prop.id, code=code, name=name
        )
        for code, name in (("CTRL-1", "住宅门禁控制器"), ("CTRL-GATE", "车库与装修通道控制器"))
    }
    for code, name, kind, building, controller in DOORS:
        service.create_door(
            session=session,
            actor=actor,
            property_id=prop.id,
            code=code,
            name=name,
            kind=kind,
            building_id=buildings[building].id if building else None,
            controller_id=controllers[controller].id,
        )
    for code, (name, doors) in GROUPS.items():
        service.create_group(
            session=session, actor=actor, property_id=prop.id, code=code, name=name, doors=doors
        )
    for code, (name, mode, periods) in SCHEDULES.items():
        service.create_schedule(
            session=session,
            actor=actor,
            property_id=prop.id,
            code=code,
            name=name,
            holiday_mode=mode,
            periods=periods,
        )
    for day, name in HOLIDAYS:
        service.add_holiday(session=session, actor=actor, property_id=prop.id, day=day, name=name)
