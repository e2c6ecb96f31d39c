"""Reconciliation with the bank (对账): import a clearing file, match it against the journal,
keep one case per difference and work the cases to closure. The only code that writes the
reconciliation tables; it never commits.

Batch work is set-based: the file is read by Polars, the journal is loaded as columns
(:mod:`cardops.reconciliation.journal`), matched by joins (:mod:`cardops.reconciliation.match`)
and the cases are written with ``executemany``, never as one ORM object per row.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, cast

import polars as pl
from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from cardops.audit.service import record
from cardops.auth.models import User
from cardops.auth.service import require
from cardops.core.clock import utcnow
from cardops.core.config import get_settings
from cardops.core.errors import Conflict, NotFound, ValidationFailed
from cardops.core.money import parse_amount
from cardops.ledger import service as ledger
from cardops.ledger.chart import PAYMENT_CLEARING
from cardops.merchants.models import Merchant
from cardops.reconciliation import journal as journal_columns
from cardops.reconciliation.clearing import ParsedFile, read_clearing_file
from cardops.reconciliation.match import MatchResult, match
from cardops.reconciliation.models import (
    DIFF_CLASSES,
    CaseState,
    ClearingFile,
    FileState,
    ReconCase,
    ReconCaseEvent,
    ReconRun,
    Resolution,
)
from cardops.reconciliation.permissions import (
    RECON_ADJUST,
    RECON_IMPORT,
    RECON_VIEW,
    RECON_WORK,
)

Progress = Callable[[str, float], None]
COUNT_KEYS: tuple[str, ...] = ("matched", *DIFF_CLASSES)
# adjustment postings: the bank clearing account against reconciliation differences
DIFFERENCE_ACCOUNT = "6711"


@dataclass
class RunOutcome:
    run: ReconRun
    file: ClearingFile
    result: MatchResult

    def counts(self) -> dict[str, int]:
        return {key: int(self.run.figures[key]["count"]) for key in COUNT_KEYS}


def _text(value: str | None, *, field: str, max_length: int, required: bool = True) -> str:
    text = (value or "").strip()
    if required and not text:
        raise ValidationFailed("This field is required.", field=field)
    if len(text) > max_length:
        raise ValidationFailed(
            "At most {max_length} characters, please.", field=field, max_length=max_length
        )
    return text


def storage_dir() -> Path:
    return get_settings().var_dir / "clearing"


def stored_copy(file: ClearingFile) -> Path:
    return storage_dir() / f"{file.sha256}.csv"


# ---------------------------------------------------------------------------------- import


def import_file(
    *,
    session: Session,
    actor: User,
    path: Path | str,
    utf8: bool = False,
    replace: bool = False,
    reason: str = "",
    filename: str | None = None,
    progress: Progress | None = None,
) -> RunOutcome:
    """Import a clearing file and reconcile its day. A bad file imports nothing.

    The same file (content hash) a second time is refused; a different file for a day that
    already has one is refused unless ``replace`` (the earlier file and its runs stay in
    history, marked replaced).
    """
    require(actor, RECON_IMPORT)
    reason = _text(reason, field="reason", max_length=500, required=False)
    step = progress or (lambda _label, _done: None)
    parsed = read_clearing_file(path, utf8=utf8, filename=filename, progress=step)
    same = session.execute(
        select(ClearingFile).where(ClearingFile.sha256 == parsed.sha256).limit(1)
    ).scalar()
    if same is not None:
        raise Conflict(
            "This file was already imported as {name} for {day}; the same file is not "
            "imported twice.",
            field="file",
            name=same.filename,
            day=same.business_date.isoformat(),
        )
    active = _active_file(session, parsed.business_date)
    if active is not None and not replace:
        raise Conflict(
            "The day {day} already has the clearing file {name}. To import a corrected file "
            "for the same day, ask for it explicitly (--replace, or tick Replace).",
            field="replace",
            day=parsed.business_date.isoformat(),
            name=active.filename,
        )
    entry = ClearingFile(
        business_date=parsed.business_date,
        acquirer=parsed.acquirer,
        filename=parsed.filename,
        sha256=parsed.sha256,
        encoding=parsed.encoding,
        size=parsed.size,
        lines=parsed.count,
        success_count=parsed.success_count,
        success_amount=parsed.success_amount,
        bank_fee_total=parsed.bank_fee_total,
        imported_by_id=actor.id,
        state=FileState.ACTIVE.value,
    )
    session.add(entry)
    session.flush()
    if active is not None:
        active.state = FileState.REPLACED.value
        active.replaced_by_id = entry.id
        active.replace_reason = reason
        record(session, actor, "reconciliation.file_replaced", active, reason=reason)
    record(session, actor, "reconciliation.file_imported", entry)
    _keep_copy(Path(path), entry)
    return _reconcile(session=session, actor=actor, file=entry, parsed=parsed, progress=step)


def _keep_copy(path: Path, entry: ClearingFile) -> None:
    """Keep the file as it came (by content hash) so that the day can be re-run later."""
    target = stored_copy(entry)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        return
    shutil.copyfile(path, target)  # a copy, not a link: the original may be edited later


def _active_file(session: Session, day: date) -> ClearingFile | None:
    return session.execute(
        select(ClearingFile).where(
            ClearingFile.business_date == day, ClearingFile.state == FileState.ACTIVE.value
        )
    ).scalar()


def rerun_day(
    *, session: Session, actor: User, business_date: date, progress: Progress | None = None
) -> RunOutcome:
    """Reconcile the day again against its active file (after late journal rows, say).
    Idempotent: the same differences give the same cases; worked cases keep their state."""
    require(actor, RECON_IMPORT)
    active = _active_file(session, business_date)
    if active is None:
        raise NotFound(
            "No clearing file has been imported for {day}.",
            field="business_date",
            day=business_date.isoformat(),
        )
    copy = stored_copy(active)
    if not copy.is_file():
        raise NotFound(
            "The stored copy of {name} is missing; import the file again with --replace.",
            name=active.filename,
        )
    step = progress or (lambda _label, _done: None)
    parsed = read_clearing_file(
        copy, utf8=active.encoding == "utf-8", filename=active.filename, progress=step
    )
    return _reconcile(session=session, actor=actor, file=active, parsed=parsed, progress=step)


# ----------------------------------------------------------------------------- reconcile


def _reconcile(
    *,
    session: Session,
    actor: User,
    file: ClearingFile,
    parsed: ParsedFile,
    progress: Progress,
) -> RunOutcome:
    started = time.perf_counter()
    day = parsed.business_date
    progress("journal", 0.0)
    ours = journal_columns.load_day(session, day, progress=lambda f: progress("journal", f))
    progress("journal", 1.0)
    progress("match", 0.0)
    result = match(parsed.lines, ours)
    progress("match", 1.0)
    session.execute(update(ReconRun).where(ReconRun.business_date == day).values(current=False))
    run = ReconRun(
        business_date=day,
        file_id=file.id,
        actor_id=actor.id,
        journal_rows=ours.height,
        bank_lines=parsed.count,
        figures=result.figures,
    )
    session.add(run)
    session.flush()
    progress("cases", 0.0)
    new, cleared = _write_cases(session, actor, run, file, parsed, ours, result)
    progress("cases", 1.0)
    run.new_cases = new
    run.cleared_cases = cleared
    run.finished_at = utcnow()
    run.duration_ms = int((time.perf_counter() - started) * 1000)
    record(
        session,
        actor,
        "reconciliation.run",
        run,
        counts={key: value["count"] for key, value in result.figures.items()},
    )
    return RunOutcome(run=run, file=file, result=result)


def _details(
    session: Session, parsed: ParsedFile, ours: pl.DataFrame, diffs: pl.DataFrame
) -> pl.DataFrame:
    """The differences with the columns a case shows (bank line detail, our MID)."""
    bank_detail = parsed.lines.select(
        "line",
        pl.col("mid").cast(pl.String).alias("bank_mid"),
        pl.col("txn_type").cast(pl.String).alias("bt"),
    )
    ours_detail = ours.select(
        pl.col("id").alias("journal_id"),
        "merchant_id",
        pl.col("txn_type").cast(pl.String).alias("ot"),
    )
    frame = diffs.join(bank_detail, on="line", how="left").join(
        ours_detail, on="journal_id", how="left"
    )
    merchant_ids = [int(m) for m in frame["merchant_id"].drop_nulls().unique() if m]
    mids: dict[int, str] = {}
    if merchant_ids:
        for chunk_start in range(0, len(merchant_ids), 500):
            chunk = merchant_ids[chunk_start : chunk_start + 500]
            for merchant_id, mid in session.execute(
                select(Merchant.id, Merchant.mid).where(Merchant.id.in_(chunk))
            ):
                mids[merchant_id] = mid or ""
    lookup = pl.DataFrame(
        {"merchant_id": list(mids), "our_mid": list(mids.values())},
        schema={"merchant_id": pl.Int64, "our_mid": pl.String},
    )
    return frame.join(lookup, on="merchant_id", how="left")


def _write_cases(
    session: Session,
    actor: User,
    run: ReconRun,
    file: ClearingFile,
    parsed: ParsedFile,
    ours: pl.DataFrame,
    result: MatchResult,
) -> tuple[int, int]:
    """Upsert one case per difference (by business day + case key) in bulk."""
    day = run.business_date
    existing = {
        key: (case_id, state, present)
        for case_id, key, state, present in session.execute(
            select(ReconCase.id, ReconCase.case_key, ReconCase.state, ReconCase.present).where(
                ReconCase.business_date == day
            )
        )
    }
    frame = _details(session, parsed, ours, result.differences)
    now = utcnow()
    connection = session.connection()
    case_table = cast(Table, ReconCase.__table__)
    event_table = cast(Table, ReconCaseEvent.__table__)
    seen: set[str] = set()
    new_rows: list[dict[str, Any]] = []
    touched: list[dict[str, Any]] = []
    reopened: list[int] = []
    prefix = f"RD{day:%Y%m%d}"
    last_number = session.execute(
        select(func.max(ReconCase.number)).where(ReconCase.number.like(f"{prefix}%"))
    ).scalar()
    seq = int(last_number[len(prefix) :]) if last_number else 0
    for row in frame.iter_rows(named=True):
        key = row["case_key"]
        seen.add(key)
        bank_amount, our_amount = row["bank_amount"], row["our_amount"]
        bank_money = bank_amount if row["bank_ok"] else 0
        our_money = our_amount if row["our_ok"] else 0
        values = {
            "kind": row["kind"],
            "tid": row["tid"] or "",
            "mid": row["bank_mid"] or row["our_mid"] or "",
            "merchant_id": row["merchant_id"] or None,
            "stan": f"{row['stan']:06d}" if row["stan"] is not None else "",
            "rrn": f"{row['rrn']:012d}" if row["rrn"] is not None else "",
            "txn_type": row["bt"] or row["ot"] or "",
            "journal_id": row["journal_id"],
            "bank_line": row["line"],
            "our_amount": our_amount,
            "bank_amount": bank_amount,
            "our_status": _status(row["our_ok"]),
            "bank_status": _status(row["bank_ok"]),
            "difference": (bank_money or 0) - (our_money or 0),
            "file_id": file.id,
            "last_run_id": run.id,
            "present": True,
            "updated_at": now,
        }
        found = existing.get(key)
        if found is None:
            seq += 1
            new_rows.append(
                {
                    **values,
                    "number": f"{prefix}{seq:06d}",
                    "business_date": day,
                    "case_key": key,
                    "state": CaseState.OPEN.value,
                    "first_run_id": run.id,
                    "created_at": now,
                    "resolution_note": "",
                    "claim_reference": "",
                }
            )
        else:
            case_id, state, _present = found
            touched.append({"_id": case_id, **values})
            if state == CaseState.CLEARED.value:
                reopened.append(case_id)
    if new_rows:
        connection.execute(insert(case_table), new_rows)
    if touched:
        stmt = (
            update(case_table)
            .where(case_table.c.id == _bind("_id"))
            .values({name: _bind(name) for name in touched[0] if name != "_id"})
        )
        connection.execute(stmt, touched)
    cleared: list[int] = []
    gone: list[int] = []
    for key, (case_id, state, present) in existing.items():
        if key in seen:
            continue
        if state == CaseState.OPEN.value:
            cleared.append(case_id)
        elif present:
            gone.append(case_id)
    if cleared:
        connection.execute(
            update(case_table)
            .where(case_table.c.id.in_(cleared))
            .values(state=CaseState.CLEARED.value, present=False, last_run_id=run.id)
        )
    if gone:
        connection.execute(
            update(case_table)
            .where(case_table.c.id.in_(gone))
            .values(present=False, last_run_id=run.id)
        )
    if reopened:
        connection.execute(
            update(case_table)
            .where(case_table.c.id.in_(reopened))
            .values(state=CaseState.OPEN.value)
        )
    events: list[dict[str, Any]] = []
    if new_rows:
        ids = dict(
            session.execute(
                select(ReconCase.case_key, ReconCase.id).where(
                    ReconCase.business_date == day, ReconCase.first_run_id == run.id
                )
            ).all()
        )
        events += [
            _event(ids[row["case_key"]], "opened", actor, now, run=run.id, file=file.filename)
            for row in new_rows
        ]
    events += [_event(i, "cleared", actor, now, run=run.id) for i in cleared]
    events += [_event(i, "not_found_again", actor, now, run=run.id) for i in gone]
    events += [_event(i, "reopened", actor, now, run=run.id) for i in reopened]
    if events:
        connection.execute(insert(event_table), events)
    return len(new_rows), len(cleared)


def _bind(name: str) -> Any:
    return bindparam(name)


def _status(ok: bool | None) -> str:
    if ok is None:
        return ""
    return "SUCCESS" if ok else "FAILED"


def _event(
    case_id: int, kind: str, actor: User | None, at: Any, comment: str = "", **data: Any
) -> dict[str, Any]:
    return {
        "case_id": case_id,
        "kind": kind,
        "actor_id": actor.id if actor else None,
        "at": at,
        "comment": comment,
        "data": data,
    }


# --------------------------------------------------------------------------------- queries


def list_files(*, session: Session, actor: User, limit: int = 100) -> list[ClearingFile]:
    require(actor, RECON_VIEW)
    return list(
        session.execute(
            select(ClearingFile)
            .order_by(ClearingFile.business_date.desc(), ClearingFile.id.desc())
            .limit(limit)
        ).scalars()
    )


def list_runs(*, session: Session, actor: User, business_date: date) -> list[ReconRun]:
    require(actor, RECON_VIEW)
    return list(
        session.execute(
            select(ReconRun)
            .where(ReconRun.business_date == business_date)
            .order_by(ReconRun.id.desc())
        ).scalars()
    )


def current_run(*, session: Session, actor: User, business_date: date) -> ReconRun:
    require(actor, RECON_VIEW)
    run = session.execute(
        select(ReconRun)
        .where(ReconRun.business_date == business_date, ReconRun.current.is_(True))
        .order_by(ReconRun.id.desc())
        .limit(1)
    ).scalar()
    if run is None:
        raise NotFound(
            "The day {day} has not been reconciled yet.",
            field="business_date",
            day=business_date.isoformat(),
        )
    return run


def get_file(session: Session, file_id: int) -> ClearingFile:
    found = session.get(ClearingFile, file_id)
    if found is None:
        raise NotFound("There is no clearing file {file_id}.", file_id=file_id)
    return found


def day_counts(*, session: Session, actor: User, business_date: date) -> dict[str, int]:
    run = current_run(session=session, actor=actor, business_date=business_date)
    return {key: int(run.figures.get(key, {}).get("count", 0)) for key in COUNT_KEYS}


def list_cases(
    *,
    session: Session,
    actor: User,
    business_date: date | None = None,
    kind: str | None = None,
    state: str | None = None,
    limit: int = 200,
    offset: int = 0,
) -> tuple[list[ReconCase], int]:
    require(actor, RECON_VIEW)
    query = select(ReconCase)
    if business_date is not None:
        query = query.where(ReconCase.business_date == business_date)
    if kind:
        if kind not in DIFF_CLASSES:
            raise ValidationFailed("Unknown difference class {kind}.", field="kind", kind=kind)
        query = query.where(ReconCase.kind == kind)
    if state:
        if state not in {s.value for s in CaseState}:
            raise ValidationFailed("Unknown case state {state}.", field="state", state=state)
        query = query.where(ReconCase.state == state)
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = session.execute(
        query.order_by(ReconCase.business_date.desc(), ReconCase.id).limit(limit).offset(offset)
    ).scalars()
    return list(rows), int(total)


def get_case(*, session: Session, actor: User, case_id: int) -> ReconCase:
    require(actor, RECON_VIEW)
    case = session.get(ReconCase, case_id)
    if case is None:
        raise NotFound("There is no reconciliation case {case_id}.", case_id=case_id)
    return case


def case_history(session: Session, case: ReconCase) -> list[ReconCaseEvent]:
    return list(
        session.execute(
            select(ReconCaseEvent)
            .where(ReconCaseEvent.case_id == case.id)
            .order_by(ReconCaseEvent.at, ReconCaseEvent.id)
        ).scalars()
    )


# ----------------------------------------------------------------------------- case work


def _add_event(
    session: Session, case: ReconCase, kind: str, actor: User, comment: str = "", **data: Any
) -> None:
    session.add(
        ReconCaseEvent(case_id=case.id, kind=kind, actor_id=actor.id, comment=comment, data=data)
    )


def start_investigation(
    *, session: Session, actor: User, case_id: int, note: str = ""
) -> ReconCase:
    """open → investigating; the actor becomes the case's assignee."""
    require(actor, RECON_WORK)
    note = _text(note, field="note", max_length=1000, required=False)
    case = get_case(session=session, actor=actor, case_id=case_id)
    before = case.state
    case.transition(CaseState.INVESTIGATING)
    case.assignee_id = actor.id
    _add_event(session, case, "investigating", actor, note)
    record(session, actor, "reconciliation.case_investigating", case, before={"state": before})
    return case


