"""Default approval chains, and one request waiting in the administrator's inbox."""

from __future__ import annotations

from sqlalchemy.orm import Session

from cardops.approvals import service
from cardops.approvals.models import ApprovalChain
from cardops.auth.models import User
from cardops.core.demo_loader import DemoContext

# kind -> (English name, Chinese name, role codes in order)
DEFAULT_CHAINS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "distributor_order": (
        "Distributor order",
        "经销商订单",
        (
            "channel_supervisor",
            "business_manager",
            "finance_manager",
            "operations_director",
            "warehouse_supervisor",
        ),
    ),
    "purchase_request": (
        "Purchase request",
        "采购申请",
        ("business_manager", "finance_manager", "operations_director"),
    ),
    "staff_card": ("Staff card", "员工卡申请", ("department_manager",)),
    "merchant_card": ("Merchant card", "商户卡申请", ("department_manager",)),
    "tenant_extra_doors": ("Extra doors for a tenant", "租户增开门禁", ("cs_supervisor",)),
    "scrapping": ("Scrapping", "报废申请", ("warehouse_supervisor", "operations_director")),
    "compensation": ("Compensation", "补偿申请", ("call_supervisor",)),
    "general": ("General request", "通用申请", ("department_manager",)),
}


def install_defaults(session: Session, actor: User) -> list[ApprovalChain]:
    """Define each default chain that does not exist yet; existing chains stay as they are."""
    created = []
    for kind, (name_en, name_zh, roles) in DEFAULT_CHAINS.items():
        if service.find_chain(session, kind) is None:
            created.append(
                service.define_chain(
                    session=session,
                    actor=actor,
                    kind=kind,
                    name_en=name_en,
                    name_zh=name_zh,
                    steps=list(roles),
                )
            )
    return created


def load(session: Session, ctx: DemoContext) -> None:
    install_defaults(session, ctx.admin)
    specialist = ctx.users.get("channel_specialist")
    if specialist is not None:
        service.submit(
            session=session,
            actor=specialist,
            kind="general",
            title="领用演示 POS 终端 2 台",
            description="渠道推广活动需要 2 台演示用 POS 终端，为期一周，活动结束后归还仓库。",
            payload={"items": [{"name": "演示 POS 终端", "quantity": 2}], "days": 7},
        )
