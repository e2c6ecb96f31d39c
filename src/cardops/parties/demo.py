"""Demo persons and organisations (fictional names; IDs and codes pass their checksums)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from cardops.core.demo_loader import DemoContext
from cardops.parties import service

PERSONS = (
    # name, resident ID, mobile, address
    ("王晓雨", "110105198503120047", "13800138001", "幸福里小区 3 栋 1201"),
    ("李建国", "310104199007181233", "13900139002", "幸福里小区 5 栋 0802"),
    ("陈思远", "420102198306142531", "13700137003", "幸福里小区 1 栋 0301"),
    ("赵敏", "320102199203300083", "15800158004", "幸福里小区商铺 A-12"),
    ("刘海波", "110108197501010017", "18600186005", "高新区科技园 2 号楼"),
)

ORGANISATIONS = (
    # name, kind, USCC, legal person, contact, contact mobile, address
    (
        "示例物业服务有限公司",
        "property",
        "91310115MA1H7K2X30",
        "周明",
        "孙丽",
        "13600136006",
        "幸福里小区物服中心",
    ),
    (
        "示例支付服务有限公司华南分公司",
        "service_provider",
        "91440300MA5F0QWE8T",
        "吴强",
        "郑伟",
        "13500135007",
        "深圳市南山区科技路 8 号",
    ),
    (
        "示例智能终端制造有限公司",
        "supplier",
        "91110108MA01ABCD2H",
        "冯刚",
        "何静",
        "13300133008",
        "北京市海淀区上地信息路 6 号",
    ),
    (
        "幸福里便利店",
        "merchant",
        "92440305MA5G8TY016",
        "赵敏",
        "赵敏",
        "15800158004",
        "幸福里小区商铺 A-12",
    ),
)


def load(session: Session, ctx: DemoContext) -> None:
    for name, id_number, mobile, address in PERSONS:
        service.create_person(
            session=session,
            actor=ctx.admin,
            name=name,
            id_number=id_number,
            mobile=mobile,
            address=address,
        )
    for name, kind, uscc, legal, contact, contact_mobile, address in ORGANISATIONS:
        service.create_organisation(
            session=session,
            actor=ctx.admin,
            name=name,
            kind=kind,
            uscc=uscc,
            legal_person=legal,
            contact_name=contact,
            contact_mobile=contact_mobile,
            address=address,
        )
