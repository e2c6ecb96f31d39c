"""Console pages: persons, organisations, and documents attached to any record.

Other domains show the documents of their own records with
``{% include "parties/_documents.html" %}`` and the context from :func:`documents_context`;
its upload form posts to ``/documents/upload`` and comes back to ``return_to``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.datastructures import UploadFile

from cardops.auth.service import require
from cardops.core.config import get_settings
from cardops.core.errors import CardopsError, ValidationFailed
from cardops.core.i18n import N_, gettext
from cardops.parties import service
from cardops.parties.api import file_response
from cardops.parties.models import DOC_TYPES, ORGANISATION_KINDS, human_size
from cardops.parties.permissions import (
    DOCUMENTS_UPLOAD,
    DOCUMENTS_VIEW,
    PARTIES_EDIT,
    PARTIES_VIEW,
)
from cardops.web.deps import Console, ConsoleForm, ConsolePage, form_error_context
from cardops.web.nav import NavItem

router = APIRouter()

NAV = [
    NavItem(N_("Persons"), "/persons", PARTIES_VIEW, section=N_("Parties"), order=200),
    NavItem(N_("Organisations"), "/organisations", PARTIES_VIEW, section=N_("Parties"), order=201),
]
PAGE = 50
PERSON_FIELDS = ("name", "id_number", "mobile", "email", "address", "notes")
ORGANISATION_FIELDS = (
    "name",
    "kind",
    "uscc",
    "legal_person",
    "contact_name",
    "contact_mobile",
    "address",
    "notes",
)


def _form_values(console: Console, names: tuple[str, ...]) -> dict[str, str]:
    """The submitted text fields (a repeated field counts once; a file is no text)."""
    values = {}
    for name in names:
        raw = console.form.get(name)
        if isinstance(raw, list):
            raw = raw[0] if raw else ""
        values[name] = raw if isinstance(raw, str) else ""
    return values


def _safe_next(target: str | None, fallback: str = "/") -> str:
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return fallback


def _page(page: int) -> tuple[int, int]:
    page = max(1, min(page, 100_000))
    return page, (page - 1) * PAGE


def doc_type_choices() -> list[tuple[str, str]]:
    return [(code, gettext(label)) for code, label in DOC_TYPES.items()]


def documents_context(
    console: Console, owner_type: str, owner_id: int, *, return_to: str
) -> dict[str, Any]:
    """What ``parties/_documents.html`` needs to list and upload a record's documents."""
    documents = []
    if console.can(DOCUMENTS_VIEW):
        documents = service.list_documents(
            session=console.db, actor=console.user, owner_type=owner_type, owner_id=owner_id
        )
    return {
        "documents": documents,
        "superseded": service.superseded_ids(documents),
        "doc_owner_type": owner_type,
        "doc_owner_id": owner_id,
        "doc_return_to": return_to,
        "doc_types": doc_type_choices(),
        "doc_max_size": human_size(get_settings().documents_max_bytes),
    }


# --- persons ------------------------------------------------------------------------------


@router.get("/persons", response_class=HTMLResponse)
def person_list(console: ConsolePage, q: str = "", page: int = 1) -> HTMLResponse:
    require(console.user, PARTIES_VIEW)
    page, offset = _page(page)
    rows = service.search_persons(
        session=console.db, actor=console.user, q=q[:100], limit=PAGE + 1, offset=offset
    )
    return console.render(
        "parties/persons.html", rows=rows[:PAGE], has_more=len(rows) > PAGE, page=page, q=q
    )


@router.get("/persons/new", response_class=HTMLResponse)
def person_new(console: ConsolePage) -> HTMLResponse:
    require(console.user, PARTIES_EDIT)
    return console.render("parties/person_form.html", person=None, values={})


@router.post("/persons/new", response_class=HTMLResponse)
def person_create(console: ConsoleForm) -> Response:
    require(console.user, PARTIES_EDIT)
    values = _form_values(console, PERSON_FIELDS)
    try:
        person = service.create_person(session=console.db, actor=console.user, **values)
    except CardopsError as exc:
        console.db.rollback()
        return console.render(
            "parties/person_form.html",
            status_code=exc.status,
            person=None,
            values=values,
            **form_error_context(exc),
        )
    console.flash("Person {name} registered.", name=person.name)
    console.db.commit()
    return console.redirect(f"/persons/{person.id}")


@router.get("/persons/{person_id:int}", response_class=HTMLResponse)
def person_detail(console: ConsolePage, person_id: int) -> HTMLResponse:
    require(console.user, PARTIES_VIEW)
    person = service.get_person(session=console.db, person_id=person_id)
    photo = None
    if console.can(DOCUMENTS_VIEW):
        photo = service.latest_photo(console.db, "person", person.id)
    return console.render(
        "parties/person_detail.html",
        person=person,
        photo=photo,
        **documents_context(console, "person", person.id, return_to=f"/persons/{person.id}"),
    )


