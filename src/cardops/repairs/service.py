"""The repair workshop (故障机检测流程) and field service records (客户服务记录表).

The only code that changes repair cases, RMA batches and field visits. Public functions take
keyword-only arguments, a session and the acting user; they check the permission first, record
an audit entry and never commit.

Every step of a repair case moves the unit through :func:`cardops.terminals.service.move` (or
writes a history line with :func:`~cardops.terminals.service.note_event`), so the terminals'
stock and history follow the case:

=====================  =====================================================================
case step              unit
=====================  =====================================================================
intake                 at provider / installed / activated / in stock → faulty, HQ warehouse
inspection             history line
in-house repair        faulty → in repair; repair finished: history line
no fault found         faulty → in repair (ready to hand back)
RMA batch sent         faulty / in repair → returned to factory, at the factory
RMA batch back         returned to factory → in repair, HQ warehouse
whole-unit replacement the new unit: in stock → allocated (reserved for the case)
return                 in repair → where it came from (provider, merchant, stock); a
                       replacement: allocated → at provider / installed
loaner                 in stock → on loan at the provider / merchant → back in stock
=====================  =====================================================================
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from cardops.audit.service import record
from cardops.auth.models import User
from cardops.auth.service import require
from cardops.channel.models import Provider
from cardops.channel.service import visible_provider_ids
from cardops.core.clock import as_utc, utcnow
from cardops.core.errors import (
    Conflict,
    FieldErrors,
    InvalidTransition,
    NotFound,
    ValidationFailed,
)
from cardops.core.i18n import N_
from cardops.core.models import next_number
from cardops.merchants.models import Merchant
from cardops.parties import service as parties
from cardops.parties.models import Document
from cardops.repairs.models import (
    ACCESSORIES,
    DEFAULT_CHECKLIST,
    FAULT_TYPES,
    OPEN_REPAIR_STATES,
    REPLACEMENT_KINDS,
    RETURN_TARGETS,
    SATISFACTION,
    SERVICE_TYPES,
    VISIT_MODES,
    WARRANTY_STATES,
    ChecklistItem,
    FieldVisit,
    RepairCase,
    RepairEvent,
    RepairState,
    Replacement,
    RmaBatch,
    VisitCheck,
    VisitState,
)
from cardops.repairs.permissions import (
    CHECKLIST_MANAGE,
    REPAIRS_INSPECT,
    REPAIRS_INTAKE,
    REPAIRS_MANAGE,
    REPAIRS_RMA,
    REPAIRS_VIEW,
    VISITS_EDIT,
)
from cardops.terminals import service as terminals
from cardops.terminals.models import Location, Terminal, TerminalState

MAX_PAGE = 200
MAX_ESTIMATE = 100_000_000  # fen (one million yuan): anything above is a typing error
MAX_SIGNATURE_BYTES = 300_000
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
INTAKE_STATES = (
    TerminalState.AT_PROVIDER.value,
    TerminalState.INSTALLED.value,
    TerminalState.ACTIVATED.value,
    TerminalState.IN_STOCK.value,
    TerminalState.FAULTY.value,
)
SWAP_OUT_STATES = (
    TerminalState.INSTALLED.value,
    TerminalState.ACTIVATED.value,
    TerminalState.AT_PROVIDER.value,
)
EVENT_LABELS: dict[str, str] = {
    "received": N_("Received with the appraisal form"),
    "inspected": N_("Inspected"),
    "repair_started": N_("In-house repair started"),
    "repaired": N_("Repaired in-house"),
    "no_repair": N_("No repair needed"),
    "rma_queued": N_("Put on an RMA batch"),
    "rma_removed": N_("Taken off the RMA batch"),
    "rma_sent": N_("Sent to the factory"),
    "rma_back": N_("Back from the factory"),
    "loaner_out": N_("Loaner lent"),
    "loaner_back": N_("Loaner returned"),
    "replacement": N_("Replacement recorded"),
    "returned": N_("Returned"),
    "closed": N_("Closed"),
    "scheduled": N_("Visit scheduled"),
    "arrived": N_("Arrived on site"),
    "completed": N_("Work recorded"),
    "signed": N_("Signed off by the customer"),
    "cancelled": N_("Cancelled"),
}

_PHONE = re.compile(r"^\+?[0-9][0-9 ()-]{4,30}$")
_CODE = re.compile(r"^[a-z][a-z0-9_]{1,31}$")


# --- small helpers ------------------------------------------------------------------------


def _text(
    value: str | None,
    *,
    field: str,
    max_length: int,
    required: bool = False,
    multiline: bool = False,
) -> str:
    text = parties.plain_text(value, multiline=multiline)
    if not multiline:
        text = " ".join(text.split())
    if required and not text:
        raise ValidationFailed("This field is required.", field=field)
    if len(text) > max_length:
        raise ValidationFailed("Too long: at most {n} characters.", field=field, n=max_length)
    return text


def _phone(value: str | None, *, field: str) -> str:
    text = " ".join(parties.plain_text(value).split())
    if text and not _PHONE.fullmatch(text):
        raise ValidationFailed(
            "Enter a telephone number: digits, optionally with +, spaces, brackets or hyphens.",
            field=field,
        )
    return text


def _choice(value: str | None, choices: dict[str, str], *, field: str) -> str:
    code = (value or "").strip()
    if code not in choices:
        raise ValidationFailed("Choose a value from the list.", field=field)
    return code


def _in_range(value: int | None) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value < 2**31


def _page(limit: int, offset: int) -> tuple[int, int]:
    return max(1, min(limit, MAX_PAGE)), max(0, min(offset, 10_000_000))


def _unit_by_serial(session: Session, serial: str | None, *, field: str) -> Terminal:
    """The unit with this serial, or a ValidationFailed naming the form field."""
    clean = " ".join(parties.plain_text(serial).split())
    if not clean:
        raise ValidationFailed("Enter the serial number (SN).", field=field)
    found = (
        session.execute(select(Terminal).where(Terminal.serial == clean)).scalar_one_or_none()
        if len(clean) <= 40
        else None
    )
    if found is None:
        raise ValidationFailed("No terminal with serial {serial}.", field=field, serial=clean[:40])
    return found


def _in_stock(session: Session, serial: str | None, *, field: str) -> Terminal:
    """A unit that is in stock at the HQ warehouse (a loaner or a replacement)."""
    unit = _unit_by_serial(session, serial, field=field)
    if unit.state != TerminalState.IN_STOCK.value or unit.location_id != (
        terminals.warehouse(session).id
    ):
        raise ValidationFailed(
            "Terminal {serial} is not in stock at the HQ warehouse (it is {state}); "
            "choose a unit that is in stock.",
            field=field,
            serial=unit.serial,
            state=unit.state,
        )
    return unit


def _ticket(session: Session, ticket_id: int | None, *, field: str = "ticket_id") -> Any:
    if ticket_id is None:
        return None
    from cardops.servicedesk.models import Ticket

    ticket = session.get(Ticket, ticket_id) if _in_range(ticket_id) else None
    if ticket is None:
        raise ValidationFailed("No ticket with number {id}.", field=field, id=ticket_id)
    return ticket


def find_ticket(session: Session, text: str | None) -> Any:
    """A ticket by its id or its number (as typed in a form); None when blank."""
    from cardops.servicedesk.models import Ticket

    clean = " ".join(parties.plain_text(text).split())
    if not clean:
        return None
    if clean.isdigit() and _in_range(int(clean)):
        found = session.get(Ticket, int(clean))
        if found is not None:
            return found
    found = session.execute(select(Ticket).where(Ticket.number == clean[:24])).scalar_one_or_none()
    if found is None:
        raise ValidationFailed("No ticket with number {id}.", field="ticket", id=clean[:24])
    return found


def _ticket_line(
    session: Session, actor: User, ticket_id: int | None, kind: str, text: str, **data: Any
) -> None:
    """Write a line onto the linked ticket's history (the service desk's thread)."""
    if ticket_id is None:
        return
    from cardops.servicedesk import service as servicedesk
    from cardops.servicedesk.models import Ticket

    ticket = session.get(Ticket, ticket_id)
    if ticket is not None:
        servicedesk.add_event(session, ticket, actor, kind, text, data=data)


def _event(
    session: Session,
    actor: User,
    *,
    kind: str,
    case: RepairCase | None = None,
    visit: FieldVisit | None = None,
    from_state: str | None = None,
    comment: str = "",
    **data: Any,
) -> RepairEvent:
    event = RepairEvent(
        case_id=case.id if case is not None else None,
        visit_id=visit.id if visit is not None else None,
        at=utcnow(),
        kind=kind,
        from_state=from_state,
        to_state=(case.state if case is not None else visit.state if visit is not None else None),
        actor_id=actor.id,
        comment=comment[:1000],
        data=data,
    )
    session.add(event)
    session.flush()
    return event


def _visible(session: Session, actor: User, provider_id: int | None) -> bool:
    visible = visible_provider_ids(session, actor)
    return visible is None or provider_id in visible


# --- repair cases: reading ------------------------------------------------------------------


def get_case(*, session: Session, case_id: int, actor: User | None = None) -> RepairCase:
    case = session.get(RepairCase, case_id) if _in_range(case_id) else None
    if case is None or (actor is not None and not _visible(session, actor, case.provider_id)):
        raise NotFound("No repair case with number {id}.", id=case_id)
    if actor is not None:
        require(actor, REPAIRS_VIEW)
    return case


def find_case(*, session: Session, actor: User, number: str) -> RepairCase:
    require(actor, REPAIRS_VIEW)
    clean = (number or "").strip()[:32]
    case = session.execute(
        select(RepairCase).where(RepairCase.number == clean)
    ).scalar_one_or_none()
    if case is None or not _visible(session, actor, case.provider_id):
        raise NotFound("No repair case with number {id}.", id=clean)
    return case


def list_cases(
    *,
    session: Session,
    actor: User,
    state: str | None = None,
    q: str | None = None,
    ticket_id: int | None = None,
    open_only: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> list[RepairCase]:
    """Repair cases, newest first; ``q`` matches the case number or a serial."""
    require(actor, REPAIRS_VIEW)
    limit, offset = _page(limit, offset)
    stmt = select(RepairCase).order_by(RepairCase.id.desc())
    visible = visible_provider_ids(session, actor)
    if visible is not None:
        stmt = stmt.where(RepairCase.provider_id.in_(visible))
    if state:
        stmt = stmt.where(RepairCase.state == state[:20])
    if open_only:
        stmt = stmt.where(RepairCase.state.in_(OPEN_REPAIR_STATES))
    if ticket_id is not None:
        stmt = stmt.where(RepairCase.ticket_id == ticket_id)
    text = " ".join(parties.plain_text(q).split())[:40]
    if text:
        stmt = stmt.where(
            or_(
                RepairCase.number == text,
                RepairCase.serial.startswith(text, autoescape=True),
            )
        )
    return list(session.execute(stmt.limit(limit).offset(offset)).scalars())


def case_events(session: Session, case: RepairCase) -> list[RepairEvent]:
    return list(
        session.execute(
            select(RepairEvent).where(RepairEvent.case_id == case.id).order_by(RepairEvent.id)
        ).scalars()
    )


def case_replacements(session: Session, case: RepairCase) -> list[Replacement]:
    return list(
        session.execute(
            select(Replacement).where(Replacement.case_id == case.id).order_by(Replacement.id)
        ).scalars()
    )


def _open_case_for(session: Session, terminal_id: int) -> RepairCase | None:
    return session.execute(
        select(RepairCase)
        .where(
            RepairCase.terminal_id == terminal_id,
            RepairCase.state.in_(OPEN_REPAIR_STATES),
        )
        .limit(1)
    ).scalar_one_or_none()


# --- repair cases: intake and inspection ----------------------------------------------------


def intake(
    *,
    session: Session,
    actor: User,
    serial: str,
    fault_code: str,
    fault_description: str,
    brought_by_name: str,
    brought_by_phone: str = "",
    appearance: str = "",
    accessories: Iterable[str] = (),
    accessories_note: str = "",
    ticket_id: int | None = None,
    provider_id: int | None = None,
    merchant_id: int | None = None,
) -> RepairCase:
    """Receive a faulty unit with the appraisal form (鉴定表): the fault, its appearance, the
    accessories that came with it, who brought it. The unit becomes faulty at the HQ
    warehouse; the case remembers where it came from so that it goes back there."""
    require(actor, REPAIRS_INTAKE)
    errors = FieldErrors()
    unit: Terminal | None = errors.check(_unit_by_serial, session, serial, field="serial")
    code = errors.check(_choice, fault_code, FAULT_TYPES, field="fault_code")
    description = errors.check(
        _text,
        fault_description,
        field="fault_description",
        max_length=2000,
        required=True,
        multiline=True,
    )
    who = errors.check(
        _text, brought_by_name, field="brought_by_name", max_length=64, required=True
    )
    phone = errors.check(_phone, brought_by_phone, field="brought_by_phone")
    looks = errors.check(_text, appearance, field="appearance", max_length=500)
    items = sorted({a.strip() for a in accessories if a and a.strip()})
    if any(a not in ACCESSORIES for a in items):
        errors.add(ValidationFailed("Choose a value from the list.", field="accessories"))
    items_note = errors.check(_text, accessories_note, field="accessories_note", max_length=255)
    ticket = errors.check(_ticket, session, ticket_id)
    if provider_id is not None and (
        not _in_range(provider_id) or session.get(Provider, provider_id) is None
    ):
        errors.add(ValidationFailed("Choose the provider from the list.", field="provider_id"))
    if merchant_id is not None and (
        not _in_range(merchant_id) or session.get(Merchant, merchant_id) is None
    ):
        errors.add(
            ValidationFailed("No merchant with number {id}.", field="merchant_id", id=merchant_id)
        )
    if unit is not None and unit.state not in INTAKE_STATES:
        errors.add(
            ValidationFailed(
                "Terminal {serial} is {state}; only a unit at a provider, at a merchant, in "
                "stock or already marked faulty can be received for repair.",
                field="serial",
                serial=unit.serial,
                state=unit.state,
            )
        )
    errors.raise_if_any()
    assert unit is not None
    other = _open_case_for(session, unit.id)
    if other is not None:
        raise Conflict(
            "Terminal {serial} is already in repair case {number}.",
            field="serial",
            serial=unit.serial,
            number=other.number,
        )
    case = RepairCase(
        number=next_number(session, "repair_case", "RP"),
        state=RepairState.RECEIVED.value,
        ticket_id=ticket.id if ticket is not None else None,
        terminal_id=unit.id,
        serial=unit.serial,
        model_id=unit.model_id,
        origin_state=unit.state,
        origin_location_id=unit.location_id,
        provider_id=provider_id if provider_id is not None else unit.provider_id,
        merchant_id=merchant_id if merchant_id is not None else unit.merchant_id,
        brought_by_name=who,
        brought_by_phone=phone or "",
        fault_code=code,
        fault_description=description,
        appearance=looks or "",
        accessories=items,
        accessories_note=items_note or "",
        received_at=utcnow(),
        received_by_id=actor.id,
    )
    session.add(case)
    session.flush()
    if unit.state == TerminalState.FAULTY.value:
        terminals.note_event(
            session, actor, unit, kind="repair_intake", document=case.number, note=description
        )
    else:
        terminals.move(
            session,
            actor,
            unit,
            TerminalState.FAULTY,
            terminals.warehouse(session),
            kind="repair_intake",
            document=case.number,
            note=description[:500],
        )
    _event(session, actor, kind="received", case=case, comment=description, fault_code=code)
    record(session, actor, "repair_case.received", case)
    _ticket_line(
        session,
        actor,
        case.ticket_id,
        "repair",
        f"{case.number}: received {unit.serial} for repair ({code})",
        repair_case=case.number,
        state=case.state,
    )
    return case


def inspect(
    *,
    session: Session,
    actor: User,
    case_id: int,
    findings: str,
    fault_code: str,
    under_warranty: bool | None,
    estimate: int | None = None,
) -> RepairCase:
    """The technician's inspection: findings, the fault type found, in warranty or not, and
    the cost estimate (fen; for units out of warranty)."""
    require(actor, REPAIRS_INSPECT)
    case = get_case(session=session, case_id=case_id, actor=actor)
    errors = FieldErrors()
    text = errors.check(
        _text, findings, field="findings", max_length=4000, required=True, multiline=True
    )
    code = errors.check(_choice, fault_code, FAULT_TYPES, field="fault_code")
    if under_warranty is None:
        errors.add(
            ValidationFailed("Say whether the unit is under warranty.", field="under_warranty")
        )
    if estimate is not None and not (0 <= estimate <= MAX_ESTIMATE):
        errors.add(
            ValidationFailed(
                "The estimate must be between 0 and {max} yuan.", field="estimate", max="1,000,000"
            )
        )
    errors.raise_if_any()
    before = case.transition(RepairState.INSPECTED)
    case.findings = text
    case.inspected_fault_code = code
    case.under_warranty = under_warranty
    case.estimate = estimate
    case.technician_id = actor.id
    case.inspected_at = utcnow()
    session.flush()
    unit = session.get(Terminal, case.terminal_id)
    assert unit is not None
    terminals.note_event(
        session, actor, unit, kind="repair_inspect", document=case.number, note=text[:500]
    )
    _event(
        session,
        actor,
        kind="inspected",
        case=case,
        from_state=before.value,
        comment=text,
        fault_code=code,
        under_warranty=under_warranty,
        estimate=estimate,
    )
    record(session, actor, "repair_case.inspected", case, before={"state": before.value})
    _ticket_line(
        session,
        actor,
        case.ticket_id,
        "repair",
        f"{case.number}: inspected ({code}, {'in' if under_warranty else 'out of'} warranty)",
        repair_case=case.number,
        state=case.state,
    )
    return case


# --- repair cases: the decision and the repair ----------------------------------------------


def _case_unit(session: Session, case: RepairCase) -> Terminal:
    unit = session.get(Terminal, case.terminal_id)
    assert unit is not None
    return unit


def open_batch_for(session: Session, actor: User, supplier_id: int) -> RmaBatch:
    """The open (not yet sent) RMA batch of a manufacturer, created when there is none."""
    batch = session.execute(
        select(RmaBatch)
        .where(RmaBatch.supplier_id == supplier_id, RmaBatch.state == "open")
        .order_by(RmaBatch.id)
        .limit(1)
    ).scalar_one_or_none()
    if batch is None:
        batch = RmaBatch(
            number=next_number(session, "rma_batch", "RMA"),
            supplier_id=supplier_id,
            state="open",
            created_by_id=actor.id,
        )
        session.add(batch)
        session.flush()
        record(session, actor, "rma_batch.created", batch)
    return batch


ROUTES = ("in_house", "factory", "none")


def decide(
    *, session: Session, actor: User, case_id: int, route: str, note: str = ""
) -> RepairCase:
    """After-sales decides: repair in-house, send to the factory (the case goes onto the open
    RMA batch of the unit's manufacturer) or no repair needed (ready to hand back)."""
    require(actor, REPAIRS_MANAGE)
    case = get_case(session=session, case_id=case_id, actor=actor)
    if route not in ROUTES:
        raise ValidationFailed("Choose a value from the list.", field="route")
    comment = _text(note, field="note", max_length=500)
    unit = _case_unit(session, case)
    if route == "in_house":
        before = case.transition(RepairState.IN_REPAIR)
        if unit.state == TerminalState.FAULTY.value:
            terminals.move(
                session, actor, unit, TerminalState.IN_REPAIR, kind="repair", document=case.number
            )
        kind = "repair_started"
    elif route == "factory":
        before = case.transition(RepairState.AWAITING_FACTORY)
        batch = open_batch_for(session, actor, unit.supplier_id)
        case.rma_batch_id = batch.id
        terminals.note_event(session, actor, unit, kind="rma_queued", document=batch.number)
        kind = "rma_queued"
    else:
        before = case.transition(RepairState.READY)
        if unit.state == TerminalState.FAULTY.value and case.replacement_terminal_id is None:
            terminals.move(
                session,
                actor,
                unit,
                TerminalState.IN_REPAIR,
                kind="repair_ready",
                document=case.number,
                note=comment,
            )
        kind = "no_repair"
    case.route = route
    session.flush()
    _event(session, actor, kind=kind, case=case, from_state=before.value, comment=comment)
    record(session, actor, f"repair_case.{kind}", case, before={"state": before.value})
    _ticket_line(
        session,
        actor,
        case.ticket_id,
        "repair",
        f"{case.number}: {kind.replace('_', ' ')}",
        repair_case=case.number,
        state=case.state,
    )
    return case


def finish_repair(*, session: Session, actor: User, case_id: int, notes: str) -> RepairCase:
    """The technician finished an in-house repair: the unit is ready to hand back."""
    require(actor, REPAIRS_INSPECT)
    case = get_case(session=session, case_id=case_id, actor=actor)
    text = _text(notes, field="repair_notes", max_length=4000, required=True, multiline=True)
    before = case.transition(RepairState.READY)
    case.repair_notes = text
    case.repaired_at = utcnow()
    unit = _case_unit(session, case)
    terminals.note_event(
        session, actor, unit, kind="repaired", document=case.number, note=text[:500]
    )
    _event(session, actor, kind="repaired", case=case, from_state=before.value, comment=text)
    record(session, actor, "repair_case.repaired", case, before={"state": before.value})
    _ticket_line(
        session,
        actor,
        case.ticket_id,
        "repair",
        f"{case.number}: repaired in-house, ready to return",
        repair_case=case.number,
        state=case.state,
    )
    return case


# --- RMA batches ----------------------------------------------------------------------------


def get_batch(*, session: Session, batch_id: int, actor: User | None = None) -> RmaBatch:
    if actor is not None:
        require(actor, REPAIRS_VIEW)
    batch = session.get(RmaBatch, batch_id) if _in_range(batch_id) else None
    if batch is None:
        raise NotFound("No RMA batch with number {id}.", id=batch_id)
    return batch


def list_batches(
    *, session: Session, actor: User, state: str | None = None, limit: int = 100
) -> list[RmaBatch]:
    require(actor, REPAIRS_VIEW)
    stmt = select(RmaBatch).order_by(RmaBatch.id.desc())
    if state:
        stmt = stmt.where(RmaBatch.state == state[:12])
    return list(session.execute(stmt.limit(max(1, min(limit, 500)))).scalars())


def batch_cases(session: Session, batch: RmaBatch) -> list[RepairCase]:
    return list(
        session.execute(
            select(RepairCase).where(RepairCase.rma_batch_id == batch.id).order_by(RepairCase.id)
        ).scalars()
    )


def remove_from_batch(*, session: Session, actor: User, case_id: int) -> RepairCase:
    """Take a case off its RMA batch before the batch is sent; it goes to in-house repair."""
    require(actor, REPAIRS_MANAGE)
    case = get_case(session=session, case_id=case_id, actor=actor)
    batch = session.get(RmaBatch, case.rma_batch_id) if case.rma_batch_id else None
    before = case.transition(RepairState.IN_REPAIR)
    case.rma_batch_id = None
    case.route = "in_house"
    unit = _case_unit(session, case)
    if unit.state == TerminalState.FAULTY.value:
        terminals.move(
            session, actor, unit, TerminalState.IN_REPAIR, kind="repair", document=case.number
        )
    _event(
        session,
        actor,
        kind="rma_removed",
        case=case,
        from_state=before.value,
        batch=batch.number if batch else None,
    )
    record(session, actor, "repair_case.rma_removed", case, before={"state": before.value})
    return case


def send_batch(
    *,
    session: Session,
    actor: User,
    batch_id: int,
    carrier: str,
    tracking_number: str,
    sent_at: datetime | None = None,
    note: str = "",
) -> RmaBatch:
    """The batch leaves for the factory with a carrier and a tracking number: every unit is
    returned to the factory (at the factory's location) and every case is at the factory."""
    require(actor, REPAIRS_RMA)
    batch = get_batch(session=session, batch_id=batch_id)
    errors = FieldErrors()
    clean_carrier = errors.check(_text, carrier, field="carrier", max_length=64, required=True)
    tracking = errors.check(
        _text, tracking_number, field="tracking_number", max_length=64, required=True
    )
    clean_note = errors.check(_text, note, field="note", max_length=500)
    if sent_at is not None and as_utc(sent_at) > utcnow():
        errors.add(ValidationFailed("The date cannot be in the future.", field="sent_at"))
    errors.raise_if_any()
    if batch.state != "open":
        raise InvalidTransition(
            "RMA batch {number} is {state}; only an open batch can be sent.",
            number=batch.number,
            state=batch.state,
        )
    cases = [c for c in batch_cases(session, batch) if c.state == RepairState.AWAITING_FACTORY]
    if not cases:
        raise ValidationFailed(
            "RMA batch {number} holds no unit; put cases on it first.",
            field="batch",
            number=batch.number,
        )
    place = terminals.factory_of(session, batch.supplier_id)
    for case in cases:
        unit = _case_unit(session, case)
        terminals.move(
            session,
            actor,
            unit,
            TerminalState.RETURNED_TO_FACTORY,
            place,
            kind="rma_send",
            document=batch.number,
            note=f"{clean_carrier} {tracking}",
        )
        before = case.transition(RepairState.AT_FACTORY)
        _event(
            session,
            actor,
            kind="rma_sent",
            case=case,
            from_state=before.value,
            batch=batch.number,
            carrier=clean_carrier,
            tracking_number=tracking,
        )
        _ticket_line(
            session,
            actor,
            case.ticket_id,
            "repair",
            f"{case.number}: sent to the factory in {batch.number} ({clean_carrier} {tracking})",
            repair_case=case.number,
            state=case.state,
        )
    before_batch = {"state": batch.state}
    batch.state = "sent"
    batch.carrier = clean_carrier
    batch.tracking_number = tracking
    batch.sent_at = as_utc(sent_at) if sent_at is not None else utcnow()
    batch.note = clean_note or batch.note
    session.flush()
    record(session, actor, "rma_batch.sent", batch, before=before_batch)
    return batch


def receive_batch(
    *, session: Session, actor: User, batch_id: int, serials: Sequence[str] | str = ()
) -> RmaBatch:
    """Units came back from the factory (all of the batch, or the listed serials): each goes
    to the HQ warehouse in repair and its case is ready to hand back. The batch is received
    when no unit is left at the factory."""
    require(actor, REPAIRS_RMA)
    batch = get_batch(session=session, batch_id=batch_id)
    if batch.state != "sent":
        raise InvalidTransition(
            "RMA batch {number} is {state}; only a sent batch can be received.",
            number=batch.number,
            state=batch.state,
        )
    pending = [c for c in batch_cases(session, batch) if c.state == RepairState.AT_FACTORY]
    wanted = set(terminals.parse_serials(serials)) if serials else {c.serial for c in pending}
    unknown = wanted - {c.serial for c in pending}
    if unknown:
        raise ValidationFailed(
            "These serials are not at the factory in this batch: {serials}.",
            field="serials",
            serials=", ".join(sorted(unknown)[:50]),
        )
    home = terminals.warehouse(session)
    for case in pending:
        if case.serial not in wanted:
            continue
        unit = _case_unit(session, case)
        terminals.move(
            session,
            actor,
            unit,
            TerminalState.IN_REPAIR,
            home,
            kind="rma_back",
            document=batch.number,
        )
        before = case.transition(RepairState.READY)
        case.repaired_at = utcnow()
        _event(
            session, actor, kind="rma_back", case=case, from_state=before.value, batch=batch.number
        )
        _ticket_line(
            session,
            actor,
            case.ticket_id,
            "repair",
            f"{case.number}: back from the factory, ready to return",
            repair_case=case.number,
            state=case.state,
        )
    if all(c.serial in wanted for c in pending):
        before_batch = {"state": batch.state}
        batch.state = "received"
        batch.received_at = utcnow()
        record(session, actor, "rma_batch.received", batch, before=before_batch)
    session.flush()
    return batch


# --- loaners and replacements ---------------------------------------------------------------


def _customer_location(session: Session, case: RepairCase) -> Location | None:
    """Where the customer of a case is: the merchant, else the provider."""
    if case.merchant_id is not None:
        merchant = session.get(Merchant, case.merchant_id)
        if merchant is not None:
            return terminals.location_for(session, "merchant", merchant.id, merchant.name)
    if case.provider_id is not None:
        provider = session.get(Provider, case.provider_id)
        if provider is not None:
            return terminals.location_for(session, "provider", provider.id, provider.name)
    return None


def lend_loaner(*, session: Session, actor: User, case_id: int, serial: str) -> RepairCase:
    """Lend a loaner (备用机) from stock to the case's merchant (or provider) while the faulty
    unit is away; it is tracked as on loan there until it comes back."""
    require(actor, REPAIRS_MANAGE)
    case = get_case(session=session, case_id=case_id, actor=actor)
    if case.state not in OPEN_REPAIR_STATES:
        raise InvalidTransition(
            "Repair case {number} is {state_from}; it cannot become {state_to}.",
            number=case.number,
            state_from=case.state,
            state_to="loaner_out",
        )
    if case.loaner_out:
        raise Conflict(
            "A loaner is already out on this case; take it back first.", field="loaner_serial"
        )
    unit = _in_stock(session, serial, field="loaner_serial")
    where = _customer_location(session, case)
    if where is None:
        raise ValidationFailed(
            "The case names neither a merchant nor a provider to lend the loaner to.",
            field="loaner_serial",
        )
    terminals.move(
        session, actor, unit, TerminalState.ON_LOAN, where, kind="loan_out", document=case.number
    )
    case.loaner_terminal_id = unit.id
    case.loaner_out_at = utcnow()
    case.loaner_back_at = None
    session.flush()
    _event(session, actor, kind="loaner_out", case=case, loaner=unit.serial, to=where.name)
    record(session, actor, "repair_case.loaner_out", case, loaner=unit.serial)
    _ticket_line(
        session,
        actor,
        case.ticket_id,
        "repair",
        f"{case.number}: loaner {unit.serial} lent to {where.name}",
        repair_case=case.number,
        state=case.state,
    )
    return case


def loaner_back(*, session: Session, actor: User, case_id: int) -> RepairCase:
    """The loaner came back: in stock at the HQ warehouse again."""
    require(actor, REPAIRS_MANAGE)
    case = get_case(session=session, case_id=case_id, actor=actor)
    if not case.loaner_out:
        raise Conflict("No loaner is out on this case.", field="loaner_serial")
    unit = session.get(Terminal, case.loaner_terminal_id)
    assert unit is not None
    terminals.move(
        session,
        actor,
        unit,
        TerminalState.IN_STOCK,
        terminals.warehouse(session),
        kind="loan_back",
        document=case.number,
    )
    case.loaner_back_at = utcnow()
    session.flush()
    _event(session, actor, kind="loaner_back", case=case, loaner=unit.serial)
    record(session, actor, "repair_case.loaner_back", case, loaner=unit.serial)
    _ticket_line(
        session,
        actor,
        case.ticket_id,
        "repair",
        f"{case.number}: loaner {unit.serial} back in stock",
        repair_case=case.number,
        state=case.state,
    )
    return case


REPLACEABLE_STATES = (
    RepairState.INSPECTED.value,
    RepairState.IN_REPAIR.value,
    RepairState.READY.value,
)


def record_replacement(
    *,
    session: Session,
    actor: User,
    case_id: int,
    kind: str,
    new_serial: str = "",
    device_name: str = "",
    old_serial: str = "",
) -> Replacement:
    """A replacement on a repair case. ``whole``: the customer gets another unit, taken from
    stock (reserved for the case now, handed over at the return; old serial → new serial).
    ``part``: a part was changed (its name and, if any, old and new part serials)."""
    require(actor, REPAIRS_MANAGE)
    case = get_case(session=session, case_id=case_id, actor=actor)
    if kind not in ("part", "whole"):
        raise ValidationFailed("Choose a value from the list.", field="kind")
    if case.state not in REPLACEABLE_STATES:
        raise InvalidTransition(
            "Repair case {number} is {state_from}; it cannot become {state_to}.",
            number=case.number,
            state_from=case.state,
            state_to="replaced",
        )
    if kind == "whole":
        if case.replacement_terminal_id is not None:
            raise Conflict("This case already has a replacement unit.", field="new_serial")
        unit = _in_stock(session, new_serial, field="new_serial")
        if unit.id == case.terminal_id:
            raise ValidationFailed("Choose a different unit.", field="new_serial")
        terminals.move(
            session,
            actor,
            unit,
            TerminalState.ALLOCATED,
            kind="replacement",
            document=case.number,
            note=f"{case.serial} → {unit.serial}",
        )
        old = _case_unit(session, case)
        terminals.note_event(
            session,
            actor,
            old,
            kind="replaced_by",
            document=case.number,
            note=f"{case.serial} → {unit.serial}",
        )
        case.replacement_terminal_id = unit.id
        row = Replacement(
            case_id=case.id,
            kind="whole",
            device_name="",
            old_serial=case.serial,
            new_serial=unit.serial,
            new_terminal_id=unit.id,
            by_id=actor.id,
            at=utcnow(),
        )
    else:
        errors = FieldErrors()
        name = errors.check(_text, device_name, field="device_name", max_length=128, required=True)
        old_part = errors.check(_text, old_serial, field="old_serial", max_length=40)
        new_part = errors.check(_text, new_serial, field="new_serial", max_length=40)
        errors.raise_if_any()
        row = Replacement(
            case_id=case.id,
            kind="part",
            device_name=name,
            old_serial=old_part or "",
            new_serial=new_part or "",
            by_id=actor.id,
            at=utcnow(),
        )
        terminals.note_event(
            session,
            actor,
            _case_unit(session, case),
            kind="part_replaced",
            document=case.number,
            note=f"{name}: {old_part or '—'} → {new_part or '—'}",
        )
    session.add(row)
    session.flush()
    _event(
        session,
        actor,
        kind="replacement",
        case=case,
        replacement=row.kind,
        old_serial=row.old_serial,
        new_serial=row.new_serial,
        device_name=row.device_name,
    )
    record(session, actor, "repair_case.replacement", row)
    return row


# --- return and close -----------------------------------------------------------------------


def _return_target(
    session: Session, case: RepairCase, return_to: str, *, replacement: bool
) -> tuple[TerminalState, Location]:
    if return_to == "provider":
        provider = session.get(Provider, case.provider_id) if case.provider_id else None
        if provider is None:
            raise ValidationFailed(
                "The case names no provider; return the unit to the user.", field="return_to"
            )
        return (
            TerminalState.AT_PROVIDER,
            terminals.location_for(session, "provider", provider.id, provider.name),
        )
    origin = session.get(Location, case.origin_location_id)
    state = case.origin_state
    if state in (TerminalState.INSTALLED.value, TerminalState.ACTIVATED.value) and origin:
        if replacement:  # a new unit is installed; it needs its own activation (TID)
            return TerminalState.INSTALLED, origin
        return TerminalState(state), origin
    if state == TerminalState.AT_PROVIDER.value and origin is not None:
        return TerminalState.AT_PROVIDER, origin
    if state == TerminalState.FAULTY.value:
        where = _customer_location(session, case)
        if where is not None and where.kind == "merchant":
            return TerminalState.INSTALLED, where
        if where is not None:
            return TerminalState.AT_PROVIDER, where
    return TerminalState.IN_STOCK, terminals.warehouse(session)


def return_unit(
    *,
    session: Session,
    actor: User,
    case_id: int,
    return_to: str,
    carrier: str = "",
    tracking_number: str = "",
    loaner_returned: bool = False,
) -> RepairCase:
    """Hand the unit back (or its replacement) to the provider or to the user where it came
    from; with ``loaner_returned`` the loaner comes back at the same time."""
    require(actor, REPAIRS_MANAGE)
    case = get_case(session=session, case_id=case_id, actor=actor)
    errors = FieldErrors()
    target = errors.check(_choice, return_to, RETURN_TARGETS, field="return_to")
    clean_carrier = errors.check(_text, carrier, field="carrier", max_length=64)
    tracking = errors.check(_text, tracking_number, field="tracking_number", max_length=64)
    errors.raise_if_any()
    if case.state != RepairState.READY.value:
        raise InvalidTransition(
            "Repair case {number} is {state_from}; it cannot become {state_to}.",
            number=case.number,
            state_from=case.state,
            state_to=RepairState.RETURNED.value,
        )
    if loaner_returned and not case.loaner_out:
        raise Conflict("No loaner is out on this case.", field="loaner_returned")
    replacement = (
        session.get(Terminal, case.replacement_terminal_id)
        if case.replacement_terminal_id
        else None
    )
    state, where = _return_target(session, case, target, replacement=replacement is not None)
    handed = replacement if replacement is not None else _case_unit(session, case)
    note = " ".join(x for x in (clean_carrier, tracking) if x)
    terminals.move(
        session, actor, handed, state, where, kind="repair_return", document=case.number, note=note
    )
    if replacement is not None:
        old = _case_unit(session, case)
        if old.state == TerminalState.IN_REPAIR.value and case.repaired_at is not None:
            # the repaired old unit stays with HQ as stock
            terminals.move(
                session,
                actor,
                old,
                TerminalState.IN_STOCK,
                terminals.warehouse(session),
                kind="repair_to_stock",
                document=case.number,
            )
    before = case.transition(RepairState.RETURNED)
    case.return_to = target
    case.return_carrier = clean_carrier or ""
    case.return_tracking = tracking or ""
    case.returned_at = utcnow()
    session.flush()
    _event(
        session,
        actor,
        kind="returned",
        case=case,
        from_state=before.value,
        serial=handed.serial,
        to=where.name,
        carrier=case.return_carrier,
        tracking_number=case.return_tracking,
    )
    record(session, actor, "repair_case.returned", case, before={"state": before.value})
    _ticket_line(
        session,
        actor,
        case.ticket_id,
        "repair",
        f"{case.number}: {handed.serial} returned to {where.name}",
        repair_case=case.number,
        state=case.state,
    )
    if loaner_returned:
        loaner_back(session=session, actor=actor, case_id=case.id)
    return case


def close_case(*, session: Session, actor: User, case_id: int, note: str = "") -> RepairCase:
    """Close a returned case; refused while its loaner is still out."""
    require(actor, REPAIRS_MANAGE)
    case = get_case(session=session, case_id=case_id, actor=actor)
    comment = _text(note, field="note", max_length=500)
    if case.loaner_out:
        raise Conflict(
            "The loaner of this case is still out; take it back before closing.",
            field="loaner_serial",
        )
    before = case.transition(RepairState.CLOSED)
    case.closed_at = utcnow()
    _event(session, actor, kind="closed", case=case, from_state=before.value, comment=comment)
    record(session, actor, "repair_case.closed", case, before={"state": before.value})
    _ticket_line(
        session,
        actor,
        case.ticket_id,
        "repair",
        f"{case.number}: closed",
        repair_case=case.number,
        state=case.state,
    )
    return case


# --- field service: the checklist -----------------------------------------------------------


def checklist_items(session: Session, *, active_only: bool = True) -> list[ChecklistItem]:
    """The configured checklist items; the defaults from the paper form when none exist."""
    stmt = select(ChecklistItem).order_by(ChecklistItem.position, ChecklistItem.id)
    rows = list(session.execute(stmt).scalars())
    if not rows:
        for position, (code, en, zh) in enumerate(DEFAULT_CHECKLIST):
            session.add(ChecklistItem(code=code, label_en=en, label_zh=zh, position=position))
        session.flush()
        rows = list(session.execute(stmt).scalars())
    return [r for r in rows if r.is_active or not active_only]


def add_checklist_item(
    *, session: Session, actor: User, code: str, label_en: str, label_zh: str
) -> ChecklistItem:
    require(actor, CHECKLIST_MANAGE)
    existing = checklist_items(session, active_only=False)
    errors = FieldErrors()
    clean_code = (code or "").strip().lower()
    if not _CODE.fullmatch(clean_code):
        errors.add(
            ValidationFailed(
                "The code is 2–32 lower-case letters, digits or '_', starting with a letter.",
                field="code",
            )
        )
    elif any(i.code == clean_code for i in existing):
        errors.add(ValidationFailed("This code is already in use.", field="code"))
    en = errors.check(_text, label_en, field="label_en", max_length=128, required=True)
    zh = errors.check(_text, label_zh, field="label_zh", max_length=128, required=True)
    errors.raise_if_any()
    item = ChecklistItem(
        code=clean_code,
        label_en=en,
        label_zh=zh,
        position=max((i.position for i in existing), default=0) + 1,
    )
    session.add(item)
    session.flush()
    record(session, actor, "repair_checklist.added", item)
    return item


def set_checklist_item_active(
    *, session: Session, actor: User, item_id: int, active: bool
) -> ChecklistItem:
    require(actor, CHECKLIST_MANAGE)
    item = session.get(ChecklistItem, item_id) if _in_range(item_id) else None
    if item is None:
        raise NotFound("No checklist item with number {id}.", id=item_id)
    before = {"is_active": item.is_active}
    item.is_active = bool(active)
    session.flush()
    record(session, actor, "repair_checklist.changed", item, before=before)
    return item


def item_label(item: ChecklistItem, locale: str) -> str:
    return item.label_zh if locale.startswith("zh") else item.label_en


# --- field service: visits -----------------------------------------------------------------


def _visit_visible(session: Session, actor: User, visit: FieldVisit) -> bool:
    """Provider staff see the visits to their subtree's merchants, and those they booked or
    are sent on; HQ staff see every visit."""
    visible = visible_provider_ids(session, actor)
    if visible is None or actor.id in (visit.created_by_id, visit.technician_id):
        return True
    merchant = session.get(Merchant, visit.merchant_id) if visit.merchant_id else None
    return merchant is not None and merchant.provider_id in visible


def get_visit(*, session: Session, visit_id: int, actor: User | None = None) -> FieldVisit:
    visit = session.get(FieldVisit, visit_id) if _in_range(visit_id) else None
    if visit is None or (actor is not None and not _visit_visible(session, actor, visit)):
        raise NotFound("No field visit with number {id}.", id=visit_id)
    if actor is not None:
        require(actor, REPAIRS_VIEW)
    return visit


def list_visits(
    *,
    session: Session,
    actor: User,
    state: str | None = None,
    q: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[FieldVisit]:
    require(actor, REPAIRS_VIEW)
    limit, offset = _page(limit, offset)
    stmt = select(FieldVisit).order_by(FieldVisit.id.desc())
    visible = visible_provider_ids(session, actor)
    if visible is not None:
        scoped = select(Merchant.id).where(Merchant.provider_id.in_(visible))
        stmt = stmt.where(
            or_(
                FieldVisit.merchant_id.in_(scoped),
                FieldVisit.created_by_id == actor.id,
                FieldVisit.technician_id == actor.id,
            )
        )
    if state:
        stmt = stmt.where(FieldVisit.state == state[:12])
    text = " ".join(parties.plain_text(q).split())[:64]
    if text:
        stmt = stmt.where(
            or_(
                FieldVisit.number == text,
                FieldVisit.customer_name.icontains(text, autoescape=True),
                FieldVisit.registration_number == text,
            )
        )
    return list(session.execute(stmt.limit(limit).offset(offset)).scalars())


def visit_events(session: Session, visit: FieldVisit) -> list[RepairEvent]:
    return list(
        session.execute(
            select(RepairEvent).where(RepairEvent.visit_id == visit.id).order_by(RepairEvent.id)
        ).scalars()
    )


def visit_checks(session: Session, visit: FieldVisit) -> list[VisitCheck]:
    return list(
        session.execute(
            select(VisitCheck).where(VisitCheck.visit_id == visit.id).order_by(VisitCheck.id)
        ).scalars()
    )


def visit_replacements(session: Session, visit: FieldVisit) -> list[Replacement]:
    return list(
        session.execute(
            select(Replacement).where(Replacement.visit_id == visit.id).order_by(Replacement.id)
        ).scalars()
    )


def technicians(session: Session) -> list[User]:
    """Active console users holding the technician role (维修技术员), for the visit form."""
    from cardops.auth.models import Role, UserRole

    return list(
        session.execute(
            select(User)
            .join(UserRole, UserRole.user_id == User.id)
            .join(Role, Role.id == UserRole.role_id)
            .where(Role.code == "technician", User.is_active.is_(True), User.is_system.is_(False))
            .order_by(User.display_name)
            .distinct()
        ).scalars()
    )


def schedule_visit(
    *,
    session: Session,
    actor: User,
    customer_name: str = "",
    mode: str = "scheduled",
    merchant_id: int | None = None,
    address: str = "",
    contact_name: str = "",
    contact_phone: str = "",
    service_type: str = "repair",
    service_type_other: str = "",
    warranty: str = "in",
    warranty_other: str = "",
    serial: str = "",
    scheduled_at: datetime | None = None,
    technician_id: int | None = None,
    ticket_id: int | None = None,
    registration_number: str = "",
    problem: str = "",
) -> FieldVisit:
    """Book a visit to a customer's site: a scheduled inspection or an on-call repair. The
    customer's name and address come from the merchant when one is chosen; the call-centre
    registration number from the ticket when one is linked."""
    require(actor, VISITS_EDIT)
    errors = FieldErrors()
    clean_mode = errors.check(_choice, mode, VISIT_MODES, field="mode")
    merchant = None
    if merchant_id is not None:
        merchant = session.get(Merchant, merchant_id) if _in_range(merchant_id) else None
        if merchant is not None and not _visible(session, actor, merchant.provider_id):
            merchant = None  # another provider's merchant: as if it did not exist
        if merchant is None:
            errors.add(
                ValidationFailed(
                    "No merchant with number {id}.", field="merchant_id", id=merchant_id
                )
            )
    name = errors.check(_text, customer_name, field="customer_name", max_length=128)
    if not name and merchant is None:
        errors.add(ValidationFailed("This field is required.", field="customer_name"))
    clean_address = errors.check(_text, address, field="address", max_length=255)
    who = errors.check(_text, contact_name, field="contact_name", max_length=64)
    phone = errors.check(_phone, contact_phone, field="contact_phone")
    kind = errors.check(_choice, service_type, SERVICE_TYPES, field="service_type")
    kind_other = errors.check(_text, service_type_other, field="service_type_other", max_length=64)
    state = errors.check(_choice, warranty, WARRANTY_STATES, field="warranty")
    state_other = errors.check(_text, warranty_other, field="warranty_other", max_length=64)
    device = errors.check(_text, serial, field="serial", max_length=40)
    if clean_mode == "scheduled" and scheduled_at is None:
        errors.add(ValidationFailed("Enter the date and time of the visit.", field="scheduled_at"))
    technician = (
        session.get(User, technician_id)
        if technician_id is not None and _in_range(technician_id)
        else None
    )
    if technician_id is not None and (
        technician is None or not technician.is_active or technician.is_system
    ):
        errors.add(ValidationFailed("Choose a value from the list.", field="technician_id"))
    ticket = errors.check(_ticket, session, ticket_id)
    registration = errors.check(
        _text, registration_number, field="registration_number", max_length=32
    )
    text = errors.check(_text, problem, field="problem", max_length=4000, multiline=True)
    errors.raise_if_any()
    visit = FieldVisit(
        number=next_number(session, "field_visit", "FV"),
        state=VisitState.SCHEDULED.value,
        mode=clean_mode,
        ticket_id=ticket.id if ticket is not None else None,
        registration_number=registration or (ticket.number if ticket is not None else ""),
        merchant_id=merchant.id if merchant is not None else None,
        customer_name=name or (merchant.name if merchant is not None else ""),
        address=clean_address or (merchant.address if merchant is not None else ""),
        contact_name=who or "",
        contact_phone=phone or "",
        service_type=kind,
        service_type_other=kind_other or "",
        warranty=state,
        warranty_other=state_other or "",
        serial=device or "",
        scheduled_at=as_utc(scheduled_at) if scheduled_at is not None else None,
        technician_id=technician_id,
        problem=text or "",
        created_by_id=actor.id,
    )
    session.add(visit)
    session.flush()
    _event(session, actor, kind="scheduled", visit=visit)
    record(session, actor, "field_visit.scheduled", visit)
    _ticket_line(
        session,
        actor,
        visit.ticket_id,
        "visit",
        f"{visit.number}: {clean_mode.replace('_', '-')} visit to {visit.customer_name}",
        visit=visit.number,
        state=visit.state,
    )
    return visit


def arrive(
    *, session: Session, actor: User, visit_id: int, at: datetime | None = None
) -> FieldVisit:
    """The engineer arrived on site (arrival time, now by default)."""
    require(actor, VISITS_EDIT)
    visit = get_visit(session=session, visit_id=visit_id, actor=actor)
    moment = as_utc(at) if at is not None else utcnow()
    if moment > utcnow():
        raise ValidationFailed("The time cannot be in the future.", field="arrived_at")
    before = visit.transition(VisitState.ON_SITE)
    visit.arrived_at = moment
    if visit.technician_id is None:
        visit.technician_id = actor.id
    session.flush()
    _event(session, actor, kind="arrived", visit=visit, from_state=before.value)
    record(session, actor, "field_visit.arrived", visit, before={"state": before.value})
    return visit


@dataclass(slots=True)
class ReplacementIn:
    """One row of the form's device replacement record."""

    kind: str
    device_name: str = ""
    quantity: int = 1
    old_serial: str = ""
    new_serial: str = ""


@dataclass(slots=True)
class CheckIn:
    code: str
    checked: bool
    note: str = ""


def _check_replacements(
    session: Session, visit: FieldVisit, rows: Sequence[ReplacementIn], errors: FieldErrors
) -> list[tuple[ReplacementIn, Terminal | None, Terminal | None]]:
    """Validate the replacement rows; whole units: the old one at the site, the new one in
    stock at the HQ warehouse (each error names ``replacements.N.field``)."""
    checked: list[tuple[ReplacementIn, Terminal | None, Terminal | None]] = []
    seen_new: set[str] = set()
    for i, row in enumerate(rows):
        prefix = f"replacements.{i}"
        if row.kind not in REPLACEMENT_KINDS:
            errors.add(ValidationFailed("Choose a value from the list.", field=f"{prefix}.kind"))
            continue
        name = errors.check(_text, row.device_name, field=f"{prefix}.device_name", max_length=128)
        if not 1 <= row.quantity <= 999:
            errors.add(
                ValidationFailed("Enter a quantity from 1 to 999.", field=f"{prefix}.quantity")
            )
        old_text = errors.check(_text, row.old_serial, field=f"{prefix}.old_serial", max_length=40)
        new_text = errors.check(_text, row.new_serial, field=f"{prefix}.new_serial", max_length=40)
        row.device_name = name or ""
        row.old_serial = old_text or ""
        row.new_serial = new_text or ""
        old_unit = new_unit = None
        if row.kind == "whole":
            if visit.merchant_id is None:
                errors.add(
                    ValidationFailed(
                        "A whole-unit replacement needs the visit's merchant.",
                        field=f"{prefix}.kind",
                    )
                )
                continue
            old_unit = errors.check(
                _unit_by_serial, session, row.old_serial, field=f"{prefix}.old_serial"
            )
            if old_unit is not None and old_unit.state not in SWAP_OUT_STATES:
                errors.add(
                    ValidationFailed(
                        "Terminal {serial} is {state}; only a unit installed at the site can "
                        "be swapped out.",
                        field=f"{prefix}.old_serial",
                        serial=old_unit.serial,
                        state=old_unit.state,
                    )
                )
                old_unit = None
            new_unit = errors.check(
                _in_stock, session, row.new_serial, field=f"{prefix}.new_serial"
            )
            if new_unit is not None:
                if new_unit.serial in seen_new:
                    errors.add(
                        ValidationFailed(
                            "Terminal {serial} is listed twice.",
                            field=f"{prefix}.new_serial",
                            serial=new_unit.serial,
                        )
                    )
                seen_new.add(new_unit.serial)
        elif not row.device_name:
            errors.add(ValidationFailed("This field is required.", field=f"{prefix}.device_name"))
        checked.append((row, old_unit, new_unit))
    return checked


def complete_visit(
    *,
    session: Session,
    actor: User,
    visit_id: int,
    work_notes: str,
    problem: str | None = None,
    departed_at: datetime | None = None,
    checks: Sequence[CheckIn] = (),
    replacements: Sequence[ReplacementIn] = (),
    device_ok: bool | None = None,
    other_issues: str = "",
) -> FieldVisit:
    """Record the work done: departure time, problem and work notes, device replacements and
    the preventive checklist. A whole-unit swap moves the old unit (faulty, to the HQ
    warehouse) and installs the new one from stock at the merchant. All or nothing."""
    require(actor, VISITS_EDIT)
    visit = get_visit(session=session, visit_id=visit_id, actor=actor)
    errors = FieldErrors()
    notes = errors.check(
        _text, work_notes, field="work_notes", max_length=4000, required=True, multiline=True
    )
    text = (
        errors.check(_text, problem, field="problem", max_length=4000, multiline=True)
        if problem is not None
        else visit.problem
    )
    issues = errors.check(_text, other_issues, field="other_issues", max_length=500)
    moment = as_utc(departed_at) if departed_at is not None else utcnow()
    if moment > utcnow():
        errors.add(ValidationFailed("The time cannot be in the future.", field="departed_at"))
    elif visit.arrived_at is not None and moment < as_utc(visit.arrived_at):
        errors.add(
            ValidationFailed("The departure cannot be before the arrival.", field="departed_at")
        )
    items = {i.code: i for i in checklist_items(session)}
    for check in checks:
        if check.code not in items:
            errors.add(ValidationFailed("Unknown checklist item.", field=f"check.{check.code}"))
        else:
            errors.check(_text, check.note, field=f"check_note.{check.code}", max_length=255)
    if len(replacements) > 20:
        errors.add(ValidationFailed("At most {n} rows.", field="replacements", n=20))
    rows = _check_replacements(session, visit, replacements[:20], errors)
    errors.raise_if_any()
    before = visit.transition(VisitState.COMPLETED)
    visit.departed_at = moment
    visit.work_notes = notes
    visit.problem = text or ""
    visit.device_ok = device_ok
    visit.other_issues = issues or ""
    answered = {c.code: c for c in checks}
    for code, item in items.items():
        answer = answered.get(code)
        session.add(
            VisitCheck(
                visit_id=visit.id,
                item_code=code,
                label=item.label_zh if item.label_zh else item.label_en,
                checked=bool(answer and answer.checked),
                note=_text(answer.note, field="note", max_length=255) if answer else "",
            )
        )
    merchant = session.get(Merchant, visit.merchant_id) if visit.merchant_id else None
    for row, old_unit, new_unit in rows:
        if row.kind == "whole" and old_unit is not None and new_unit is not None:
            assert merchant is not None
            site = terminals.location_for(session, "merchant", merchant.id, merchant.name)
            terminals.move(
                session,
                actor,
                old_unit,
                TerminalState.FAULTY,
                terminals.warehouse(session),
                kind="visit_swap_out",
                document=visit.number,
                note=f"{old_unit.serial} → {new_unit.serial}",
            )
            terminals.move(
                session,
                actor,
                new_unit,
                TerminalState.ALLOCATED,
                kind="allocate",
                document=visit.number,
            )
            terminals.move(
                session,
                actor,
                new_unit,
                TerminalState.INSTALLED,
                site,
                kind="visit_swap_in",
                document=visit.number,
                note=f"{old_unit.serial} → {new_unit.serial}",
            )
        session.add(
            Replacement(
                visit_id=visit.id,
                kind=row.kind,
                device_name=row.device_name,
                quantity=row.quantity,
                old_serial=row.old_serial,
                new_serial=row.new_serial,
                new_terminal_id=new_unit.id if new_unit is not None else None,
                by_id=actor.id,
                at=utcnow(),
            )
        )
    session.flush()
    _event(session, actor, kind="completed", visit=visit, from_state=before.value, comment=notes)
    record(session, actor, "field_visit.completed", visit, before={"state": before.value})
    _ticket_line(
        session,
        actor,
        visit.ticket_id,
        "visit",
        f"{visit.number}: work done — {notes[:200]}",
        visit=visit.number,
        state=visit.state,
    )
    return visit


def decode_signature(data_url: str | None) -> bytes:
    """The PNG bytes of a ``data:image/png;base64,…`` URL posted by the signature pad."""
    text = (data_url or "").strip()
    prefix = "data:image/png;base64,"
    if not text:
        raise ValidationFailed("Ask the customer to sign in the box.", field="signature")
    if not text.startswith(prefix) or len(text) > MAX_SIGNATURE_BYTES * 4 // 3 + 100:
        raise ValidationFailed("The signature is not a PNG image.", field="signature")
    try:
        data = base64.b64decode(text[len(prefix) :], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValidationFailed("The signature is not a PNG image.", field="signature") from exc
    if not data.startswith(PNG_MAGIC) or len(data) > MAX_SIGNATURE_BYTES:
        raise ValidationFailed("The signature is not a PNG image.", field="signature")
    return data


def sign_off(
    *,
    session: Session,
    actor: User,
    visit_id: int,
    signed_name: str,
    signature_png: bytes,
    satisfaction: str,
    satisfaction_note: str = "",
) -> FieldVisit:
    """The customer's satisfaction and sign-off: their name and the signature drawn on the
    page, stored as a document of the visit."""
    require(actor, VISITS_EDIT)
    visit = get_visit(session=session, visit_id=visit_id, actor=actor)
    errors = FieldErrors()
    name = errors.check(_text, signed_name, field="signed_name", max_length=64, required=True)
    rating = errors.check(_choice, satisfaction, SATISFACTION, field="satisfaction")
    note = errors.check(_text, satisfaction_note, field="satisfaction_note", max_length=500)
    if not signature_png.startswith(PNG_MAGIC) or len(signature_png) > MAX_SIGNATURE_BYTES:
        errors.add(ValidationFailed("The signature is not a PNG image.", field="signature"))
    errors.raise_if_any()
    before = visit.transition(VisitState.SIGNED)
    sha, _ = parties.store_bytes(signature_png)
    document = Document(
        sha256=sha,
        filename=f"{visit.number}-signature.png",
        content_type="image/png",
        size=len(signature_png),
        doc_type="signed_form",
        owner_type="repair_visit",
        owner_id=visit.id,
        uploaded_by_id=actor.id,
        uploaded_at=utcnow(),
        note=f"signed by {name}"[:500],
    )
    session.add(document)
    session.flush()
    record(session, actor, "document.uploaded", document)
    visit.signed_name = name
    visit.signature_document_id = document.id
    visit.signed_at = utcnow()
    visit.satisfaction = rating
    visit.satisfaction_note = note or ""
    session.flush()
    _event(session, actor, kind="signed", visit=visit, from_state=before.value, satisfaction=rating)
    record(session, actor, "field_visit.signed", visit, before={"state": before.value})
    _ticket_line(
        session,
        actor,
        visit.ticket_id,
        "visit",
        f"{visit.number}: signed off by {name} ({rating})",
        visit=visit.number,
        state=visit.state,
    )
    return visit


def cancel_visit(*, session: Session, actor: User, visit_id: int, reason: str) -> FieldVisit:
    require(actor, VISITS_EDIT)
    visit = get_visit(session=session, visit_id=visit_id, actor=actor)
    text = _text(reason, field="reason", max_length=500, required=True)
    before = visit.transition(VisitState.CANCELLED)
    _event(session, actor, kind="cancelled", visit=visit, from_state=before.value, comment=text)
    record(session, actor, "field_visit.cancelled", visit, before={"state": before.value})
    return visit


def signature_bytes(session: Session, visit: FieldVisit) -> bytes | None:
    if visit.signature_document_id is None:
        return None
    document = session.get(Document, visit.signature_document_id)
    if document is None:
        return None
    path = parties.document_path(document.sha256)
    return path.read_bytes() if path.is_file() else None


parties.register_document_owner(
    "repair_visit",
    label=N_("Field visit"),
    exists=lambda s, i: s.get(FieldVisit, i) is not None,
    url=lambda i: f"/visits/{i}",
)
parties.register_document_owner(
    "repair_case",
    label=N_("Repair case"),
    exists=lambda s, i: s.get(RepairCase, i) is not None,
    url=lambda i: f"/repairs/{i}",
)
