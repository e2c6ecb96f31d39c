"""Demo service desk: two teams (400 call centre, after-sales), a holiday, and tickets in every
state — a fault on an activated terminal assigned to after-sales, a complaint under
investigation, an inquiry answered on the call, one waiting for the customer and a closed one
with an answered survey."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from cardops.core.demo_loader import DemoContext
from cardops.servicedesk import service
from cardops.servicedesk.models import Team
from cardops.terminals.models import Terminal


def load(session: Session, ctx: DemoContext) -> None:
    if session.scalars(select(Team).limit(1)).first() is not None:
        return
    boss = ctx.users.get("call_supervisor") or ctx.admin
    agent = ctx.users.get("call_agent") or boss
    after_sales = ctx.users.get("after_sales_specialist") or boss
    desk = service.create_team(session=session, actor=boss, code="call-centre", name="400 呼叫中心")
    repair = service.create_team(session=session, actor=boss, code="after-sales", name="售后服务处")
    for team, user in ((desk, agent), (desk, boss), (repair, after_sales)):
        if not user.is_system:
            service.add_team_member(session=session, actor=boss, team_id=team.id, user_id=user.id)
    year = date.today().year
    for day, name in ((date(year, 10, 1), "国庆节"), (date(year + 1, 1, 1), "元旦")):
        service.add_holiday(session=session, actor=boss, day=day, name=name)

    unit = session.scalars(
        select(Terminal).where(Terminal.merchant_id.is_not(None)).order_by(Terminal.id).limit(1)
    ).first()
    fault = service.create_ticket(
        session=session,
        actor=agent,
        kind="fault",
        priority="high",
        subject="POS 机刷卡后不打印小票",
        description="商户来电：今天上午开始刷卡成功但打印机不出纸，已换纸无效。",
        contact_name="陈店长",
        contact_phone="13881234567",
        serial=unit.serial if unit else None,
        fault_type="打印故障",
    )
    if not after_sales.is_system:
        service.assign(
            session=session,
            actor=boss,
            ticket_id=fault.id,
            team_id=repair.id,
            assignee_id=after_sales.id,
        )
    service.add_note(
        session=session, actor=agent, ticket_id=fault.id, text="已指导重启，无效，转售后。"
    )

    complaint = service.create_ticket(
        session=session,
        actor=agent,
        kind="complaint",
        priority="normal",
        subject="服务商上门维修迟到",
        description="客户投诉约定上午十点上门，下午两点才到。",
        contact_name="刘女士",
        contact_phone="13982345678",
    )
    service.complaint_step(
        session=session,
        actor=boss,
        ticket_id=complaint.id,
        stage="investigating",
        text="调取派工记录，联系区域服务商核实。",
    )

    service.create_ticket(
        session=session,
        actor=agent,
        kind="inquiry",
        priority="low",
        subject="咨询刷卡手续费率",
        description="已在电话中告知标准费率。",
        contact_name="黄先生",
        contact_phone="13683456789",
        resolved_on_first_contact=True,
    )

    waiting = service.create_ticket(
        session=session,
        actor=agent,
        kind="change",
        priority="normal",
        subject="变更结算账户",
        contact_name="周老板",
        contact_phone="13584567890",
        contact_email="zhou@example.com",
    )
    service.reply(
        session=session,
        actor=agent,
        ticket_id=waiting.id,
        text="请提供新开户许可证和法人身份证复印件。",
        pending=True,
    )

    closed = service.create_ticket(
        session=session,
        actor=agent,
        kind="inquiry",
        priority="normal",
        subject="如何查询当日交易",
        contact_name="吴会计",
        contact_phone="13785678901",
    )
    service.reply(
        session=session, actor=agent, ticket_id=closed.id, text="在终端上选择“交易查询”即可。"
    )
    service.transition(session=session, actor=agent, ticket_id=closed.id, state="resolved")
    service.record_callback(
        session=session, actor=agent, ticket_id=closed.id, outcome="satisfied", note="已会操作"
    )
    service.transition(session=session, actor=agent, ticket_id=closed.id, state="closed")
    survey = service.ticket_survey(session, closed)
    if survey is not None:
        service.answer_survey(session=session, token=survey.token, score=5, comment="很耐心")
