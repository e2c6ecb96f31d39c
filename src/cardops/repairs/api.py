"""REST API for integrators: repair cases (/api/v1/repairs), RMA batches
(/api/v1/rma-batches) and field visits (/api/v1/visits, with the printable PDF)."""

from __future__ import annotations

from fastapi import APIRouter, Query
from fastapi.responses import Response
from sqlalchemy.orm import Session

from cardops.repairs import service
from cardops.repairs.models import FieldVisit, RepairCase, RepairEvent, Replacement, RmaBatch
from cardops.repairs.pdf import render_visit_pdf
from cardops.repairs.schemas import (
    ArriveIn,
    BatchOut,
    CaseOut,
    CheckOut,
    CompleteIn,
    DecideIn,
    EventOut,
    FinishIn,
    InspectIn,
    IntakeIn,
    LoanerIn,
    NoteIn,
    ReasonIn,
    ReceiveIn,
    ReplacementCaseIn,
    ReplacementOut,
    ReturnIn,
    SendIn,
    SignIn,
    VisitIn,
    VisitOut,
)
from cardops.terminals.models import Terminal
from cardops.web.deps import DB, ApiUser, RecordId

router = APIRouter(tags=["repairs"])


def _event_out(e: RepairEvent) -> EventOut:
    return EventOut(
        at=e.at,
        kind=e.kind,
        from_state=e.from_state,
        to_state=e.to_state,
        actor_id=e.actor_id,
        comment=e.comment,
        data=e.data or {},
    )


def _replacement_out(r: Replacement) -> ReplacementOut:
    return ReplacementOut(
        kind=r.kind,
        device_name=r.device_name,
        quantity=r.quantity,
        old_serial=r.old_serial,
        new_serial=r.new_serial,
        at=r.at,
    )


def _serial(db: Session, terminal_id: int | None) -> str | None:
    unit = db.get(Terminal, terminal_id) if terminal_id else None
    return unit.serial if unit is not None else None


def case_out(db: Session, case: RepairCase, *, full: bool = True) -> CaseOut:
    return CaseOut(
        id=case.id,
        number=case.number,
        state=case.state,
        ticket_id=case.ticket_id,
        serial=case.serial,
        model_id=case.model_id,
        provider_id=case.provider_id,
        merchant_id=case.merchant_id,
        fault_code=case.fault_code,
        fault_description=case.fault_description,
        appearance=case.appearance,
        accessories=list(case.accessories or []),
        brought_by_name=case.brought_by_name,
        received_at=case.received_at,
        findings=case.findings,
        inspected_fault_code=case.inspected_fault_code,
        under_warranty=case.under_warranty,
        estimate=case.estimate,
        route=case.route,
        rma_batch_id=case.rma_batch_id,
        repaired_at=case.repaired_at,
        loaner_serial=_serial(db, case.loaner_terminal_id),
        loaner_out=case.loaner_out,
        replacement_serial=_serial(db, case.replacement_terminal_id),
        return_to=case.return_to,
        returned_at=case.returned_at,
        closed_at=case.closed_at,
        events=[_event_out(e) for e in service.case_events(db, case)] if full else [],
        replacements=[_replacement_out(r) for r in service.case_replacements(db, case)]
        if full
        else [],
    )


def batch_out(db: Session, batch: RmaBatch) -> BatchOut:
    return BatchOut(
        id=batch.id,
        number=batch.number,
        supplier_id=batch.supplier_id,
        state=batch.state,
        carrier=batch.carrier,
        tracking_number=batch.tracking_number,
        sent_at=batch.sent_at,
        received_at=batch.received_at,
        cases=[c.number for c in service.batch_cases(db, batch)],
    )


def visit_out(db: Session, visit: FieldVisit) -> VisitOut:
    return VisitOut(
        id=visit.id,
        number=visit.number,
        state=visit.state,
        mode=visit.mode,
        ticket_id=visit.ticket_id,
        registration_number=visit.registration_number,
        merchant_id=visit.merchant_id,
        customer_name=visit.customer_name,
        address=visit.address,
        contact_name=visit.contact_name,
        contact_phone=visit.contact_phone,
        service_type=visit.service_type,
        warranty=visit.warranty,
        serial=visit.serial,
        scheduled_at=visit.scheduled_at,
        technician_id=visit.technician_id,
        arrived_at=visit.arrived_at,
        departed_at=visit.departed_at,
        problem=visit.problem,
        work_notes=visit.work_notes,
        device_ok=visit.device_ok,
        satisfaction=visit.satisfaction,
        signed_name=visit.signed_name,
        signature_document_id=visit.signature_document_id,
        signed_at=visit.signed_at,
        checks=[
            CheckOut(item_code=c.item_code, label=c.label, checked=c.checked, note=c.note)
            for c in service.visit_checks(db, visit)
        ],
        replacements=[_replacement_out(r) for r in service.visit_replacements(db, visit)],
        events=[_event_out(e) for e in service.visit_events(db, visit)],
    )