@router.get("/persons/{person_id:int}/edit", response_class=HTMLResponse)
def person_edit(console: ConsolePage, person_id: int) -> HTMLResponse:
    require(console.user, PARTIES_EDIT)
    person = service.get_person(session=console.db, person_id=person_id)
    values = {name: getattr(person, name) or "" for name in PERSON_FIELDS}
    return console.render("parties/person_form.html", person=person, values=values)


@router.post("/persons/{person_id:int}/edit", response_class=HTMLResponse)
def person_update(console: ConsoleForm, person_id: int) -> Response:
    require(console.user, PARTIES_EDIT)
    person = service.get_person(session=console.db, person_id=person_id)
    values = _form_values(console, PERSON_FIELDS)
    try:
        service.update_person(session=console.db, actor=console.user, person_id=person_id, **values)
    except CardopsError as exc:
        console.db.rollback()
        return console.render(
            "parties/person_form.html",
            status_code=exc.status,
            person=person,
            values=values,
            **form_error_context(exc),
        )
    console.flash("Saved.")
    console.db.commit()
    return console.redirect(f"/persons/{person_id}")


# --- organisations ------------------------------------------------------------------------


def _kind_choices() -> list[tuple[str, str]]:
    return [(code, gettext(label)) for code, label in ORGANISATION_KINDS.items()]


@router.get("/organisations", response_class=HTMLResponse)
def organisation_list(
    console: ConsolePage, q: str = "", kind: str = "", page: int = 1
) -> HTMLResponse:
    require(console.user, PARTIES_VIEW)
    page, offset = _page(page)
    kind = kind if kind in ORGANISATION_KINDS else ""
    rows = service.search_organisations(
        session=console.db,
        actor=console.user,
        q=q[:100],
        kind=kind or None,
        limit=PAGE + 1,
        offset=offset,
    )
    return console.render(
        "parties/organisations.html",
        rows=rows[:PAGE],
        has_more=len(rows) > PAGE,
        page=page,
        q=q,
        kind=kind,
        kinds=_kind_choices(),
    )


@router.get("/organisations/new", response_class=HTMLResponse)
def organisation_new(console: ConsolePage, kind: str = "") -> HTMLResponse:
    require(console.user, PARTIES_EDIT)
    return console.render(
        "parties/organisation_form.html",
        organisation=None,
        values={"kind": kind if kind in ORGANISATION_KINDS else ""},
        kinds=_kind_choices(),
    )


@router.post("/organisations/new", response_class=HTMLResponse)
def organisation_create(console: ConsoleForm) -> Response:
    require(console.user, PARTIES_EDIT)
    values = _form_values(console, ORGANISATION_FIELDS)
    try:
        org = service.create_organisation(session=console.db, actor=console.user, **values)
    except CardopsError as exc:
        console.db.rollback()
        return console.render(
            "parties/organisation_form.html",
            status_code=exc.status,
            organisation=None,
            values=values,
            kinds=_kind_choices(),
            **form_error_context(exc),
        )
    console.flash("Organisation {name} registered.", name=org.name)
    console.db.commit()
    return console.redirect(f"/organisations/{org.id}")


@router.get("/organisations/{organisation_id:int}", response_class=HTMLResponse)
def organisation_detail(console: ConsolePage, organisation_id: int) -> HTMLResponse:
    require(console.user, PARTIES_VIEW)
    org = service.get_organisation(session=console.db, organisation_id=organisation_id)
    return console.render(
        "parties/organisation_detail.html",
        organisation=org,
        **documents_context(console, "organisation", org.id, return_to=f"/organisations/{org.id}"),
    )


@router.get("/organisations/{organisation_id:int}/edit", response_class=HTMLResponse)
def organisation_edit(console: ConsolePage, organisation_id: int) -> HTMLResponse:
    require(console.user, PARTIES_EDIT)
    org = service.get_organisation(session=console.db, organisation_id=organisation_id)
    values = {name: getattr(org, name) or "" for name in ORGANISATION_FIELDS}
    return console.render(
        "parties/organisation_form.html", organisation=org, values=values, kinds=_kind_choices()
    )


