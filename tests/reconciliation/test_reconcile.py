"""Reconciliation finds exactly the differences planted in a bank file from the simulator."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cardops.auth.models import User
from cardops.reconciliation import service
from cardops.reconciliation.models import ReconCase
from cardops.reconciliation.simulator import export_day
from tests.reconciliation.conftest import DAY, Day, read_lines, standard_day, write_lines

ZERO = {
    "missing_at_bank": 0,
    "missing_at_ours": 0,
    "amount_mismatch": 0,
    "status_mismatch": 0,
    "duplicate_at_bank": 0,
    "duplicate_at_ours": 0,
}


def _export(db: Session, system: User, tmp_path: Path) -> Path:
    path = tmp_path / f"CLR_ICBC01_{DAY:%Y%m%d}.csv"
    export_day(session=db, actor=system, business_date=DAY, path=path)
    return path


def test_the_simulators_file_reconciles_without_differences(
    db: Session, system: User, journal_day: Day, tmp_path: Path
) -> None:
    standard_day(journal_day)
    path = _export(db, system, tmp_path)
    lines = read_lines(path)
    # 20 SUCCESS rows, the reversed purchase and the declined one as FAILED; not on-us, preauth
    assert len(lines) == 1 + 22 + 1
    assert lines[-1].startswith("#TOTAL,22,")
    assert any('"锦江区好又多超市, 二分店"' in line for line in lines)
    outcome = service.import_file(session=db, actor=system, path=path)
    assert outcome.counts() == {"matched": 22, **ZERO}
    assert db.execute(select(func.count()).select_from(ReconCase)).scalar_one() == 0


def test_planted_differences_of_every_class_are_found_and_nothing_else(
    db: Session, system: User, journal_day: Day, tmp_path: Path
) -> None:
    day = standard_day(journal_day)
    path = _export(db, system, tmp_path)
    lines = read_lines(path)[:-1]
    header, details = lines[0], lines[1:]
    rrn_of = {row["rrn"]: row for row in day.rows}

    def find(rrn: str) -> int:
        return next(i for i, line in enumerate(details) if f",{rrn}," in line)

    purchases = [r for r in day.rows if r["kind"] == "purchase" and r["approved"]]
    # 1. missing at the bank: the bank's line of our purchase #0 is gone
    gone = purchases[0]
    del details[find(gone["rrn"])]
    # 2. amount mismatch: the bank cleared purchase #1 for 0.01 yuan more
    changed = purchases[1]
    i = find(changed["rrn"])
    fields = details[i].rsplit(",", 3)
    fields[1] = f"{(changed['amount'] + 1) // 100}.{(changed['amount'] + 1) % 100:02d}"
    details[i] = ",".join(fields)
    # 3. status mismatch: the bank says purchase #2 failed
    failed = purchases[2]
    i = find(failed["rrn"])
    details[i] = details[i].rsplit(",", 1)[0] + ",FAILED"
    # 4. duplicate at the bank: purchase #3 twice
    twice = purchases[3]
    details.append(details[find(twice["rrn"])])
    # 5. missing at our side: a line the bank cleared that we never journaled
    stranger = details[find(purchases[4]["rrn"])].split(",")
    stranger_line = (
        details[find(purchases[4]["rrn"])]
        .replace(purchases[4]["rrn"], "123456789012")
        .replace(f",{purchases[4]['stan']},", ",999999,")
    )
    details.append(stranger_line)
    assert stranger
    # 6. duplicate at our side: a second journal row carries purchase #5's RRN
    dup_of = purchases[5]
    extra = day.add(amount=dup_of["amount"], tid=dup_of["tid"], rrn=dup_of["rrn"])
    day.save([extra])
    # and a row the gateway journaled without RRN, paired by TID + STAN + date + amount
    no_rrn = day.add(amount=3333, rrn=None)
    day.save([no_rrn])
    model = details[find(purchases[6]["rrn"])].rsplit(",", 3)
    head = model[0].split(",")
    head[4], head[5], head[6] = no_rrn["tid"], no_rrn["stan"], "555555555555"
    details.append(",".join([",".join(head), "33.33", "0.08", "SUCCESS"]))
    assert rrn_of
    write_lines(path, [header, *details])

    outcome = service.import_file(session=db, actor=system, path=path)
    counts = outcome.counts()
    assert counts == {
        "matched": 22 - 3 + 1,  # 22 exported, minus the deleted / changed / failed, plus no-RRN
        "missing_at_bank": 1,
        "missing_at_ours": 1,
        "amount_mismatch": 1,
        "status_mismatch": 1,
        "duplicate_at_bank": 1,
        "duplicate_at_ours": 1,
    }
    cases = {c.kind: c for c in db.execute(select(ReconCase)).scalars()}
    assert len(cases) == 6
    assert cases["missing_at_bank"].journal_id is not None
    assert cases["missing_at_bank"].rrn == gone["rrn"]
    assert cases["missing_at_bank"].our_amount == gone["amount"]
    assert cases["amount_mismatch"].difference == 1
    assert cases["amount_mismatch"].rrn == changed["rrn"]
    assert (cases["status_mismatch"].our_status, cases["status_mismatch"].bank_status) == (
        "SUCCESS",
        "FAILED",
    )
    assert cases["duplicate_at_bank"].rrn == twice["rrn"]
    assert cases["missing_at_ours"].rrn == "123456789012"
    assert cases["missing_at_ours"].journal_id is None
    assert cases["missing_at_ours"].mid == purchases[4]["mid"]
    assert cases["duplicate_at_ours"].rrn == dup_of["rrn"]
    amounts = outcome.run.figures
    assert amounts["missing_at_bank"]["amount"] == gone["amount"]
    assert amounts["amount_mismatch"]["amount"] == 1