# --- repair cases ---------------------------------------------------------------------------


@router.get("/repairs", response_model=list[CaseOut])
def list_cases(
    db: DB,
    user: ApiUser,
    state: str | None = Query(None, max_length=20),
    q: str | None = Query(None, max_length=40),
    ticket_id: int | None = Query(None, ge=1, le=2_147_483_647),
    limit: int = Query(50, ge=1, le=200),
    offset: int = Query(0, ge=0, le=10_000_000),
) -> list[CaseOut]:
    rows = service.list_cases(
        session=db,
        actor=user,
        state=state,
        q=q,
        ticket_id=ticket_id,
        limit=limit,
        offset=offset,
    )
    return [case_out(db, c, full=False) for c in rows]


@router.post("/repairs", response_model=CaseOut, status_code=201)
def intake(db: DB, user: ApiUser, body: IntakeIn) -> CaseOut:
    case = service.intake(session=db, actor=user, **body.model_dump())
    db.commit()
    return case_out(db, case)


@router.get("/repairs/{case_id}", response_model=CaseOut)
def get_case(db: DB, user: ApiUser, case_id: RecordId) -> CaseOut:
    return case_out(db, service.get_case(session=db, case_id=case_id, actor=user))


@router.post("/repairs/{case_id}/inspect", response_model=CaseOut)
def inspect(db: DB, user: ApiUser, case_id: RecordId, body: InspectIn) -> CaseOut:
    case = service.inspect(session=db, actor=user, case_id=case_id, **body.model_dump())
    db.commit()
    return case_out(db, case)


@router.post("/repairs/{case_id}/decide", response_model=CaseOut)
def decide(db: DB, user: ApiUser, case_id: RecordId, body: DecideIn) -> CaseOut:
    case = service.decide(session=db, actor=user, case_id=case_id, **body.model_dump())
    db.commit()
    return case_out(db, case)


@router.post("/repairs/{case_id}/finish", response_model=CaseOut)
def finish(db: DB, user: ApiUser, case_id: RecordId, body: FinishIn) -> CaseOut:
    case = service.finish_repair(session=db, actor=user, case_id=case_id, notes=body.notes)
    db.commit()
    return case_out(db, case)


@router.post("/repairs/{case_id}/remove-from-batch", response_model=CaseOut)
def remove_from_batch(db: DB, user: ApiUser, case_id: RecordId) -> CaseOut:
    case = service.remove_from_batch(session=db, actor=user, case_id=case_id)
    db.commit()
    return case_out(db, case)


@router.post("/repairs/{case_id}/loaner", response_model=CaseOut)
def lend_loaner(db: DB, user: ApiUser, case_id: RecordId, body: LoanerIn) -> CaseOut:
    case = service.lend_loaner(session=db, actor=user, case_id=case_id, serial=body.serial)
    db.commit()
    return case_out(db, case)


@router.post("/repairs/{case_id}/loaner/back", response_model=CaseOut)
def loaner_back(db: DB, user: ApiUser, case_id: RecordId) -> CaseOut:
    case = service.loaner_back(session=db, actor=user, case_id=case_id)
    db.commit()
    return case_out(db, case)


@router.post("/repairs/{case_id}/replacements", response_model=CaseOut, status_code=201)
def record_replacement(
    db: DB, user: ApiUser, case_id: RecordId, body: ReplacementCaseIn
) -> CaseOut:
    service.record_replacement(session=db, actor=user, case_id=case_id, **body.model_dump())
    db.commit()
    return case_out(db, service.get_case(session=db, case_id=case_id, actor=user))


@router.post("/repairs/{case_id}/return", response_model=CaseOut)
def return_unit(db: DB, user: ApiUser, case_id: RecordId, body: ReturnIn) -> CaseOut:
    case = service.return_unit(session=db, actor=user, case_id=case_id, **body.model_dump())
    db.commit()
    return case_out(db, case)


@router.post("/repairs/{case_id}/close", response_model=CaseOut)
def close_case(db: DB, user: ApiUser, case_id: RecordId, body: NoteIn) -> CaseOut:
    case = service.close_case(session=db, actor=user, case_id=case_id, note=body.note)
    db.commit()
    return case_out(db, case)


# --- RMA batches ----------------------------------------------------------------------------


