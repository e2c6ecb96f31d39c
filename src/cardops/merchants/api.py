"""REST API: merchants (/api/v1/merchants) and activation cases (/api/v1/activations)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import Response
from sqlalchemy.orm import Session

from cardops.auth.service import require
from cardops.core.config import get_settings
from cardops.merchants import service
from cardops.merchants.models import ActivationCase, Merchant
from cardops.merchants.permissions import ACTIVATIONS_REPORTS, MERCHANTS_VIEW
from cardops.merchants.reports import report_xlsx
from cardops.merchants.schemas import (
    ActivationReportOut,
    CallbackIn,
    CaseEventOut,
    CaseOut,
    DocumentOut,
    MerchantIn,
    MerchantOut,
    NoteIn,
    ReasonIn,
    ReportRowOut,
    ReviewPassIn,
    VerdictIn,
)
from cardops.parties import service as parties
from cardops.parties.models import Document
from cardops.web.deps import DB, ApiUser, RecordId

router = APIRouter(tags=["merchants"])

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def merchant_out(db: Session, merchant: Merchant) -> MerchantOut:
    return MerchantOut(
        id=merchant.id,
        mid=merchant.mid,
        name=merchant.name,
        kind=merchant.kind,
        state=merchant.state,
        business_licence_no=merchant.business_licence_no,
        organisation_code=merchant.organisation_code,
        tax_registration_no=merchant.tax_registration_no,
        legal_person_id=merchant.legal_person_id,
        organisation_id=merchant.organisation_id,
        bank_name=merchant.bank_name,
        bank_account=merchant.bank_account,
        bank_account_name=merchant.bank_account_name,
        mcc=merchant.mcc,
        province=merchant.province,
        city=merchant.city,
        address=merchant.address,
        provider_id=merchant.provider_id,
        kyc_notes=merchant.kyc_notes,
        missing_documents=[
            " / ".join(group) for group in service.missing_documents(db, merchant).groups
        ],
        created_at=merchant.created_at,
    )


def document_out(document: Document) -> DocumentOut:
    return DocumentOut(
        id=document.id,
        doc_type=document.doc_type,
        filename=document.filename,
        content_type=document.content_type,
        size=document.size,
        sha256=document.sha256,
        uploaded_at=document.uploaded_at,
    )


def case_out(db: Session, case: ActivationCase, *, events: bool = False) -> CaseOut:
    terminal = service.case_terminal(db, case)
    return CaseOut(
        id=case.id,
        number=case.number,
        kind=case.kind,
        state=case.state,
        merchant_id=case.merchant_id,
        applicant_person_id=case.applicant_person_id,
        serial=terminal.serial if terminal else "",
        provider_id=case.provider_id,
        install_province=case.install_province,
        install_city=case.install_city,
        install_address=case.install_address,
        region_code=case.region_code,
        reviewer_id=case.reviewer_id,
        platform=case.platform,
        platform_reference=case.platform_reference,
        verdict_note=case.verdict_note,
        tid=case.tid,
        mid=case.mid,
        submitted_at=case.submitted_at,
        due_at=case.due_at,
        overdue=service.is_overdue(case),
        decided_at=case.decided_at,
        called_back_at=case.called_back_at,
        archived_at=case.archived_at,
        round=case.round,
        cross_region=bool((case.data or {}).get("cross_region")),
        data=case.data or {},
        events=[
            CaseEventOut(
                at=e.at, kind=e.kind, actor_id=e.actor_id, comment=e.comment, data=e.data or {}
            )
            for e in service.case_events(db, case)
        ]
        if events
        else [],
    )


def _read(file: UploadFile | None) -> bytes:
    if file is None:
        return b""
    return file.file.read(get_settings().documents_max_bytes + 1)


# --- merchants ----------------------------------------------------------------------------


@router.get("/merchants", response_model=list[MerchantOut])
def list_merchants(
    db: DB,
    user: ApiUser,
    q: str | None = Query(None, max_length=100),
    state: str | None = Query(None, max_length=16),
    kind: str | None = Query(None, max_length=12),
    limit: int = Query(50, ge=1, le=200),
    offset: int = Query(0, ge=0, le=10_000_000),
) -> list[MerchantOut]:
    rows = service.search_merchants(
        session=db, actor=user, q=q, state=state, kind=kind, limit=limit, offset=offset
    )
    return [merchant_out(db, m) for m in rows]


@router.post("/merchants", response_model=MerchantOut, status_code=201)
def create_merchant(db: DB, user: ApiUser, body: MerchantIn) -> MerchantOut:
    merchant = service.create_merchant(session=db, actor=user, **body.model_dump())
    db.commit()
    return merchant_out(db, merchant)


@router.get("/merchants/{merchant_id}", response_model=MerchantOut)
def get_merchant(db: DB, user: ApiUser, merchant_id: RecordId) -> MerchantOut:
    return merchant_out(db, service.get_merchant(session=db, merchant_id=merchant_id, actor=user))


@router.put("/merchants/{merchant_id}", response_model=MerchantOut)
def update_merchant(db: DB, user: ApiUser, merchant_id: RecordId, body: MerchantIn) -> MerchantOut:
    merchant = service.update_merchant(
        session=db, actor=user, merchant_id=merchant_id, **body.model_dump()
    )
    db.commit()
    return merchant_out(db, merchant)


@router.get("/merchants/{merchant_id}/documents", response_model=list[DocumentOut])
def merchant_documents(db: DB, user: ApiUser, merchant_id: RecordId) -> list[DocumentOut]:
    merchant = service.get_merchant(session=db, merchant_id=merchant_id, actor=user)
    docs = parties.list_documents(
        session=db, actor=user, owner_type="merchant", owner_id=merchant.id
    )
    return [document_out(d) for d in docs]


@router.post("/merchants/{merchant_id}/documents", response_model=DocumentOut, status_code=201)
def upload_merchant_document(
    db: DB,
    user: ApiUser,
    merchant_id: RecordId,
    doc_type: Annotated[str, Form(max_length=40)],
    file: Annotated[UploadFile, File(description="the file")],
    note: Annotated[str, Form(max_length=500)] = "",
) -> DocumentOut:
    document = service.upload_merchant_document(
        session=db,
        actor=user,
        merchant_id=merchant_id,
        doc_type=doc_type,
        filename=file.filename or "",
        data=_read(file),
        content_type=file.content_type,
        note=note,
    )
    db.commit()
    return document_out(document)


@router.post("/merchants/{merchant_id}/submit", response_model=MerchantOut)
def submit_merchant(db: DB, user: ApiUser, merchant_id: RecordId) -> MerchantOut:
    merchant = service.submit_for_kyc(session=db, actor=user, merchant_id=merchant_id)
    db.commit()
    return merchant_out(db, merchant)


@router.post("/merchants/{merchant_id}/approve", response_model=MerchantOut)
def approve_merchant(db: DB, user: ApiUser, merchant_id: RecordId, body: NoteIn) -> MerchantOut:
    merchant = service.approve_kyc(session=db, actor=user, merchant_id=merchant_id, note=body.note)
    db.commit()
    return merchant_out(db, merchant)


@router.post("/merchants/{merchant_id}/reject", response_model=MerchantOut)
def reject_merchant(db: DB, user: ApiUser, merchant_id: RecordId, body: ReasonIn) -> MerchantOut:
    merchant = service.reject_kyc(
        session=db, actor=user, merchant_id=merchant_id, reason=body.reason
    )
    db.commit()
    return merchant_out(db, merchant)


def _status(db: DB, user: ApiUser, merchant_id: int, action: str, reason: str) -> MerchantOut:
    merchant = service.change_merchant_status(
        session=db, actor=user, merchant_id=merchant_id, action=action, reason=reason
    )
    db.commit()
    return merchant_out(db, merchant)


@router.post("/merchants/{merchant_id}/suspend", response_model=MerchantOut)
def suspend_merchant(db: DB, user: ApiUser, merchant_id: RecordId, body: ReasonIn) -> MerchantOut:
    """Suspend: the gateway declines the merchant's terminals until it is reinstated."""
    return _status(db, user, merchant_id, "suspend", body.reason)