@router.post("/organisations/{organisation_id:int}/edit", response_class=HTMLResponse)
def organisation_update(console: ConsoleForm, organisation_id: int) -> Response:
    require(console.user, PARTIES_EDIT)
    org = service.get_organisation(session=console.db, organisation_id=organisation_id)
    values = _form_values(console, ORGANISATION_FIELDS)
    try:
        service.update_organisation(
            session=console.db, actor=console.user, organisation_id=organisation_id, **values
        )
    except CardopsError as exc:
        console.db.rollback()
        return console.render(
            "parties/organisation_form.html",
            status_code=exc.status,
            organisation=org,
            values=values,
            kinds=_kind_choices(),
            **form_error_context(exc),
        )
    console.flash("Saved.")
    console.db.commit()
    return console.redirect(f"/organisations/{organisation_id}")


# --- documents ----------------------------------------------------------------------------


def _int(value: Any) -> int | None:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if 1 <= number < 2**63 else None


def _owner_label(owner_type: str) -> str:
    owner = service.DOCUMENT_OWNERS.get(owner_type)
    return gettext(owner.label) if owner else owner_type


@router.get("/documents/upload", response_class=HTMLResponse)
def document_upload_form(
    console: ConsolePage, owner_type: str = "", owner_id: str = "", next: str = ""
) -> HTMLResponse:
    require(console.user, DOCUMENTS_UPLOAD)
    owner_type = owner_type.strip().lower()[:32]
    return_to = _safe_next(next, service.owner_url(owner_type, _int(owner_id) or 0) or "/")
    return console.render(
        "parties/document_upload.html",
        owner_label=_owner_label(owner_type),
        doc_owner_type=owner_type,
        doc_owner_id=owner_id[:20],
        doc_return_to=return_to,
        doc_types=doc_type_choices(),
        doc_max_size=human_size(get_settings().documents_max_bytes),
        values={},
    )


@router.post("/documents/upload", response_class=HTMLResponse)
def document_upload(console: ConsoleForm) -> Response:
    require(console.user, DOCUMENTS_UPLOAD)
    form = console.form
    owner_type = str(form.get("owner_type") or "").strip().lower()[:32]
    raw_owner_id = str(form.get("owner_id") or "")[:20]
    owner_id = _int(raw_owner_id)
    doc_type = str(form.get("doc_type") or "")[:32]
    note = str(form.get("note") or "")
    upload = form.get("file")
    fallback = service.owner_url(owner_type, owner_id or 0) or "/"
    return_to = _safe_next(str(form.get("next") or ""), fallback)
    try:
        if owner_id is None:
            raise ValidationFailed("The owner number is not valid.", field="owner_id")
        if not isinstance(upload, UploadFile) or not (upload.filename or "").strip():
            raise ValidationFailed("Choose a file to upload.", field="file")
        data = upload.file.read(get_settings().documents_max_bytes + 1)
        document = service.upload_document(
            session=console.db,
            actor=console.user,
            owner_type=owner_type,
            owner_id=owner_id,
            doc_type=doc_type,
            filename=upload.filename or "",
            data=data,
            content_type=upload.content_type,
            note=note,
        )
    except CardopsError as exc:
        console.db.rollback()
        return console.render(
            "parties/document_upload.html",
            status_code=exc.status,
            owner_label=_owner_label(owner_type),
            doc_owner_type=owner_type,
            doc_owner_id=raw_owner_id,
            doc_return_to=return_to,
            doc_types=doc_type_choices(),
            doc_max_size=human_size(get_settings().documents_max_bytes),
            values={"doc_type": doc_type, "note": note[:500]},
            **form_error_context(exc),
        )
    console.flash("Document {name} uploaded.", name=document.filename)
    console.db.commit()
    return console.redirect(return_to)


@router.get("/documents/{document_id:int}/download")
def document_download(console: ConsolePage, document_id: int, inline: int = 0) -> FileResponse:
    require(console.user, DOCUMENTS_VIEW)
    return file_response(console.db, console.user, document_id, inline=bool(inline))


@router.get("/documents/{document_id:int}/verify", response_class=HTMLResponse)
def document_verify(console: ConsolePage, document_id: int) -> Response:
    require(console.user, DOCUMENTS_VIEW)
    check = service.verify_document(session=console.db, actor=console.user, document_id=document_id)
    document = service.get_document(session=console.db, actor=console.user, document_id=document_id)
    if check.ok:
        console.flash(
            "Document {id}: the stored file matches its SHA-256 checksum.", id=document_id
        )
    elif check.status == "missing":
        console.flash(
            "Document {id}: the stored file is MISSING. Restore it from a backup.", id=document_id
        )
    else:
        console.flash(
            "Document {id}: the stored file does NOT match its SHA-256 checksum. Restore it from a backup.",
            id=document_id,
        )
    console.db.commit()
    back = service.owner_url(document.owner_type, document.owner_id) or "/"
    return console.redirect(back)
