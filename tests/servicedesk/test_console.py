"""Console pages: list with the nearest deadline (breached in red), new ticket with caller
lookup, ticket page actions, settings, reports with Excel export; public form and survey."""

from __future__ import annotations

import io
import re
from datetime import datetime

from fastapi import FastAPI
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.orm import Session

from cardops.core.clock import freeze
from cardops.parties import service as parties
from cardops.servicedesk import service
from cardops.servicedesk.models import Holiday, Survey, Ticket
from tests.factories import console, field_error, make_user
from tests.servicedesk.conftest import at


def _new(agent, **extra: str):  # type: ignore[no-untyped-def]
    form = {
        "kind": "fault",
        "priority": "high",
        "subject": "打印机不出纸",
        "contact_name": "赵六",
        "contact_phone": "13700137000",
        "fault_type": "打印故障",
    }
    form.update(extra)
    return agent.post("/tickets/new", form)


def test_agent_takes_a_call_with_lookup_and_works_the_ticket(
    app: FastAPI, db: Session, monday: datetime
) -> None:
    clerk = make_user(db, "front_desk_clerk")
    person = parties.create_person(session=db, actor=clerk, name="钱七", mobile="13600136000")
    agent = console(app, db, "call_agent", "call_supervisor")
    page = agent.get("/tickets/new?lookup=136-0013-6000")
    assert page.status_code == 200 and "钱七" in page.text
    filled = agent.get("/tickets/new?lookup=13600136000&use=0")
    assert f'name="party_id" value="{person.id}"' in filled.text
    unknown = agent.get("/tickets/new?lookup=13999999999")
    assert 'id="caller-unknown"' in unknown.text

    missing = _new(agent, contact_name="", contact_phone="")
    assert missing.status_code == 422
    assert field_error(missing.text, "contact")
    assert db.scalar(select(Ticket).where(Ticket.subject == "打印机不出纸")) is None

    created = _new(agent)
    assert created.status_code == 303, created.text
    url = created.headers["location"]
    ticket = db.scalars(select(Ticket).where(Ticket.subject == "打印机不出纸")).one()
    page = agent.get(url)
    assert ticket.number in page.text and 'id="sla-first_response"' in page.text
    assert agent.post(f"{url}/note", {"text": "先查网络"}).status_code == 303
    empty = agent.post(f"{url}/reply", {"text": ""})
    assert empty.status_code == 422 and field_error(empty.text, "text")
    assert agent.post(f"{url}/reply", {"text": "已远程指导", "pending": "1"}).status_code == 303
    page = agent.get(url)
    assert 'id="sla-paused"' in page.text and "先查网络" in page.text
    assert agent.post(f"{url}/transition", {"state": "resolved"}).status_code == 303
    assert (
        agent.post(f"{url}/callback", {"outcome": "satisfied", "note": "好了"}).status_code == 303
    )
    assert agent.post(f"{url}/transition", {"state": "closed"}).status_code == 303
    db.refresh(ticket)
    assert ticket.state == "closed"
    bad_merge = agent.post(f"{url}/merge", {"into": "T20990101-0001"})
    assert bad_merge.status_code == 422 and field_error(bad_merge.text, "into")

    # list: the overdue one is red
    _new(agent, subject="第二单", priority="urgent")
    freeze(at("2026-11-23", "12:00"))
    listing = agent.get("/tickets?open_only=1")
    row = re.search(r'<tr data-ticket="[^"]+" class="breached"[^>]*>.*?</tr>', listing.text, re.S)
    assert row is not None and "第二单" in row.group(0)


def test_settings_calendar_and_holidays(app: FastAPI, db: Session, monday: datetime) -> None:
    boss = console(app, db, "call_supervisor")
    assert boss.get("/tickets/settings").status_code == 200
    bad = boss.post(
        "/tickets/settings/calendar", {"day1": "18:00-09:00", "timezone": "Asia/Shanghai"}
    )
    assert bad.status_code == 422 and field_error(bad.text, "day1")
    days = {f"day{d}": "09:00-12:00, 13:00-18:00" for d in range(1, 6)}
    ok = boss.post("/tickets/settings/calendar", {**days, "timezone": "Asia/Shanghai"})
    assert ok.status_code == 303
    assert (
        boss.post("/tickets/settings/holiday", {"day": "2026-11-24", "name": "test"}).status_code
        == 303
    )
    dup = boss.post("/tickets/settings/holiday", {"day": "2026-11-24"})
    assert dup.status_code == 409 and field_error(dup.text, "day")
    assert db.scalars(select(Holiday)).one().name == "test"
    policy = boss.post(
        "/tickets/settings/policy",
        {
            "kind": "fault",
            "priority": "high",
            "first_response": "abc",
            "update": "",
            "solution": "60",
        },
    )
    assert policy.status_code == 422
    # Mon 10:00 + 540 minutes with lunch off and Tuesday a holiday → Wed 10:00... (see below)
    agent = make_user(db, "call_agent")
    ticket = service.create_ticket(
        session=db,
        actor=agent,
        kind="fault",
        priority="high",
        subject="x",
        contact_name="a",
        contact_phone="13800138000",
    )
    # Mon 10–12 (120) + 13–18 (300) = 420; Tue off; Wed 9–11 (120) = 540 → Wed 11:00
    assert ticket.solution_due == at("2026-11-25", "11:00")