@router.post("/merchants/{merchant_id}/reinstate", response_model=MerchantOut)
def reinstate_merchant(db: DB, user: ApiUser, merchant_id: RecordId, body: ReasonIn) -> MerchantOut:
    return _status(db, user, merchant_id, "reinstate", body.reason)


@router.post("/merchants/{merchant_id}/close", response_model=MerchantOut)
def close_merchant(db: DB, user: ApiUser, merchant_id: RecordId, body: ReasonIn) -> MerchantOut:
    """Close for good; every terminal of the merchant must be cancelled first."""
    return _status(db, user, merchant_id, "close", body.reason)


# --- activation cases ---------------------------------------------------------------------


@router.get("/activations", response_model=list[CaseOut])
def list_cases(
    db: DB,
    user: ApiUser,
    state: str | None = Query(None, max_length=16),
    kind: str | None = Query(None, max_length=16),
    region: str | None = Query(None, max_length=16),
    overdue: bool = False,
    mine: bool = Query(False, description="my review queue"),
    q: str | None = Query(None, max_length=64, description="case number, serial or TID"),
    limit: int = Query(50, ge=1, le=200),
    offset: int = Query(0, ge=0, le=10_000_000),
) -> list[CaseOut]:
    rows = service.list_cases(
        session=db,
        actor=user,
        state=state,
        kind=kind,
        region=region,
        overdue=overdue,
        mine=mine,
        q=q,
        limit=limit,
        offset=offset,
    )
    return [case_out(db, c) for c in rows]


