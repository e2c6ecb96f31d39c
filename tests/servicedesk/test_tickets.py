"""Tickets through the service and the API: contract, lifecycle, SLA clock, merge, callbacks."""

from __future__ import annotations

from datetime import datetime

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from cardops.audit.models import AuditEntry
from cardops.core.clock import freeze
from cardops.notify.models import OutboxMessage
from cardops.servicedesk import service
from cardops.servicedesk.models import SlaBreach, Survey, Ticket
from tests.factories import bearer, make_user
from tests.servicedesk.conftest import at

BODY = {
    "kind": "fault",
    "priority": "high",
    "subject": "POS 机无法联网",
    "contact": {"name": "王芳", "phone": "13800138000"},
    "serial": "SN-A1001",
}


def test_api_create_and_get_ticket_with_sla_deadlines(
    client: TestClient, db: Session, monday: datetime
) -> None:
    headers = bearer(db, make_user(db, "call_agent"))
    created = client.post("/api/v1/tickets", json=BODY, headers=headers)
    assert created.status_code == 201, created.text
    ticket = created.json()
    assert ticket["number"] == "T20261123-0001"
    assert ticket["state"] == "new" and ticket["contact"]["phone"] == "13800138000"
    got = client.get(f"/api/v1/tickets/{ticket['id']}", headers=headers).json()
    # high: first response 60 business minutes, solution 540 (one working day)
    assert datetime.fromisoformat(got["first_response_due"]) == at("2026-11-23", "11:00")
    assert datetime.fromisoformat(got["solution_due"]) == at("2026-11-24", "10:00")
    assert got["first_response_breached"] is False and got["solution_breached"] is False
    # an hour and a minute later, nobody answered: first response breached
    freeze(at("2026-11-23", "11:01"))
    later = client.get(f"/api/v1/tickets/{ticket['id']}", headers=headers).json()
    assert later["first_response_breached"] is True and later["solution_breached"] is False
    second = client.post("/api/v1/tickets", json=BODY, headers=headers).json()
    assert second["number"] == "T20261123-0002"


def test_ticket_without_contact_is_refused_naming_contact(
    client: TestClient, db: Session, monday: datetime
) -> None:
    headers = bearer(db, make_user(db, "call_agent"))
    before = db.scalar(select(Ticket.id).order_by(Ticket.id.desc()).limit(1))
    body = {k: v for k, v in BODY.items() if k != "contact"}
    response = client.post("/api/v1/tickets", json=body, headers=headers)
    assert response.status_code == 422
    assert "contact" in {e["field"] for e in response.json()["errors"]}
    half = client.post(
        "/api/v1/tickets", json={**body, "contact": {"name": "王芳"}}, headers=headers
    )
    assert half.status_code == 422
    assert "contact" in {e["field"] for e in half.json()["errors"]}
    bad_kind = client.post("/api/v1/tickets", json={**BODY, "kind": "praise"}, headers=headers)
    assert bad_kind.status_code == 422
    assert "kind" in {e["field"] for e in bad_kind.json()["errors"]}
    bad_phone = client.post(
        "/api/v1/tickets",
        json={**BODY, "contact": {"name": "王芳", "phone": "abc"}},
        headers=headers,
    )
    assert bad_phone.status_code == 422
    assert "contact.phone" in {e["field"] for e in bad_phone.json()["errors"]}
    chinese = client.post(
        "/api/v1/tickets", json=body, headers={**headers, "Accept-Language": "zh-CN"}
    )
    assert chinese.status_code == 422
    assert db.scalar(select(Ticket.id).order_by(Ticket.id.desc()).limit(1)) == before


def test_known_party_as_contact(client: TestClient, db: Session, monday: datetime) -> None:
    from cardops.parties import service as parties

    agent = make_user(db, "call_agent")
    person = parties.create_person(
        session=db, actor=make_user(db, "front_desk_clerk"), name="李雷", mobile="13900139000"
    )
    response = client.post(
        "/api/v1/tickets",
        json={**BODY, "contact": {"party_id": person.id}},
        headers=bearer(db, agent),
    )
    assert response.status_code == 201, response.text
    assert response.json()["contact"] == {
        "name": "李雷",
        "phone": "13900139000",
        "email": "",
        "party_id": person.id,
    }
    missing = client.post(
        "/api/v1/tickets",
        json={**BODY, "contact": {"party_id": 999999}},
        headers=bearer(db, agent),
    )
    assert missing.status_code == 422
    assert "contact.party_id" in {e["field"] for e in missing.json()["errors"]}


