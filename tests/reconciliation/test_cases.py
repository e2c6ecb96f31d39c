"""Difference cases: worked to closure with history; re-running a day is idempotent."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cardops.auth.models import User
from cardops.core.errors import CardopsError, InvalidTransition, PermissionDenied
from cardops.ledger import service as ledger
from cardops.reconciliation import service
from cardops.reconciliation.models import ReconCase, ReconCaseEvent
from cardops.reconciliation.simulator import export_day
from tests.factories import make_user
from tests.reconciliation.conftest import DAY, Day, read_lines, standard_day, write_lines


@pytest.fixture
def day_with_differences(db: Session, system: User, journal_day: Day, tmp_path: Path) -> Path:
    """An imported day with three differences: one missing at the bank, one amount mismatch,
    one missing at our side."""
    standard_day(journal_day)
    path = tmp_path / f"CLR_ICBC01_{DAY:%Y%m%d}.csv"
    export_day(session=db, actor=system, business_date=DAY, path=path)
    lines = read_lines(path)[:-1]
    rows = [r for r in journal_day.rows if r["kind"] == "purchase" and r["approved"]]
    lines = [line for line in lines if f",{rows[0]['rrn']}," not in line]
    i = next(i for i, line in enumerate(lines) if f",{rows[1]['rrn']}," in line)
    fields = lines[i].rsplit(",", 3)
    fields[1] = "99.99"
    lines[i] = ",".join(fields)
    lines.append(lines[1].replace(lines[1].split(",")[-8], "777777777777"))
    write_lines(path, lines)
    service.import_file(session=db, actor=system, path=path)
    return path


def _cases(db: Session) -> dict[str, ReconCase]:
    return {c.kind: c for c in db.execute(select(ReconCase)).scalars()}


def test_rerunning_the_day_is_idempotent_and_keeps_worked_cases(
    db: Session, system: User, day_with_differences: Path
) -> None:
    cases = _cases(db)
    assert set(cases) == {"missing_at_bank", "amount_mismatch", "missing_at_ours"}
    worked = cases["amount_mismatch"]
    service.start_investigation(session=db, actor=system, case_id=worked.id, note="asked bank")
    again = service.rerun_day(session=db, actor=system, business_date=DAY)
    assert again.counts()["amount_mismatch"] == 1 and again.run.new_cases == 0
    assert db.execute(select(func.count()).select_from(ReconCase)).scalar_one() == 3
    db.refresh(worked)
    assert worked.state == "investigating" and worked.last_run_id == again.run.id
    numbers = sorted(c.number for c in _cases(db).values())
    service.rerun_day(session=db, actor=system, business_date=DAY)
    assert sorted(c.number for c in _cases(db).values()) == numbers


def test_a_difference_that_goes_away_is_cleared_and_one_that_returns_reopens(
    db: Session, system: User, journal_day: Day, day_with_differences: Path
) -> None:
    missing = _cases(db)["missing_at_bank"]
    # the bank's corrected file has the line after all
    lines = read_lines(day_with_differences)[:-1]
    source = next(r for r in journal_day.rows if r["rrn"] == missing.rrn)
    amount = f"{source['amount'] // 100}.{source['amount'] % 100:02d}"
    lines.append(
        f"20261120,20261120100000,{source['mid']},成都蓉城便利店有限公司,{source['tid']},"
        f"{source['stan']},{source['rrn']},A1B2C3,622848****1234,DEBIT,PURCHASE,{amount},0.03,"
        "SUCCESS"
    )
    write_lines(day_with_differences, lines)
    outcome = service.import_file(
        session=db, actor=system, path=day_with_differences, replace=True, reason="corrected"
    )
    assert outcome.counts()["missing_at_bank"] == 0 and outcome.run.cleared_cases == 1
    db.refresh(missing)
    assert missing.state == "cleared" and not missing.present
    kinds = [
        e.kind
        for e in db.execute(
            select(ReconCaseEvent).where(ReconCaseEvent.case_id == missing.id)
        ).scalars()
    ]
    assert kinds == ["opened", "cleared"]


def test_a_case_is_worked_to_closure_with_who_and_why(
    db: Session, system: User, day_with_differences: Path
) -> None:
    cases = _cases(db)
    cashier = make_user(db, "cashier")
    manager = make_user(db, "finance_manager")
    mismatch = cases["amount_mismatch"]
    with pytest.raises(CardopsError):  # only a case under investigation can be resolved
        service.resolve(
            session=db, actor=manager, case_id=mismatch.id, resolution="write_off", note="x"
        )
    service.start_investigation(session=db, actor=cashier, case_id=mismatch.id)
    with pytest.raises(InvalidTransition):
        service.start_investigation(session=db, actor=cashier, case_id=mismatch.id)
    with pytest.raises(PermissionDenied):  # an adjustment posting needs the finance manager
        service.resolve(
            session=db, actor=cashier, case_id=mismatch.id, resolution="adjustment", note="x"
        )
    with pytest.raises(CardopsError) as info:
        service.resolve(
            session=db, actor=manager, case_id=mismatch.id, resolution="adjustment", note=""
        )
    assert info.value.field == "note"
    resolved = service.resolve(
        session=db,
        actor=manager,
        case_id=mismatch.id,
        resolution="adjustment",
        note="bank cleared the corrected amount",
    )
    assert resolved.state == "resolved" and resolved.resolved_by_id == manager.id
    assert resolved.posting_id is not None
    assert ledger.balance(db, "6711") == -resolved.difference
    with pytest.raises(InvalidTransition):
        service.hand_back(session=db, actor=manager, case_id=mismatch.id, note="again")
    claim = cases["missing_at_ours"]
    service.start_investigation(session=db, actor=cashier, case_id=claim.id)
    with pytest.raises(CardopsError) as info:
        service.resolve(
            session=db, actor=cashier, case_id=claim.id, resolution="bank_claim", note="n"
        )
    assert info.value.field == "claim_reference"
    service.resolve(
        session=db,
        actor=cashier,
        case_id=claim.id,
        resolution="bank_claim",
        note="not ours",
        claim_reference="ICBC-2026-1120-01",
    )
    other = cases["missing_at_bank"]
    service.start_investigation(session=db, actor=cashier, case_id=other.id)
    service.hand_back(session=db, actor=cashier, case_id=other.id, note="for the manager")
    service.start_investigation(session=db, actor=manager, case_id=other.id)
    service.resolve(
        session=db, actor=manager, case_id=other.id, resolution="write_off", note="below limit"
    )
    history = [e.kind for e in service.case_history(db, other)]
    assert history == ["opened", "investigating", "handed_back", "investigating", "resolved"]
    # resolved cases keep their state when the day is run again
    service.rerun_day(session=db, actor=system, business_date=DAY)
    assert {c.state for c in _cases(db).values()} == {"resolved"}