@router.post("/activations", response_model=CaseOut, status_code=201)
def apply(
    db: DB,
    user: ApiUser,
    serial: Annotated[str, Form(max_length=40)],
    applicant_name: Annotated[str, Form(max_length=128)],
    applicant_id_number: Annotated[str, Form(max_length=40)],
    application_form: Annotated[UploadFile, File(description="signed application form")],
    id_front: Annotated[UploadFile, File(description="ID copy, front")],
    id_back: Annotated[UploadFile, File(description="ID copy, back")],
    kind: Annotated[Literal["activation", "change", "cancellation"], Form()] = "activation",
    merchant_id: Annotated[int | None, Form(ge=1, le=2_147_483_647)] = None,
    applicant_mobile: Annotated[str, Form(max_length=32)] = "",
    install_province: Annotated[str, Form(max_length=16)] = "",
    install_city: Annotated[str, Form(max_length=32)] = "",
    install_address: Annotated[str, Form(max_length=255)] = "",
    bank_name: Annotated[str, Form(max_length=128)] = "",
    bank_account: Annotated[str, Form(max_length=40)] = "",
    bank_account_name: Annotated[str, Form(max_length=128)] = "",
    note: Annotated[str, Form(max_length=500)] = "",
) -> CaseOut:
    """File an activation, change or cancellation case with its form and ID copy."""
    documents = [
        service.NewDocument(
            doc_type, upload.filename or doc_type, _read(upload), upload.content_type
        )
        for doc_type, upload in (
            ("application_form", application_form),
            ("id_front", id_front),
            ("id_back", id_back),
        )
    ]
    case = service.apply(
        session=db,
        actor=user,
        kind=kind,
        serial=serial,
        merchant_id=merchant_id,
        applicant_name=applicant_name,
        applicant_id_number=applicant_id_number,
        applicant_mobile=applicant_mobile,
        install_province=install_province,
        install_city=install_city,
        install_address=install_address,
        bank_name=bank_name,
        bank_account=bank_account,
        bank_account_name=bank_account_name,
        note=note,
        documents=documents,
    )
    db.commit()
    return case_out(db, case, events=True)


@router.get("/activations/overdue", response_model=list[CaseOut])
def overdue(db: DB, user: ApiUser) -> list[CaseOut]:
    return [case_out(db, c) for c in service.overdue_cases(session=db, actor=user)]


@router.get("/activations/report", response_model=ActivationReportOut)
def report(db: DB, user: ApiUser, months: int = Query(12, ge=1, le=36)) -> ActivationReportOut:
    data = service.activation_report(session=db, actor=user, months=months)
    return ActivationReportOut(
        months=data.months,
        totals=data.totals,
        by_provider=[ReportRowOut(label=a, counts=b, total=c) for a, b, c in data.by_provider],
        by_region=[ReportRowOut(label=a, counts=b, total=c) for a, b, c in data.by_region],
        overdue=[c.number for c in data.overdue],
    )