@router.get("/rma-batches", response_model=list[BatchOut])
def list_batches(
    db: DB, user: ApiUser, state: str | None = Query(None, max_length=12)
) -> list[BatchOut]:
    return [batch_out(db, b) for b in service.list_batches(session=db, actor=user, state=state)]


@router.get("/rma-batches/{batch_id}", response_model=BatchOut)
def get_batch(db: DB, user: ApiUser, batch_id: RecordId) -> BatchOut:
    return batch_out(db, service.get_batch(session=db, batch_id=batch_id, actor=user))


@router.post("/rma-batches/{batch_id}/send", response_model=BatchOut)
def send_batch(db: DB, user: ApiUser, batch_id: RecordId, body: SendIn) -> BatchOut:
    batch = service.send_batch(session=db, actor=user, batch_id=batch_id, **body.model_dump())
    db.commit()
    return batch_out(db, batch)


@router.post("/rma-batches/{batch_id}/receive", response_model=BatchOut)
def receive_batch(db: DB, user: ApiUser, batch_id: RecordId, body: ReceiveIn) -> BatchOut:
    batch = service.receive_batch(session=db, actor=user, batch_id=batch_id, serials=body.serials)
    db.commit()
    return batch_out(db, batch)


# --- field visits ---------------------------------------------------------------------------


@router.get("/visits", response_model=list[VisitOut])
def list_visits(
    db: DB,
    user: ApiUser,
    state: str | None = Query(None, max_length=12),
    q: str | None = Query(None, max_length=64),
    limit: int = Query(50, ge=1, le=200),
    offset: int = Query(0, ge=0, le=10_000_000),
) -> list[VisitOut]:
    rows = service.list_visits(session=db, actor=user, state=state, q=q, limit=limit, offset=offset)
    return [visit_out(db, v) for v in rows]


@router.post("/visits", response_model=VisitOut, status_code=201)
def schedule_visit(db: DB, user: ApiUser, body: VisitIn) -> VisitOut:
    visit = service.schedule_visit(session=db, actor=user, **body.model_dump())
    db.commit()
    return visit_out(db, visit)


@router.get("/visits/{visit_id}", response_model=VisitOut)
def get_visit(db: DB, user: ApiUser, visit_id: RecordId) -> VisitOut:
    return visit_out(db, service.get_visit(session=db, visit_id=visit_id, actor=user))


@router.post("/visits/{visit_id}/arrive", response_model=VisitOut)
def arrive(db: DB, user: ApiUser, visit_id: RecordId, body: ArriveIn) -> VisitOut:
    visit = service.arrive(session=db, actor=user, visit_id=visit_id, at=body.at)
    db.commit()
    return visit_out(db, visit)


@router.post("/visits/{visit_id}/complete", response_model=VisitOut)
def complete(db: DB, user: ApiUser, visit_id: RecordId, body: CompleteIn) -> VisitOut:
    visit = service.complete_visit(
        session=db,
        actor=user,
        visit_id=visit_id,
        work_notes=body.work_notes,
        problem=body.problem,
        departed_at=body.departed_at,
        checks=[service.CheckIn(c.code, c.checked, c.note) for c in body.checks],
        replacements=[
            service.ReplacementIn(r.kind, r.device_name, r.quantity, r.old_serial, r.new_serial)
            for r in body.replacements
        ],
        device_ok=body.device_ok,
        other_issues=body.other_issues,
    )
    db.commit()
    return visit_out(db, visit)


@router.post("/visits/{visit_id}/sign", response_model=VisitOut)
def sign(db: DB, user: ApiUser, visit_id: RecordId, body: SignIn) -> VisitOut:
    visit = service.sign_off(
        session=db,
        actor=user,
        visit_id=visit_id,
        signed_name=body.signed_name,
        signature_png=service.decode_signature(body.signature),
        satisfaction=body.satisfaction,
        satisfaction_note=body.satisfaction_note,
    )
    db.commit()
    return visit_out(db, visit)


@router.post("/visits/{visit_id}/cancel", response_model=VisitOut)
def cancel(db: DB, user: ApiUser, visit_id: RecordId, body: ReasonIn) -> VisitOut:
    visit = service.cancel_visit(session=db, actor=user, visit_id=visit_id, reason=body.reason)
    db.commit()
    return visit_out(db, visit)


@router.get("/visits/{visit_id}/pdf")
def visit_pdf(db: DB, user: ApiUser, visit_id: RecordId) -> Response:
    visit = service.get_visit(session=db, visit_id=visit_id, actor=user)
    return Response(
        render_visit_pdf(db, visit),
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{visit.number}.pdf"'},
    )
