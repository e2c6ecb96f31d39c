"""Merchant onboarding with KYC and MID assignment, and activation cases (开通 / 变更 / 撤机).

The only code that changes merchants and cases. Public functions take keyword-only arguments,
a session and the acting user; they never commit.

* A merchant is registered as a draft, its documents are uploaded, it is submitted for KYC
  review (refused while a required document is missing) and approved — which assigns its
  merchant ID (MID) — or rejected with a reason (corrected and submitted again).
* An activation case is filed for one terminal at a provider with the applicant's form and ID
  copy, routed to the user-management reviewer of the install province's region, reviewed
  (passed to the acquiring platform or returned for correction), decided by the platform,
  called back and archived. Approval binds TID + MID and activates the unit at the merchant.
  Change and cancellation cases follow the same flow.

Numbering (documented in docs/user-guide/merchants.md):

* MID (15 digits) = ``898`` + 4-digit area code + 4-digit MCC + 4-digit sequence. The area
  code is digits 3–6 of the business licence's unified social credit code (the province and
  city of the registration authority); the sequence counts up per area code + MCC.
* TID (8 digits) = the next free number from ``10000001`` up.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cardops.audit.service import record, snapshot
from cardops.auth.models import User
from cardops.auth.service import has_permission, require
from cardops.channel.models import Provider, Region
from cardops.channel.service import is_outside_region, region_for_province, visible_provider_ids
from cardops.core.clock import as_utc, local, utcnow
from cardops.core.config import get_settings
from cardops.core.errors import Conflict, FieldErrors, NotFound, PermissionDenied, ValidationFailed
from cardops.core.i18n import N_, Choices
from cardops.merchants.models import (
    CASE_DOC_TYPES,
    CASE_REQUIRED_DOCS,
    MERCHANT_DOC_TYPES,
    MERCHANT_KINDS,
    REQUIRED_DOCS,
    ActivationCase,
    CaseEvent,
    CaseKind,
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
from cardops.parties import service as parties
from cardops.parties.models import DOC_TYPES, Document, Person
from cardops.terminals import service as terminals
from cardops.terminals.models import Location, Terminal, TerminalState

MAX_PAGE = 200
WORKING_DAYS_TARGET = 2
# Cases the operator is working on: these count towards the 1–2 working-day target.
OPEN_STATES = (CaseState.SUBMITTED.value, CaseState.IN_REVIEW.value, CaseState.WITH_PLATFORM.value)
# Cases that still hold their terminal (a second case for the same unit is refused).
IN_FLIGHT_STATES = (*OPEN_STATES, CaseState.RETURNED.value)
CASE_PREFIX = {CaseKind.ACTIVATION: "ACT", CaseKind.CHANGE: "CHG", CaseKind.CANCELLATION: "CAN"}
CASE_KIND_LABELS: dict[str, str] = {
    CaseKind.ACTIVATION.value: N_("Activation"),
    CaseKind.CHANGE.value: N_("Change"),
    CaseKind.CANCELLATION.value: N_("Cancellation"),
}
CASE_STATE_LABELS: dict[str, str] = {
    CaseState.SUBMITTED.value: N_("Submitted"),
    CaseState.IN_REVIEW.value: N_("In initial review"),
    CaseState.RETURNED.value: N_("Returned for correction"),
    CaseState.WITH_PLATFORM.value: N_("With the acquiring platform"),
    CaseState.APPROVED.value: N_("Approved by the platform"),
    CaseState.DECLINED.value: N_("Declined by the platform"),
    CaseState.CALLED_BACK.value: N_("Called back"),
    CaseState.ARCHIVED.value: N_("Archived"),
    CaseState.WITHDRAWN.value: N_("Withdrawn"),
}
MERCHANT_STATE_LABELS: dict[str, str] = {
    MerchantState.DRAFT.value: N_("Draft"),
    MerchantState.KYC_REVIEW.value: N_("In KYC review"),
    MerchantState.APPROVED.value: N_("Approved"),
    MerchantState.REJECTED.value: N_("Rejected"),
    MerchantState.SUSPENDED.value: N_("Suspended"),
    MerchantState.CLOSED.value: N_("Closed"),
}

_MCC = re.compile(r"^[0-9]{4}$")
_BANK_ACCOUNT = re.compile(r"^[0-9]{10,30}$")
_ORG_CODE = re.compile(r"^[0-9A-Z]{8}-?[0-9X]$")
_TAX_NO = re.compile(r"^[0-9A-Z]{15,20}$")
_MID = re.compile(r"^[0-9]{15}$")


# --- small helpers ------------------------------------------------------------------------


_Errors = FieldErrors  # one collector for the whole project (core.errors)


def _one_line(value: str | None) -> str:
    return " ".join(parties.plain_text(value).split())


def _text(value: str | None, *, field: str, max_length: int, required: bool = False) -> str:
    text = _one_line(value)
    if required and not text:
        raise ValidationFailed("This field is required.", field=field)
    if len(text) > max_length:
        raise ValidationFailed("Too long: at most {n} characters.", field=field, n=max_length)
    return text


def _digits(value: str | None) -> str:
    text = unicodedata.normalize("NFKC", value or "")
    return "".join(c for c in text if not c.isspace() and c != "-")


def validate_mcc(value: str | None, *, field: str = "mcc") -> str:
    """A merchant category code: exactly four digits (e.g. 5411 supermarkets)."""
    mcc = _digits(value)
    if not _MCC.fullmatch(mcc):
        raise ValidationFailed(
            "A merchant category code (MCC) has exactly 4 digits, for example 5411.", field=field
        )
    return mcc


def validate_bank_account(value: str | None, *, field: str = "bank_account") -> str:
    """A settlement account number: 10 to 30 digits (no checksum: account numbers of Chinese
    banks do not share one; bank cards' Luhn digit is not required)."""
    number = _digits(value)
    if not _BANK_ACCOUNT.fullmatch(number):
        raise ValidationFailed("A bank account number has 10 to 30 digits.", field=field)
    return number


def _org_code(value: str | None, *, field: str = "organisation_code") -> str | None:
    code = _digits(value).upper()
    if not code:
        return None
    if not _ORG_CODE.fullmatch(code):
        raise ValidationFailed(
            "An organisation code has 9 characters: 8 digits or capital letters, then a digit or X.",
            field=field,
        )
    return code


def _tax_no(value: str | None, *, field: str = "tax_registration_no") -> str | None:
    code = _digits(value).upper()
    if not code:
        return None
    if not _TAX_NO.fullmatch(code):
        raise ValidationFailed(
            "A tax registration number has 15 to 20 digits or capital letters.", field=field
        )
    return code


def _page(limit: int, offset: int) -> tuple[int, int]:
    return max(1, min(limit, MAX_PAGE)), max(0, min(offset, 10_000_000))


def _in_range(value: int | None) -> bool:
    return isinstance(value, int) and 1 <= value < 2**31


def add_working_days(start: datetime, days: int) -> datetime:
    """``start`` plus ``days`` working days (Monday–Friday) in the operator's time zone, at the
    same local time of day; returned in UTC. Public holidays are not known and count as
    working days."""
    zone = ZoneInfo(get_settings().timezone)
    moment = as_utc(start).astimezone(zone)
    added = 0
    while added < days:
        moment = moment + timedelta(days=1)  # wall-clock arithmetic in the local zone
        if moment.weekday() < 5:
            added += 1
    return moment.astimezone(UTC)


# --- channel and terminals ----------------------------------------------------------------


def _location_for(session: Session, kind: str, ref_id: int, name: str) -> Location:
    return terminals.location_for(session, kind, ref_id, name)


def _move(
    session: Session,
    actor: User,
    terminal: Terminal,
    target: TerminalState,
    location: Location,
    *,
    kind: str,
    document: str,
    note: str = "",
) -> None:
    terminals.move(
        session, actor, terminal, target, location, kind=kind, document=document, note=note
    )


# --- merchants ----------------------------------------------------------------------------


@dataclass(slots=True)
class NewDocument:
    """A file to attach while filing a case: type code, name, bytes."""

    doc_type: str
    filename: str
    data: bytes
    content_type: str | None = None


def merchant_kind_label(kind: str) -> str:
    return MERCHANT_KINDS.get(kind, kind)


def get_merchant(*, session: Session, merchant_id: int, actor: User | None = None) -> Merchant:
    merchant = session.get(Merchant, merchant_id) if _in_range(merchant_id) else None
    if merchant is None:
        raise NotFound("No merchant with number {id}.", id=merchant_id)
    if actor is not None:
        require(actor, MERCHANTS_VIEW)
        visible = visible_provider_ids(session, actor)
        if visible is not None and merchant.provider_id not in visible:
            raise NotFound("No merchant with number {id}.", id=merchant_id)
    return merchant


def find_merchant_by_mid(session: Session, mid: str) -> Merchant | None:
    return session.execute(select(Merchant).where(Merchant.mid == mid)).scalar_one_or_none()


def search_merchants(
    *,
    session: Session,
    actor: User,
    q: str | None = None,
    state: str | None = None,
    kind: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[Merchant]:
    """Merchants whose name, MID or licence number contains ``q``; newest first."""
    require(actor, MERCHANTS_VIEW)
    limit, offset = _page(limit, offset)
    stmt = select(Merchant).order_by(Merchant.id.desc())
    visible = visible_provider_ids(session, actor)
    if visible is not None:
        stmt = stmt.where(Merchant.provider_id.in_(visible))
    if state:
        stmt = stmt.where(Merchant.state == _one_line(state)[:16])
    if kind:
        stmt = stmt.where(Merchant.kind == _one_line(kind)[:12])
    text = _one_line(q)[:100]
    if text:
        stmt = stmt.where(
            or_(
                Merchant.name.icontains(text, autoescape=True),
                Merchant.mid.contains(text.upper(), autoescape=True),
                Merchant.business_licence_no.contains(text.upper(), autoescape=True),
            )
        )
    return list(session.execute(stmt.limit(limit).offset(offset)).scalars())


@dataclass(slots=True)
class _MerchantFields:
    kind: str
    name: str
    uscc: str
    legal_name: str
    legal_id: str
    legal_mobile: str | None
    organisation_code: str | None
    tax_no: str | None
    bank_name: str
    bank_account: str
    bank_account_name: str
    mcc: str
    province: str
    city: str
    address: str
    provider_id: int | None


def _check_merchant(
    session: Session,
    *,
    kind: str | None,
    name: str | None,
    business_licence_no: str | None,
    legal_person_name: str | None,
    legal_person_id_number: str | None,
    legal_person_mobile: str | None,
    organisation_code: str | None,
    tax_registration_no: str | None,
    bank_name: str | None,
    bank_account: str | None,
    bank_account_name: str | None,
    mcc: str | None,
    province: str | None,
    city: str | None,
    address: str | None,
    provider_id: int | None,
) -> _MerchantFields:
    errors = _Errors()
    clean_kind = (kind or "").strip()
    if clean_kind not in MERCHANT_KINDS:
        errors.add(ValidationFailed("Choose corporate or individual merchant.", field="kind"))
    clean_name = errors.check(_text, name, field="name", max_length=128, required=True)
    uscc = errors.check(
        parties.validate_uscc, business_licence_no or "", field="business_licence_no"
    )
    legal_name = errors.check(
        _text, legal_person_name, field="legal_person_name", max_length=128, required=True
    )
    legal_id = errors.check(
        parties.validate_resident_id, legal_person_id_number or "", field="legal_person_id_number"
    )
    legal_mobile = None
    if (legal_person_mobile or "").strip():
        legal_mobile = errors.check(
            parties.validate_mobile, legal_person_mobile, field="legal_person_mobile"
        )
    org_code = errors.check(_org_code, organisation_code)
    tax_no = errors.check(_tax_no, tax_registration_no)
    clean_bank = errors.check(_text, bank_name, field="bank_name", max_length=128, required=True)
    clean_account = errors.check(validate_bank_account, bank_account)
    clean_account_name = errors.check(
        _text, bank_account_name, field="bank_account_name", max_length=128, required=True
    )
    clean_mcc = errors.check(validate_mcc, mcc)
    clean_province = errors.check(_text, province, field="province", max_length=16)
    clean_city = errors.check(_text, city, field="city", max_length=32)
    clean_address = errors.check(_text, address, field="address", max_length=255)
    if provider_id is not None and (
        not _in_range(provider_id) or session.get(Provider, provider_id) is None
    ):
        errors.add(ValidationFailed("Choose the provider from the list.", field="provider_id"))
    errors.raise_if_any()
    return _MerchantFields(
        kind=clean_kind,
        name=clean_name,
        uscc=uscc,
        legal_name=legal_name,
        legal_id=legal_id,
        legal_mobile=legal_mobile,
        organisation_code=org_code,
        tax_no=tax_no,
        bank_name=clean_bank,
        bank_account=clean_account,
        bank_account_name=clean_account_name,
        mcc=clean_mcc,
        province=clean_province or "",
        city=clean_city or "",
        address=clean_address or "",
        provider_id=provider_id,
    )


def _person_for(
    session: Session,
    actor: User,
    *,
    name: str,
    id_number: str,
    mobile: str | None,
    field: str,
) -> Person:
    """The registered person with this resident ID (names must agree), or a new one."""
    person = parties.find_person_by_id_number(session, id_number)
    if person is None:
        return parties.create_person(
            session=session, actor=actor, name=name, id_number=id_number, mobile=mobile
        )
    if person.name != name:
        raise Conflict(
            "The resident ID {number} is registered to {name}; check the name or the ID number.",
            field=field,
            number=id_number,
            name=person.name,
        )
    return person


def _organisation_for(session: Session, actor: User, fields: _MerchantFields) -> int:
    org = parties.find_organisation_by_uscc(session, fields.uscc)
    if org is None:
        org = parties.create_organisation(
            session=session,
            actor=actor,
            name=fields.name,
            kind="merchant",
            uscc=fields.uscc,
            legal_person=fields.legal_name,
            contact_name=fields.legal_name,
            contact_mobile=fields.legal_mobile,
            address=fields.address or None,
        )
    return org.id


def _licence_taken(session: Session, uscc: str, exclude: int | None = None) -> None:
    stmt = select(Merchant).where(Merchant.business_licence_no == uscc)
    if exclude is not None:
        stmt = stmt.where(Merchant.id != exclude)
    other = session.execute(stmt.limit(1)).scalar_one_or_none()
    if other is not None and other.state != MerchantState.CLOSED.value:
        raise Conflict(
            "A merchant with this business licence is already registered: {name} (no. {id}).",
            field="business_licence_no",
            name=other.name,
            id=other.id,
        )


def _apply_fields(merchant: Merchant, fields: _MerchantFields) -> None:
    merchant.kind = fields.kind
    merchant.name = fields.name
    merchant.business_licence_no = fields.uscc
    merchant.organisation_code = fields.organisation_code
    merchant.tax_registration_no = fields.tax_no
    merchant.bank_name = fields.bank_name
    merchant.bank_account = fields.bank_account
    merchant.bank_account_name = fields.bank_account_name
    merchant.mcc = fields.mcc
    merchant.province = fields.province
    merchant.city = fields.city
    merchant.address = fields.address
    merchant.provider_id = fields.provider_id


def create_merchant(
    *,
    session: Session,
    actor: User,
    kind: str,
    name: str,
    business_licence_no: str,
    legal_person_name: str,
    legal_person_id_number: str,
    bank_name: str,
    bank_account: str,
    bank_account_name: str,
    mcc: str,
    legal_person_mobile: str | None = None,
    organisation_code: str | None = None,
    tax_registration_no: str | None = None,
    province: str | None = None,
    city: str | None = None,
    address: str | None = None,
    provider_id: int | None = None,
) -> Merchant:
    """Register a merchant as a draft; its legal person and organisation are linked (or
    registered) by resident ID and unified social credit code."""
    require(actor, MERCHANTS_EDIT)
    fields = _check_merchant(
        session,
        kind=kind,
        name=name,
        business_licence_no=business_licence_no,
        legal_person_name=legal_person_name,
        legal_person_id_number=legal_person_id_number,
        legal_person_mobile=legal_person_mobile,
        organisation_code=organisation_code,
        tax_registration_no=tax_registration_no,
        bank_name=bank_name,
        bank_account=bank_account,
        bank_account_name=bank_account_name,
        mcc=mcc,
        province=province,
        city=city,
        address=address,
        provider_id=provider_id,
    )
    visible = visible_provider_ids(session, actor)
    if visible is not None and fields.provider_id not in visible:
        raise PermissionDenied("You may register merchants only for your own provider.")
    _licence_taken(session, fields.uscc)
    person = _person_for(
        session,
        actor,
        name=fields.legal_name,
        id_number=fields.legal_id,
        mobile=fields.legal_mobile,
        field="legal_person_id_number",
    )
    merchant = Merchant(state=MerchantState.DRAFT.value, legal_person_id=person.id)
    _apply_fields(merchant, fields)
    merchant.organisation_id = _organisation_for(session, actor, fields)
    session.add(merchant)
    session.flush()
    record(session, actor, "merchant.created", merchant)
    return merchant


def update_merchant(
    *,
    session: Session,
    actor: User,
    merchant_id: int,
    kind: str,
    name: str,
    business_licence_no: str,
    legal_person_name: str,
    legal_person_id_number: str,
    bank_name: str,
    bank_account: str,
    bank_account_name: str,
    mcc: str,
    legal_person_mobile: str | None = None,
    organisation_code: str | None = None,
    tax_registration_no: str | None = None,
    province: str | None = None,
    city: str | None = None,
    address: str | None = None,
    provider_id: int | None = None,
) -> Merchant:
    """Correct a draft or rejected merchant (a rejected one goes back to draft)."""
    require(actor, MERCHANTS_EDIT)
    merchant = get_merchant(session=session, merchant_id=merchant_id, actor=actor)
    if merchant.state not in (MerchantState.DRAFT.value, MerchantState.REJECTED.value):
        raise Conflict(
            "Merchant {name} is {state}; only a draft or rejected merchant can be edited.",
            name=merchant.name,
            state=merchant.state,
        )
    fields = _check_merchant(
        session,
        kind=kind,
        name=name,
        business_licence_no=business_licence_no,
        legal_person_name=legal_person_name,
        legal_person_id_number=legal_person_id_number,
        legal_person_mobile=legal_person_mobile,
        organisation_code=organisation_code,
        tax_registration_no=tax_registration_no,
        bank_name=bank_name,
        bank_account=bank_account,
        bank_account_name=bank_account_name,
        mcc=mcc,
        province=province,
        city=city,
        address=address,
        provider_id=provider_id,
    )
    before = snapshot(merchant)
    _licence_taken(session, fields.uscc, exclude=merchant.id)
    person = _person_for(
        session,
        actor,
        name=fields.legal_name,
        id_number=fields.legal_id,
        mobile=fields.legal_mobile,
        field="legal_person_id_number",
    )
    _apply_fields(merchant, fields)
    merchant.legal_person_id = person.id
    merchant.organisation_id = _organisation_for(session, actor, fields)
    if merchant.state == MerchantState.REJECTED.value:
        merchant.transition(MerchantState.DRAFT)
    session.flush()
    record(session, actor, "merchant.updated", merchant, before=before)
    return merchant


def legal_person(session: Session, merchant: Merchant) -> Person | None:
    return session.get(Person, merchant.legal_person_id) if merchant.legal_person_id else None


def _doc_type_error(doc_type: str, allowed: Iterable[str], *, merchant: bool) -> ValidationFailed:
    if merchant:
        return ValidationFailed(
            "The document type “{doc_type}” is not accepted for merchants; choose one of: {allowed}.",
            field="doc_type",
            doc_type=doc_type,
            allowed=", ".join(allowed),
        )
    return ValidationFailed(
        "The document type “{doc_type}” is not accepted for activation cases; choose one of: {allowed}.",
        field="doc_type",
        doc_type=doc_type,
        allowed=", ".join(allowed),
    )


def upload_merchant_document(
    *,
    session: Session,
    actor: User,
    merchant_id: int,
    doc_type: str,
    filename: str,
    data: bytes,
    content_type: str | None = None,
    note: str | None = None,
) -> Document:
    """Attach a KYC document to a merchant; only the merchant document types are accepted."""
    require(actor, MERCHANTS_EDIT)
    merchant = get_merchant(session=session, merchant_id=merchant_id, actor=actor)
    if doc_type not in MERCHANT_DOC_TYPES:
        raise _doc_type_error(doc_type[:40], MERCHANT_DOC_TYPES, merchant=True)
    if merchant.state == MerchantState.CLOSED.value:
        raise Conflict("Merchant {name} is closed.", name=merchant.name)
    return parties.upload_document(
        session=session,
        actor=actor,
        owner_type="merchant",
        owner_id=merchant.id,
        doc_type=doc_type,
        filename=filename,
        data=data,
        content_type=content_type,
        note=note,
    )


def _present_types(session: Session, owner_type: str, owner_id: int) -> set[str]:
    return set(
        session.execute(
            select(Document.doc_type).where(
                Document.owner_type == owner_type, Document.owner_id == owner_id
            )
        ).scalars()
    )


def _missing(present: set[str], required: Iterable[tuple[str, ...]]) -> Choices:
    """The requirements not met, as labels that translate where they are shown (a group of
    alternatives is met by any one of them)."""
    return Choices(
        [DOC_TYPES.get(code, code) for code in options]
        for options in required
        if not present.intersection(options)
    )


def missing_documents(session: Session, merchant: Merchant) -> Choices:
    """The required documents a merchant does not have yet: ``.groups`` holds the English
    labels (alternatives in one group), ``render()`` the user's language."""
    present = _present_types(session, "merchant", merchant.id)
    return _missing(present, REQUIRED_DOCS.get(merchant.kind, ()))


def submit_for_kyc(*, session: Session, actor: User, merchant_id: int) -> Merchant:
    """Send a draft (or rejected) merchant to KYC review; refused while documents are missing."""
    require(actor, MERCHANTS_EDIT)
    merchant = get_merchant(session=session, merchant_id=merchant_id, actor=actor)
    missing = missing_documents(session, merchant)
    if missing:
        raise ValidationFailed(
            "Upload the missing documents first: {missing}.",
            field="documents",
            missing=missing,
        )
    before = snapshot(merchant)
    merchant.transition(MerchantState.KYC_REVIEW)
    session.flush()
    record(session, actor, "merchant.kyc_submitted", merchant, before=before)
    return merchant


def _area_code(merchant: Merchant) -> str:
    uscc = merchant.business_licence_no or ""
    area = uscc[2:6]
    return area if re.fullmatch(r"[0-9]{4}", area) else "0000"


def next_mid(session: Session, merchant: Merchant) -> str:
    """``898`` + area code (4) + MCC (4) + sequence (4): the next free MID for this merchant."""
    prefix = f"898{_area_code(merchant)}{merchant.mcc}"
    last = session.execute(
        select(func.max(Merchant.mid)).where(Merchant.mid.like(f"{prefix}%"))
    ).scalar_one_or_none()
    sequence = int(last[-4:]) + 1 if last else 1
    if sequence > 9999:
        raise Conflict(
            "No merchant ID is left for area {area} and MCC {mcc}.",
            area=_area_code(merchant),
            mcc=merchant.mcc,
        )
    return f"{prefix}{sequence:04d}"


def approve_kyc(*, session: Session, actor: User, merchant_id: int, note: str = "") -> Merchant:
    """Approve a merchant's KYC and assign its merchant ID (MID)."""
    require(actor, MERCHANTS_KYC)
    merchant = get_merchant(session=session, merchant_id=merchant_id, actor=actor)
    clean_note = _text(note, field="note", max_length=500)
    before = snapshot(merchant)
    merchant.transition(MerchantState.APPROVED)
    if not merchant.mid:
        merchant.mid = next_mid(session, merchant)
    if clean_note:
        merchant.kyc_notes = clean_note
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:  # a concurrent approval took the same number
        raise Conflict("The merchant ID was taken at the same moment; try again.") from exc
    record(session, actor, "merchant.kyc_approved", merchant, before=before)
    return merchant


def reject_kyc(*, session: Session, actor: User, merchant_id: int, reason: str) -> Merchant:
    """Reject a merchant's KYC with a reason; it can be corrected and submitted again."""
    require(actor, MERCHANTS_KYC)
    merchant = get_merchant(session=session, merchant_id=merchant_id, actor=actor)
    clean = _text(reason, field="reason", max_length=500, required=True)
    before = snapshot(merchant)
    merchant.transition(MerchantState.REJECTED)
    merchant.kyc_notes = clean
    session.flush()
    record(session, actor, "merchant.kyc_rejected", merchant, before=before, reason=clean)
    return merchant


# --- suspension and closing -----------------------------------------------------------------

# what each status action does: the state it moves to and its audit/history name
STATUS_ACTIONS: dict[str, tuple[MerchantState, str]] = {
    "suspend": (MerchantState.SUSPENDED, "merchant.suspended"),
    "reinstate": (MerchantState.APPROVED, "merchant.reinstated"),
    "close": (MerchantState.CLOSED, "merchant.closed"),
}


def set_merchant_status(
    session: Session, actor: User, merchant: Merchant, action: str, reason: str
) -> Merchant:
    """Suspend (暂停: the gateway declines its terminals), reinstate or close ``merchant``,
    with the reason in its history. The caller has checked the actor's permission (the merchant
    desk's *merchants.status*, or risk's own when an alert suspends a merchant). Closing needs
    every terminal of the merchant cancelled first. Suspending a suspended merchant changes
    nothing (returns it as it is)."""
    target, event = STATUS_ACTIONS[action]
    clean = _text(reason, field="reason", max_length=500, required=True)
    if merchant.state == target.value and target == MerchantState.SUSPENDED:
        return merchant
    if target == MerchantState.CLOSED:
        live = session.scalar(
            select(func.count(Terminal.id)).where(
                Terminal.merchant_id == merchant.id,
                Terminal.state.in_([TerminalState.INSTALLED.value, TerminalState.ACTIVATED.value]),
            )
        )
        if live:
            raise Conflict(
                "Merchant {name} still has {count} terminals installed; cancel them first.",
                field="reason",
                name=merchant.name,
                count=live,
            )
    before = snapshot(merchant)
    merchant.transition(target)
    session.flush()
    record(session, actor, event, merchant, before=before, reason=clean)
    return merchant


def change_merchant_status(
    *, session: Session, actor: User, merchant_id: int, action: str, reason: str
) -> Merchant:
    """The merchant desk's suspend / reinstate / close (see :func:`set_merchant_status`)."""
    require(actor, MERCHANTS_STATUS)
    if action not in STATUS_ACTIONS:
        raise ValidationFailed("Choose a value from the list.", field="action")
    merchant = get_merchant(session=session, merchant_id=merchant_id, actor=actor)
    return set_merchant_status(session, actor, merchant, action, reason)


# --- activation cases ---------------------------------------------------------------------


def get_case(*, session: Session, case_id: int, actor: User | None = None) -> ActivationCase:
    case = session.get(ActivationCase, case_id) if _in_range(case_id) else None
    if case is None:
        raise NotFound("No activation case with number {id}.", id=case_id)
    if actor is not None:
        require(actor, MERCHANTS_VIEW)
        visible = visible_provider_ids(session, actor)
        if visible is not None and case.provider_id not in visible:
            raise NotFound("No activation case with number {id}.", id=case_id)
    return case


def find_case(session: Session, number: str) -> ActivationCase | None:
    return session.execute(
        select(ActivationCase).where(ActivationCase.number == _one_line(number)[:32])
    ).scalar_one_or_none()


def case_events(session: Session, case: ActivationCase) -> list[CaseEvent]:
    return list(
        session.execute(
            select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id)
        ).scalars()
    )


def _event(
    session: Session,
    case: ActivationCase,
    actor: User,
    kind: str,
    comment: str = "",
    **data: Any,
) -> CaseEvent:
    event = CaseEvent(
        case_id=case.id,
        at=utcnow(),
        kind=kind,
        actor_id=actor.id,
        comment=comment[:1000],
        data=data,
    )
    session.add(event)
    session.flush()
    return event


def _case_number(session: Session, kind: CaseKind) -> str:
    prefix = f"{CASE_PREFIX[kind]}-{local(utcnow()):%Y%m%d}-"
    last = session.execute(
        select(func.max(ActivationCase.number)).where(ActivationCase.number.like(f"{prefix}%"))
    ).scalar_one_or_none()
    sequence = int(last.rsplit("-", 1)[1]) + 1 if last else 1
    return f"{prefix}{sequence:04d}"


def _terminal_by_serial(session: Session, serial: str) -> Terminal:
    text = _one_line(serial)[:40]
    if not text:
        raise ValidationFailed("Enter the terminal's serial number.", field="serial")
    terminal = session.execute(select(Terminal).where(Terminal.serial == text)).scalar_one_or_none()
    if terminal is None:
        raise NotFound("No terminal with serial {serial}.", field="serial", serial=text)
    return terminal


def _case_in_flight_for_terminal(session: Session, terminal: Terminal) -> ActivationCase | None:
    return session.execute(
        select(ActivationCase)
        .where(
            ActivationCase.terminal_id == terminal.id,
            ActivationCase.state.in_(IN_FLIGHT_STATES),
        )
        .limit(1)
    ).scalar_one_or_none()


def terminals_of_person(session: Session, person_id: int) -> list[Terminal]:
    """Terminals activated for this person (through an approved activation case and still
    bound to the TID it gave)."""
    stmt = (
        select(Terminal)
        .join(ActivationCase, ActivationCase.terminal_id == Terminal.id)
        .where(
            ActivationCase.applicant_person_id == person_id,
            ActivationCase.kind == CaseKind.ACTIVATION.value,
            ActivationCase.tid.is_not(None),
            Terminal.tid == ActivationCase.tid,
            Terminal.state == TerminalState.ACTIVATED.value,
        )
    )
    return list(session.execute(stmt).scalars().unique())


def _one_terminal_per_person(session: Session, person: Person, exclude_case: int | None) -> None:
    for terminal in terminals_of_person(session, person.id):
        raise Conflict(
            "{name} already has terminal {serial} activated; each person may activate only one terminal.",
            field="applicant_id_number",
            name=person.name,
            serial=terminal.serial,
        )
    stmt = select(ActivationCase).where(
        ActivationCase.applicant_person_id == person.id,
        ActivationCase.kind == CaseKind.ACTIVATION.value,
        ActivationCase.state.in_(IN_FLIGHT_STATES),
    )
    if exclude_case is not None:
        stmt = stmt.where(ActivationCase.id != exclude_case)
    other = session.execute(stmt.limit(1)).scalar_one_or_none()
    if other is not None:
        raise Conflict(
            "{name} already has activation case {number} in progress; each person may activate only one terminal.",
            field="applicant_id_number",
            name=person.name,
            number=other.number,
        )


def _route(session: Session, province: str) -> Region:
    region = region_for_province(session, province)
    if region is None:
        raise ValidationFailed(
            "No region covers province {province}; map it under Channel → Regions.",
            field="install_province",
            province=province,
        )
    return region


def _check_case_documents(session: Session, case: ActivationCase) -> None:
    present = _present_types(session, "activation_case", case.id)
    missing = _missing(present, CASE_REQUIRED_DOCS)
    if missing:
        raise ValidationFailed(
            "Upload the missing documents first: {missing}.",
            field="documents",
            missing=missing,
        )


def _attach(
    session: Session, actor: User, case: ActivationCase, documents: Iterable[NewDocument]
) -> None:
    for doc in documents:
        if doc.doc_type not in CASE_DOC_TYPES:
            raise _doc_type_error(doc.doc_type[:40], CASE_DOC_TYPES, merchant=False)
        parties.upload_document(
            session=session,
            actor=actor,
            owner_type="activation_case",
            owner_id=case.id,
            doc_type=doc.doc_type,
            filename=doc.filename,
            data=doc.data,
            content_type=doc.content_type,
        )


def _check_terminal_for(
    session: Session, kind: CaseKind, terminal: Terminal, merchant: Merchant | None
) -> None:
    if kind == CaseKind.ACTIVATION:
        if terminal.state not in (TerminalState.AT_PROVIDER.value, TerminalState.INSTALLED.value):
            raise Conflict(
                "Terminal {serial} is {state}; only a unit at a provider or installed can be activated.",
                field="serial",
                serial=terminal.serial,
                state=terminal.state,
            )
        if terminal.provider_id is None:
            raise Conflict(
                "Terminal {serial} has not been delivered to a provider.",
                field="serial",
                serial=terminal.serial,
            )
    else:
        if terminal.state != TerminalState.ACTIVATED.value or not terminal.tid:
            raise Conflict(
                "Terminal {serial} is not activated; only an activated unit can be changed or cancelled.",
                field="serial",
                serial=terminal.serial,
            )
        if merchant is not None and terminal.merchant_id != merchant.id:
            raise Conflict(
                "Terminal {serial} is not activated for merchant {name}.",
                field="serial",
                serial=terminal.serial,
                name=merchant.name,
            )
    other = _case_in_flight_for_terminal(session, terminal)
    if other is not None:
        raise Conflict(
            "Terminal {serial} already has case {number} in progress.",
            field="serial",
            serial=terminal.serial,
            number=other.number,
        )


def _case_kind(value: str) -> CaseKind:
    try:
        return CaseKind(value)
    except ValueError as exc:
        raise ValidationFailed("Choose activation, change or cancellation.", field="kind") from exc


def _change_data(
    *,
    bank_name: str | None,
    bank_account: str | None,
    bank_account_name: str | None,
) -> dict[str, str]:
    data: dict[str, str] = {}
    errors = _Errors()
    if (bank_account or "").strip():
        data["bank_account"] = errors.check(validate_bank_account, bank_account) or ""
        data["bank_name"] = (
            errors.check(_text, bank_name, field="bank_name", max_length=128, required=True) or ""
        )
        data["bank_account_name"] = (
            errors.check(
                _text, bank_account_name, field="bank_account_name", max_length=128, required=True
            )
            or ""
        )
    errors.raise_if_any()
    return data


def apply(
    *,
    session: Session,
    actor: User,
    kind: str = CaseKind.ACTIVATION.value,
    serial: str,
    applicant_name: str,
    applicant_id_number: str,
    merchant_id: int | None = None,
    applicant_mobile: str | None = None,
    install_province: str | None = None,
    install_city: str | None = None,
    install_address: str | None = None,
    bank_name: str | None = None,
    bank_account: str | None = None,
    bank_account_name: str | None = None,
    note: str | None = None,
    documents: Iterable[NewDocument] = (),
) -> ActivationCase:
    """File an activation (开通), change (变更) or cancellation (撤机) case.

    Activation: the merchant must be approved (has a MID), the terminal at a provider or
    installed; the applicant may hold no other activated terminal or open activation case.
    Change: the terminal is activated for the merchant; the case carries a new install
    address and/or a new settlement account. Cancellation: the terminal is activated.
    The application form and the ID copy (front and back) must be among ``documents``.
    The case goes to the reviewer of the install province's region, due in 2 working days.
    """
    require(actor, ACTIVATIONS_APPLY)
    case_kind = _case_kind(kind)
    errors = _Errors()
    name = errors.check(
        _text, applicant_name, field="applicant_name", max_length=128, required=True
    )
    id_number = errors.check(
        parties.validate_resident_id, applicant_id_number or "", field="applicant_id_number"
    )
    mobile = None
    if (applicant_mobile or "").strip():
        mobile = errors.check(parties.validate_mobile, applicant_mobile, field="applicant_mobile")
    province = errors.check(_text, install_province, field="install_province", max_length=16)
    city = errors.check(_text, install_city, field="install_city", max_length=32)
    address = errors.check(_text, install_address, field="install_address", max_length=255)
    clean_note = errors.check(_text, note, field="note", max_length=500) or ""
    terminal = errors.check(_terminal_by_serial, session, serial)
    changes = errors.check(
        _change_data,
        bank_name=bank_name,
        bank_account=bank_account,
        bank_account_name=bank_account_name,
    )
    merchant: Merchant | None = None
    if merchant_id is not None:
        try:
            merchant = get_merchant(session=session, merchant_id=merchant_id, actor=actor)
        except NotFound as exc:
            errors.add(ValidationFailed(exc.message, field="merchant_id", **exc.params))
    elif case_kind == CaseKind.ACTIVATION:
        errors.add(ValidationFailed("Choose the merchant.", field="merchant_id"))
    if case_kind == CaseKind.ACTIVATION and not province:
        errors.add(ValidationFailed("Enter the install province.", field="install_province"))
    errors.raise_if_any()
    assert terminal is not None
    if case_kind != CaseKind.ACTIVATION and merchant is None and terminal.merchant_id:
        merchant = session.get(Merchant, terminal.merchant_id)
    if merchant is None:
        raise ValidationFailed("Choose the merchant.", field="merchant_id")
    if case_kind == CaseKind.ACTIVATION and (
        merchant.state != MerchantState.APPROVED.value or not merchant.mid
    ):
        raise Conflict(
            "Merchant {name} has not passed KYC review; it has no merchant ID yet.",
            field="merchant_id",
            name=merchant.name,
        )
    _check_terminal_for(session, case_kind, terminal, merchant)
    visible = visible_provider_ids(session, actor)
    if visible is not None and terminal.provider_id not in visible:
        raise NotFound("No terminal with serial {serial}.", field="serial", serial=terminal.serial)

    data: dict[str, Any] = {}
    if case_kind == CaseKind.CANCELLATION:
        province = terminal.install_province or province or ""
        city = terminal.install_city or city or ""
        address = terminal.install_address or address or ""
    elif case_kind == CaseKind.CHANGE:
        moved = bool(province) and (
            province != terminal.install_province
            or (city or "") != (terminal.install_city or "")
            or (address or "") != (terminal.install_address or "")
        )
        if moved:
            data["install"] = {"province": province, "city": city, "address": address}
        if changes:
            data["bank"] = changes
        if not data:
            raise ValidationFailed(
                "A change needs a new install address or a new settlement account.",
                field="install_address",
            )
        if not moved:
            province = terminal.install_province or ""
            city = terminal.install_city or ""
            address = terminal.install_address or ""
    region = _route(session, province or "")
    person = _person_for(
        session,
        actor,
        name=name,
        id_number=id_number,
        mobile=mobile,
        field="applicant_id_number",
    )
    if case_kind == CaseKind.ACTIVATION:
        _one_terminal_per_person(session, person, None)
    now = utcnow()
    case = ActivationCase(
        number=_case_number(session, case_kind),
        kind=case_kind.value,
        state=CaseState.SUBMITTED.value,
        merchant_id=merchant.id,
        applicant_person_id=person.id,
        terminal_id=terminal.id,
        provider_id=terminal.provider_id,
        install_province=province or "",
        install_city=city or "",
        install_address=address or "",
        region_code=region.code,
        reviewer_id=region.reviewer_id,
        mid=merchant.mid,
        tid=terminal.tid if case_kind != CaseKind.ACTIVATION else None,
        submitted_at=now,
        due_at=add_working_days(now, WORKING_DAYS_TARGET),
        round=1,
        data=data,
    )
    session.add(case)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise Conflict("Another case took the same number at the same moment; try again.") from exc
    _attach(session, actor, case, documents)
    _check_case_documents(session, case)
    _event(session, case, actor, "submitted", clean_note, round=1, region=region.code)
    record(session, actor, f"activation_case.{case_kind.value}_submitted", case)
    return case


def upload_case_document(
    *,
    session: Session,
    actor: User,
    case_id: int,
    doc_type: str,
    filename: str,
    data: bytes,
    content_type: str | None = None,
    note: str | None = None,
) -> Document:
    """Add a document to a case (e.g. a corrected form before resubmitting)."""
    require(actor, ACTIVATIONS_APPLY)
    case = get_case(session=session, case_id=case_id, actor=actor)
    if doc_type not in CASE_DOC_TYPES:
        raise _doc_type_error(doc_type[:40], CASE_DOC_TYPES, merchant=False)
    if case.state in (CaseState.ARCHIVED.value, CaseState.WITHDRAWN.value):
        raise Conflict("Case {number} is closed.", number=case.number)
    document = parties.upload_document(
        session=session,
        actor=actor,
        owner_type="activation_case",
        owner_id=case.id,
        doc_type=doc_type,
        filename=filename,
        data=data,
        content_type=content_type,
        note=note,
    )
    _event(session, case, actor, "document_added", "", document_id=document.id, doc_type=doc_type)
    return document


def may_review(session: Session, user: User | None, case: ActivationCase) -> bool:
    """Holders of ``merchants.review_all`` review every case; other reviewers only the cases
    of their region (and cases of a region without a reviewer)."""
    if user is None:
        return False
    if has_permission(user, ACTIVATIONS_REVIEW_ALL):
        return True
    if not has_permission(user, ACTIVATIONS_REVIEW):
        return False
    region = session.get(Region, case.region_code) if case.region_code else None
    current = region.reviewer_id if region is not None else None
    if user.id in (case.reviewer_id, current):
        return True
    return case.reviewer_id is None and current is None


def _require_reviewer(session: Session, actor: User, case: ActivationCase) -> None:
    if not (
        has_permission(actor, ACTIVATIONS_REVIEW) or has_permission(actor, ACTIVATIONS_REVIEW_ALL)
    ):
        require(actor, ACTIVATIONS_REVIEW)
    if not may_review(session, actor, case):
        raise PermissionDenied(
            "Case {number} belongs to region {region}; only its reviewer may handle it.",
            number=case.number,
            region=case.region_code or "",
        )


def _change_state(
    session: Session,
    actor: User,
    case: ActivationCase,
    target: CaseState,
    event: str,
    comment: str = "",
    **data: Any,
) -> None:
    before = snapshot(case)
    case.transition(target)
    session.flush()
    _event(session, case, actor, event, comment, **data)
    record(session, actor, f"activation_case.{event}", case, before=before)


def start_review(*, session: Session, actor: User, case_id: int) -> ActivationCase:
    """The region's reviewer takes a submitted case into initial review."""
    case = get_case(session=session, case_id=case_id, actor=actor)
    _require_reviewer(session, actor, case)
    _change_state(session, actor, case, CaseState.IN_REVIEW, "review_started")
    return case


def _ensure_in_review(session: Session, actor: User, case: ActivationCase) -> None:
    if case.state == CaseState.SUBMITTED.value:
        _change_state(session, actor, case, CaseState.IN_REVIEW, "review_started")


def pass_review(
    *,
    session: Session,
    actor: User,
    case_id: int,
    platform: str,
    platform_reference: str = "",
    note: str = "",
) -> ActivationCase:
    """The documents are in order: the case is sent to the acquiring platform."""
    case = get_case(session=session, case_id=case_id, actor=actor)
    _require_reviewer(session, actor, case)
    errors = _Errors()
    clean_platform = errors.check(_text, platform, field="platform", max_length=64, required=True)
    reference = errors.check(_text, platform_reference, field="platform_reference", max_length=64)
    clean_note = errors.check(_text, note, field="note", max_length=500) or ""
    errors.raise_if_any()
    _check_case_documents(session, case)
    _ensure_in_review(session, actor, case)
    case.platform = clean_platform
    case.platform_reference = reference or ""
    _change_state(
        session,
        actor,
        case,
        CaseState.WITH_PLATFORM,
        "sent_to_platform",
        clean_note,
        platform=clean_platform,
        reference=reference or "",
    )
    return case


def return_case(*, session: Session, actor: User, case_id: int, reason: str) -> ActivationCase:
    """Initial review found a problem: back to the applicant for correction."""
    case = get_case(session=session, case_id=case_id, actor=actor)
    _require_reviewer(session, actor, case)
    clean = _text(reason, field="reason", max_length=500, required=True)
    _ensure_in_review(session, actor, case)
    _change_state(session, actor, case, CaseState.RETURNED, "returned", clean)
    return case


def resubmit(
    *,
    session: Session,
    actor: User,
    case_id: int,
    note: str = "",
    documents: Iterable[NewDocument] = (),
) -> ActivationCase:
    """A returned case, corrected, goes back to review (next round, new due date)."""
    require(actor, ACTIVATIONS_APPLY)
    case = get_case(session=session, case_id=case_id, actor=actor)
    clean = _text(note, field="note", max_length=500)
    if case.state != CaseState.RETURNED.value:
        case.transition(CaseState.SUBMITTED)  # raises: only returned cases are resubmitted
    _attach(session, actor, case, documents)
    _check_case_documents(session, case)
    terminal = session.get(Terminal, case.terminal_id)
    assert terminal is not None
    if case.kind == CaseKind.ACTIVATION.value:
        person = session.get(Person, case.applicant_person_id)
        assert person is not None
        _one_terminal_per_person(session, person, case.id)
    now = utcnow()
    case.round += 1
    case.submitted_at = now
    case.due_at = add_working_days(now, WORKING_DAYS_TARGET)
    _change_state(session, actor, case, CaseState.SUBMITTED, "resubmitted", clean, round=case.round)
    return case


def withdraw(*, session: Session, actor: User, case_id: int, reason: str = "") -> ActivationCase:
    require(actor, ACTIVATIONS_APPLY)
    case = get_case(session=session, case_id=case_id, actor=actor)
    clean = _text(reason, field="reason", max_length=500)
    _change_state(session, actor, case, CaseState.WITHDRAWN, "withdrawn", clean)
    return case


def next_tid(session: Session) -> str:
    """The next free terminal ID: 8 digits, counting up from 10000001."""
    last = session.execute(
        select(func.max(Terminal.tid)).where(Terminal.tid.like("________"))
    ).scalar_one_or_none()
    number = int(last) + 1 if last and last.isdigit() else 10_000_001
    return f"{number:08d}"


def _merchant_location(session: Session, merchant: Merchant) -> Location:
    return _location_for(session, "merchant", merchant.id, merchant.name)


def _provider_location(session: Session, provider_id: int) -> Location:
    provider = session.get(Provider, provider_id)
    name = provider.name if provider is not None else str(provider_id)
    return _location_for(session, "provider", provider_id, name)


def _cross_region(session: Session, case: ActivationCase, terminal: Terminal) -> bool:
    provider = session.get(Provider, terminal.provider_id) if terminal.provider_id else None
    if provider is None:
        return False
    return is_outside_region(provider, case.install_province, case.install_city)


def _bind_activation(
    session: Session, actor: User, case: ActivationCase, terminal: Terminal
) -> None:
    merchant = session.get(Merchant, case.merchant_id)
    assert merchant is not None
    location = _merchant_location(session, merchant)
    if terminal.state == TerminalState.AT_PROVIDER.value:
        _move(
            session,
            actor,
            terminal,
            TerminalState.INSTALLED,
            location,
            kind="install",
            document=case.number,
        )
    before = snapshot(terminal)
    tid = next_tid(session)
    terminal.tid = tid
    terminal.mid = merchant.mid
    terminal.merchant_id = merchant.id
    terminal.activated_at = utcnow()
    terminal.install_province = case.install_province
    terminal.install_city = case.install_city
    terminal.install_address = case.install_address
    cross = _cross_region(session, case, terminal)
    terminal.cross_region = cross
    case.tid = tid
    case.mid = merchant.mid
    case.data = {**(case.data or {}), "cross_region": cross}
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise Conflict("The terminal ID was taken at the same moment; try again.") from exc
    _move(
        session,
        actor,
        terminal,
        TerminalState.ACTIVATED,
        location,
        kind="activate",
        document=case.number,
        note=f"TID {tid} MID {merchant.mid}",
    )
    record(session, actor, "terminal.bound", terminal, before=before, case=case.number)
    if cross:
        _event(
            session,
            case,
            actor,
            "cross_region",
            "",
            province=case.install_province,
            city=case.install_city,
        )


def _apply_change(session: Session, actor: User, case: ActivationCase, terminal: Terminal) -> None:
    data = case.data or {}
    install = data.get("install")
    if install:
        before = snapshot(terminal)
        terminal.install_province = install.get("province") or ""
        terminal.install_city = install.get("city") or ""
        terminal.install_address = install.get("address") or ""
        cross = _cross_region(session, case, terminal)
        terminal.cross_region = cross
        case.data = {**data, "cross_region": cross}
        session.flush()
        record(
            session, actor, "terminal.install_changed", terminal, before=before, case=case.number
        )
        if cross:
            _event(
                session,
                case,
                actor,
                "cross_region",
                "",
                province=case.install_province,
                city=case.install_city,
            )
    bank = data.get("bank")
    if bank:
        merchant = session.get(Merchant, case.merchant_id)
        assert merchant is not None
        before = snapshot(merchant)
        merchant.bank_name = bank.get("bank_name", merchant.bank_name)
        merchant.bank_account = bank.get("bank_account", merchant.bank_account)
        merchant.bank_account_name = bank.get("bank_account_name", merchant.bank_account_name)
        session.flush()
        record(
            session, actor, "merchant.account_changed", merchant, before=before, case=case.number
        )


def _apply_cancellation(
    session: Session, actor: User, case: ActivationCase, terminal: Terminal
) -> None:
    if terminal.provider_id is None:
        raise Conflict("Terminal {serial} has no provider to return to.", serial=terminal.serial)
    before = snapshot(terminal)
    location = _provider_location(session, terminal.provider_id)
    case.tid = terminal.tid
    terminal.tid = None
    terminal.mid = None
    terminal.merchant_id = None
    terminal.cross_region = False
    session.flush()
    record(session, actor, "terminal.unbound", terminal, before=before, case=case.number)
    _move(
        session,
        actor,
        terminal,
        TerminalState.AT_PROVIDER,
        location,
        kind="cancel",
        document=case.number,
        note=f"TID {case.tid} unbound",
    )


def record_verdict(
    *,
    session: Session,
    actor: User,
    case_id: int,
    approved: bool,
    note: str = "",
    platform_reference: str | None = None,
) -> ActivationCase:
    """The acquiring platform's verdict. Approval binds TID + MID and activates the unit at the
    merchant (activation), applies the change (change) or unbinds and returns the unit to its
    provider (cancellation); a unit activated outside its provider's region is flagged."""
    case = get_case(session=session, case_id=case_id, actor=actor)
    _require_reviewer(session, actor, case)
    errors = _Errors()
    clean_note = errors.check(_text, note, field="note", max_length=500) or ""
    reference = errors.check(_text, platform_reference, field="platform_reference", max_length=64)
    if not approved and not clean_note:
        errors.add(ValidationFailed("Enter the reason the platform gave.", field="note"))
    errors.raise_if_any()
    if case.state != CaseState.WITH_PLATFORM.value:
        case.transition(CaseState.APPROVED)  # raises with the case's current state
    if reference:
        case.platform_reference = reference
    case.verdict_note = clean_note
    case.decided_at = utcnow()
    if approved:
        terminal = session.get(Terminal, case.terminal_id)
        assert terminal is not None
        if case.kind == CaseKind.ACTIVATION.value:
            _bind_activation(session, actor, case, terminal)
        elif case.kind == CaseKind.CHANGE.value:
            _apply_change(session, actor, case, terminal)
        else:
            _apply_cancellation(session, actor, case, terminal)
        _change_state(
            session,
            actor,
            case,
            CaseState.APPROVED,
            "approved",
            clean_note,
            tid=case.tid,
            mid=case.mid,
        )
    else:
        _change_state(session, actor, case, CaseState.DECLINED, "declined", clean_note)
    return case


def record_callback(
    *,
    session: Session,
    actor: User,
    case_id: int,
    note: str,
    reached: bool = True,
    called_at: datetime | None = None,
) -> ActivationCase:
    """The user was called back with the verdict (who called is the actor)."""
    require(actor, ACTIVATIONS_CALLBACK)
    case = get_case(session=session, case_id=case_id, actor=actor)
    clean = _text(note, field="note", max_length=500, required=True)
    at = as_utc(called_at) if called_at is not None else utcnow()
    if at > utcnow() + timedelta(minutes=5):
        raise ValidationFailed("The call cannot be in the future.", field="called_at")
    case.called_back_at = at
    _change_state(
        session,
        actor,
        case,
        CaseState.CALLED_BACK,
        "called_back",
        clean,
        reached=reached,
        called_at=at.isoformat(),
        called_by=actor.username,
    )
    return case


def archive(*, session: Session, actor: User, case_id: int, note: str = "") -> ActivationCase:
    """File the case's papers (用户管理部存档)."""
    case = get_case(session=session, case_id=case_id, actor=actor)
    _require_reviewer(session, actor, case)
    clean = _text(note, field="note", max_length=500)
    case.archived_at = utcnow()
    _change_state(session, actor, case, CaseState.ARCHIVED, "archived", clean)
    return case


# --- queues and lists ---------------------------------------------------------------------


def is_overdue(case: ActivationCase, now: datetime | None = None) -> bool:
    return (
        case.state in OPEN_STATES
        and case.due_at is not None
        and as_utc(case.due_at) < (now or utcnow())
    )


def reviewer_regions(session: Session, user: User) -> list[str]:
    return list(session.execute(select(Region.code).where(Region.reviewer_id == user.id)).scalars())


def list_cases(
    *,
    session: Session,
    actor: User,
    state: str | None = None,
    kind: str | None = None,
    region: str | None = None,
    overdue: bool = False,
    mine: bool = False,
    q: str | None = None,
    merchant_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
    now: datetime | None = None,
) -> list[ActivationCase]:
    """Cases, newest first. ``mine``: the actor's review queue (their region's cases and
    unassigned ones). ``overdue``: open cases past their due time, oldest due first."""
    require(actor, MERCHANTS_VIEW)
    limit, offset = _page(limit, offset)
    stmt = select(ActivationCase)
    visible = visible_provider_ids(session, actor)
    if visible is not None:
        stmt = stmt.where(ActivationCase.provider_id.in_(visible))
    if state:
        stmt = stmt.where(ActivationCase.state == _one_line(state)[:16])
    if kind:
        stmt = stmt.where(ActivationCase.kind == _one_line(kind)[:16])
    if region:
        stmt = stmt.where(ActivationCase.region_code == _one_line(region)[:16])
    if merchant_id is not None:
        stmt = stmt.where(ActivationCase.merchant_id == merchant_id)
    if mine:
        regions = reviewer_regions(session, actor)
        stmt = stmt.where(
            or_(
                ActivationCase.reviewer_id == actor.id,
                ActivationCase.region_code.in_(regions),
                ActivationCase.reviewer_id.is_(None),
            )
        )
    text = _one_line(q)[:64]
    if text:
        serials = select(Terminal.id).where(Terminal.serial.contains(text, autoescape=True))
        stmt = stmt.where(
            or_(
                ActivationCase.number.contains(text.upper(), autoescape=True),
                ActivationCase.terminal_id.in_(serials),
                ActivationCase.tid == text,
            )
        )
    if overdue:
        stmt = stmt.where(
            ActivationCase.state.in_(OPEN_STATES),
            ActivationCase.due_at.is_not(None),
            ActivationCase.due_at < (now or utcnow()),
        ).order_by(ActivationCase.due_at, ActivationCase.id)
    else:
        stmt = stmt.order_by(ActivationCase.id.desc())
    return list(session.execute(stmt.limit(limit).offset(offset)).scalars())


def overdue_cases(
    *, session: Session, actor: User, now: datetime | None = None, limit: int = MAX_PAGE
) -> list[ActivationCase]:
    """Open cases (submitted, in review, with the platform) past their due time."""
    return list_cases(session=session, actor=actor, overdue=True, now=now, limit=limit)


def case_terminal(session: Session, case: ActivationCase) -> Terminal | None:
    return session.get(Terminal, case.terminal_id)


def case_person(session: Session, case: ActivationCase) -> Person | None:
    return session.get(Person, case.applicant_person_id)


def regions(session: Session) -> list[Region]:
    return list(session.execute(select(Region).order_by(Region.code)).scalars())


def providers(session: Session, actor: User) -> list[Provider]:
    stmt = select(Provider).order_by(Provider.code)
    visible = visible_provider_ids(session, actor)
    if visible is not None:
        stmt = stmt.where(Provider.id.in_(visible))
    return list(session.execute(stmt).scalars())


# --- reports ------------------------------------------------------------------------------


@dataclass(slots=True)
class ActivationReport:
    months: list[str]  # "YYYY-MM", oldest first
    by_provider: list[tuple[str, list[int], int]]  # (label, count per month, total)
    by_region: list[tuple[str, list[int], int]]
    totals: list[int]  # per month
    overdue: list[ActivationCase]


def _month_list(end: datetime, count: int) -> list[str]:
    year, month = end.year, end.month
    months = []
    for _ in range(count):
        months.append(f"{year:04d}-{month:02d}")
        month -= 1
        if month == 0:
            year, month = year - 1, 12
    return list(reversed(months))


def activation_report(
    *, session: Session, actor: User, months: int = 12, now: datetime | None = None
) -> ActivationReport:
    """Terminals activated (platform approvals of activation cases) per provider and per
    region in each of the last ``months`` calendar months (operator's time zone), and the
    overdue open cases."""
    require(actor, ACTIVATIONS_REPORTS)
    months = max(1, min(months, 36))
    moment = local(now or utcnow())
    labels = _month_list(moment, months)
    first = labels[0]
    start = datetime(int(first[:4]), int(first[5:]), 1, tzinfo=moment.tzinfo)
    stmt = select(
        ActivationCase.decided_at, ActivationCase.provider_id, ActivationCase.region_code
    ).where(
        ActivationCase.kind == CaseKind.ACTIVATION.value,
        ActivationCase.tid.is_not(None),
        ActivationCase.decided_at.is_not(None),
        ActivationCase.decided_at >= start.astimezone(UTC),
    )
    visible = visible_provider_ids(session, actor)
    if visible is not None:
        stmt = stmt.where(ActivationCase.provider_id.in_(visible))
    index = {m: i for i, m in enumerate(labels)}
    per_provider: dict[int | None, list[int]] = {}
    per_region: dict[str | None, list[int]] = {}
    totals = [0] * months
    for decided_at, provider_id, region_code in session.execute(stmt):
        if decided_at is None:
            continue
        key = f"{local(decided_at):%Y-%m}"
        if key not in index:
            continue
        i = index[key]
        per_provider.setdefault(provider_id, [0] * months)[i] += 1
        per_region.setdefault(region_code, [0] * months)[i] += 1
        totals[i] += 1
    provider_names = {
        p.id: f"{p.code} {p.name}"
        for p in session.execute(
            select(Provider).where(Provider.id.in_([k for k in per_provider if k]))
        ).scalars()
    }
    region_names = {r.code: f"{r.name_zh} {r.name_en}" for r in regions(session)}
    by_provider = sorted(
        ((provider_names.get(k or 0, "—"), v, sum(v)) for k, v in per_provider.items()),
        key=lambda row: (-row[2], row[0]),
    )
    by_region = sorted(
        ((region_names.get(k or "", k or "—"), v, sum(v)) for k, v in per_region.items()),
        key=lambda row: (-row[2], row[0]),
    )
    overdue = overdue_cases(session=session, actor=actor, now=now)
    return ActivationReport(labels, by_provider, by_region, totals, overdue)


def _provider_sees(session: Session, actor: User, model: Any, record_id: int) -> bool:
    """Provider staff see the documents of their own subtree's merchants and cases only."""
    visible = visible_provider_ids(session, actor)
    if visible is None:
        return True
    record = session.get(model, record_id)
    return record is not None and record.provider_id in visible


parties.register_document_owner(
    "merchant",
    label=N_("Merchant"),
    exists=lambda s, i: s.get(Merchant, i) is not None,
    url=lambda i: f"/merchants/{i}",
    visible=lambda s, user, i: _provider_sees(s, user, Merchant, i),
)
parties.register_document_owner(
    "activation_case",
    label=N_("Activation case"),
    exists=lambda s, i: s.get(ActivationCase, i) is not None,
    url=lambda i: f"/activations/{i}",
    visible=lambda s, user, i: _provider_sees(s, user, ActivationCase, i),
)
