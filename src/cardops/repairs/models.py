"""The repair workshop (故障机检测流程) and field service (客户服务记录表).

Repair case lifecycle (``REPAIR_TRANSITIONS``)::

    received (intake with the appraisal form 鉴定表)
      → inspected (technician: findings, fault type, warranty, cost estimate)
      → in_repair (in-house) → ready
      → awaiting_factory (put on an open RMA batch) → at_factory (batch sent) → ready (back)
      → ready (no fault found, or replaced by another unit)
    ready → returned (to the provider or the user) → closed (no loaner still out)

A loaner (备用机) may be lent from stock at any step before the return and must be back before
the case closes. Every step writes a :class:`RepairEvent` (the case's history) and moves the
unit through ``cardops.terminals.service`` (the unit's history).

Field visit lifecycle (``VISIT_TRANSITIONS``): scheduled → on_site (arrival) → completed
(departure, notes, replacements, checklist) → signed (customer satisfaction and signature);
scheduled → cancelled.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cardops.core.clock import utcnow
from cardops.core.db import Base, TimestampMixin
from cardops.core.errors import InvalidTransition
from cardops.core.i18n import N_

# Fault type codes (故障类型) used at intake and inspection; reports group by them.
FAULT_TYPES: dict[str, str] = {
    "screen": N_("Screen / display"),
    "keypad": N_("Keypad"),
    "printer": N_("Printer"),
    "card_reader": N_("Card reader (magstripe / chip / contactless)"),
    "power": N_("Power, battery or charging"),
    "communication": N_("Communication (SIM, network, Wi-Fi)"),
    "software": N_("Software or keys"),
    "housing": N_("Housing or physical damage"),
    "no_fault": N_("No fault found"),
    "other": N_("Other"),
}
# Accessories received with a unit (随机附件).
ACCESSORIES: dict[str, str] = {
    "adapter": N_("Power adapter"),
    "battery": N_("Battery"),
    "cable": N_("Charging cable"),
    "sim": N_("SIM card"),
    "paper": N_("Paper roll"),
    "box": N_("Box"),
    "manual": N_("Manual"),
}
RETURN_TARGETS: dict[str, str] = {
    "provider": N_("Back to the provider"),
    "user": N_("Back to the user (where the unit came from)"),
}
REPLACEMENT_KINDS: dict[str, str] = {
    "part": N_("Part replaced"),
    "repair": N_("Repaired"),
    "whole": N_("Whole unit replaced"),
}


class RepairState(enum.StrEnum):
    RECEIVED = "received"
    INSPECTED = "inspected"
    IN_REPAIR = "in_repair"
    AWAITING_FACTORY = "awaiting_factory"
    AT_FACTORY = "at_factory"
    READY = "ready"
    RETURNED = "returned"
    CLOSED = "closed"


_R = RepairState
REPAIR_TRANSITIONS: dict[RepairState, set[RepairState]] = {
    _R.RECEIVED: {_R.INSPECTED},
    _R.INSPECTED: {_R.IN_REPAIR, _R.AWAITING_FACTORY, _R.READY},
    _R.IN_REPAIR: {_R.READY, _R.AWAITING_FACTORY},
    _R.AWAITING_FACTORY: {_R.AT_FACTORY, _R.IN_REPAIR},  # taken off a batch not yet sent
    _R.AT_FACTORY: {_R.READY},
    _R.READY: {_R.RETURNED},
    _R.RETURNED: {_R.CLOSED},
    _R.CLOSED: set(),
}
REPAIR_STATE_LABELS: dict[str, str] = {
    "received": N_("Received, awaiting inspection"),
    "inspected": N_("Inspected, awaiting decision"),
    "in_repair": N_("In repair (in-house)"),
    "awaiting_factory": N_("Waiting for the factory batch"),
    "at_factory": N_("At the factory"),
    "ready": N_("Ready to return"),
    "returned": N_("Returned"),
    "closed": N_("Closed"),
}
OPEN_REPAIR_STATES = tuple(s.value for s in RepairState if s not in (_R.RETURNED, _R.CLOSED))


class RmaBatch(TimestampMixin, Base):
    """A batch of faulty units sent to one manufacturer (返厂维修), with the carrier and
    tracking number; open → sent → received (every unit back)."""

    __tablename__ = "repair_rma_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    supplier_id: Mapped[int] = mapped_column(ForeignKey("suppliers.id"), index=True)
    state: Mapped[str] = mapped_column(String(12), default="open", index=True)
    carrier: Mapped[str] = mapped_column(String(64), default="")
    tracking_number: Mapped[str] = mapped_column(String(64), default="")
    sent_at: Mapped[datetime | None] = mapped_column()
    received_at: Mapped[datetime | None] = mapped_column()
    note: Mapped[str] = mapped_column(String(500), default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class RepairCase(TimestampMixin, Base):
    __tablename__ = "repair_cases"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    state: Mapped[str] = mapped_column(String(20), default=RepairState.RECEIVED.value, index=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("servicedesk_tickets.id"), index=True)
    # the faulty unit and where it came from (the return goes back there)
    terminal_id: Mapped[int] = mapped_column(ForeignKey("terminals.id"), index=True)
    serial: Mapped[str] = mapped_column(String(40), index=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("terminal_models.id"), index=True)
    origin_state: Mapped[str] = mapped_column(String(24))
    origin_location_id: Mapped[int] = mapped_column(ForeignKey("stock_locations.id"))
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("providers.id"), index=True)
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey("merchants.id"), index=True)
    # the appraisal form (鉴定表) filled at intake
    brought_by_name: Mapped[str] = mapped_column(String(64), default="")
    brought_by_phone: Mapped[str] = mapped_column(String(32), default="")
    fault_code: Mapped[str] = mapped_column(String(24))
    fault_description: Mapped[str] = mapped_column(Text, default="")
    appearance: Mapped[str] = mapped_column(String(500), default="")
    accessories: Mapped[list[str]] = mapped_column(JSON, default=list)
    accessories_note: Mapped[str] = mapped_column(String(255), default="")
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    received_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # technician's inspection
    findings: Mapped[str] = mapped_column(Text, default="")
    inspected_fault_code: Mapped[str | None] = mapped_column(String(24))
    under_warranty: Mapped[bool | None] = mapped_column(Boolean)
    estimate: Mapped[int | None] = mapped_column()  # fen
    technician_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    inspected_at: Mapped[datetime | None] = mapped_column()
    # repair
    route: Mapped[str | None] = mapped_column(String(12))  # in_house | factory | none
    rma_batch_id: Mapped[int | None] = mapped_column(
        ForeignKey("repair_rma_batches.id"), index=True
    )
    repair_notes: Mapped[str] = mapped_column(Text, default="")
    repaired_at: Mapped[datetime | None] = mapped_column()
    # whole-unit replacement: the unit handed back instead of the faulty one
    replacement_terminal_id: Mapped[int | None] = mapped_column(ForeignKey("terminals.id"))
    # loaner (备用机)
    loaner_terminal_id: Mapped[int | None] = mapped_column(ForeignKey("terminals.id"))
    loaner_out_at: Mapped[datetime | None] = mapped_column()
    loaner_back_at: Mapped[datetime | None] = mapped_column()
    # return
    return_to: Mapped[str | None] = mapped_column(String(12))  # provider | user
    return_carrier: Mapped[str] = mapped_column(String(64), default="")
    return_tracking: Mapped[str] = mapped_column(String(64), default="")
    returned_at: Mapped[datetime | None] = mapped_column()
    closed_at: Mapped[datetime | None] = mapped_column()

    @property
    def loaner_out(self) -> bool:
        return self.loaner_terminal_id is not None and self.loaner_back_at is None

    def transition(self, target: RepairState) -> RepairState:
        current = RepairState(self.state)
        if target not in REPAIR_TRANSITIONS[current]:
            raise InvalidTransition(
                "Repair case {number} is {state_from}; it cannot become {state_to}.",
                number=self.number,
                state_from=current.value,
                state_to=target.value,
            )
        self.state = target.value
        return current


class RepairEvent(Base):
    """The history of a repair case or a field visit: typed event + what changed + who + when."""

    __tablename__ = "repair_events"
    __table_args__ = (
        Index("ix_repair_events_case_id_id", "case_id", "id"),
        Index("ix_repair_events_visit_id_id", "visit_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("repair_cases.id", ondelete="CASCADE"))
    visit_id: Mapped[int | None] = mapped_column(ForeignKey("repair_visits.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(24))
    from_state: Mapped[str | None] = mapped_column(String(20))
    to_state: Mapped[str | None] = mapped_column(String(20))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    comment: Mapped[str] = mapped_column(String(1000), default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Replacement(Base):
    """A device replacement (设备更换记录) of a repair case or a field visit: a part, a
    repair, or a whole unit (old serial → new serial; whole units come from stock)."""

    __tablename__ = "repair_replacements"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int | None] = mapped_column(
        ForeignKey("repair_cases.id", ondelete="CASCADE"), index=True
    )
    visit_id: Mapped[int | None] = mapped_column(
        ForeignKey("repair_visits.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(8))  # part | repair | whole
    device_name: Mapped[str] = mapped_column(String(128), default="")
    quantity: Mapped[int] = mapped_column(default=1)
    old_serial: Mapped[str] = mapped_column(String(40), default="")
    new_serial: Mapped[str] = mapped_column(String(40), default="")
    new_terminal_id: Mapped[int | None] = mapped_column(ForeignKey("terminals.id"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


# --- field service (客户服务记录表) -----------------------------------------------------------

SERVICE_TYPES: dict[str, str] = {
    "inspection": N_("Inspection"),
    "repair": N_("Repair"),
    "other": N_("Other"),
}
VISIT_MODES: dict[str, str] = {
    "scheduled": N_("Scheduled visit"),
    "on_call": N_("On-call visit"),
}
WARRANTY_STATES: dict[str, str] = {
    "in": N_("In warranty"),
    "out": N_("Out of warranty"),
    "other": N_("Other"),
}
SATISFACTION: dict[str, str] = {
    "very_satisfied": N_("Very satisfied"),
    "satisfied": N_("Satisfied"),
    "neutral": N_("Neutral"),
    "dissatisfied": N_("Dissatisfied"),
    "very_dissatisfied": N_("Very dissatisfied"),
}
# The preventive checklist's items when the operator has not configured its own.
DEFAULT_CHECKLIST: tuple[tuple[str, str, str], ...] = (
    ("card_slot", "Card slot", "卡槽状态"),
    ("software_version", "Software version", "软件版本"),
    ("printer", "Printer function", "打印机功能"),
    ("system_status", "System status", "系统状态"),
    ("chip_reader", "Chip (IC) reader", "IC 芯片插口"),
    ("communication", "Communication (SIM / network)", "通讯状态"),
    ("test_transaction", "Test transaction", "测试交易"),
)


class VisitState(enum.StrEnum):
    SCHEDULED = "scheduled"
    ON_SITE = "on_site"
    COMPLETED = "completed"
    SIGNED = "signed"
    CANCELLED = "cancelled"


_V = VisitState
VISIT_TRANSITIONS: dict[VisitState, set[VisitState]] = {
    _V.SCHEDULED: {_V.ON_SITE, _V.CANCELLED},
    _V.ON_SITE: {_V.COMPLETED},
    _V.COMPLETED: {_V.SIGNED},
    _V.SIGNED: set(),
    _V.CANCELLED: set(),
}
VISIT_STATE_LABELS: dict[str, str] = {
    "scheduled": N_("Scheduled"),
    "on_site": N_("On site"),
    "completed": N_("Work done, awaiting sign-off"),
    "signed": N_("Signed off"),
    "cancelled": N_("Cancelled"),
}


class ChecklistItem(Base):
    """One item of the preventive checklist (预防性检查), configurable by the operator."""

    __tablename__ = "repair_checklist_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    label_en: Mapped[str] = mapped_column(String(128))
    label_zh: Mapped[str] = mapped_column(String(128))
    position: Mapped[int] = mapped_column(default=0)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


class FieldVisit(TimestampMixin, Base):
    __tablename__ = "repair_visits"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    state: Mapped[str] = mapped_column(String(12), default=VisitState.SCHEDULED.value, index=True)
    mode: Mapped[str] = mapped_column(String(12), default="scheduled")  # scheduled | on_call
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("servicedesk_tickets.id"), index=True)
    registration_number: Mapped[str] = mapped_column(String(32), default="")  # 呼叫中心登记
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey("merchants.id"), index=True)
    customer_name: Mapped[str] = mapped_column(String(128))
    address: Mapped[str] = mapped_column(String(255), default="")
    contact_name: Mapped[str] = mapped_column(String(64), default="")
    contact_phone: Mapped[str] = mapped_column(String(32), default="")
    service_type: Mapped[str] = mapped_column(String(12), default="repair")
    service_type_other: Mapped[str] = mapped_column(String(64), default="")
    warranty: Mapped[str] = mapped_column(String(8), default="in")
    warranty_other: Mapped[str] = mapped_column(String(64), default="")
    serial: Mapped[str] = mapped_column(String(40), default="")  # the device serviced
    scheduled_at: Mapped[datetime | None] = mapped_column()
    technician_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    arrived_at: Mapped[datetime | None] = mapped_column()
    departed_at: Mapped[datetime | None] = mapped_column()
    problem: Mapped[str] = mapped_column(Text, default="")
    work_notes: Mapped[str] = mapped_column(Text, default="")
    device_ok: Mapped[bool | None] = mapped_column(Boolean)
    other_issues: Mapped[str] = mapped_column(String(500), default="")
    satisfaction: Mapped[str | None] = mapped_column(String(20))
    satisfaction_note: Mapped[str] = mapped_column(String(500), default="")
    signed_name: Mapped[str] = mapped_column(String(64), default="")
    signature_document_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id"))
    signed_at: Mapped[datetime | None] = mapped_column()
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    def transition(self, target: VisitState) -> VisitState:
        current = VisitState(self.state)
        if target not in VISIT_TRANSITIONS[current]:
            raise InvalidTransition(
                "Visit {number} is {state_from}; it cannot become {state_to}.",
                number=self.number,
                state_from=current.value,
                state_to=target.value,
            )
        self.state = target.value
        return current


class VisitCheck(Base):
    """The answer to one checklist item on one visit."""

    __tablename__ = "repair_visit_checks"

    id: Mapped[int] = mapped_column(primary_key=True)
    visit_id: Mapped[int] = mapped_column(
        ForeignKey("repair_visits.id", ondelete="CASCADE"), index=True
    )
    item_code: Mapped[str] = mapped_column(String(32))
    label: Mapped[str] = mapped_column(String(128))
    checked: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str] = mapped_column(String(255), default="")