def hand_back(*, session: Session, actor: User, case_id: int, note: str) -> ReconCase:
    """investigating → open (someone else should take it)."""
    require(actor, RECON_WORK)
    note = _text(note, field="note", max_length=1000)
    case = get_case(session=session, actor=actor, case_id=case_id)
    case.transition(CaseState.OPEN)
    case.assignee_id = None
    _add_event(session, case, "handed_back", actor, note)
    record(
        session, actor, "reconciliation.case_handed_back", case, before={"state": "investigating"}
    )
    return case


def resolve(
    *,
    session: Session,
    actor: User,
    case_id: int,
    resolution: str,
    note: str,
    amount: str | None = None,
    claim_reference: str = "",
) -> ReconCase:
    """investigating → resolved, by an adjustment posting (``amount`` in yuan, signed: more
    money due from the bank is positive), a bank claim (with the claim's reference) or a
    write-off. Who and why are kept on the case and in its history."""
    require(actor, RECON_WORK)
    if resolution not in {r.value for r in Resolution}:
        raise ValidationFailed(
            "Choose how the case is resolved: adjustment, bank claim or write-off.",
            field="resolution",
        )
    if resolution == Resolution.ADJUSTMENT.value:
        require(actor, RECON_ADJUST)
    note = _text(note, field="note", max_length=1000)
    claim_reference = _text(
        claim_reference,
        field="claim_reference",
        max_length=64,
        required=resolution == Resolution.BANK_CLAIM.value,
    )
    case = get_case(session=session, actor=actor, case_id=case_id)
    if case.state != CaseState.INVESTIGATING.value:
        raise Conflict(
            "Case {number} is {state}; only a case under investigation can be resolved.",
            number=case.number,
            state=case.state,
        )
    posting_number = None
    if resolution == Resolution.ADJUSTMENT.value:
        fen = parse_amount(amount or "", field="amount") if amount else case.difference
        if fen == 0:
            raise ValidationFailed("An adjustment needs an amount other than zero.", field="amount")
        _ensure_difference_account(session, actor)
        posting = ledger.post(
            session=session,
            actor=actor,
            lines=[(PAYMENT_CLEARING, fen), (DIFFERENCE_ACCOUNT, -fen)],
            description=f"Reconciliation adjustment {case.number} ({case.kind})",
            reference=case.number,
            idempotency_key=f"recon-adjust:{case.id}",
            business_date=case.business_date,
            permission=RECON_ADJUST,
        )
        case.posting_id = posting.id
        posting_number = posting.number
    before = case.state
    case.transition(CaseState.RESOLVED)
    case.resolution = resolution
    case.resolution_note = note
    case.claim_reference = claim_reference
    case.resolved_by_id = actor.id
    case.resolved_at = utcnow()
    _add_event(
        session,
        case,
        "resolved",
        actor,
        note,
        resolution=resolution,
        posting=posting_number,
        claim_reference=claim_reference,
    )
    record(session, actor, "reconciliation.case_resolved", case, before={"state": before})
    return case


def _ensure_difference_account(session: Session, actor: User) -> None:
    ledger.ensure_account(
        session=session,
        actor=actor,
        code=DIFFERENCE_ACCOUNT,
        name_en="Reconciliation differences",
        name_zh="对账差异",
        type="income",
        permission=RECON_ADJUST,
    )
