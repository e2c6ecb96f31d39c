"""Terminals: stock locations, the one movement function, search and traceability, suppliers,
purchase requests, quality check, factory returns and device upkeep. Never commits.

Other domains change a unit's state or location only through :func:`move` (or
:func:`allocate_serials` / :func:`release_serials` for orders); it applies the lifecycle in
``models.TRANSITIONS``, writes a :class:`TerminalMovement` and an audit entry.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, event, func, select
from sqlalchemy.orm import Session, attributes

from cardops.approvals import service as approvals
from cardops.approvals.models import ApprovalRequest
from cardops.audit.service import record
from cardops.auth.models import User
from cardops.auth.service import require
from cardops.core.clock import local, utcnow
from cardops.core.errors import Conflict, InvalidTransition, NotFound, ValidationFailed
from cardops.core.i18n import translate
from cardops.core.models import next_number
from cardops.terminals.models import (
    TRANSITIONS,
    FactoryReturn,
    Location,
    MaintenanceRecord,
    PurchaseRequest,
    StockCount,
    Supplier,
    SupplierKind,
    Terminal,
    TerminalModel,
    TerminalMovement,
    TerminalState,
)
from cardops.terminals.permissions import (
    TERMINALS_MAINTAIN,
    TERMINALS_PURCHASE,
    TERMINALS_QC,
    TERMINALS_SUPPLIERS,
    TERMINALS_VIEW,
)

WAREHOUSE_NAME = "总部仓库 HQ warehouse"
SCRAP_NAME = "报废 Scrapped"
LOCATION_KINDS = ("warehouse", "provider", "merchant", "factory", "scrap")
SERIAL_RE = re.compile(r"^[A-Za-z0-9-]{6,40}$")
MAX_SERIALS = 5000  # serials in one pasted list / one allocation


# --- locations ------------------------------------------------------------------------------


def location_for(session: Session, kind: str, ref_id: int | None, name: str) -> Location:
    """The stock location of a provider / merchant / factory (supplier) — created on first use.

    ``name`` is used when the row is created and refreshed when it changed.
    """
    if kind not in LOCATION_KINDS:
        raise ValueError(f"unknown location kind {kind!r}")
    stmt = select(Location).where(Location.kind == kind)
    stmt = stmt.where(Location.ref_id.is_(None) if ref_id is None else Location.ref_id == ref_id)
    found = session.execute(stmt.order_by(Location.id).limit(1)).scalar_one_or_none()
    clean = (name or kind).strip()[:128]
    if found is None:
        found = Location(kind=kind, ref_id=ref_id, name=clean)
        session.add(found)
        session.flush()
    elif clean and found.name != clean:
        found.name = clean
    return found


def warehouse(session: Session) -> Location:
    """The HQ warehouse (总部仓库)."""
    return location_for(session, "warehouse", None, _existing_name(session, "warehouse"))


def scrap_yard(session: Session) -> Location:
    return location_for(session, "scrap", None, _existing_name(session, "scrap"))


def _existing_name(session: Session, kind: str) -> str:
    name = session.execute(
        select(Location.name)
        .where(Location.kind == kind, Location.ref_id.is_(None))
        .order_by(Location.id)
        .limit(1)
    ).scalar_one_or_none()
    return name or (WAREHOUSE_NAME if kind == "warehouse" else SCRAP_NAME)


def factory_of(session: Session, supplier_id: int) -> Location:
    from cardops.terminals.models import Supplier

    supplier = session.get(Supplier, supplier_id)
    name = f"{supplier.name} factory" if supplier else "factory"
    return location_for(session, "factory", supplier_id, name)


def get_location(session: Session, location_id: int) -> Location:
    found = session.get(Location, location_id) if 0 < location_id < 2**31 else None
    if found is None:
        raise NotFound("No stock location with id {id}.", id=location_id)
    return found


def list_locations(session: Session) -> list[Location]:
    return list(session.execute(select(Location).order_by(Location.kind, Location.name)).scalars())


# --- stock counts ---------------------------------------------------------------------------


def bump_counts(
    session: Session, deltas: dict[tuple[int, int, str], int], *, flush: bool = True
) -> None:
    """Add ``deltas`` to the stock counts {(location_id, model_id, state): +/-n} (one upsert;
    keys sorted so that concurrent transactions lock the rows in the same order).

    Units changed through the ORM are counted automatically (``_keep_counts``); only bulk
    inserts that bypass the ORM (the importer) call this themselves."""
    rows = [
        {"location_id": loc, "model_id": mod, "state": st, "count": n}
        for (loc, mod, st), n in sorted(deltas.items())
        if n
    ]
    if not rows:
        return
    from sqlalchemy.dialects import postgresql, sqlite

    postgres = session.get_bind().dialect.name == "postgresql"
    stmt: Any = (postgresql.insert if postgres else sqlite.insert)(StockCount)
    stmt = stmt.on_conflict_do_update(
        index_elements=["location_id", "model_id", "state"],
        set_={"count": StockCount.count + stmt.excluded.count},
    )
    if flush:
        session.flush()
    session.connection().execute(stmt, rows)


_COUNTED = ("state", "location_id", "model_id")


def _keep_counts(session: Session, _context: Any, _instances: Any) -> None:
    """Before every flush: count new, moved and deleted units into the stock counts, whoever
    changed them (the movement service, another domain, a test)."""
    deltas: dict[tuple[int, int, str], int] = {}

    def add(key: tuple[Any, Any, Any], n: int) -> None:
        if None not in key:
            deltas[key] = deltas.get(key, 0) + n

    for obj in session.new:
        if isinstance(obj, Terminal):
            add((obj.location_id, obj.model_id, obj.state or TerminalState.RECEIVED.value), 1)
    for obj in session.deleted:
        if isinstance(obj, Terminal):
            add(_old_key(obj), -1)
    for obj in session.dirty:
        if isinstance(obj, Terminal) and any(
            attributes.get_history(obj, name).has_changes() for name in _COUNTED
        ):
            add(_old_key(obj), -1)
            add((obj.location_id, obj.model_id, obj.state), 1)
    if any(deltas.values()):
        bump_counts(session, deltas, flush=False)


def _old_key(obj: Terminal) -> tuple[Any, Any, Any]:
    values = []
    for name in _COUNTED:
        history = attributes.get_history(obj, name)
        if history.deleted:
            values.append(history.deleted[0])
        elif history.unchanged:
            values.append(history.unchanged[0])
        else:
            values.append(getattr(obj, name))
    state, location_id, model_id = values
    return (location_id, model_id, state)


event.listen(Session, "before_flush", _keep_counts)


def recount(session: Session) -> int:
    """Rebuild the stock counts from the units; returns how many buckets were wrong."""
    actual = {
        (loc, mod, st): int(n)
        for loc, mod, st, n in session.execute(
            select(Terminal.location_id, Terminal.model_id, Terminal.state, func.count()).group_by(
                Terminal.location_id, Terminal.model_id, Terminal.state
            )
        )
    }
    kept = {
        (c.location_id, c.model_id, c.state): c.count
        for c in session.execute(select(StockCount)).scalars()
    }
    wrong = sum(1 for key in set(actual) | set(kept) if actual.get(key, 0) != kept.get(key, 0))
    if wrong:
        session.execute(delete(StockCount))
        bump_counts(session, actual)
    return wrong


# --- the movement ---------------------------------------------------------------------------


def _state(value: TerminalState | str) -> TerminalState:
    try:
        return TerminalState(value)
    except ValueError as exc:
        raise ValidationFailed(
            "Unknown terminal state “{state}”.", field="state", state=str(value)
        ) from exc


def move(
    session: Session,
    actor: User | None,
    terminal: Terminal,
    to_state: TerminalState | str,
    to_location: Location | None = None,
    *,
    kind: str,
    document: str | None = None,
    note: str = "",
    data: dict[str, Any] | None = None,
) -> TerminalMovement:
    """Change a unit's state (and optionally its location); THE one way to do it.

    Refuses an illegal move with ``InvalidTransition`` (409) naming the serial. ``kind`` is a
    short event code (``allocate``, ``ship``, ``receive``, ``install``, ``activate``, …) and
    ``document`` the order / batch / case number it belongs to. Arriving at a provider's
    location sets ``provider_id``; at a merchant's, ``merchant_id``; back in stock at the HQ
    warehouse clears both. The caller checks its own permission before calling.
    """
    target = _state(to_state)
    before_state = terminal.state
    before_location = terminal.location_id
    terminal.transition(target)
    if to_location is not None:
        if to_location.id is None:
            session.flush()
        terminal.location_id = to_location.id
        if to_location.kind == "provider":
            terminal.provider_id = to_location.ref_id
        elif to_location.kind == "merchant":
            terminal.merchant_id = to_location.ref_id
        elif to_location.kind == "warehouse" and target == TerminalState.IN_STOCK:
            terminal.provider_id = None
            terminal.merchant_id = None
    movement = TerminalMovement(
        terminal_id=terminal.id,
        at=utcnow(),
        kind=(kind or "move")[:24],
        from_location_id=before_location,
        to_location_id=terminal.location_id,
        from_state=before_state,
        to_state=target.value,
        document=(document or None) and document[:48],
        actor_id=actor.id if actor is not None else None,
        note=(note or "")[:500],
        data=data or {},
    )
    session.add(movement)
    session.flush()
    record(
        session,
        actor,
        f"terminal.{movement.kind}",
        terminal,
        before={"state": before_state, "location_id": before_location},
        after={"state": terminal.state, "location_id": terminal.location_id},
        serial=terminal.serial,
        document=movement.document,
    )
    return movement


def note_event(
    session: Session,
    actor: User | None,
    terminal: Terminal,
    *,
    kind: str,
    document: str | None = None,
    note: str = "",
    data: dict[str, Any] | None = None,
) -> TerminalMovement:
    """A history line for a unit that neither moves nor changes state (an inspection, a repair
    finished, a replacement recorded). The caller checks its own permission first."""
    movement = TerminalMovement(
        terminal_id=terminal.id,
        at=utcnow(),
        kind=(kind or "note")[:24],
        from_location_id=terminal.location_id,
        to_location_id=terminal.location_id,
        from_state=terminal.state,
        to_state=terminal.state,
        document=(document or None) and document[:48],
        actor_id=actor.id if actor is not None else None,
        note=(note or "")[:500],
        data=data or {},
    )
    session.add(movement)
    session.flush()
    record(
        session,
        actor,
        f"terminal.{movement.kind}",
        terminal,
        serial=terminal.serial,
        document=movement.document,
    )
    return movement


# --- finding units --------------------------------------------------------------------------


def get_terminal(session: Session, terminal_id: int) -> Terminal:
    found = session.get(Terminal, terminal_id) if 0 < terminal_id < 2**31 else None
    if found is None:
        raise NotFound("No terminal with id {id}.", id=terminal_id)
    return found


def get_by_serial(session: Session, serial: str) -> Terminal:
    """The unit with this serial (SN); 404 naming it otherwise."""
    clean = (serial or "").strip()
    found = (
        session.execute(select(Terminal).where(Terminal.serial == clean)).scalar_one_or_none()
        if 0 < len(clean) <= 40
        else None
    )
    if found is None:
        raise NotFound("No terminal with serial {serial}.", field="serial", serial=clean[:40])
    return found


def _prefix_range(text: str) -> tuple[str, str]:
    """[low, high) bounds of the strings starting with ``text`` (uses the serial index)."""
    return text, text[:-1] + chr(ord(text[-1]) + 1)


def find(session: Session, q: str, *, limit: int = 50) -> list[Terminal]:
    """Units whose serial, IMEI, ICCID or TID is exactly ``q``, else whose serial starts with it.

    Each code is looked up on its own unique index (an OR across four columns would scan)."""
    text = (q or "").strip()[:40]
    if not text:
        return []
    for column in (Terminal.serial, Terminal.imei, Terminal.iccid, Terminal.tid):
        exact = session.execute(select(Terminal).where(column == text)).scalar_one_or_none()
        if exact is not None:
            return [exact]
    low, high = _prefix_range(text)
    return list(
        session.execute(
            select(Terminal)
            .where(Terminal.serial >= low, Terminal.serial < high)
            .order_by(Terminal.serial)
            .limit(limit)
        ).scalars()
    )


def history(terminal: Terminal, session: Session | None = None) -> list[TerminalMovement]:
    """Every movement of a unit, oldest first."""
    from sqlalchemy.orm import object_session

    owner = session or object_session(terminal)
    if owner is None:
        return []
    return list(
        owner.execute(
            select(TerminalMovement)
            .where(TerminalMovement.terminal_id == terminal.id)
            .order_by(TerminalMovement.id)
        ).scalars()
    )


# --- serial lists for orders ----------------------------------------------------------------


def parse_serials(text: str | Iterable[str]) -> list[str]:
    """Serials scanned or pasted: one per line (commas, spaces and tabs also separate)."""
    raw = re.split(r"[\s,;，；]+", text) if isinstance(text, str) else list(text)
    seen: dict[str, None] = {}
    for item in raw:
        serial = str(item).strip()
        if serial:
            seen.setdefault(serial, None)
    return list(seen)


def check_serials(
    session: Session,
    serials: Sequence[str],
    *,
    location: Location | None = None,
    states: Iterable[TerminalState | str] = (TerminalState.IN_STOCK,),
    model_ids: Iterable[int] | None = None,
    field: str = "serials",
) -> list[Terminal]:
    """The units for ``serials``, in order, each existing, in one of ``states`` and (when given)
    at ``location`` and of one of ``model_ids``. Otherwise one ValidationFailed naming every
    serial that is wrong and why (e.g. "a serial shipped that is not in the sender's stock").
    """
    wanted = parse_serials(serials)
    if not wanted:
        raise ValidationFailed("Enter at least one serial.", field=field)
    if len(wanted) > MAX_SERIALS:
        raise ValidationFailed("At most {n} serials at a time.", field=field, n=MAX_SERIALS)
    allowed = {_state(s).value for s in states}
    models = set(model_ids) if model_ids is not None else None
    found: dict[str, Terminal] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        for row in session.execute(select(Terminal).where(Terminal.serial.in_(chunk))).scalars():
            found[row.serial] = row
    problems: list[str] = []
    for serial in wanted:
        unit = found.get(serial)
        if unit is None:
            problems.append(translate("{serial} does not exist", serial=serial))
        elif unit.state not in allowed:
            problems.append(translate("{serial} is {state}", serial=serial, state=unit.state))
        elif location is not None and unit.location_id != location.id:
            problems.append(
                translate(
                    "{serial} is not in stock at {location}", serial=serial, location=location.name
                )
            )
        elif models is not None and unit.model_id not in models:
            problems.append(translate("{serial} is not of an ordered model", serial=serial))
    if problems:
        raise ValidationFailed(
            "These serials cannot be used: {problems}.",
            field=field,
            problems="; ".join(problems[:50]) + (" …" if len(problems) > 50 else ""),
        )
    return [found[s] for s in wanted]


def allocate_serials(
    session: Session,
    actor: User | None,
    serials: Sequence[str],
    document: str,
    *,
    location: Location | None = None,
    states: Iterable[TerminalState | str] = (TerminalState.IN_STOCK, TerminalState.AT_PROVIDER),
    model_ids: Iterable[int] | None = None,
) -> list[Terminal]:
    """Check the serials (see :func:`check_serials`; ``location`` is the sender's stock, the HQ
    warehouse by default) and move them all to ``allocated`` for ``document``. All or none."""
    where = location if location is not None else warehouse(session)
    units = check_serials(session, serials, location=where, states=states, model_ids=model_ids)
    for unit in units:
        move(session, actor, unit, TerminalState.ALLOCATED, kind="allocate", document=document)
    return units


def release_serials(
    session: Session, actor: User | None, serials: Sequence[str], document: str, note: str = ""
) -> list[Terminal]:
    """Undo an allocation: allocated units go back to in stock (HQ) or at provider."""
    units = check_serials(session, serials, states=(TerminalState.ALLOCATED,))
    for unit in units:
        loc = session.get(Location, unit.location_id)
        back = (
            TerminalState.AT_PROVIDER
            if loc is not None and loc.kind == "provider"
            else TerminalState.IN_STOCK
        )
        move(session, actor, unit, back, kind="release", document=document, note=note)
    return units


# release is the short name the briefs use
release = release_serials


# --- stock ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StockRow:
    location_id: int
    location: str
    location_kind: str
    model_id: int
    model: str
    state: str
    count: int


def stock_summary(
    session: Session,
    *,
    location_id: int | None = None,
    model_id: int | None = None,
    state: str | None = None,
    provider_ids: Iterable[int] | None = None,
) -> list[StockRow]:
    """Unit counts by location × model × state: from the kept counts (StockCount) for HQ staff,
    or counted from the units of the given providers."""
    stmt: Any
    if provider_ids is None:  # the kept counts: no scan of the units
        stmt = select(
            StockCount.location_id, StockCount.model_id, StockCount.state, StockCount.count
        )
        stmt = stmt.where(StockCount.count > 0)
        columns: Any = StockCount
    else:  # a provider's own units: few, counted from the provider_id index
        stmt = select(
            Terminal.location_id, Terminal.model_id, Terminal.state, func.count().label("n")
        ).group_by(Terminal.location_id, Terminal.model_id, Terminal.state)
        stmt = stmt.where(Terminal.provider_id.in_(list(provider_ids)))
        columns = Terminal
    if location_id:
        stmt = stmt.where(columns.location_id == location_id)
    if model_id:
        stmt = stmt.where(columns.model_id == model_id)
    if state:
        stmt = stmt.where(columns.state == state)
    rows = session.execute(stmt).all()
    locations = {loc.id: loc for loc in session.execute(select(Location)).scalars()}
    models = {m.id: m for m in session.execute(select(TerminalModel)).scalars()}
    out = []
    for loc_id, mod_id, st, n in rows:
        loc = locations.get(loc_id)
        mod = models.get(mod_id)
        out.append(
            StockRow(
                location_id=loc_id,
                location=loc.name if loc else str(loc_id),
                location_kind=loc.kind if loc else "",
                model_id=mod_id,
                model=mod.code if mod else str(mod_id),
                state=st,
                count=int(n),
            )
        )
    out.sort(key=lambda r: (r.location_kind != "warehouse", r.location, r.model, r.state))
    return out


def list_terminals(
    session: Session,
    *,
    q: str = "",
    state: str | None = None,
    location_id: int | None = None,
    model_id: int | None = None,
    provider_ids: Iterable[int] | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Terminal], int]:
    """One page of units (ordered by serial) and the total matching."""
    stmt = select(Terminal)
    count = select(func.count()).select_from(Terminal)
    conditions: list[Any] = []
    text = (q or "").strip()[:40]
    if text:
        exact = find(session, text, limit=1)
        if exact and text in (exact[0].imei, exact[0].iccid, exact[0].tid):
            conditions.append(Terminal.id == exact[0].id)
        else:
            low, high = _prefix_range(text)
            conditions.append(and_(Terminal.serial >= low, Terminal.serial < high))
    if state:
        conditions.append(Terminal.state == state)
    if location_id:
        conditions.append(Terminal.location_id == location_id)
    if model_id:
        conditions.append(Terminal.model_id == model_id)
    if provider_ids is not None:
        conditions.append(Terminal.provider_id.in_(list(provider_ids)))
    if conditions:
        stmt = stmt.where(*conditions)
        count = count.where(*conditions)
    limit = max(1, min(limit, 500))
    offset = max(0, min(offset, 10_000_000))
    units = list(
        session.execute(stmt.order_by(Terminal.serial).limit(limit).offset(offset)).scalars()
    )
    total = int(session.execute(count).scalar_one())
    return units, total


# --- suppliers and models -------------------------------------------------------------------


def _clean(value: str | None, *, field: str, max_length: int, required: bool = False) -> str:
    text = (value or "").strip()
    if "\x00" in text:
        raise ValidationFailed("The text contains a character that is not allowed.", field=field)
    if len(text) > max_length:
        raise ValidationFailed("Too long: at most {n} characters.", field=field, n=max_length)
    if required and not text:
        raise ValidationFailed("This field is required.", field=field)
    return text


def list_suppliers(session: Session, *, kind: str | None = None) -> list[Supplier]:
    stmt = select(Supplier).order_by(Supplier.name)
    if kind:
        stmt = stmt.where(Supplier.kind == kind)
    return list(session.execute(stmt).scalars())


def get_supplier(session: Session, supplier_id: int) -> Supplier:
    found = session.get(Supplier, supplier_id) if 0 < supplier_id < 2**31 else None
    if found is None:
        raise NotFound("No supplier with id {id}.", id=supplier_id)
    return found


def create_supplier(
    *,
    session: Session,
    actor: User,
    name: str,
    kind: str,
    contact_name: str = "",
    contact_mobile: str = "",
) -> Supplier:
    require(actor, TERMINALS_SUPPLIERS)
    clean_name = _clean(name, field="name", max_length=128, required=True)
    if kind not in {k.value for k in SupplierKind}:
        raise ValidationFailed("Choose the kind of supplier from the list.", field="kind")
    if session.execute(select(Supplier.id).where(Supplier.name == clean_name)).first():
        raise Conflict("A supplier named “{name}” exists already.", field="name", name=clean_name)
    supplier = Supplier(
        name=clean_name,
        kind=kind,
        contact_name=_clean(contact_name, field="contact_name", max_length=64),
        contact_mobile=_clean(contact_mobile, field="contact_mobile", max_length=32),
    )
    session.add(supplier)
    session.flush()
    record(session, actor, "supplier.created", supplier)
    return supplier


def list_models(session: Session, *, supplier_id: int | None = None) -> list[TerminalModel]:
    stmt = select(TerminalModel).order_by(TerminalModel.code)
    if supplier_id:
        stmt = stmt.where(TerminalModel.supplier_id == supplier_id)
    return list(session.execute(stmt).scalars())


def create_model(
    *,
    session: Session,
    actor: User,
    supplier_id: int,
    code: str,
    name: str,
    unit_price: int = 0,
    has_sim: bool = True,
) -> TerminalModel:
    require(actor, TERMINALS_SUPPLIERS)
    supplier = get_supplier(session, supplier_id)
    if supplier.kind != SupplierKind.MANUFACTURER.value:
        raise ValidationFailed("Terminal models belong to a manufacturer.", field="supplier_id")
    clean_code = _clean(code, field="code", max_length=32, required=True).upper()
    if not re.fullmatch(r"[A-Z0-9][A-Z0-9._-]{0,31}", clean_code):
        raise ValidationFailed("A model code is letters, digits, “.”, “_” or “-”.", field="code")
    if session.execute(select(TerminalModel.id).where(TerminalModel.code == clean_code)).first():
        raise Conflict("The model code {value} exists already.", field="code", value=clean_code)
    if not 0 <= unit_price <= 100_000_000:
        raise ValidationFailed("Enter a price between 0 and 1,000,000.00.", field="unit_price")
    model = TerminalModel(
        code=clean_code,
        name=_clean(name, field="name", max_length=128, required=True),
        supplier_id=supplier.id,
        unit_price=unit_price,
        has_sim=has_sim,
    )
    session.add(model)
    session.flush()
    record(session, actor, "terminal_model.created", model)
    return model


# --- purchase requests ----------------------------------------------------------------------

PURCHASE_KIND = "purchase_request"


def list_purchase_requests(session: Session, *, state: str | None = None) -> list[PurchaseRequest]:
    stmt = select(PurchaseRequest).order_by(PurchaseRequest.id.desc()).limit(500)
    if state:
        stmt = stmt.where(PurchaseRequest.state == state)
    return list(session.execute(stmt).scalars())


def get_purchase_request(session: Session, request_id: int) -> PurchaseRequest:
    found = session.get(PurchaseRequest, request_id) if 0 < request_id < 2**31 else None
    if found is None:
        raise NotFound("No purchase request with id {id}.", id=request_id)
    return found


def create_purchase_request(
    *,
    session: Session,
    actor: User,
    supplier_id: int,
    quantity: int,
    model_id: int | None = None,
    unit_price: int = 0,
    description: str = "",
) -> PurchaseRequest:
    """File a purchase request and submit it to the ``purchase_request`` approval chain."""
    require(actor, TERMINALS_PURCHASE)
    supplier = get_supplier(session, supplier_id)
    model = None
    if model_id:
        model = session.get(TerminalModel, model_id) if 0 < model_id < 2**31 else None
        if model is None or model.supplier_id != supplier.id:
            raise ValidationFailed("Choose a model made by this supplier.", field="model_id")
    if not 1 <= quantity <= 1_000_000:
        raise ValidationFailed("Enter a quantity between 1 and 1,000,000.", field="quantity")
    if not 0 <= unit_price <= 100_000_000:
        raise ValidationFailed("Enter a price between 0 and 1,000,000.00.", field="unit_price")
    text = _clean(description, field="description", max_length=500)
    request = PurchaseRequest(
        number=next_number(session, "purchase", "PR"),
        supplier_id=supplier.id,
        model_id=model.id if model else None,
        description=text,
        quantity=quantity,
        unit_price=unit_price or (model.unit_price if model else 0),
        state="pending",
        requested_by_id=actor.id,
    )
    session.add(request)
    session.flush()
    title = f"{request.number} {supplier.name} × {quantity}"
    approval = approvals.submit(
        session=session,
        actor=actor,
        kind=PURCHASE_KIND,
        title=title,
        description=text,
        payload={
            "supplier": supplier.name,
            "model": model.code if model else None,
            "quantity": quantity,
            "unit_price": request.unit_price,
        },
        subject=request,
        check_permission=False,
    )
    request.approval_request_id = approval.id
    record(session, actor, "purchase_request.submitted", request)
    return request


def resubmit_purchase_request(
    *, session: Session, actor: User, request_id: int, comment: str = ""
) -> PurchaseRequest:
    require(actor, TERMINALS_PURCHASE)
    request = get_purchase_request(session, request_id)
    if request.state != "rejected" or request.approval_request_id is None:
        raise InvalidTransition(
            "Purchase request {number} is {state}; only a rejected request can be resubmitted.",
            number=request.number,
            state=request.state,
        )
    approvals.resubmit(
        session=session, actor=actor, request_id=request.approval_request_id, comment=comment
    )
    before = {"state": request.state}
    request.state = "pending"
    record(session, actor, "purchase_request.resubmitted", request, before=before)
    return request


def _on_purchase_decided(*, session: Session, request: ApprovalRequest, actor: User) -> None:
    if request.subject_type != PurchaseRequest.__tablename__ or not request.subject_id:
        return
    purchase = session.get(PurchaseRequest, int(request.subject_id))
    if purchase is None:
        return
    before = {"state": purchase.state}
    if request.state == "approved":
        purchase.state = "approved"
    elif request.state == "rejected":
        purchase.state = "rejected"
    elif request.state == "withdrawn":
        purchase.state = "withdrawn"
    else:
        return
    record(session, actor, f"purchase_request.{purchase.state}", purchase, before=before)


approvals.on_decided(PURCHASE_KIND, _on_purchase_decided)


def mark_ordered(*, session: Session, actor: User, request_id: int) -> PurchaseRequest:
    require(actor, TERMINALS_PURCHASE)
    request = get_purchase_request(session, request_id)
    if request.state != "approved":
        raise InvalidTransition(
            "Purchase request {number} is {state}; it can be ordered only once approved.",
            number=request.number,
            state=request.state,
        )
    before = {"state": request.state}
    request.state = "ordered"
    request.ordered_at = utcnow()
    record(session, actor, "purchase_request.ordered", request, before=before)
    return request


# --- quality check and factory returns ------------------------------------------------------


def quality_check(
    *,
    session: Session,
    actor: User,
    serials: Sequence[str] | str = (),
    batch_id: int | None = None,
    failed: Sequence[str] | str = (),
    reason: str = "",
) -> tuple[int, FactoryReturn | None]:
    """Quality-check received units: every unit named (``serials``, or all received units of
    inbound batch ``batch_id``) passes → in stock, except ``failed`` → a new return-to-factory
    batch (one per supplier) with ``reason``. Returns (passed count, the return batch)."""
    require(actor, TERMINALS_QC)
    failed_list = parse_serials(failed)
    units: list[Terminal] = []
    if batch_id:
        units = list(
            session.execute(
                select(Terminal)
                .where(
                    Terminal.inbound_batch_id == batch_id,
                    Terminal.state == TerminalState.RECEIVED.value,
                )
                .order_by(Terminal.id)
            ).scalars()
        )
        if not units:
            raise ValidationFailed(
                "The batch has no units awaiting quality check.", field="batch_id"
            )
        named = {u.serial for u in units}
        stray = [s for s in failed_list if s not in named]
        if stray:
            raise ValidationFailed(
                "These serials cannot be used: {problems}.",
                field="failed",
                problems=", ".join(stray[:50]),
            )
    else:
        wanted = parse_serials(serials) + [
            s for s in failed_list if s not in set(parse_serials(serials))
        ]
        units = check_serials(session, wanted, states=(TerminalState.RECEIVED,), field="serials")
    failing = set(failed_list)
    if failing and not _clean(reason, field="reason", max_length=500):
        raise ValidationFailed("Give the reason the units failed.", field="reason")
    passed = 0
    returns: FactoryReturn | None = None
    for unit in units:
        if unit.serial in failing:
            if returns is None:
                returns = _new_return(session, actor, unit.supplier_id, reason)
            _send_back(session, actor, unit, returns, kind="qc_fail")
        else:
            move(session, actor, unit, TerminalState.IN_STOCK, kind="qc_pass")
            passed += 1
    return passed, returns


def _new_return(session: Session, actor: User, supplier_id: int, reason: str) -> FactoryReturn:
    returns = FactoryReturn(
        number=next_number(session, "factory_return", "RF"),
        supplier_id=supplier_id,
        reason=_clean(reason, field="reason", max_length=500),
        state="open",
        created_by_id=actor.id,
    )
    session.add(returns)
    session.flush()
    record(session, actor, "factory_return.created", returns)
    return returns


def _send_back(
    session: Session, actor: User, unit: Terminal, returns: FactoryReturn, *, kind: str
) -> None:
    unit.factory_return_id = returns.id
    move(
        session,
        actor,
        unit,
        TerminalState.RETURNED_TO_FACTORY,
        kind=kind,
        document=returns.number,
        note=returns.reason,
    )


def create_factory_return(
    *, session: Session, actor: User, serials: Sequence[str] | str, reason: str
) -> FactoryReturn:
    """Send faulty (or received / in-stock) units back to the factory in one return batch."""
    require(actor, TERMINALS_QC)
    if not _clean(reason, field="reason", max_length=500):
        raise ValidationFailed("Give the reason the units go back.", field="reason")
    units = check_serials(
        session,
        parse_serials(serials),
        states=(
            TerminalState.FAULTY,
            TerminalState.RECEIVED,
            TerminalState.IN_STOCK,
            TerminalState.IN_REPAIR,
        ),
    )
    makers = {u.supplier_id for u in units}
    if len(makers) > 1:
        raise ValidationFailed(
            "A return batch goes to one manufacturer; list units of one supplier.",
            field="serials",
        )
    returns = _new_return(session, actor, units[0].supplier_id, reason)
    for unit in units:
        _send_back(session, actor, unit, returns, kind="factory_return")
    return returns


def get_factory_return(session: Session, return_id: int) -> FactoryReturn:
    found = session.get(FactoryReturn, return_id) if 0 < return_id < 2**31 else None
    if found is None:
        raise NotFound("No return batch with id {id}.", id=return_id)
    return found


def list_factory_returns(session: Session) -> list[FactoryReturn]:
    return list(
        session.execute(
            select(FactoryReturn).order_by(FactoryReturn.id.desc()).limit(500)
        ).scalars()
    )


def return_units(session: Session, returns: FactoryReturn) -> list[Terminal]:
    return list(
        session.execute(
            select(Terminal)
            .where(Terminal.factory_return_id == returns.id)
            .order_by(Terminal.serial)
        ).scalars()
    )


def ship_factory_return(*, session: Session, actor: User, return_id: int) -> FactoryReturn:
    require(actor, TERMINALS_QC)
    returns = get_factory_return(session, return_id)
    if returns.state != "open":
        raise InvalidTransition(
            "Return batch {number} is {state}; only an open batch can be shipped.",
            number=returns.number,
            state=returns.state,
        )
    before = {"state": returns.state}
    returns.state = "shipped"
    returns.shipped_at = utcnow()
    place = factory_of(session, returns.supplier_id)
    for unit in return_units(session, returns):
        if unit.state == TerminalState.RETURNED_TO_FACTORY.value and unit.location_id != place.id:
            came_from = unit.location_id
            unit.location_id = place.id
            session.add(
                TerminalMovement(
                    terminal_id=unit.id,
                    at=utcnow(),
                    kind="factory_ship",
                    from_location_id=came_from,
                    to_location_id=place.id,
                    from_state=unit.state,
                    to_state=unit.state,
                    document=returns.number,
                    actor_id=actor.id,
                    note="",
                    data={},
                )
            )
    record(session, actor, "factory_return.shipped", returns, before=before)
    return returns


def receive_factory_return(
    *, session: Session, actor: User, return_id: int, serials: Sequence[str] | str = ()
) -> FactoryReturn:
    """Units came back from the factory (repaired or replaced): back in stock at HQ. With no
    ``serials``, every unit of the batch still at the factory; the batch closes when none is left."""
    require(actor, TERMINALS_QC)
    returns = get_factory_return(session, return_id)
    if returns.state == "closed":
        raise InvalidTransition(
            "Return batch {number} is {state}; only an open batch can be shipped.",
            number=returns.number,
            state=returns.state,
        )
    pending = [
        u
        for u in return_units(session, returns)
        if u.state == TerminalState.RETURNED_TO_FACTORY.value
    ]
    wanted = set(parse_serials(serials)) if serials else {u.serial for u in pending}
    unknown = wanted - {u.serial for u in pending}
    if unknown:
        raise ValidationFailed(
            "These serials cannot be used: {problems}.",
            field="serials",
            problems=", ".join(sorted(unknown)[:50]),
        )
    place = warehouse(session)
    for unit in pending:
        if unit.serial in wanted:
            move(
                session,
                actor,
                unit,
                TerminalState.IN_STOCK,
                place,
                kind="factory_back",
                document=returns.number,
            )
    if all(u.serial in wanted for u in pending):
        before = {"state": returns.state}
        returns.state = "closed"
        record(session, actor, "factory_return.closed", returns, before=before)
    return returns


# --- device upkeep (004 §3) -----------------------------------------------------------------

INSPECTION_INTERVAL_DAYS = 180  # periodic inspection: every 180 days after install/inspection
SCRAP_KIND = "scrapping"


def _next_inspection(days: int = INSPECTION_INTERVAL_DAYS) -> date:
    return local(utcnow()).date() + timedelta(days=days)


def _maintenance(
    session: Session,
    actor: User,
    unit: Terminal,
    kind: str,
    *,
    result: str = "ok",
    notes: str = "",
    test_reference: str | None = None,
) -> MaintenanceRecord:
    entry = MaintenanceRecord(
        terminal_id=unit.id,
        kind=kind,
        at=utcnow(),
        by_id=actor.id,
        test_reference=test_reference,
        result=result,
        notes=_clean(notes, field="notes", max_length=2000),
    )
    session.add(entry)
    session.flush()
    record(session, actor, f"terminal_maintenance.{kind}", entry, serial=unit.serial)
    return entry


def maintenance_file(session: Session, unit: Terminal) -> list[MaintenanceRecord]:
    return list(
        session.execute(
            select(MaintenanceRecord)
            .where(MaintenanceRecord.terminal_id == unit.id)
            .order_by(MaintenanceRecord.id)
        ).scalars()
    )


def record_install(
    *,
    session: Session,
    actor: User,
    serial: str,
    test_reference: str,
    notes: str = "",
    merchant_id: int | None = None,
) -> MaintenanceRecord:
    """The unit is installed (at its provider → installed) and a test transaction went
    through (its reference is required); the first inspection falls due in 180 days."""
    require(actor, TERMINALS_MAINTAIN)
    reference = _clean(test_reference, field="test_reference", max_length=64)
    if not reference:
        raise ValidationFailed(
            "Enter the reference of the test transaction.", field="test_reference"
        )
    unit = get_by_serial(session, serial)
    target = None
    if merchant_id:
        from cardops.merchants.models import Merchant

        merchant = session.get(Merchant, merchant_id) if 0 < merchant_id < 2**31 else None
        if merchant is None:
            raise ValidationFailed("No merchant with id {id}.", field="merchant_id", id=merchant_id)
        target = location_for(session, "merchant", merchant.id, merchant.name)
    if unit.state != TerminalState.INSTALLED.value:
        move(session, actor, unit, TerminalState.INSTALLED, target, kind="install", note=reference)
    entry = _maintenance(session, actor, unit, "install", notes=notes, test_reference=reference)
    unit.next_inspection_due = _next_inspection()
    return entry


def record_inspection(
    *, session: Session, actor: User, serial: str, result: str, notes: str = ""
) -> MaintenanceRecord:
    """A periodic inspection: ``ok`` sets the next due date; ``faulty`` moves the unit to faulty."""
    require(actor, TERMINALS_MAINTAIN)
    if result not in ("ok", "faulty"):
        raise ValidationFailed("Choose the result: ok or faulty.", field="result")
    unit = get_by_serial(session, serial)
    if unit.state in (TerminalState.SCRAPPED.value, TerminalState.RETURNED_TO_FACTORY.value):
        raise InvalidTransition(
            "Terminal {serial} is {state_from}; it cannot become {state_to}.",
            serial=unit.serial,
            state_from=unit.state,
            state_to="inspected",
        )
    if result == "faulty":
        move(session, actor, unit, TerminalState.FAULTY, kind="inspection_fault", note=notes[:500])
        unit.next_inspection_due = None
    else:
        unit.next_inspection_due = _next_inspection()
    return _maintenance(session, actor, unit, "inspection", result=result, notes=notes)


def record_repair(
    *,
    session: Session,
    actor: User,
    serial: str,
    notes: str,
    done: bool = False,
    back_to: str = TerminalState.IN_STOCK.value,
) -> MaintenanceRecord:
    """Repair of a faulty unit: start (faulty → in repair) or, with ``done``, finish (→
    ``back_to``: in stock, at provider, installed or activated)."""
    require(actor, TERMINALS_MAINTAIN)
    if not _clean(notes, field="notes", max_length=2000):
        raise ValidationFailed("Describe the fault and the work done.", field="notes")
    unit = get_by_serial(session, serial)
    if done:
        target = _state(back_to)
        move(session, actor, unit, target, kind="repaired", note=notes[:500])
        if target in (TerminalState.INSTALLED, TerminalState.ACTIVATED):
            unit.next_inspection_due = _next_inspection()
        return _maintenance(session, actor, unit, "repair", result="done", notes=notes)
    move(session, actor, unit, TerminalState.IN_REPAIR, kind="repair", note=notes[:500])
    return _maintenance(session, actor, unit, "repair", result="in_repair", notes=notes)


def request_scrap(*, session: Session, actor: User, serial: str, reason: str) -> MaintenanceRecord:
    """Ask to scrap a unit through the ``scrapping`` approval chain; it is scrapped only when
    the chain approves (the unit must be faulty, in repair or in stock)."""
    require(actor, TERMINALS_MAINTAIN)
    text = _clean(reason, field="reason", max_length=2000)
    if not text:
        raise ValidationFailed("Give the reason for scrapping.", field="reason")
    unit = get_by_serial(session, serial)
    if TerminalState.SCRAPPED not in TRANSITIONS[TerminalState(unit.state)]:
        raise InvalidTransition(
            "Terminal {serial} is {state_from}; it cannot become {state_to}.",
            serial=unit.serial,
            state_from=unit.state,
            state_to=TerminalState.SCRAPPED.value,
        )
    pending = session.execute(
        select(MaintenanceRecord.id).where(
            MaintenanceRecord.terminal_id == unit.id,
            MaintenanceRecord.kind == "scrap",
            MaintenanceRecord.result == "pending",
        )
    ).first()
    if pending:
        raise Conflict(
            "Scrapping of terminal {serial} is already waiting for approval.", serial=unit.serial
        )
    entry = _maintenance(session, actor, unit, "scrap", result="pending", notes=text)
    approval = approvals.submit(
        session=session,
        actor=actor,
        kind=SCRAP_KIND,
        title=f"Scrap {unit.serial}",
        description=text,
        payload={"serial": unit.serial, "state": unit.state},
        subject=entry,
        check_permission=False,
    )
    entry.approval_request_id = approval.id
    return entry


def _on_scrap_decided(*, session: Session, request: ApprovalRequest, actor: User) -> None:
    if request.subject_type != MaintenanceRecord.__tablename__ or not request.subject_id:
        return
    entry = session.get(MaintenanceRecord, int(request.subject_id))
    if entry is None or entry.kind != "scrap":
        return
    before = {"result": entry.result}
    if request.state == "approved":
        unit = session.get(Terminal, entry.terminal_id)
        if unit is not None:
            move(
                session,
                actor,
                unit,
                TerminalState.SCRAPPED,
                scrap_yard(session),
                kind="scrap",
                document=request.number,
                note=entry.notes[:500],
            )
            unit.next_inspection_due = None
        entry.result = "approved"
    elif request.state in ("rejected", "withdrawn"):
        entry.result = "refused"
    else:
        return
    record(session, actor, "terminal_maintenance.scrap_decided", entry, before=before)


approvals.on_decided(SCRAP_KIND, _on_scrap_decided)


def inspections_due(session: Session, *, within_days: int = 30, limit: int = 500) -> list[Terminal]:
    """Installed / activated units whose inspection falls due within ``within_days`` (or is
    overdue), soonest first."""
    horizon = local(utcnow()).date() + timedelta(days=max(0, min(within_days, 3650)))
    return list(
        session.execute(
            select(Terminal)
            .where(
                Terminal.next_inspection_due.is_not(None),
                Terminal.next_inspection_due <= horizon,
            )
            .order_by(Terminal.next_inspection_due, Terminal.serial)
            .limit(limit)
        ).scalars()
    )


# --- who sees what --------------------------------------------------------------------------


def visible_provider_ids(session: Session, user: User) -> set[int] | None:
    """None for HQ staff (every unit); for a provider's staff, their provider and its subtree
    (the channel domain decides)."""
    try:
        from cardops.channel.service import visible_provider_ids as channel_visible
    except ImportError:  # pragma: no cover - channel not installed
        return None
    return channel_visible(session, user)


def get_visible(session: Session, user: User, serial: str) -> Terminal:
    """The unit for ``serial`` if ``user`` may see it (404 otherwise, not to leak serials)."""
    require(user, TERMINALS_VIEW)
    unit = get_by_serial(session, serial)
    allowed = visible_provider_ids(session, user)
    if allowed is not None and unit.provider_id not in allowed:
        raise NotFound("No terminal with serial {serial}.", field="serial", serial=unit.serial)
    return unit


@dataclass(frozen=True, slots=True)
class HistoryEvent:
    at: datetime
    kind: str
    from_state: str | None
    from_location: str | None
    from_location_kind: str | None
    to_state: str | None
    to_location: str | None
    to_location_kind: str | None
    document: str | None
    by: str | None
    note: str


def history_events(session: Session, unit: Terminal) -> list[HistoryEvent]:
    """The movement history with location names and who did it: "who had it, when"."""
    moves = history(unit, session)
    loc_ids = {m.from_location_id for m in moves} | {m.to_location_id for m in moves}
    locations = {
        loc.id: loc
        for loc in session.execute(
            select(Location).where(Location.id.in_([i for i in loc_ids if i]))
        ).scalars()
    }
    user_ids = {m.actor_id for m in moves if m.actor_id}
    users = {
        u.id: u.username
        for u in session.execute(select(User).where(User.id.in_(user_ids))).scalars()
    }
    out = []
    for m in moves:
        src = locations.get(m.from_location_id or 0)
        dst = locations.get(m.to_location_id or 0)
        out.append(
            HistoryEvent(
                at=m.at,
                kind=m.kind,
                from_state=m.from_state,
                from_location=src.name if src else None,
                from_location_kind=src.kind if src else None,
                to_state=m.to_state,
                to_location=dst.name if dst else None,
                to_location_kind=dst.kind if dst else None,
                document=m.document,
                by=users.get(m.actor_id or 0),
                note=m.note,
            )
        )
    return out
