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
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from cardops.audit.service import record
from cardops.auth.models import User
from cardops.core.clock import utcnow
from cardops.core.errors import NotFound, ValidationFailed
from cardops.core.i18n import translate
from cardops.terminals.models import (
    Location,
    Terminal,
    TerminalModel,
    TerminalMovement,
    TerminalState,
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


def find(session: Session, q: str, *, limit: int = 50) -> list[Terminal]:
    """Units whose serial, IMEI, ICCID or TID is exactly ``q``, else whose serial starts with it."""
    text = (q or "").strip()[:40]
    if not text:
        return []
    exact = list(
        session.execute(
            select(Terminal)
            .where(
                or_(
                    Terminal.serial == text,
                    Terminal.imei == text,
                    Terminal.iccid == text,
                    Terminal.tid == text,
                )
            )
            .limit(limit)
        ).scalars()
    )
    if exact:
        return exact
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return list(
        session.execute(
            select(Terminal)
            .where(Terminal.serial.like(f"{escaped}%", escape="\\"))
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
    """Unit counts by location × model × state (one GROUP BY over the indexed columns)."""
    stmt = select(
        Terminal.location_id, Terminal.model_id, Terminal.state, func.count().label("n")
    ).group_by(Terminal.location_id, Terminal.model_id, Terminal.state)
    if location_id:
        stmt = stmt.where(Terminal.location_id == location_id)
    if model_id:
        stmt = stmt.where(Terminal.model_id == model_id)
    if state:
        stmt = stmt.where(Terminal.state == state)
    if provider_ids is not None:
        stmt = stmt.where(Terminal.provider_id.in_(list(provider_ids)))
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
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(
            or_(
                Terminal.serial.like(f"{escaped}%", escape="\\"),
                Terminal.imei == text,
                Terminal.iccid == text,
                Terminal.tid == text,
            )
        )
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