def test_pending_customer_pauses_the_clock_and_reply_goes_to_outbox(
    client: TestClient, db: Session, monday: datetime
) -> None:
    agent = make_user(db, "call_agent")
    headers = bearer(db, agent)
    tid = client.post("/api/v1/tickets", json=BODY, headers=headers).json()["id"]
    freeze(at("2026-11-23", "10:30"))
    sent = client.post(
        f"/api/v1/tickets/{tid}/replies",
        json={"text": "请重启机器后告诉我们结果", "pending": True},
        headers=headers,
    )
    assert sent.status_code == 201, sent.text
    sms = db.scalars(select(OutboxMessage).where(OutboxMessage.ref == f"ticket:{tid}")).one()
    assert sms.channel == "sms" and sms.recipient == "13800138000"
    assert "请重启机器" in sms.body
    paused = client.get(f"/api/v1/tickets/{tid}", headers=headers).json()
    assert paused["state"] == "pending_customer" and paused["sla_paused"] is True
    assert paused["first_response_breached"] is False  # answered at 10:30, due 11:00
    assert paused["solution_due"] is None  # the clock is stopped
    # The customer answers on Tuesday at 10:00. Paused Mon 10:30–18:00 and Tue 09:00–10:00:
    # 8.5 h of working time. 30 of the 540 minutes were used before the pause; the other 510
    # run from Tue 10:00: 480 to Tue 18:00, 30 on Wednesday → Wed 09:30.
    freeze(at("2026-11-24", "10:00"))
    headers = bearer(db, agent)  # a new day, a new token
    response = client.post(
        f"/api/v1/tickets/{tid}/transition", json={"state": "open"}, headers=headers
    )
    assert response.status_code == 200, response.text
    reopened = response.json()
    assert datetime.fromisoformat(reopened["solution_due"]) == at("2026-11-25", "09:30")
    assert reopened["solution_breached"] is False


def test_lifecycle_is_explicit_and_reopen_works(
    client: TestClient, db: Session, monday: datetime
) -> None:
    headers = bearer(db, make_user(db, "call_agent"))
    tid = client.post("/api/v1/tickets", json=BODY, headers=headers).json()["id"]
    refused = client.post(
        f"/api/v1/tickets/{tid}/transition", json={"state": "closed"}, headers=headers
    )
    assert refused.status_code == 409 and refused.json()["code"] == "invalid_transition"
    for state in ("open", "resolved", "closed"):
        response = client.post(
            f"/api/v1/tickets/{tid}/transition", json={"state": state}, headers=headers
        )
        assert response.status_code == 200, response.text
        assert response.json()["state"] == state
    ticket = db.get(Ticket, tid)
    assert ticket is not None and ticket.closed_at is not None
    again = client.post(
        f"/api/v1/tickets/{tid}/transition", json={"state": "open"}, headers=headers
    ).json()
    assert again["state"] == "open" and again["closed_at"] is None
    events = client.get(f"/api/v1/tickets/{tid}/events", headers=headers).json()
    assert [e["data"].get("to") for e in events if e["kind"] == "state"] == [
        "open",
        "resolved",
        "closed",
        "open",
    ]
    audit = db.scalars(select(AuditEntry.action).where(AuditEntry.action.like("ticket.%"))).all()
    assert "ticket.created" in audit and "ticket.transition" in audit


