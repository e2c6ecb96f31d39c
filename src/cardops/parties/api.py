"""REST API of the parties domain: persons, organisations, documents."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Query, UploadFile
from fastapi.responses import FileResponse

from cardops.auth.models import User
from cardops.auth.service import require
from cardops.core.config import get_settings
from cardops.core.i18n import gettext
from cardops.parties import service
from cardops.parties.models import DOC_TYPES, INLINE_TYPES, ORGANISATION_KINDS, Document
from cardops.parties.permissions import DOCUMENTS_VIEW, PARTIES_VIEW
from cardops.parties.schemas import (
    ChoiceOut,
    DocumentCheckOut,
    DocumentOut,
    OrganisationIn,
    OrganisationOut,
    OrganisationPatch,
    PersonIn,
    PersonOut,
    PersonPatch,
)
from cardops.web.deps import DB, ApiUser

router = APIRouter(tags=["parties"])

Limit = Annotated[int, Query(ge=1, le=service.MAX_PAGE)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
SearchText = Annotated[str, Query(max_length=100, description="name, ID number or mobile")]
RecordId = Annotated[int, Query(ge=1, le=2**63 - 1)]


def document_out(document: Document) -> DocumentOut:
    return DocumentOut(
        id=document.id,
        sha256=document.sha256,
        filename=document.filename,
        content_type=document.content_type,
        size=document.size,
        doc_type=document.doc_type,
        doc_type_label=gettext(document.doc_type_label),
        owner_type=document.owner_type,
        owner_id=document.owner_id,
        uploaded_by=document.uploaded_by.username,
        uploaded_at=document.uploaded_at,
        note=document.note,
        supersedes_id=document.supersedes_id,
    )


# --- persons ------------------------------------------------------------------------------


@router.get("/persons", response_model=list[PersonOut], summary="Search persons")
def search_persons(
    db: DB, user: ApiUser, q: SearchText = "", limit: Limit = 50, offset: Offset = 0
) -> list[PersonOut]:
    rows = service.search_persons(session=db, actor=user, q=q, limit=limit, offset=offset)
    return [PersonOut.model_validate(p) for p in rows]


@router.post("/persons", response_model=PersonOut, status_code=201, summary="Register a person")
def create_person(db: DB, user: ApiUser, body: PersonIn) -> PersonOut:
    person = service.create_person(
        session=db,
        actor=user,
        name=body.name,
        id_number=body.id_number,
        mobile=body.mobile,
        email=body.email,
        address=body.address,
        notes=body.notes,
    )
    db.commit()
    return PersonOut.model_validate(person)


@router.get("/persons/{person_id}", response_model=PersonOut)
def get_person(db: DB, user: ApiUser, person_id: int) -> PersonOut:
    require(user, PARTIES_VIEW)
    return PersonOut.model_validate(service.get_person(session=db, person_id=person_id))


@router.patch("/persons/{person_id}", response_model=PersonOut)
def patch_person(db: DB, user: ApiUser, person_id: int, body: PersonPatch) -> PersonOut:
    person = service.update_person(
        session=db,
        actor=user,
        person_id=person_id,
        name=body.name,
        id_number=body.id_number,
        mobile=body.mobile,
        email=body.email,
        address=body.address,
        notes=body.notes,
    )
    db.commit()
    return PersonOut.model_validate(person)


# --- organisations ------------------------------------------------------------------------


@router.get("/organisations", response_model=list[OrganisationOut], summary="Search organisations")
def search_organisations(
    db: DB,
    user: ApiUser,
    q: Annotated[str, Query(max_length=100, description="name or USCC")] = "",
    kind: Annotated[str, Query(max_length=32)] = "",
    limit: Limit = 50,
    offset: Offset = 0,
) -> list[OrganisationOut]:
    rows = service.search_organisations(
        session=db, actor=user, q=q, kind=kind or None, limit=limit, offset=offset
    )
    return [OrganisationOut.model_validate(o) for o in rows]


@router.get("/organisations/kinds", response_model=list[ChoiceOut])
def organisation_kinds(user: ApiUser) -> list[ChoiceOut]:
    require(user, PARTIES_VIEW)
    return [ChoiceOut(code=k, label=gettext(v)) for k, v in ORGANISATION_KINDS.items()]


@router.post(
    "/organisations",
    response_model=OrganisationOut,
    status_code=201,
    summary="Register an organisation",
)
def create_organisation(db: DB, user: ApiUser, body: OrganisationIn) -> OrganisationOut:
    org = service.create_organisation(
        session=db,
        actor=user,
        name=body.name,
        kind=body.kind,
        uscc=body.uscc,
        legal_person=body.legal_person,
        contact_name=body.contact_name,
        contact_mobile=body.contact_mobile,
        address=body.address,
        notes=body.notes,
    )
    db.commit()
    return OrganisationOut.model_validate(org)


@router.get("/organisations/{organisation_id}", response_model=OrganisationOut)
def get_organisation(db: DB, user: ApiUser, organisation_id: int) -> OrganisationOut:
    require(user, PARTIES_VIEW)
    org = service.get_organisation(session=db, organisation_id=organisation_id)
    return OrganisationOut.model_validate(org)


@router.patch("/organisations/{organisation_id}", response_model=OrganisationOut)
def patch_organisation(
    db: DB, user: ApiUser, organisation_id: int, body: OrganisationPatch
) -> OrganisationOut:
    org = service.update_organisation(
        session=db,
        actor=user,
        organisation_id=organisation_id,
        name=body.name,
        kind=body.kind,
        uscc=body.uscc,
        legal_person=body.legal_person,
        contact_name=body.contact_name,
        contact_mobile=body.contact_mobile,
        address=body.address,
        notes=body.notes,
    )
    db.commit()
    return OrganisationOut.model_validate(org)


# --- documents ----------------------------------------------------------------------------


@router.get("/documents/types", response_model=list[ChoiceOut], summary="Document types")
def document_types(user: ApiUser) -> list[ChoiceOut]:
    require(user, DOCUMENTS_VIEW)
    return [ChoiceOut(code=k, label=gettext(v)) for k, v in DOC_TYPES.items()]


@router.get("/documents", response_model=list[DocumentOut], summary="Documents of a record")
def list_documents(
    db: DB,
    user: ApiUser,
    owner_type: Annotated[str, Query(max_length=32, description="e.g. person, organisation")],
    owner_id: RecordId,
) -> list[DocumentOut]:
    rows = service.list_documents(
        session=db, actor=user, owner_type=owner_type.strip().lower(), owner_id=owner_id
    )
    return [document_out(d) for d in rows]


@router.post(
    "/documents",
    response_model=DocumentOut,
    status_code=201,
    summary="Upload a document (multipart/form-data)",
)
def upload_document(
    db: DB,
    user: ApiUser,
    owner_type: Annotated[str, Form(max_length=32)],
    owner_id: Annotated[int, Form(ge=1, le=2**63 - 1)],
    doc_type: Annotated[str, Form(max_length=32)],
    file: Annotated[
        UploadFile, File(description="the file; empty and oversized files are refused")
    ],
    note: Annotated[str, Form(max_length=500)] = "",
    supersedes_id: Annotated[int | None, Form(ge=1, le=2**63 - 1)] = None,
) -> DocumentOut:
    # Read one byte past the limit so that an oversized file is recognised without keeping it.
    data = file.file.read(get_settings().documents_max_bytes + 1)
    document = service.upload_document(
        session=db,
        actor=user,
        owner_type=owner_type,
        owner_id=owner_id,
        doc_type=doc_type,
        filename=file.filename or "",
        data=data,
        content_type=file.content_type,
        note=note,
        supersedes_id=supersedes_id,
    )
    db.commit()
    return document_out(document)


@router.get("/documents/{document_id}", response_model=DocumentOut)
def get_document(db: DB, user: ApiUser, document_id: int) -> DocumentOut:
    return document_out(service.get_document(session=db, actor=user, document_id=document_id))


@router.get(
    "/documents/{document_id}/content",
    summary="Download the file",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def download_document(db: DB, user: ApiUser, document_id: int) -> FileResponse:
    return file_response(db, user, document_id, inline=False)


@router.get("/documents/{document_id}/verify", response_model=DocumentCheckOut)
def verify_document(db: DB, user: ApiUser, document_id: int) -> DocumentCheckOut:
    """Re-hash the stored file and compare it with the SHA-256 recorded at upload."""
    check = service.verify_document(session=db, actor=user, document_id=document_id)
    return DocumentCheckOut(
        document_id=check.document_id,
        status=check.status,
        ok=check.ok,
        expected_sha256=check.expected_sha256,
        actual_sha256=check.actual_sha256,
    )


def file_response(db: DB, user: User, document_id: int, *, inline: bool) -> FileResponse:
    """The stored file with its name and type; shown in the page only for safe types."""
    document, path = service.open_document(session=db, actor=user, document_id=document_id)
    show_inline = inline and document.content_type in INLINE_TYPES
    return FileResponse(
        path,
        media_type=document.content_type,
        filename=document.filename,
        content_disposition_type="inline" if show_inline else "attachment",
        headers={
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "sandbox; default-src 'none'; img-src 'self'",
            "Cache-Control": "private, max-age=3600",
            "ETag": f'"{document.sha256}"',
        },
    )
