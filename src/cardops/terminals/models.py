"""POS terminals (机具): suppliers and models, purchase requests, inbound batches, the unit with
its three codes and its terminal master key, stock locations, movements and the lifecycle.

Lifecycle (``TRANSITIONS``): received from the manufacturer (awaiting quality check) → in stock
at HQ → allocated to an order → shipped → at a provider → installed at a merchant → activated
(TID/MID bound); faults go to repair or back to the factory; units end scrapped.
After-sales lends loaners from stock (on loan → back in stock) and hands replacement units
over (allocated → at provider / installed); see ``cardops.repairs``.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cardops.core.clock import utcnow
from cardops.core.db import Base, TimestampMixin
from cardops.core.errors import InvalidTransition


class SupplierKind(enum.StrEnum):
    MANUFACTURER = "manufacturer"  # 机具厂家
    ACQUIRING_PLATFORM = "acquiring_platform"  # 收单平台 (富友, 掌付, 卡芯)
    SIM_CARRIER = "sim_carrier"  # 联通


class Supplier(TimestampMixin, Base):
    __tablename__ = "suppliers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(24), default=SupplierKind.MANUFACTURER.value)
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    contact_name: Mapped[str] = mapped_column(String(64), default="")
    contact_mobile: Mapped[str] = mapped_column(String(32), default="")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


class TerminalModel(Base):
    """A terminal model (机型) made by a manufacturer."""

    __tablename__ = "terminal_models"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)  # e.g. DEMO-POS
    name: Mapped[str] = mapped_column(String(128))
    supplier_id: Mapped[int] = mapped_column(ForeignKey("suppliers.id"), index=True)
    has_sim: Mapped[bool] = mapped_column(Boolean, default=True)
    unit_price: Mapped[int] = mapped_column(default=0)  # fen, HQ's list price to providers
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


class PurchaseRequest(TimestampMixin, Base):
    """HQ buying from a supplier; approved through the ``purchase_request`` chain first."""

    __tablename__ = "purchase_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    supplier_id: Mapped[int] = mapped_column(ForeignKey("suppliers.id"), index=True)
    model_id: Mapped[int | None] = mapped_column(ForeignKey("terminal_models.id"))
    description: Mapped[str] = mapped_column(String(500), default="")
    quantity: Mapped[int] = mapped_column()
    unit_price: Mapped[int] = mapped_column(default=0)  # fen
    # draft → pending → approved → ordered → received; pending → rejected → pending (resubmit)
    state: Mapped[str] = mapped_column(String(16), default="draft")
    approval_request_id: Mapped[int | None] = mapped_column(ForeignKey("approval_requests.id"))
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    ordered_at: Mapped[datetime | None] = mapped_column()


class Location(Base):
    """Where a unit is: the HQ warehouse, a provider, a merchant, the factory, the scrap yard."""

    __tablename__ = "stock_locations"
    __table_args__ = (UniqueConstraint("kind", "ref_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(
        String(16)
    )  # warehouse | provider | merchant | factory | scrap
    ref_id: Mapped[int | None] = mapped_column()  # provider id / merchant id / supplier id
    name: Mapped[str] = mapped_column(String(128))


class InboundBatch(Base):
    """One imported serial list (验货入库)."""

    __tablename__ = "inbound_batches"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    supplier_id: Mapped[int] = mapped_column(ForeignKey("suppliers.id"), index=True)
    purchase_request_id: Mapped[int | None] = mapped_column(ForeignKey("purchase_requests.id"))
    filename: Mapped[str] = mapped_column(String(255), default="")
    file_sha256: Mapped[str] = mapped_column(String(64), default="")
    count: Mapped[int] = mapped_column(default=0)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    received_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class FactoryReturn(Base):
    """A return-to-factory batch (返厂单) with its own document number."""

    __tablename__ = "factory_returns"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    supplier_id: Mapped[int] = mapped_column(ForeignKey("suppliers.id"), index=True)
    reason: Mapped[str] = mapped_column(String(500), default="")
    state: Mapped[str] = mapped_column(String(16), default="open")  # open | shipped | closed
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    shipped_at: Mapped[datetime | None] = mapped_column()


class TerminalState(enum.StrEnum):
    RECEIVED = "received"  # imported, awaiting quality check
    IN_STOCK = "in_stock"
    ALLOCATED = "allocated"
    SHIPPED = "shipped"
    AT_PROVIDER = "at_provider"
    INSTALLED = "installed"
    ACTIVATED = "activated"
    FAULTY = "faulty"
    IN_REPAIR = "in_repair"
    RETURNED_TO_FACTORY = "returned_to_factory"
    SCRAPPED = "scrapped"
    ON_LOAN = "on_loan"  # a loaner (备用机) lent by after-sales to a provider or merchant


_S = TerminalState
TRANSITIONS: dict[TerminalState, set[TerminalState]] = {
    _S.RECEIVED: {_S.IN_STOCK, _S.RETURNED_TO_FACTORY},
    _S.IN_STOCK: {_S.ALLOCATED, _S.FAULTY, _S.RETURNED_TO_FACTORY, _S.SCRAPPED, _S.ON_LOAN},
    # allocated → at provider / installed: a replacement unit handed over by after-sales
    _S.ALLOCATED: {_S.IN_STOCK, _S.SHIPPED, _S.AT_PROVIDER, _S.INSTALLED},
    _S.SHIPPED: {_S.AT_PROVIDER, _S.IN_STOCK},  # received, or came back undelivered
    _S.AT_PROVIDER: {_S.ALLOCATED, _S.INSTALLED, _S.FAULTY, _S.IN_STOCK},
    _S.INSTALLED: {_S.ACTIVATED, _S.AT_PROVIDER, _S.FAULTY},
    _S.ACTIVATED: {_S.INSTALLED, _S.AT_PROVIDER, _S.FAULTY},  # change / cancellation (撤机)
    _S.FAULTY: {_S.IN_REPAIR, _S.RETURNED_TO_FACTORY, _S.SCRAPPED},
    _S.IN_REPAIR: {
        _S.IN_STOCK,
        _S.AT_PROVIDER,
        _S.INSTALLED,
        _S.ACTIVATED,
        _S.RETURNED_TO_FACTORY,
        _S.SCRAPPED,
    },
    # back from the factory: into stock, or (a customer's unit of a repair case) in repair
    _S.RETURNED_TO_FACTORY: {_S.IN_STOCK, _S.IN_REPAIR},
    _S.SCRAPPED: set(),
    _S.ON_LOAN: {_S.IN_STOCK, _S.FAULTY},  # the loaner came back, or broke while lent
}


class Terminal(TimestampMixin, Base):
    __tablename__ = "terminals"
    __table_args__ = (
        Index("ix_terminals_location_id_state", "location_id", "state"),
        Index("ix_terminals_model_id_state", "model_id", "state"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    serial: Mapped[str] = mapped_column(String(40), unique=True)  # SN
    model_id: Mapped[int] = mapped_column(ForeignKey("terminal_models.id"))
    supplier_id: Mapped[int] = mapped_column(ForeignKey("suppliers.id"))
    imei: Mapped[str | None] = mapped_column(String(15), unique=True)
    iccid: Mapped[str | None] = mapped_column(String(22), unique=True)
    extra_codes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(24), default=TerminalState.RECEIVED.value, index=True)
    location_id: Mapped[int] = mapped_column(ForeignKey("stock_locations.id"))
    inbound_batch_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_batches.id"))
    factory_return_id: Mapped[int | None] = mapped_column(ForeignKey("factory_returns.id"))
    # the provider that owns the unit in the channel (set when shipped to it), for regions/shares
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("providers.id"), index=True)
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey("merchants.id"), index=True)
    # terminal master key, encrypted with the operator master key; KCV for key injection checks
    tmk_encrypted: Mapped[str | None] = mapped_column(Text)
    tmk_kcv: Mapped[str | None] = mapped_column(String(6))
    tid: Mapped[str | None] = mapped_column(String(8), unique=True)  # bound at activation
    mid: Mapped[str | None] = mapped_column(String(15), index=True)
    activated_at: Mapped[datetime | None] = mapped_column()
    install_province: Mapped[str | None] = mapped_column(String(16))
    install_city: Mapped[str | None] = mapped_column(String(32))
    install_address: Mapped[str | None] = mapped_column(String(255))
    cross_region: Mapped[bool] = mapped_column(Boolean, default=False)  # 窜货 flag
    next_inspection_due: Mapped[date | None] = mapped_column(Date)

    def transition(self, target: TerminalState) -> TerminalState:
        current = TerminalState(self.state)
        if target not in TRANSITIONS[current]:
            raise InvalidTransition(
                "Terminal {serial} is {state_from}; it cannot become {state_to}.",
                serial=self.serial,
                state_from=current.value,
                state_to=target.value,
            )
        self.state = target.value
        return current


class TerminalMovement(Base):
    """Every move and state change of a unit: the traceability record."""

    __tablename__ = "terminal_movements"
    __table_args__ = (Index("ix_terminal_movements_terminal_id_id", "terminal_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    terminal_id: Mapped[int] = mapped_column(ForeignKey("terminals.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(24))  # inbound, qc_pass, qc_fail, allocate, ship, …
    from_location_id: Mapped[int | None] = mapped_column(ForeignKey("stock_locations.id"))
    to_location_id: Mapped[int | None] = mapped_column(ForeignKey("stock_locations.id"))
    from_state: Mapped[str | None] = mapped_column(String(24))
    to_state: Mapped[str | None] = mapped_column(String(24))
    document: Mapped[str | None] = mapped_column(String(48))  # order / batch / case number
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str] = mapped_column(String(500), default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class MaintenanceRecord(Base):
    """The maintenance file of a unit (设备维护档案): installs, test transactions, inspections,
    repairs, replacements, scrapping."""

    __tablename__ = "terminal_maintenance"

    id: Mapped[int] = mapped_column(primary_key=True)
    terminal_id: Mapped[int] = mapped_column(
        ForeignKey("terminals.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(
        String(16)
    )  # install | inspection | repair | replacement | scrap
    at: Mapped[datetime] = mapped_column(default=utcnow)
    by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    test_reference: Mapped[str | None] = mapped_column(String(64))  # test transaction (RRN/STAN)
    result: Mapped[str] = mapped_column(String(16), default="ok")
    notes: Mapped[str] = mapped_column(Text, default="")
    approval_request_id: Mapped[int | None] = mapped_column(ForeignKey("approval_requests.id"))


class StockCount(Base):
    """Units per location × model × state, kept up to date by ``terminals.service`` (every
    move and every import) so that the stock page never counts a million rows.
    ``cardops terminals recount`` rebuilds it from the units."""

    __tablename__ = "terminal_stock_counts"

    location_id: Mapped[int] = mapped_column(ForeignKey("stock_locations.id"), primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("terminal_models.id"), primary_key=True)
    state: Mapped[str] = mapped_column(String(24), primary_key=True)
    count: Mapped[int] = mapped_column(default=0)