@router.get("/activations/report.xlsx", response_class=Response)
def report_excel(db: DB, user: ApiUser, months: int = Query(12, ge=1, le=36)) -> Response:
    require(user, ACTIVATIONS_REPORTS)
    data = service.activation_report(session=db, actor=user, months=months)
    return Response(
        report_xlsx(data),
        media_type=XLSX,
        headers={"Content-Disposition": 'attachment; filename="activations.xlsx"'},
    )


@router.get("/activations/{case_id}", response_model=CaseOut)
def get_case(db: DB, user: ApiUser, case_id: RecordId) -> CaseOut:
    require(user, MERCHANTS_VIEW)
    return case_out(db, service.get_case(session=db, case_id=case_id, actor=user), events=True)


@router.post("/activations/{case_id}/documents", response_model=DocumentOut, status_code=201)
def upload_case_document(
    db: DB,
    user: ApiUser,
    case_id: RecordId,
    doc_type: Annotated[str, Form(max_length=40)],
    file: Annotated[UploadFile, File(description="the file")],
    note: Annotated[str, Form(max_length=500)] = "",
) -> DocumentOut:
    document = service.upload_case_document(
        session=db,
        actor=user,
        case_id=case_id,
        doc_type=doc_type,
        filename=file.filename or "",
        data=_read(file),
        content_type=file.content_type,
        note=note,
    )
    db.commit()
    return document_out(document)


@router.post("/activations/{case_id}/review/start", response_model=CaseOut)
def start_review(db: DB, user: ApiUser, case_id: RecordId) -> CaseOut:
    case = service.start_review(session=db, actor=user, case_id=case_id)
    db.commit()
    return case_out(db, case, events=True)


@router.post("/activations/{case_id}/review/pass", response_model=CaseOut)
def pass_review(db: DB, user: ApiUser, case_id: RecordId, body: ReviewPassIn) -> CaseOut:
    case = service.pass_review(
        session=db,
        actor=user,
        case_id=case_id,
        platform=body.platform,
        platform_reference=body.platform_reference,
        note=body.note,
    )
    db.commit()
    return case_out(db, case, events=True)


@router.post("/activations/{case_id}/review/return", response_model=CaseOut)
def return_case(db: DB, user: ApiUser, case_id: RecordId, body: ReasonIn) -> CaseOut:
    case = service.return_case(session=db, actor=user, case_id=case_id, reason=body.reason)
    db.commit()
    return case_out(db, case, events=True)


@router.post("/activations/{case_id}/resubmit", response_model=CaseOut)
def resubmit(db: DB, user: ApiUser, case_id: RecordId, body: NoteIn) -> CaseOut:
    case = service.resubmit(session=db, actor=user, case_id=case_id, note=body.note)
    db.commit()
    return case_out(db, case, events=True)


@router.post("/activations/{case_id}/withdraw", response_model=CaseOut)
def withdraw(db: DB, user: ApiUser, case_id: RecordId, body: NoteIn) -> CaseOut:
    case = service.withdraw(session=db, actor=user, case_id=case_id, reason=body.note)
    db.commit()
    return case_out(db, case, events=True)


@router.post("/activations/{case_id}/verdict", response_model=CaseOut)
def verdict(db: DB, user: ApiUser, case_id: RecordId, body: VerdictIn) -> CaseOut:
    case = service.record_verdict(
        session=db,
        actor=user,
        case_id=case_id,
        approved=body.approved,
        note=body.note,
        platform_reference=body.platform_reference,
    )
    db.commit()
    return case_out(db, case, events=True)


@router.post("/activations/{case_id}/callback", response_model=CaseOut)
def callback(db: DB, user: ApiUser, case_id: RecordId, body: CallbackIn) -> CaseOut:
    case = service.record_callback(
        session=db,
        actor=user,
        case_id=case_id,
        note=body.note,
        reached=body.reached,
        called_at=body.called_at,
    )
    db.commit()
    return case_out(db, case, events=True)


@router.post("/activations/{case_id}/archive", response_model=CaseOut)
def archive(db: DB, user: ApiUser, case_id: RecordId, body: NoteIn) -> CaseOut:
    case = service.archive(session=db, actor=user, case_id=case_id, note=body.note)
    db.commit()
    return case_out(db, case, events=True)
