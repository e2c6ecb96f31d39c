"""REST API: /api/v1/reconciliation — clearing files, a day's result, difference cases."""

from __future__ import annotations

import shutil
import tempfile
from datetime import date
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, UploadFile

from cardops.auth.service import require
from cardops.core.errors import ValidationFailed
from cardops.reconciliation import service
from cardops.reconciliation.models import ReconCase
from cardops.reconciliation.permissions import RECON_IMPORT
from cardops.reconciliation.schemas import (
    CaseDetailOut,
    CaseEventOut,
    CaseList,
    CaseOut,
    DayOut,
    FileOut,
    NoteIn,
    ResolveIn,
    RunOut,
)
from cardops.web.deps import DB, ApiUser, RecordId

router = APIRouter(prefix="/reconciliation", tags=["reconciliation"])


def save_upload(upload: UploadFile | None) -> tuple[Path, str]:
    """Spool an uploaded clearing file to disk (it may be large); returns (path, name)."""
    if upload is None or not (upload.filename or "").strip():
        raise ValidationFailed("Choose the bank's clearing file to upload.", field="file")
    incoming = service.storage_dir() / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("wb", dir=incoming, suffix=".csv", delete=False) as fh:
        shutil.copyfileobj(upload.file, fh, 1024 * 1024)
    return Path(fh.name), Path(upload.filename or "upload.csv").name


@router.post("/files", response_model=DayOut, status_code=201)
def import_file(
    db: DB,
    user: ApiUser,
    file: Annotated[UploadFile, File(description="CLR_<acquirer>_<YYYYMMDD>.csv")],
    utf8: Annotated[bool, Form()] = False,
    replace: Annotated[bool, Form()] = False,
    reason: Annotated[str, Form(max_length=500)] = "",
) -> DayOut:
    require(user, RECON_IMPORT)
    path, name = save_upload(file)
    try:
        outcome = service.import_file(
            session=db,
            actor=user,
            path=path,
            utf8=utf8,
            replace=replace,
            reason=reason,
            filename=name,
        )
        db.commit()
    finally:
        path.unlink(missing_ok=True)
    return DayOut(
        business_date=outcome.run.business_date,
        counts=outcome.counts(),
        run=RunOut.model_validate(outcome.run),
    )


@router.get("/files", response_model=list[FileOut])
def list_files(db: DB, user: ApiUser) -> list[FileOut]:
    return [FileOut.model_validate(f) for f in service.list_files(session=db, actor=user)]


@router.get("/days/{business_date}", response_model=DayOut)
def day(db: DB, user: ApiUser, business_date: date) -> DayOut:
    run = service.current_run(session=db, actor=user, business_date=business_date)
    counts = {k: int(run.figures.get(k, {}).get("count", 0)) for k in service.COUNT_KEYS}
    return DayOut(business_date=business_date, counts=counts, run=RunOut.model_validate(run))


@router.post("/days/{business_date}/rerun", response_model=DayOut)
def rerun(db: DB, user: ApiUser, business_date: date) -> DayOut:
    outcome = service.rerun_day(session=db, actor=user, business_date=business_date)
    db.commit()
    return DayOut(
        business_date=business_date,
        counts=outcome.counts(),
        run=RunOut.model_validate(outcome.run),
    )


@router.get("/cases", response_model=CaseList)
def list_cases(
    db: DB,
    user: ApiUser,
    business_date: Annotated[date | None, Query(alias="date")] = None,
    kind: Annotated[str | None, Query(max_length=24)] = None,
    state: Annotated[str | None, Query(max_length=16)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> CaseList:
    rows, total = service.list_cases(
        session=db,
        actor=user,
        business_date=business_date,
        kind=kind,
        state=state,
        limit=limit,
        offset=offset,
    )
    return CaseList(total=total, items=[CaseOut.model_validate(c) for c in rows])


def _detail(db: DB, case: ReconCase) -> CaseDetailOut:
    out = CaseDetailOut.model_validate(case)
    out.history = [CaseEventOut.model_validate(e) for e in service.case_history(db, case)]
    return out


@router.get("/cases/{case_id}", response_model=CaseDetailOut)
def get_case(db: DB, user: ApiUser, case_id: RecordId) -> CaseDetailOut:
    return _detail(db, service.get_case(session=db, actor=user, case_id=case_id))


@router.post("/cases/{case_id}/investigate", response_model=CaseDetailOut)
def investigate(db: DB, user: ApiUser, case_id: RecordId, body: NoteIn) -> CaseDetailOut:
    case = service.start_investigation(session=db, actor=user, case_id=case_id, note=body.note)
    db.commit()
    return _detail(db, case)


@router.post("/cases/{case_id}/hand-back", response_model=CaseDetailOut)
def hand_back(db: DB, user: ApiUser, case_id: RecordId, body: NoteIn) -> CaseDetailOut:
    case = service.hand_back(session=db, actor=user, case_id=case_id, note=body.note)
    db.commit()
    return _detail(db, case)


@router.post("/cases/{case_id}/resolve", response_model=CaseDetailOut)
def resolve(db: DB, user: ApiUser, case_id: RecordId, body: ResolveIn) -> CaseDetailOut:
    case = service.resolve(
        session=db,
        actor=user,
        case_id=case_id,
        resolution=body.resolution,
        note=body.note,
        amount=body.amount,
        claim_reference=body.claim_reference,
    )
    db.commit()
    return _detail(db, case)
