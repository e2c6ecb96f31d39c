"""REST API: tickets (/api/v1/tickets) and the public survey answer (/api/v1/surveys)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Path, Query, UploadFile
from sqlalchemy.orm import Session

from cardops.auth.service import require
from cardops.core.config import get_settings
from cardops.core.errors import ValidationFailed
from cardops.servicedesk import reports, service
from cardops.servicedesk.models import Callback, Survey, Ticket, TicketEvent
from cardops.servicedesk.permissions import TICKETS_VIEW
from cardops.servicedesk.schemas import (
    AssignIn,
    CallbackIn,
    CallbackOut,
    ComplaintStepIn,
    ContactOut,
    DocumentOut,
    EventOut,
    MergeIn,
    ReplyIn,
    SurveyAnswerIn,
    SurveyOut,
    TextIn,
    TicketIn,
    TicketOut,
    TransitionIn,
)
from cardops.web.deps import DB, ApiUser, RecordId

router = APIRouter(tags=["servicedesk"])


def ticket_out(ticket: Ticket) -> TicketOut:
    view = service.sla_view(ticket)
    nearest = view.nearest
    return TicketOut(
        id=ticket.id,
        number=ticket.number,
        kind=ticket.kind,
        priority=ticket.priority,
        state=ticket.state,
        channel=ticket.channel,
        subject=ticket.subject,
        description=ticket.description,
        contact=ContactOut(
            name=ticket.contact_name,
            phone=ticket.contact_phone,
            email=ticket.contact_email,
            party_id=ticket.party_id,
        ),
        serial=ticket.serial,
        card_number=ticket.card_number,
        terminal_id=ticket.terminal_id,
        fault_type=ticket.fault_type,
        team_id=ticket.team_id,
        assignee_id=ticket.assignee_id,
        merged_into_id=ticket.merged_into_id,
        created_at=ticket.created_at,
        first_response_due=view.get("first_response").due,
        first_response_breached=view.get("first_response").breached,
        first_responded_at=ticket.first_responded_at,
        update_due=view.get("update").due,
        update_breached=view.get("update").breached,
        solution_due=view.get("solution").due,
        solution_breached=view.get("solution").breached,
        sla_paused=view.paused,
        nearest_due=nearest.due if nearest else None,
        resolved_at=ticket.resolved_at,
        closed_at=ticket.closed_at,
        complaint_stage=ticket.complaint_stage,
        investigation=ticket.investigation,
        result=ticket.result,
        close_reason=ticket.close_reason,
        first_contact_resolution=ticket.first_contact_resolution,
    )


def event_out(event: TicketEvent) -> EventOut:
    return EventOut(
        id=event.id,
        at=event.at,
        kind=event.kind,
        actor_id=event.actor_id,
        public=event.public,
        text=event.text,
        data=event.data or {},
    )


def callback_out(callback: Callback) -> CallbackOut:
    return CallbackOut(
        id=callback.id,
        at=callback.at,
        actor_id=callback.actor_id,
        outcome=callback.outcome,
        note=callback.note,
    )


def survey_out(survey: Survey, *, with_url: bool) -> SurveyOut:
    return SurveyOut(
        ticket_id=survey.ticket_id,
        sent_at=survey.sent_at,
        sent_via=survey.sent_via,
        answered_at=survey.answered_at,
        score=survey.score,
        comment=survey.comment,
        url=f"{service.public_url()}/survey/{survey.token}" if with_url else None,
    )


def _ticket(db: Session, user: ApiUser, ticket_id: int) -> Ticket:
    require(user, TICKETS_VIEW)
    return service.get_ticket(session=db, ticket_id=ticket_id)


@router.get("/tickets", response_model=list[TicketOut])
def list_tickets(
    db: DB,
    user: ApiUser,
    q: str | None = Query(None, max_length=100),
    kind: str | None = Query(None, max_length=16),
    state: str | None = Query(None, max_length=20),
    priority: str | None = Query(None, max_length=8),
    team_id: int | None = Query(None, ge=1, le=2_147_483_647),
    assignee_id: int | None = Query(None, ge=1, le=2_147_483_647),
    breached: bool = False,
    open_only: bool = False,
    limit: int = Query(50, ge=1, le=200),
    offset: int = Query(0, ge=0, le=10_000_000),
) -> list[TicketOut]:
    rows = service.search_tickets(
        session=db,
        actor=user,
        q=q or "",
        kind=kind,
        state=state,
        priority=priority,
        team_id=team_id,
        assignee_id=assignee_id,
        breached=breached,
        open_only=open_only,
        limit=limit,
        offset=offset,
    )
    return [ticket_out(t) for t in rows]


@router.post("/tickets", response_model=TicketOut, status_code=201)
def create_ticket(db: DB, user: ApiUser, body: TicketIn) -> TicketOut:
    contact = body.contact
    ticket = service.create_ticket(
        session=db,
        actor=user,
        kind=body.kind,
        priority=body.priority,
        subject=body.subject,
        description=body.description,
        contact_name=(contact.name or "") if contact else "",
        contact_phone=(contact.phone or "") if contact else "",
        contact_email=(contact.email or "") if contact else "",
        party_id=contact.party_id if contact else None,
        serial=body.serial,
        card_number=body.card_number,
        fault_type=body.fault_type,
        channel=body.channel,
        team_id=body.team_id,
        assignee_id=body.assignee_id,
    )
    db.commit()
    return ticket_out(ticket)


@router.get("/tickets/{ticket_id}", response_model=TicketOut)
def get_ticket(db: DB, user: ApiUser, ticket_id: RecordId) -> TicketOut:
    return ticket_out(_ticket(db, user, ticket_id))


@router.get("/tickets/{ticket_id}/events", response_model=list[EventOut])
def ticket_events(db: DB, user: ApiUser, ticket_id: RecordId) -> list[EventOut]:
    ticket = _ticket(db, user, ticket_id)
    return [event_out(e) for e in service.ticket_events(db, ticket)]


@router.post("/tickets/{ticket_id}/replies", response_model=EventOut, status_code=201)
def reply(db: DB, user: ApiUser, ticket_id: RecordId, body: ReplyIn) -> EventOut:
    event = service.reply(
        session=db, actor=user, ticket_id=ticket_id, text=body.text, pending=body.pending
    )
    db.commit()
    return event_out(event)


@router.post("/tickets/{ticket_id}/notes", response_model=EventOut, status_code=201)
def note(db: DB, user: ApiUser, ticket_id: RecordId, body: TextIn) -> EventOut:
    event = service.add_note(session=db, actor=user, ticket_id=ticket_id, text=body.text)
    db.commit()
    return event_out(event)


@router.post("/tickets/{ticket_id}/assign", response_model=TicketOut)
def assign(db: DB, user: ApiUser, ticket_id: RecordId, body: AssignIn) -> TicketOut:
    ticket = service.assign(
        session=db,
        actor=user,
        ticket_id=ticket_id,
        team_id=body.team_id,
        assignee_id=body.assignee_id,
    )
    db.commit()
    return ticket_out(ticket)


@router.post("/tickets/{ticket_id}/transition", response_model=TicketOut)
def transition(db: DB, user: ApiUser, ticket_id: RecordId, body: TransitionIn) -> TicketOut:
    ticket = service.transition(
        session=db, actor=user, ticket_id=ticket_id, state=body.state, reason=body.reason
    )
    db.commit()
    return ticket_out(ticket)


@router.post("/tickets/{ticket_id}/merge", response_model=TicketOut)
def merge(db: DB, user: ApiUser, ticket_id: RecordId, body: MergeIn) -> TicketOut:
    survivor = service.merge(session=db, actor=user, ticket_id=ticket_id, into_id=body.into_id)
    db.commit()
    return ticket_out(survivor)


@router.post("/tickets/{ticket_id}/complaint", response_model=TicketOut)
def complaint_step(db: DB, user: ApiUser, ticket_id: RecordId, body: ComplaintStepIn) -> TicketOut:
    ticket = service.complaint_step(
        session=db, actor=user, ticket_id=ticket_id, stage=body.stage, text=body.text
    )
    db.commit()
    return ticket_out(ticket)


@router.get("/tickets/{ticket_id}/callbacks", response_model=list[CallbackOut])
def list_callbacks(db: DB, user: ApiUser, ticket_id: RecordId) -> list[CallbackOut]:
    ticket = _ticket(db, user, ticket_id)
    return [callback_out(c) for c in service.callbacks(db, ticket)]


@router.post("/tickets/{ticket_id}/callbacks", response_model=CallbackOut, status_code=201)
def record_callback(db: DB, user: ApiUser, ticket_id: RecordId, body: CallbackIn) -> CallbackOut:
    callback = service.record_callback(
        session=db, actor=user, ticket_id=ticket_id, outcome=body.outcome, note=body.note
    )
    db.commit()
    return callback_out(callback)


@router.post("/tickets/{ticket_id}/attachments", response_model=DocumentOut, status_code=201)
def attach(
    db: DB,
    user: ApiUser,
    ticket_id: RecordId,
    file: Annotated[UploadFile, File(description="the file")],
    note: Annotated[str, Form(max_length=500)] = "",
) -> DocumentOut:
    data = file.file.read(get_settings().documents_max_bytes + 1)
    document = service.attach(
        session=db,
        actor=user,
        ticket_id=ticket_id,
        filename=file.filename or "",
        data=data,
        content_type=file.content_type,
        note=note,
    )
    db.commit()
    return DocumentOut(
        id=document.id,
        filename=document.filename,
        content_type=document.content_type,
        size=document.size,
        sha256=document.sha256,
    )


@router.get("/tickets/{ticket_id}/survey", response_model=SurveyOut)
def ticket_survey(db: DB, user: ApiUser, ticket_id: RecordId) -> SurveyOut:
    ticket = _ticket(db, user, ticket_id)
    survey = service.ticket_survey(db, ticket)
    if survey is None:
        raise ValidationFailed(
            "No survey was sent for this ticket yet (it is sent when the ticket is closed).",
            field="ticket_id",
        )
    return survey_out(survey, with_url=True)


@router.get("/servicedesk/report")
def report(
    db: DB,
    user: ApiUser,
    start: str = Query("", max_length=10),
    end: str = Query("", max_length=10),
) -> dict[str, Any]:
    """The service report as JSON (same figures as the console page and the Excel file)."""
    data = reports.build(db, user, *reports.period(start, end))
    return {
        "start": data.start.isoformat(),
        "end": data.end.isoformat(),
        "total": data.total,
        "by_kind_state": {k: dict(v) for k, v in data.by_kind_state.items()},
        "open_by_age": {k: dict(v) for k, v in data.age.items()},
        "sla": {
            k: {"met": r.met, "total": r.total, "percent": r.percent} for k, r in data.sla.items()
        },
        "first_contact_resolution": {
            "met": data.fcr.met,
            "total": data.fcr.total,
            "percent": data.fcr.percent,
        },
        "repair_turnaround": [
            {"route": r, "cases": n, "median_hours": med, "average_hours": avg}
            for r, n, med, avg in data.repair_turnaround
        ],
        "top_faults": [{"model": m, "fault": f, "count": n} for m, f, n in data.faults],
        "satisfaction": {
            "by_kind": {k: reports.Report.average(v) for k, v in data.satisfaction_kind.items()},
            "by_team": {k: reports.Report.average(v) for k, v in data.satisfaction_team.items()},
            "by_agent": {k: reports.Report.average(v) for k, v in data.satisfaction_agent.items()},
        },
        "agents": [
            {
                "user_id": a.user_id,
                "name": a.name,
                "handled": a.handled,
                "resolved": a.resolved,
                "sla_met": a.sla.met,
                "sla_total": a.sla.total,
                "satisfaction": a.satisfaction,
            }
            for a in data.agents
        ],
    }


@router.post("/surveys/{token}", response_model=SurveyOut)
def answer_survey(
    db: DB, token: Annotated[str, Path(max_length=64)], body: SurveyAnswerIn
) -> SurveyOut:
    """Public (no sign-in): the customer's answer through the token of the survey link."""
    survey = service.answer_survey(session=db, token=token, score=body.score, comment=body.comment)
    db.commit()
    return survey_out(survey, with_url=False)