def test_notes_are_internal_and_merge_keeps_history(
    client: TestClient, db: Session, monday: datetime
) -> None:
    agent = make_user(db, "call_agent")
    headers = bearer(db, agent)
    first = client.post("/api/v1/tickets", json=BODY, headers=headers).json()["id"]
    dup = client.post("/api/v1/tickets", json=BODY, headers=headers).json()["id"]
    note = client.post(
        f"/api/v1/tickets/{dup}/notes", json={"text": "同一商户重复来电"}, headers=headers
    )
    assert note.status_code == 201 and note.json()["public"] is False
    assert db.scalar(select(OutboxMessage).where(OutboxMessage.ref == f"ticket:{dup}")) is None
    merged = client.post(f"/api/v1/tickets/{dup}/merge", json={"into_id": first}, headers=headers)
    assert merged.status_code == 200, merged.text
    assert merged.json()["id"] == first
    gone = client.get(f"/api/v1/tickets/{dup}", headers=headers).json()
    assert gone["state"] == "merged" and gone["merged_into_id"] == first
    dup_events = [
        e["kind"] for e in client.get(f"/api/v1/tickets/{dup}/events", headers=headers).json()
    ]
    assert dup_events[:2] == ["created", "note"] and "merged" in dup_events
    survivor_events = client.get(f"/api/v1/tickets/{first}/events", headers=headers).json()
    assert any(e["kind"] == "merged_in" and e["data"]["ticket_id"] == dup for e in survivor_events)
    self_merge = client.post(
        f"/api/v1/tickets/{first}/merge", json={"into_id": first}, headers=headers
    )
    assert self_merge.status_code == 422
    reply_to_merged = client.post(
        f"/api/v1/tickets/{dup}/replies", json={"text": "x"}, headers=headers
    )
    assert reply_to_merged.status_code == 409


def test_complaint_needs_callback_or_reason_to_close(
    client: TestClient, db: Session, monday: datetime
) -> None:
    headers = bearer(db, make_user(db, "call_agent"))
    body = {**BODY, "kind": "complaint", "subject": "服务商上门迟到"}
    tid = client.post("/api/v1/tickets", json=body, headers=headers).json()["id"]
    early = client.post(
        f"/api/v1/tickets/{tid}/complaint", json={"stage": "result", "text": "x"}, headers=headers
    )
    assert early.status_code == 422
    client.post(
        f"/api/v1/tickets/{tid}/complaint",
        json={"stage": "investigating", "text": "调取派工记录"},
        headers=headers,
    )
    client.post(
        f"/api/v1/tickets/{tid}/complaint",
        json={"stage": "result", "text": "服务商迟到两小时，已处罚"},
        headers=headers,
    )
    for state in ("resolved",):
        client.post(f"/api/v1/tickets/{tid}/transition", json={"state": state}, headers=headers)
    refused = client.post(
        f"/api/v1/tickets/{tid}/transition", json={"state": "closed"}, headers=headers
    )
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "reason"
    assert db.get(Ticket, tid).state == "resolved"  # type: ignore[union-attr]
    callback = client.post(
        f"/api/v1/tickets/{tid}/callbacks",
        json={"outcome": "satisfied", "note": "客户接受处理结果"},
        headers=headers,
    )
    assert callback.status_code == 201, callback.text
    closed = client.post(
        f"/api/v1/tickets/{tid}/transition", json={"state": "closed"}, headers=headers
    ).json()
    assert closed["state"] == "closed" and closed["complaint_stage"] == "called_back"


def test_complaint_closed_with_a_reason_instead_of_callback(
    client: TestClient, db: Session, monday: datetime
) -> None:
    headers = bearer(db, make_user(db, "call_agent"))
    body = {**BODY, "kind": "complaint"}
    tid = client.post("/api/v1/tickets", json=body, headers=headers).json()["id"]
    client.post(f"/api/v1/tickets/{tid}/transition", json={"state": "resolved"}, headers=headers)
    closed = client.post(
        f"/api/v1/tickets/{tid}/transition",
        json={"state": "closed", "reason": "客户撤回投诉，拒绝回访"},
        headers=headers,
    ).json()
    assert closed["state"] == "closed" and closed["close_reason"] == "客户撤回投诉，拒绝回访"


