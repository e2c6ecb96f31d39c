"""Demo reconciliation: a business day three days ago with 30 upstream card payments at the
demo merchants, the bank's clearing file for it written by the bank simulator with three
differences planted (a line the bank lost, an amount the bank cleared 1.00 yuan higher, a
payment we never journaled), imported and reconciled; one case is under investigation.
Skipped when no merchant has a MID."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, insert, select
from sqlalchemy.orm import Session

from cardops.core.clock import local, utcnow
from cardops.core.demo_loader import DemoContext
from cardops.gateway.models import Journal
from cardops.merchants.models import Merchant
from cardops.reconciliation import service
from cardops.reconciliation.models import ReconCase
from cardops.reconciliation.simulator import export_day


def load(session: Session, ctx: DemoContext) -> None:
    merchants = list(
        session.execute(select(Merchant).where(Merchant.mid.is_not(None)).limit(3)).scalars()
    )
    if not merchants:
        return
    actor = ctx.users.get("finance_manager", ctx.admin)
    day = local(utcnow()).date() - timedelta(days=3)
    start = datetime(day.year, day.month, day.day, 1, 30, tzinfo=UTC)  # 09:30 Beijing time
    rows: list[dict[str, Any]] = []
    for n in range(30):
        merchant = merchants[n % len(merchants)]
        tid = f"DM{merchant.id:06d}"[:8]
        stan = f"{n + 1:06d}"
        rows.append(
            {
                "created_at": start + timedelta(minutes=17 * n),
                "kind": "refund" if n % 10 == 9 else "purchase",
                "mti": "0200",
                "tid": tid,
                "mid": merchant.mid,
                "merchant_id": merchant.id,
                "stan": stan,
                "local_date": day.strftime("%Y%m%d"),
                "dup_key": f"{tid}{day:%Y%m%d}{stan}demo",
                "amount": 1280 + 731 * n,
                "currency": "156",
                "pan_masked": f"62284{n % 10}******{4000 + n}",
                "card_type": "credit" if n % 4 == 0 else "debit",
                "rrn": f"{day:%y%m%d}{n + 1:06d}",
                "auth_code": f"{n * 37 % 1000000:06d}",
                "response_code": "00",
                "approved": True,
                "route": "upstream",
                "request": {},
                "response": {},
            }
        )
    session.connection().execute(insert(cast(Table, Journal.__table__)), rows)
    session.flush()
    with tempfile.TemporaryDirectory(prefix="cardops-demo-") as tmp:
        path = Path(tmp) / f"CLR_DEMOBANK_{day:%Y%m%d}.csv"
        export_day(session=session, actor=actor, business_date=day, path=path)
        lines = path.read_bytes().decode("gbk").splitlines()
        header, details = lines[0], lines[1:-1]
        details = [line for line in details if f",{rows[4]['rrn']}," not in line]
        bumped = details[7].rsplit(",", 3)
        units, cents = bumped[1].split(".")
        bumped[1] = f"{int(units) + 1}.{cents}"
        details[7] = ",".join(bumped)
        stranger = details[2].split(",")
        stranger[-8] = f"{day:%y%m%d}999999"
        stranger[-9] = "999999"
        details.append(",".join(stranger))
        total = 0
        for line in details:
            fields = line.rsplit(",", 3)
            if fields[3] == "SUCCESS":
                units, cents = fields[1].split(".")
                total += int(units) * 100 + int(cents)
        trailer = f"#TOTAL,{len(details)},{total // 100}.{total % 100:02d}"
        path.write_bytes("\n".join([header, *details, trailer, ""]).encode("gbk"))
        service.import_file(session=session, actor=actor, path=path)
    case = session.execute(
        select(ReconCase).where(ReconCase.business_date == day, ReconCase.kind == "amount_mismatch")
    ).scalar()
    if case is not None:
        service.start_investigation(
            session=session, actor=actor, case_id=case.id, note="已致电收单行核实清算金额"
        )
