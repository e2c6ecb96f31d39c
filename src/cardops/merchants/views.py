"""Console pages: merchants with KYC, activation cases with their review steps, overdue cases
and activation reports."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import UploadFile

from cardops.auth.models import User
from cardops.auth.service import require
from cardops.core.config import get_settings
from cardops.core.errors import CardopsError, ValidationFailed
from cardops.core.i18n import N_, Choices, gettext
from cardops.merchants import service
from cardops.merchants.models import (
    CASE_DOC_TYPES,
    CASE_REQUIRED_DOCS,
    MERCHANT_DOC_TYPES,
    MERCHANT_KINDS,
    REQUIRED_DOCS,
    ActivationCase,
    CaseState,
    Merchant,
    MerchantState,
)
from cardops.merchants.permissions import (
    ACTIVATIONS_APPLY,
    ACTIVATIONS_CALLBACK,
    ACTIVATIONS_REPORTS,
    ACTIVATIONS_REVIEW,
    ACTIVATIONS_REVIEW_ALL,
    MERCHANTS_EDIT,
    MERCHANTS_KYC,
    MERCHANTS_STATUS,
    MERCHANTS_VIEW,
)
from cardops.merchants.reports import bar_chart_svg, report_xlsx
from cardops.parties import service as parties
from cardops.parties.models import DOC_TYPES, human_size
from cardops.parties.permissions import DOCUMENTS_VIEW
from cardops.web.deps import Console, ConsoleForm, ConsolePage, RecordId, form_error_context
from cardops.web.nav import NavItem

router = APIRouter()

SECTION = N_("Merchants")
NAV = [
    NavItem(N_("Merchants"), "/merchants", MERCHANTS_VIEW, section=SECTION, order=600),
    NavItem(N_("Activation cases"), "/activations", MERCHANTS_VIEW, section=SECTION, order=601),
    NavItem(
        N_("Overdue activations"),
        "/activations/overdue",
        MERCHANTS_VIEW,
        section=SECTION,
        order=602,
    ),
    NavItem(
        N_("Activation reports"),
        "/activations/reports",
        ACTIVATIONS_REPORTS,
        section=SECTION,
        order=603,
    ),
]
PAGE = 50
MERCHANT_FIELDS = (
    "kind",
    "name",
    "business_licence_no",
    "legal_person_name",
    "legal_person_id_number",
    "legal_person_mobile",
    "organisation_code",
    "tax_registration_no",
    "bank_name",
    "bank_account",
    "bank_account_name",
    "mcc",
    "province",
    "city",
    "address",
    "provider_id",
)
CASE_FIELDS = (
    "kind",
    "serial",
    "merchant_id",
    "applicant_name",
    "applicant_id_number",
    "applicant_mobile",
    "install_province",
    "install_city",
    "install_address",
    "bank_name",
    "bank_account",
    "bank_account_name",
    "note",
)
ACTION_FIELDS = ("platform", "platform_reference", "note", "reason", "approved", "reached")


def _values(console: Console, names: tuple[str, ...]) -> dict[str, str]:
    values = {}
    for name in names:
        raw = console.form.get(name)
        if isinstance(raw, list):
            raw = raw[0] if raw else ""
        values[name] = raw[:1000] if isinstance(raw, str) else ""
    return values


def _int_or_none(value: str, field: str) -> int | None:
    text = (value or "").strip()
    if not text:
        return None
    if not text.isdigit() or not 1 <= int(text) < 2**31:
        raise ValidationFailed("Choose a value from the list.", field=field)
    return int(text)


def _page(page: int) -> tuple[int, int]:
    page = max(1, min(page, 100_000))
    return page, (page - 1) * PAGE


def _choices(codes: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(code, gettext(DOC_TYPES.get(code, code))) for code in codes]


def _required_labels(required: tuple[tuple[str, ...], ...]) -> list[str]:
    return [" / ".join(gettext(DOC_TYPES.get(c, c)) for c in options) for options in required]


def _documents(
    console: Console, owner_type: str, owner_id: int, action: str, *, upload_allowed: bool
) -> dict[str, Any]:
    documents = []
    if console.can(DOCUMENTS_VIEW):
        documents = parties.list_documents(
            session=console.db, actor=console.user, owner_type=owner_type, owner_id=owner_id
        )
    return {
        "documents": documents,
        "superseded": parties.superseded_ids(documents),
        "doc_action": action,
        "upload_allowed": upload_allowed,
        "doc_types": _choices(MERCHANT_DOC_TYPES if owner_type == "merchant" else CASE_DOC_TYPES),
        "doc_max_size": human_size(get_settings().documents_max_bytes),
    }


def _label(labels: dict[str, str], code: str) -> str:
    return gettext(labels[code]) if code in labels else code


def _labels() -> dict[str, Any]:
    return {
        "kinds": [(k, gettext(v)) for k, v in MERCHANT_KINDS.items()],
        "merchant_states": [(k, gettext(v)) for k, v in service.MERCHANT_STATE_LABELS.items()],
        "case_states": [(k, gettext(v)) for k, v in service.CASE_STATE_LABELS.items()],
        "case_kinds": [(k, gettext(v)) for k, v in service.CASE_KIND_LABELS.items()],
        "kind_label": lambda k: _label(MERCHANT_KINDS, k),
        "merchant_state_label": lambda s: _label(service.MERCHANT_STATE_LABELS, s),
        "case_state_label": lambda s: _label(service.CASE_STATE_LABELS, s),
        "case_kind_label": lambda k: _label(service.CASE_KIND_LABELS, k),
        "is_overdue": service.is_overdue,
    }


def _upload(console: Console) -> tuple[str, bytes, str | None]:
    upload = console.form.get("file")
    if not isinstance(upload, UploadFile) or not (upload.filename or "").strip():
        raise ValidationFailed("Choose a file to upload.", field="file")
    data = upload.file.read(get_settings().documents_max_bytes + 1)
    return upload.filename or "", data, upload.content_type


# --- merchants ----------------------------------------------------------------------------


@router.get("/merchants", response_class=HTMLResponse)
def merchant_list(
    console: ConsolePage, q: str = "", state: str = "", kind: str = "", page: int = 1
) -> HTMLResponse:
    require(console.user, MERCHANTS_VIEW)
    page, offset = _page(page)
    state = state if state in service.MERCHANT_STATE_LABELS else ""
    kind = kind if kind in MERCHANT_KINDS else ""
    rows = service.search_merchants(
        session=console.db,
        actor=console.user,
        q=q[:100],
        state=state or None,
        kind=kind or None,
        limit=PAGE + 1,
        offset=offset,
    )
    return console.render(
        "merchants/merchants.html",
        rows=rows[:PAGE],
        has_more=len(rows) > PAGE,
        page=page,
        q=q[:100],
        state=state,
        kind=kind,
        **_labels(),
    )


def _merchant_form(
    console: Console,
    *,
    merchant: Merchant | None,
    values: dict[str, str],
    status_code: int = 200,
    **extra: Any,
) -> HTMLResponse:
    kind = values.get("kind") if values.get("kind") in MERCHANT_KINDS else "corporate"
    return console.render(
        "merchants/merchant_form.html",
        status_code=status_code,
        merchant=merchant,
        values=values,
        required_docs=_required_labels(REQUIRED_DOCS[kind or "corporate"]),
        required_by_kind={k: _required_labels(v) for k, v in REQUIRED_DOCS.items()},
        providers=[
            (str(p.id), f"{p.code} {p.name}") for p in service.providers(console.db, console.user)
        ],
        **_labels(),
        **extra,
    )


def _merchant_args(values: dict[str, str]) -> dict[str, Any]:
    args: dict[str, Any] = {k: v for k, v in values.items() if k != "provider_id"}
    args["provider_id"] = _int_or_none(values.get("provider_id", ""), "provider_id")
    return args


@router.get("/merchants/new", response_class=HTMLResponse)
def merchant_new(console: ConsolePage, kind: str = "corporate") -> HTMLResponse:
    require(console.user, MERCHANTS_EDIT)
    return _merchant_form(
        console, merchant=None, values={"kind": kind if kind in MERCHANT_KINDS else "corporate"}
    )


@router.post("/merchants/new", response_class=HTMLResponse)
def merchant_create(console: ConsoleForm) -> Response:
    require(console.user, MERCHANTS_EDIT)
    values = _values(console, MERCHANT_FIELDS)
    try:
        merchant = service.create_merchant(
            session=console.db, actor=console.user, **_merchant_args(values)
        )
    except CardopsError as exc:
        console.db.rollback()
        return _merchant_form(
            console,
            merchant=None,
            values=values,
            status_code=exc.status,
            **form_error_context(exc),
        )
    console.flash(
        "Merchant {name} registered. Upload its documents, then submit it for KYC review.",
        name=merchant.name,
    )
    console.db.commit()
    return console.redirect(f"/merchants/{merchant.id}")


def _merchant_page(
    console: Console, merchant: Merchant, status_code: int = 200, **extra: Any
) -> HTMLResponse:
    return console.render(
        "merchants/merchant.html",
        status_code=status_code,
        merchant=merchant,
        person=service.legal_person(console.db, merchant),
        missing=[
            Choices([group]).render()
            for group in service.missing_documents(console.db, merchant).groups
        ],
        cases=service.list_cases(
            session=console.db, actor=console.user, merchant_id=merchant.id, limit=200
        ),
        **_documents(
            console,
            "merchant",
            merchant.id,
            f"/merchants/{merchant.id}/documents",
            upload_allowed=console.can(MERCHANTS_EDIT)
            and merchant.state != MerchantState.CLOSED.value,
        ),
        **_labels(),
        **extra,
    )


@router.get("/merchants/{merchant_id:int}", response_class=HTMLResponse)
def merchant_detail(console: ConsolePage, merchant_id: RecordId) -> HTMLResponse:
    merchant = service.get_merchant(session=console.db, merchant_id=merchant_id, actor=console.user)
    return _merchant_page(console, merchant, values={})


@router.get("/merchants/{merchant_id:int}/edit", response_class=HTMLResponse)
def merchant_edit(console: ConsolePage, merchant_id: RecordId) -> HTMLResponse:
    require(console.user, MERCHANTS_EDIT)
    merchant = service.get_merchant(session=console.db, merchant_id=merchant_id, actor=console.user)
    person = service.legal_person(console.db, merchant)
    values = {name: str(getattr(merchant, name, "") or "") for name in MERCHANT_FIELDS}
    values["business_licence_no"] = merchant.business_licence_no or ""
    values["legal_person_name"] = person.name if person else ""
    values["legal_person_id_number"] = (person.id_number or "") if person else ""
    values["legal_person_mobile"] = (person.mobile or "") if person else ""
    return _merchant_form(console, merchant=merchant, values=values)


@router.post("/merchants/{merchant_id:int}/edit", response_class=HTMLResponse)
def merchant_update(console: ConsoleForm, merchant_id: RecordId) -> Response:
    require(console.user, MERCHANTS_EDIT)
    merchant = service.get_merchant(session=console.db, merchant_id=merchant_id, actor=console.user)
    values = _values(console, MERCHANT_FIELDS)
    try:
        service.update_merchant(
            session=console.db,
            actor=console.user,
            merchant_id=merchant_id,
            **_merchant_args(values),
        )
    except CardopsError as exc:
        console.db.rollback()
        merchant = service.get_merchant(session=console.db, merchant_id=merchant_id)
        return _merchant_form(
            console,
            merchant=merchant,
            values=values,
            status_code=exc.status,
            **form_error_context(exc),
        )
    console.flash("Saved.")
    console.db.commit()
    return console.redirect(f"/merchants/{merchant.id}")


@router.post("/merchants/{merchant_id:int}/documents", response_class=HTMLResponse)
def merchant_upload(console: ConsoleForm, merchant_id: RecordId) -> Response:
    require(console.user, MERCHANTS_EDIT)
    doc_type = str(console.form.get("doc_type") or "")[:40]
    note = str(console.form.get("note") or "")[:500]
    try:
        filename, data, content_type = _upload(console)
        document = service.upload_merchant_document(
            session=console.db,
            actor=console.user,
            merchant_id=merchant_id,
            doc_type=doc_type,
            filename=filename,
            data=data,
            content_type=content_type,
            note=note,
        )
    except CardopsError as exc:
        console.db.rollback()
        merchant = service.get_merchant(
            session=console.db, merchant_id=merchant_id, actor=console.user
        )
        return _merchant_page(
            console,
            merchant,
            status_code=exc.status,
            values={"doc_type": doc_type, "note": note},
            **form_error_context(exc),
        )
    console.flash("Document {name} uploaded.", name=document.filename)
    console.db.commit()
    return console.redirect(f"/merchants/{merchant_id}#documents")


STATUS_MESSAGES = {
    "suspend": N_("Merchant suspended; its terminals are declined until it is reinstated."),
    "reinstate": N_("Merchant reinstated."),
    "close": N_("Merchant closed."),
}


@router.post("/merchants/{merchant_id:int}/{action}", response_class=HTMLResponse)
def merchant_action(console: ConsoleForm, merchant_id: RecordId, action: str) -> Response:
    values = _values(console, ("note", "reason"))
    try:
        if action == "submit":
            require(console.user, MERCHANTS_EDIT)
            service.submit_for_kyc(session=console.db, actor=console.user, merchant_id=merchant_id)
            message = N_("Submitted for KYC review.")
        elif action == "approve":
            require(console.user, MERCHANTS_KYC)
            merchant = service.approve_kyc(
                session=console.db,
                actor=console.user,
                merchant_id=merchant_id,
                note=values["note"],
            )
            message = N_("KYC approved; merchant ID assigned.")
        elif action == "reject":
            require(console.user, MERCHANTS_KYC)
            service.reject_kyc(
                session=console.db,
                actor=console.user,
                merchant_id=merchant_id,
                reason=values["reason"],
            )
            message = N_("KYC rejected; the merchant goes back for correction.")
        elif action in service.STATUS_ACTIONS:
            require(console.user, MERCHANTS_STATUS)
            service.change_merchant_status(
                session=console.db,
                actor=console.user,
                merchant_id=merchant_id,
                action=action,
                reason=values["reason"],
            )
            message = STATUS_MESSAGES[action]
        else:
            return Response(status_code=404)
    except CardopsError as exc:
        console.db.rollback()
        merchant = service.get_merchant(
            session=console.db, merchant_id=merchant_id, actor=console.user
        )
        return _merchant_page(
            console, merchant, status_code=exc.status, values=values, **form_error_context(exc)
        )
    console.flash(message)
    console.db.commit()
    return console.redirect(f"/merchants/{merchant_id}")


# --- activation cases ---------------------------------------------------------------------


@router.get("/activations", response_class=HTMLResponse)
def case_list(
    console: ConsolePage,
    state: str = "",
    kind: str = "",
    region: str = "",
    overdue: int = 0,
    mine: int = -1,
    q: str = "",
    page: int = 1,
) -> HTMLResponse:
    require(console.user, MERCHANTS_VIEW)
    page, offset = _page(page)
    state = state if state in service.CASE_STATE_LABELS else ""
    kind = kind if kind in service.CASE_KIND_LABELS else ""
    region = region[:16]
    if mine == -1:  # reviewers start on their own queue, managers on everything
        mine = int(console.can(ACTIVATIONS_REVIEW) and not console.can(ACTIVATIONS_REVIEW_ALL))
    rows = service.list_cases(
        session=console.db,
        actor=console.user,
        state=state or None,
        kind=kind or None,
        region=region or None,
        overdue=bool(overdue),
        mine=bool(mine),
        q=q[:64],
        limit=PAGE + 1,
        offset=offset,
    )
    return console.render(
        "merchants/cases.html",
        rows=rows[:PAGE],
        has_more=len(rows) > PAGE,
        page=page,
        state=state,
        kind=kind,
        region=region,
        overdue=int(bool(overdue)),
        mine=int(bool(mine)),
        q=q[:64],
        regions=service.regions(console.db),
        terminal=lambda c: service.case_terminal(console.db, c),
        title=gettext("Activation cases"),
        **_labels(),
    )


@router.get("/activations/overdue", response_class=HTMLResponse)
def case_overdue(console: ConsolePage) -> HTMLResponse:
    require(console.user, MERCHANTS_VIEW)
    rows = service.overdue_cases(session=console.db, actor=console.user)
    return console.render(
        "merchants/overdue.html",
        rows=rows,
        terminal=lambda c: service.case_terminal(console.db, c),
        **_labels(),
    )


def _case_form(
    console: Console, values: dict[str, str], status_code: int = 200, **extra: Any
) -> HTMLResponse:
    merchants = service.search_merchants(
        session=console.db, actor=console.user, state=MerchantState.APPROVED.value, limit=200
    )
    return console.render(
        "merchants/case_form.html",
        status_code=status_code,
        values=values,
        merchants=[(str(m.id), f"{m.name} · {m.mid}") for m in merchants],
        required_docs=_required_labels(CASE_REQUIRED_DOCS),
        **_labels(),
        **extra,
    )


@router.get("/activations/new", response_class=HTMLResponse)
def case_new(
    console: ConsolePage, kind: str = "activation", serial: str = "", merchant_id: str = ""
) -> HTMLResponse:
    require(console.user, ACTIVATIONS_APPLY)
    kind = kind if kind in service.CASE_KIND_LABELS else "activation"
    return _case_form(
        console, {"kind": kind, "serial": serial[:40], "merchant_id": merchant_id[:12]}
    )


@router.post("/activations/new", response_class=HTMLResponse)
def case_create(console: ConsoleForm) -> Response:
    require(console.user, ACTIVATIONS_APPLY)
    values = _values(console, CASE_FIELDS)
    try:
        documents = []
        for doc_type in ("application_form", "id_front", "id_back"):
            upload = console.form.get(doc_type)
            if isinstance(upload, UploadFile) and (upload.filename or "").strip():
                data = upload.file.read(get_settings().documents_max_bytes + 1)
                documents.append(
                    service.NewDocument(doc_type, upload.filename or "", data, upload.content_type)
                )
        args: dict[str, Any] = {k: v for k, v in values.items() if k != "merchant_id"}
        args["merchant_id"] = _int_or_none(values["merchant_id"], "merchant_id")
        case = service.apply(session=console.db, actor=console.user, documents=documents, **args)
    except CardopsError as exc:
        console.db.rollback()
        return _case_form(console, values, status_code=exc.status, **form_error_context(exc))
    console.flash("Case {number} submitted.", number=case.number)
    console.db.commit()
    return console.redirect(f"/activations/{case.id}")


def _case_page(
    console: Console, case: ActivationCase, status_code: int = 200, **extra: Any
) -> HTMLResponse:
    db = console.db
    events = service.case_events(db, case)
    actors = {e.actor_id: db.get(User, e.actor_id) for e in events if e.actor_id}
    reviewer = db.get(User, case.reviewer_id) if case.reviewer_id else None
    return console.render(
        "merchants/case.html",
        status_code=status_code,
        case=case,
        events=events,
        actors=actors,
        reviewer=reviewer,
        merchant=db.get(Merchant, case.merchant_id),
        person=service.case_person(db, case),
        unit=service.case_terminal(db, case),
        may_review=service.may_review(db, console.user, case),
        can_apply=console.can(ACTIVATIONS_APPLY),
        can_callback=console.can(ACTIVATIONS_CALLBACK),
        overdue=service.is_overdue(case),
        S=CaseState,
        **_documents(
            console,
            "activation_case",
            case.id,
            f"/activations/{case.id}/documents",
            upload_allowed=console.can(ACTIVATIONS_APPLY)
            and case.state not in (CaseState.ARCHIVED.value, CaseState.WITHDRAWN.value),
        ),
        **_labels(),
        **extra,
    )


@router.get("/activations/{case_id:int}", response_class=HTMLResponse)
def case_detail(console: ConsolePage, case_id: RecordId) -> HTMLResponse:
    case = service.get_case(session=console.db, case_id=case_id, actor=console.user)
    return _case_page(console, case, values={})


@router.post("/activations/{case_id:int}/documents", response_class=HTMLResponse)
def case_upload(console: ConsoleForm, case_id: RecordId) -> Response:
    require(console.user, ACTIVATIONS_APPLY)
    doc_type = str(console.form.get("doc_type") or "")[:40]
    note = str(console.form.get("note") or "")[:500]
    try:
        filename, data, content_type = _upload(console)
        document = service.upload_case_document(
            session=console.db,
            actor=console.user,
            case_id=case_id,
            doc_type=doc_type,
            filename=filename,
            data=data,
            content_type=content_type,
            note=note,
        )
    except CardopsError as exc:
        console.db.rollback()
        case = service.get_case(session=console.db, case_id=case_id, actor=console.user)
        return _case_page(
            console,
            case,
            status_code=exc.status,
            values={"doc_type": doc_type, "note": note},
            **form_error_context(exc),
        )
    console.flash("Document {name} uploaded.", name=document.filename)
    console.db.commit()
    return console.redirect(f"/activations/{case_id}#documents")


@router.post("/activations/{case_id:int}/{action}", response_class=HTMLResponse)
def case_action(console: ConsoleForm, case_id: RecordId, action: str) -> Response:
    values = _values(console, ACTION_FIELDS)
    db, user = console.db, console.user
    try:
        if action == "start":
            service.start_review(session=db, actor=user, case_id=case_id)
            message = N_("Initial review started.")
        elif action == "pass":
            service.pass_review(
                session=db,
                actor=user,
                case_id=case_id,
                platform=values["platform"],
                platform_reference=values["platform_reference"],
                note=values["note"],
            )
            message = N_("Sent to the acquiring platform.")
        elif action == "return":
            service.return_case(session=db, actor=user, case_id=case_id, reason=values["reason"])
            message = N_("Returned to the applicant for correction.")
        elif action == "resubmit":
            service.resubmit(session=db, actor=user, case_id=case_id, note=values["note"])
            message = N_("Resubmitted.")
        elif action == "withdraw":
            service.withdraw(session=db, actor=user, case_id=case_id, reason=values["reason"])
            message = N_("Withdrawn.")
        elif action == "verdict":
            if values["approved"] not in ("yes", "no"):
                raise ValidationFailed("Choose the platform's verdict.", field="approved")
            service.record_verdict(
                session=db,
                actor=user,
                case_id=case_id,
                approved=values["approved"] == "yes",
                note=values["note"],
                platform_reference=values["platform_reference"] or None,
            )
            message = N_("Platform verdict recorded.")
        elif action == "callback":
            service.record_callback(
                session=db,
                actor=user,
                case_id=case_id,
                note=values["note"],
                reached=values["reached"] != "no",
            )
            message = N_("Callback recorded.")
        elif action == "archive":
            service.archive(session=db, actor=user, case_id=case_id, note=values["note"])
            message = N_("Case archived.")
        else:
            return Response(status_code=404)
    except CardopsError as exc:
        db.rollback()
        case = service.get_case(session=db, case_id=case_id, actor=user)
        return _case_page(
            console,
            case,
            status_code=exc.status,
            values=values,
            action=action,
            **form_error_context(exc),
        )
    console.flash(message)
    db.commit()
    return console.redirect(f"/activations/{case_id}")


# --- reports ------------------------------------------------------------------------------


@router.get("/activations/reports", response_class=HTMLResponse)
def reports(console: ConsolePage, months: int = 12) -> HTMLResponse:
    require(console.user, ACTIVATIONS_REPORTS)
    months = max(1, min(months, 36))
    data = service.activation_report(session=console.db, actor=console.user, months=months)
    return console.render(
        "merchants/reports.html",
        report=data,
        months=months,
        chart=bar_chart_svg(
            data.months, data.totals, title=gettext("Terminals activated per month")
        ),
        **_labels(),
    )


@router.get("/activations/reports.xlsx")
def reports_excel(console: ConsolePage, months: int = 12) -> Response:
    require(console.user, ACTIVATIONS_REPORTS)
    data = service.activation_report(
        session=console.db, actor=console.user, months=max(1, min(months, 36))
    )
    return Response(
        report_xlsx(data),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": 'attachment; filename="activations.xlsx"'},
    )