def test_sla_scan_records_breaches_once_and_tells_the_supervisor(
    db: Session, monday: datetime
) -> None:
    agent = make_user(db, "call_agent")
    boss = make_user(db, "call_supervisor")
    boss.email = "boss@example.com"
    ticket = service.create_ticket(
        session=db,
        actor=agent,
        kind="inquiry",
        priority="urgent",
        subject="刷卡失败",
        contact_name="张三",
        contact_phone="028-85551234",
    )
    assert service.sla_scan(session=db, actor=agent) == []
    freeze(at("2026-11-23", "10:31"))  # urgent: first response within 30 minutes
    found = service.sla_scan(session=db, actor=agent)
    assert [b.target for b in found] == ["first_response"]
    assert service.sla_scan(session=db, actor=agent) == []  # once per deadline
    mail = db.scalars(
        select(OutboxMessage).where(OutboxMessage.recipient == "boss@example.com")
    ).one()
    assert ticket.number in mail.body and "超过" in mail.body
    freeze(at("2026-11-23", "14:01"))  # solution within 240 minutes
    assert [b.target for b in service.sla_scan(session=db, actor=agent)] == ["solution"]
    rows = db.scalars(select(SlaBreach).where(SlaBreach.ticket_id == ticket.id)).all()
    assert len(rows) == 2
    listed = service.search_tickets(session=db, actor=agent, breached=True)
    assert ticket in listed


def test_closing_sends_a_survey_answered_once(
    client: TestClient, db: Session, monday: datetime
) -> None:
    headers = bearer(db, make_user(db, "call_agent"))
    tid = client.post("/api/v1/tickets", json=BODY, headers=headers).json()["id"]
    for state in ("resolved", "closed"):
        client.post(f"/api/v1/tickets/{tid}/transition", json={"state": state}, headers=headers)
    survey = db.scalars(select(Survey).where(Survey.ticket_id == tid)).one()
    assert survey.sent_via == "sms"
    sms = db.scalars(
        select(OutboxMessage).where(
            OutboxMessage.ref == f"ticket:{tid}", OutboxMessage.body.like("%/survey/%")
        )
    ).one()
    assert survey.token in sms.body
    info = client.get(f"/api/v1/tickets/{tid}/survey", headers=headers).json()
    assert info["url"].endswith(survey.token) and info["answered_at"] is None
    answer = client.post(f"/api/v1/surveys/{survey.token}", json={"score": 5, "comment": "快"})
    assert answer.status_code == 200, answer.text
    again = client.post(f"/api/v1/surveys/{survey.token}", json={"score": 1})
    assert again.status_code == 409
    assert "already answered" in again.json()["detail"]
    db.refresh(survey)
    assert survey.score == 5
    bad = client.post("/api/v1/surveys/not-a-real-token-at-all", json={"score": 3})
    assert bad.status_code == 404


def test_assign_to_team_and_person(client: TestClient, db: Session, monday: datetime) -> None:
    boss = make_user(db, "call_supervisor")
    after_sales = make_user(db, "after_sales_specialist")
    team = service.create_team(session=db, actor=boss, code="after-sales", name="售后服务处")
    service.add_team_member(session=db, actor=boss, team_id=team.id, user_id=after_sales.id)
    headers = bearer(db, boss)
    tid = client.post("/api/v1/tickets", json=BODY, headers=headers).json()["id"]
    outsider = make_user(db, "call_agent")
    wrong = client.post(
        f"/api/v1/tickets/{tid}/assign",
        json={"team_id": team.id, "assignee_id": outsider.id},
        headers=headers,
    )
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "assignee_id"
    done = client.post(
        f"/api/v1/tickets/{tid}/assign",
        json={"team_id": team.id, "assignee_id": after_sales.id},
        headers=headers,
    )
    assert done.status_code == 200, done.text
    assert done.json()["assignee_id"] == after_sales.id and done.json()["state"] == "open"
    mine = client.get(f"/api/v1/tickets?assignee_id={after_sales.id}", headers=headers).json()
    assert [t["id"] for t in mine] == [tid]


def test_add_event_for_other_domains(db: Session, monday: datetime) -> None:
    agent = make_user(db, "call_agent")
    ticket = service.create_ticket(
        session=db,
        actor=agent,
        kind="fault",
        subject="x",
        contact_name="a",
        contact_phone="13800138000",
    )
    event = service.add_event(db, ticket, agent, "repair", "送厂维修 RMA-1", data={"rma": 1})
    assert event in service.ticket_events(db, ticket)