def test_reports_and_excel(app: FastAPI, db: Session, monday: datetime) -> None:
    agent = make_user(db, "call_agent")
    for kind in ("inquiry", "fault", "complaint"):
        service.create_ticket(
            session=db,
            actor=agent,
            kind=kind,
            subject=kind,
            contact_name="a",
            contact_phone="13800138000",
            resolved_on_first_contact=kind == "inquiry",
        )
    analyst = console(app, db, "call_supervisor")
    page = analyst.get("/tickets/reports")
    assert page.status_code == 200
    assert 'id="chart-kinds"' in page.text and 'id="agent-kpis"' in page.text
    assert 'id="repair-turnaround"' in page.text
    fcr = re.search(r'<tr id="fcr">(.*?)</tr>', page.text, re.S)
    assert fcr is not None and "1 / 1" in fcr.group(1)
    bad = analyst.get("/tickets/reports?start=2026-12-01&end=2026-11-01")
    assert bad.status_code == 422
    xlsx = analyst.get("/tickets/reports.xlsx")
    assert xlsx.status_code == 200
    book = load_workbook(io.BytesIO(xlsx.content))
    sheet = book.worksheets[0]
    # one row per kind, in the order inquiry, complaint, fault, change; the total is last
    totals = [row[-1] for row in sheet.iter_rows(min_row=2, values_only=True)]
    assert totals == [1, 1, 1, 0]


def test_public_form_with_csrf_honeypot_and_rate_limit(
    client: TestClient, db: Session, monday: datetime
) -> None:
    page = client.get("/support")
    assert page.status_code == 200
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    form = {
        "csrf_token": token,
        "name": "孙八",
        "phone": "13500135000",
        "subject": "咨询费率",
        "description": "刷卡费率多少",
        "kind": "inquiry",
    }
    forged = client.post("/support", data={**form, "csrf_token": "x"}, follow_redirects=False)
    assert forged.status_code == 403
    bot = client.post("/support", data={**form, "website": "http://spam"}, follow_redirects=False)
    assert bot.status_code == 303
    assert db.scalar(select(Ticket).where(Ticket.subject == "咨询费率")) is None
    nocontact = client.post("/support", data={**form, "phone": ""}, follow_redirects=False)
    assert nocontact.status_code == 422
    sent = client.post("/support", data=form, follow_redirects=False)
    assert sent.status_code == 303, sent.text
    ticket = db.scalars(select(Ticket).where(Ticket.subject == "咨询费率")).one()
    assert ticket.channel == "web" and ticket.number in sent.headers["location"]
    for _ in range(service.WEB_FORM_LIMIT_PER_HOUR - 1):
        assert client.post("/support", data=form, follow_redirects=False).status_code == 303
    limited = client.post("/support", data=form, follow_redirects=False)
    assert limited.status_code == 429


def test_survey_page_answers_once(client: TestClient, db: Session, monday: datetime) -> None:
    agent = make_user(db, "call_agent")
    ticket = service.create_ticket(
        session=db,
        actor=agent,
        kind="inquiry",
        subject="x",
        contact_name="a",
        contact_phone="13800138000",
    )
    service.transition(session=db, actor=agent, ticket_id=ticket.id, state="resolved")
    service.transition(session=db, actor=agent, ticket_id=ticket.id, state="closed")
    survey = db.scalars(select(Survey).where(Survey.ticket_id == ticket.id)).one()
    page = client.get(f"/survey/{survey.token}")
    assert page.status_code == 200 and ticket.number in page.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    noscore = client.post(f"/survey/{survey.token}", data={"csrf_token": token})
    assert noscore.status_code == 422 and field_error(noscore.text, "score")
    done = client.post(f"/survey/{survey.token}", data={"csrf_token": token, "score": "4"})
    assert done.status_code == 200 and 'id="survey-done"' in done.text
    again = client.post(f"/survey/{survey.token}", data={"csrf_token": token, "score": "1"})
    assert again.status_code == 409 and 'id="survey-answered"' in again.text
    db.refresh(survey)
    assert survey.score == 4
    assert client.get("/survey/nonexistent-token-xyz-123").status_code == 404


def test_complaint_and_merged_pages_render(app: FastAPI, db: Session, monday: datetime) -> None:
    agent = make_user(db, "call_agent")
    complaint = service.create_ticket(
        session=db,
        actor=agent,
        kind="complaint",
        subject="投诉",
        contact_name="a",
        contact_phone="13800138000",
    )
    service.complaint_step(
        session=db, actor=agent, ticket_id=complaint.id, stage="investigating", text="核实中"
    )
    dup = service.create_ticket(
        session=db,
        actor=agent,
        kind="complaint",
        subject="投诉",
        contact_name="a",
        contact_phone="13800138000",
    )
    service.merge(session=db, actor=agent, ticket_id=dup.id, into_id=complaint.id)
    browser = console(app, db, "call_supervisor")
    page = browser.get(f"/tickets/{complaint.id}")
    assert page.status_code == 200 and 'id="complaint-form"' in page.text and "核实中" in page.text
    merged = browser.get(f"/tickets/{dup.id}")
    assert merged.status_code == 200 and 'id="merged-into"' in merged.text
    assert 'id="reply-form"' not in merged.text
    result = browser.post(
        f"/tickets/{complaint.id}/complaint", {"stage": "result", "text": "已整改"}
    )
    assert result.status_code == 303
    db.refresh(complaint)
    assert complaint.complaint_stage == "result" and complaint.result == "已整改"
