"""Lab data: activated terminals with known TMKs and on-us cards with known PANs and PINs, for
the demo, the load generator and the benchmarks; and ``var/lab.json`` for external tools.

Only demo and benchmark databases get these: a lab key or PAN is printed in a file on purpose.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cardops.auth.models import User
from cardops.gateway import crypto, service
from cardops.gateway.simulator import SIM_CREDIT_BIN, sim_cards

LAB_PIN = "147258"


def _merchant(session: Session, mid: str, name: str) -> Any:
    from cardops.merchants.models import Merchant

    found = session.execute(select(Merchant).where(Merchant.mid == mid)).scalar_one_or_none()
    if found is None:
        found = Merchant(mid=mid, name=name, kind="corporate", state="approved")
        session.add(found)
        session.flush()
    return found


def _terminal(session: Session, merchant: Any, tid: str, serial: str) -> tuple[Any, bytes]:
    from cardops.terminals import service as terminals
    from cardops.terminals.keys import Sealer
    from cardops.terminals.models import Supplier, Terminal, TerminalModel

    maker = session.execute(
        select(Supplier).where(Supplier.name == "Lab POS maker")
    ).scalar_one_or_none()
    if maker is None:
        maker = Supplier(name="Lab POS maker", kind="manufacturer")
        session.add(maker)
        session.flush()
    model = session.execute(
        select(TerminalModel).where(TerminalModel.code == "LAB-POS")
    ).scalar_one_or_none()
    if model is None:
        model = TerminalModel(code="LAB-POS", name="Lab POS", supplier_id=maker.id)
        session.add(model)
        session.flush()
    tmk = crypto.new_key()
    unit = Terminal(
        serial=serial,
        model_id=model.id,
        supplier_id=maker.id,
        state="activated",
        location_id=terminals.warehouse(session).id,
        merchant_id=merchant.id,
        tid=tid,
        mid=merchant.mid,
        tmk_encrypted=Sealer().seal(serial, tmk),
        tmk_kcv=crypto.kcv(tmk),
    )
    session.add(unit)
    session.flush()
    return unit, tmk


def _card(session: Session, actor: User, number: str, balance: int) -> tuple[str, str]:
    from cardops.cards.models import Card
    from cardops.wallets import service as wallets

    card = session.execute(select(Card).where(Card.number == number)).scalar_one_or_none()
    if card is None:
        card = Card(number=number, state="active")
        session.add(card)
        session.flush()
    if not card.wallet_enabled:
        wallets.enable_wallet(session=session, actor=actor, card_number=number)
    left = balance
    while left > 0:
        step = min(left, wallets.max_topup(session, card))
        wallets.top_up(session=session, actor=actor, card_number=number, amount=step)
        left -= step
    assigned = service.assign_pan(session=session, actor=actor, card_number=number, replace=True)
    service.set_pin(session=session, actor=actor, card_number=number, pin=LAB_PIN)
    return assigned.pan, assigned.onus.expiry


# serial numbers of the lab terminals: other demo data leaves them activated (lab.json gives
# them to lab tools, which need them to sign on)
LAB_SERIAL_PREFIX = "LAB"


def seed(
    session: Session,
    actor: User,
    *,
    terminals: int = 3,
    cards: int = 3,
    balance: int = 200_000,
    prefix: str = "L",
) -> dict[str, Any]:
    """Create an approved merchant, ``terminals`` activated terminals and ``cards`` on-us
    cards with money; return the lab entries (TMKs, PANs, PINs in the clear)."""
    tag = secrets.token_hex(2).upper()
    merchant = _merchant(session, f"898LAB{tag}{len(prefix):05d}"[:15], "Lab shop 实验商户")
    lab_terminals = []
    for i in range(terminals):
        tid = f"{prefix[:1]}{tag[:3]}{i:04d}"[:8]
        unit, tmk = _terminal(session, merchant, tid, f"{LAB_SERIAL_PREFIX}{tag}{i:05d}")
        lab_terminals.append({"tid": unit.tid, "mid": merchant.mid, "tmk": tmk.hex().upper()})
    lab_cards: list[dict[str, Any]] = []
    for i in range(cards):
        pan, expiry = _card(session, actor, f"{prefix[:1]}{tag}{i:05d}", balance)
        lab_cards.append(
            {"pan": pan, "expiry": expiry, "pin": LAB_PIN, "balance": balance, "route": "on-us"}
        )
    sims = sim_cards()
    for sim in sims[:56] + [c for c in sims if c.pan.startswith(SIM_CREDIT_BIN)][:10]:
        lab_cards.append(
            {
                "pan": sim.pan,
                "expiry": sim.expiry,
                "pin": sim.pin,
                "balance": sim.balance if sim.state == "active" else 0,
                "route": "upstream",
                "card_type": "credit" if sim.pan.startswith(SIM_CREDIT_BIN) else "debit",
            }
        )
    return {"terminals": lab_terminals, "cards": lab_cards}


def write_lab(path: Path, entries: dict[str, Any]) -> None:
    """Merge ``entries`` into the lab file without touching other keys (read-modify-write)."""
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = json.loads(path.read_text())
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
    data.update(entries)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False))
    tmp.chmod(0o600)
    os.replace(tmp, path)
