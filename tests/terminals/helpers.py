"""Small builders for the terminals tests."""

from __future__ import annotations

import itertools

from sqlalchemy.orm import Session

from cardops.channel.models import Provider
from cardops.terminals import service
from cardops.terminals.models import Supplier, Terminal, TerminalModel, TerminalState

_seq = itertools.count(1)


def luhn_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def imei(n: int) -> str:
    body = f"35{n:012d}"[-14:]
    return body + luhn_digit(body)


def iccid(n: int) -> str:
    body = f"898601{n:012d}"
    return body + luhn_digit(body)


def provider(db: Session, code: str | None = None) -> Provider:
    found = Provider(code=code or f"P{next(_seq)}", name="Test provider", level="city")
    db.add(found)
    db.flush()
    return found


def supplier(db: Session, name: str | None = None) -> Supplier:
    found = Supplier(name=name or f"Maker{next(_seq)}", kind="manufacturer")
    db.add(found)
    db.flush()
    return found


def model(db: Session, maker: Supplier, code: str | None = None) -> TerminalModel:
    found = TerminalModel(code=code or f"M-{next(_seq)}", name="Test POS", supplier_id=maker.id)
    db.add(found)
    db.flush()
    return found


def unit(
    db: Session,
    *,
    state: TerminalState = TerminalState.IN_STOCK,
    serial: str | None = None,
    mod: TerminalModel | None = None,
) -> Terminal:
    if mod is None:
        mod = model(db, supplier(db))
    found = Terminal(
        serial=serial or f"TSN{next(_seq):08d}",
        model_id=mod.id,
        supplier_id=mod.supplier_id,
        state=state.value,
        location_id=service.warehouse(db).id,
    )
    db.add(found)
    db.flush()
    return found