def test_attachment_is_stored_by_content(client: TestClient, db: Session, monday: datetime) -> None:
    headers = bearer(db, make_user(db, "call_agent"))
    tid = client.post("/api/v1/tickets", json=BODY, headers=headers).json()["id"]
    response = client.post(
        f"/api/v1/tickets/{tid}/attachments",
        files={"file": ("screen.png", b"\x89PNG\r\n\x1a\nscreen", "image/png")},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    assert len(response.json()["sha256"]) == 64
    empty = client.post(
        f"/api/v1/tickets/{tid}/attachments",
        files={"file": ("e.txt", b"", "text/plain")},
        headers=headers,
    )
    assert empty.status_code == 422


def test_update_target_restarts_with_each_reply(db: Session, monday: datetime) -> None:
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
    assert ticket.update_due is None  # starts with the first response
    freeze(at("2026-11-23", "10:30"))
    service.reply(session=db, actor=agent, ticket_id=ticket.id, text="正在处理")
    assert ticket.update_due == at("2026-11-23", "12:30")  # high: an update every 120 minutes
    freeze(at("2026-11-23", "12:00"))
    service.reply(session=db, actor=agent, ticket_id=ticket.id, text="仍在处理")
    assert ticket.update_due == at("2026-11-23", "14:00")
    freeze(at("2026-11-23", "14:01"))
    assert [b.target for b in service.sla_scan(session=db, actor=agent)] == ["update"]
    service.transition(session=db, actor=agent, ticket_id=ticket.id, state="resolved")
    assert ticket.update_due is None and ticket.resolved_at is not None


def test_cli_sla_scan_and_list(db: Session, monday: datetime) -> None:
    from typer.testing import CliRunner

    from cardops.servicedesk.cli import app as cli

    agent = make_user(db, "call_agent")
    service.create_ticket(
        session=db,
        actor=agent,
        kind="inquiry",
        priority="urgent",
        subject="CLI 工单",
        contact_name="a",
        contact_phone="13800138000",
    )
    runner = CliRunner()
    listed = runner.invoke(cli, ["list", "--open"])
    assert listed.exit_code == 0 and "CLI" in listed.output
    freeze(at("2026-11-23", "10:45"))
    scanned = runner.invoke(cli, ["sla-scan"])
    assert scanned.exit_code == 0, scanned.output
    assert "1 new breaches escalated" in scanned.output
    assert db.scalars(select(SlaBreach)).all()
    bad = runner.invoke(cli, ["list", "--state", "bogus"])
    assert bad.exit_code != 0


def test_satisfaction_results_per_agent_team_and_kind(
    client: TestClient, db: Session, monday: datetime
) -> None:
    boss = make_user(db, "call_supervisor")
    agent = make_user(db, "call_agent")
    team = service.create_team(session=db, actor=boss, code="desk", name="400 呼叫中心")
    service.add_team_member(session=db, actor=boss, team_id=team.id, user_id=agent.id)
    scores = {"fault": 5, "inquiry": 3}
    for kind, score in scores.items():
        ticket = service.create_ticket(
            session=db,
            actor=agent,
            kind=kind,
            subject=kind,
            contact_name="a",
            contact_phone="13800138000",
            team_id=team.id,
            assignee_id=agent.id,
        )
        service.reply(session=db, actor=agent, ticket_id=ticket.id, text="好的")
        service.transition(session=db, actor=agent, ticket_id=ticket.id, state="resolved")
        service.transition(session=db, actor=agent, ticket_id=ticket.id, state="closed")
        survey = service.ticket_survey(db, ticket)
        assert survey is not None
        service.answer_survey(session=db, token=survey.token, score=score)
    report = client.get("/api/v1/servicedesk/report", headers=bearer(db, boss)).json()
    assert report["satisfaction"]["by_kind"] == {"fault": 5.0, "inquiry": 3.0}
    assert report["satisfaction"]["by_team"] == {"400 呼叫中心": 4.0}
    assert report["satisfaction"]["by_agent"] == {agent.display_name: 4.0}
    mine = next(a for a in report["agents"] if a["user_id"] == agent.id)
    assert mine["handled"] == 2 and mine["resolved"] == 2 and mine["satisfaction"] == 4.0
    assert mine["sla_met"] == 2 and mine["sla_total"] == 2
    assert report["sla"]["first_response"] == {"met": 2, "total": 2, "percent": 100.0}
