"""Persons, organisations and documents. The only code that changes them.

The validators (:func:`validate_resident_id`, :func:`validate_mobile`, :func:`validate_uscc`)
are public: other domains call them for their own fields.

Documents may belong to any record ("case"): ``owner_type`` + ``owner_id``, e.g. ``("person",
12)`` or ``("ticket", 40)``. A domain that wants the owner checked on upload registers its
record type once with :func:`register_document_owner`.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
import os
import re
import tempfile
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import NamedTuple

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from stdnum.cn import ric, uscc
from stdnum.exceptions import InvalidChecksum, InvalidComponent, ValidationError

from cardops.audit.service import record, snapshot
from cardops.auth.models import User
from cardops.auth.service import require
from cardops.core.clock import local, utcnow
from cardops.core.config import get_settings
from cardops.core.errors import Conflict, FieldErrors, NotFound, ValidationFailed
from cardops.core.i18n import N_
from cardops.parties.models import (
    DOC_TYPES,
    ORGANISATION_KINDS,
    Document,
    Organisation,
    Person,
    human_size,
)
from cardops.parties.permissions import (
    DOCUMENTS_UPLOAD,
    DOCUMENTS_VIEW,
    PARTIES_EDIT,
    PARTIES_VIEW,
)

log = logging.getLogger("cardops.parties")

MAX_PAGE = 200
_MOBILE = re.compile(r"^1[3-9][0-9]{9}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_OWNER_TYPE = re.compile(r"^[a-z][a-z0-9_]{1,31}$")
_CONTENT_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


# --- validators ---------------------------------------------------------------------------


def plain_text(value: str | None, *, multiline: bool = False) -> str:
    """``value`` without control characters (NUL and the like, which PostgreSQL refuses) and
    unpaired surrogates; line breaks and tabs are kept only when ``multiline``."""
    keep = "\n\t" if multiline else ""
    text = (value or "").replace("\r\n", "\n")
    return "".join(
        c for c in text if c in keep or unicodedata.category(c) not in ("Cc", "Cs")
    ).strip()


def _one_line(value: str | None) -> str:
    return " ".join(plain_text(value).split())


def _compact(value: str, drop: str = " -") -> str:
    """Full-width characters to ASCII (NFKC), separators out, upper case."""
    text = unicodedata.normalize("NFKC", value or "")
    return "".join(c for c in text if c not in drop and not c.isspace()).upper()


def validate_resident_id(value: str, *, field: str = "id_number") -> str:
    """Check a mainland resident ID (居民身份证号码) and return it normalised.

    Spaces and hyphens are dropped, full-width digits converted and a trailing ``x`` upper-cased.
    Checks length, digits, the birth date, the region code and the ISO 7064 check digit.
    """
    number = _compact(value)
    if not number:
        raise ValidationFailed("Enter the resident ID number.", field=field)
    if len(number) != 18 or not re.fullmatch(r"[0-9]{17}[0-9X]", number):
        raise ValidationFailed(
            "A resident ID number has 18 characters: 17 digits and then a digit or X.",
            field=field,
        )
    try:
        ric.validate(number)
    except InvalidChecksum as exc:
        raise ValidationFailed(
            "The resident ID number is not valid: its check digit does not match. Check it for typing errors.",
            field=field,
        ) from exc
    except InvalidComponent as exc:
        raise ValidationFailed(
            "The resident ID number is not valid: it contains an impossible birth date or region code.",
            field=field,
        ) from exc
    except ValidationError as exc:
        raise ValidationFailed("The resident ID number is not valid.", field=field) from exc
    if ric.get_birth_date(number) > local(utcnow()).date():
        raise ValidationFailed(
            "The resident ID number is not valid: its birth date lies in the future.",
            field=field,
        )
    return number


def resident_id_birth_date(number: str) -> date:
    """The birth date encoded in a valid resident ID (digits 7–14)."""
    return ric.get_birth_date(number)


def resident_id_gender(number: str) -> str:
    """``"male"`` when the 17th digit is odd, else ``"female"``."""
    return "male" if int(number[16]) % 2 else "female"


def validate_mobile(value: str, *, field: str = "mobile") -> str:
    """Check a mainland mobile number (11 digits, 1[3-9]…) and return it normalised.

    Spaces, hyphens and a leading +86 / 0086 / 86 are dropped.
    """
    number = _compact(value, drop=" -()")
    for prefix in ("+86", "0086"):
        if number.startswith(prefix):
            number = number[len(prefix) :]
    if len(number) == 13 and number.startswith("86"):
        number = number[2:]
    if not number:
        raise ValidationFailed("Enter the mobile number.", field=field)
    if not _MOBILE.fullmatch(number):
        raise ValidationFailed(
            "A mobile number has 11 digits and starts with 13 to 19, for example 13800138000.",
            field=field,
        )
    return number


def validate_uscc(value: str, *, field: str = "uscc") -> str:
    """Check a unified social credit code (统一社会信用代码) and return it normalised."""
    code = _compact(value)
    if not code:
        raise ValidationFailed("Enter the unified social credit code.", field=field)
    if len(code) != 18:
        raise ValidationFailed(
            "A unified social credit code has 18 characters (digits and capital letters).",
            field=field,
        )
    try:
        uscc.validate(code)
    except InvalidChecksum as exc:
        raise ValidationFailed(
            "The unified social credit code is not valid: its check character does not match. Check it for typing errors.",
            field=field,
        ) from exc
    except ValidationError as exc:
        raise ValidationFailed(
            "The unified social credit code is not valid: it starts with 8 digits and uses only digits and capital letters other than I, O, S, V and Z.",
            field=field,
        ) from exc
    return code


def validate_email(value: str, *, field: str = "email") -> str:
    text = (value or "").strip()
    if len(text) > 254 or not _EMAIL.fullmatch(text) or text != plain_text(text):
        raise ValidationFailed("Enter a valid e-mail address.", field=field)
    return text


_Errors = FieldErrors  # one collector for the whole project (core.errors)


def _text(value: str | None, *, field: str, max_length: int, multiline: bool = False) -> str | None:
    text = plain_text(value, multiline=multiline) if multiline else _one_line(value)
    if len(text) > max_length:
        raise ValidationFailed("Too long: at most {n} characters.", field=field, n=max_length)
    return text or None


def _person_name(value: str | None) -> str:
    text = _one_line(value)
    if not text:
        raise ValidationFailed("Enter the person's name.", field="name")
    if len(text) > 128:
        raise ValidationFailed("Too long: at most {n} characters.", field="name", n=128)
    return text


def _organisation_name(value: str | None) -> str:
    text = _one_line(value)
    if not text:
        raise ValidationFailed("Enter the organisation's name.", field="name")
    if len(text) > 200:
        raise ValidationFailed("Too long: at most {n} characters.", field="name", n=200)
    return text


def _optional(
    errors: _Errors, validator: Callable[..., str], value: str | None, field: str
) -> str | None:
    if not (value or "").strip():
        return None
    result: str | None = errors.check(validator, value, field=field)
    return result


def _page(limit: int, offset: int) -> tuple[int, int]:
    return max(1, min(limit, MAX_PAGE)), max(0, min(offset, 10_000_000))


# --- persons ------------------------------------------------------------------------------


@dataclass(slots=True)
class _PersonFields:
    name: str
    id_number: str | None
    mobile: str | None
    email: str | None
    address: str | None
    notes: str


def _check_person(
    *,
    name: str | None,
    id_number: str | None,
    mobile: str | None,
    email: str | None,
    address: str | None,
    notes: str | None,
) -> _PersonFields:
    errors = _Errors()
    clean_name = errors.check(_person_name, name)
    clean_id = _optional(errors, validate_resident_id, id_number, "id_number")
    clean_mobile = _optional(errors, validate_mobile, mobile, "mobile")
    clean_email = _optional(errors, validate_email, email, "email")
    clean_address = errors.check(_text, address, field="address", max_length=255)
    clean_notes = errors.check(_text, notes, field="notes", max_length=2000, multiline=True)
    errors.raise_if_any()
    return _PersonFields(
        name=clean_name,
        id_number=clean_id,
        mobile=clean_mobile,
        email=clean_email,
        address=clean_address,
        notes=clean_notes or "",
    )


def _id_number_taken(session: Session, id_number: str, *, exclude: int | None = None) -> None:
    stmt = select(Person).where(Person.id_number == id_number)
    if exclude is not None:
        stmt = stmt.where(Person.id != exclude)
    other = session.execute(stmt).scalar_one_or_none()
    if other is not None:
        raise Conflict(
            "A person with this resident ID number is already registered: {name} (no. {id}).",
            field="id_number",
            name=other.name,
            id=other.id,
        )


def _flush_unique(session: Session, conflict: Conflict) -> None:
    """Flush in a savepoint; a unique index violated by a concurrent writer becomes a 409."""
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise conflict from exc


def _apply_person_identity(person: Person, id_number: str | None) -> None:
    person.id_number = id_number
    if id_number:
        person.birth_date = resident_id_birth_date(id_number)
        person.gender = resident_id_gender(id_number)
    else:
        person.birth_date = None
        person.gender = None


def create_person(
    *,
    session: Session,
    actor: User,
    name: str,
    id_number: str | None = None,
    mobile: str | None = None,
    email: str | None = None,
    address: str | None = None,
    notes: str | None = None,
) -> Person:
    """Register a person. Birth date and gender are taken from the resident ID."""
    require(actor, PARTIES_EDIT)
    fields = _check_person(
        name=name, id_number=id_number, mobile=mobile, email=email, address=address, notes=notes
    )
    if fields.id_number:
        _id_number_taken(session, fields.id_number)
    person = Person(
        name=fields.name,
        mobile=fields.mobile,
        email=fields.email,
        address=fields.address,
        notes=fields.notes,
        created_by_id=actor.id,
    )
    _apply_person_identity(person, fields.id_number)
    session.add(person)
    _flush_unique(
        session,
        Conflict("A person with this resident ID number is already registered.", field="id_number"),
    )
    record(session, actor, "person.created", person)
    return person


def update_person(
    *,
    session: Session,
    actor: User,
    person_id: int,
    name: str | None = None,
    id_number: str | None = None,
    mobile: str | None = None,
    email: str | None = None,
    address: str | None = None,
    notes: str | None = None,
) -> Person:
    """Change a person. ``None`` leaves a field as it is; an empty string clears it."""
    require(actor, PARTIES_EDIT)
    person = get_person(session=session, person_id=person_id)
    before = snapshot(person)

    def pick(new: str | None, old: str | None) -> str | None:
        return old if new is None else new

    fields = _check_person(
        name=pick(name, person.name),
        id_number=pick(id_number, person.id_number),
        mobile=pick(mobile, person.mobile),
        email=pick(email, person.email),
        address=pick(address, person.address),
        notes=pick(notes, person.notes),
    )
    if fields.id_number and fields.id_number != person.id_number:
        _id_number_taken(session, fields.id_number, exclude=person.id)
    person.name = fields.name
    person.mobile = fields.mobile
    person.email = fields.email
    person.address = fields.address
    person.notes = fields.notes
    _apply_person_identity(person, fields.id_number)
    _flush_unique(
        session,
        Conflict("A person with this resident ID number is already registered.", field="id_number"),
    )
    after = snapshot(person)
    changed = {k for k in after if k != "updated_at" and after[k] != before.get(k)}
    if changed:
        record(session, actor, "person.updated", person, before=before, after=after)
    return person


def _in_range(value: int) -> bool:
    return isinstance(value, int) and 1 <= value < 2**63


def get_person(*, session: Session, person_id: int) -> Person:
    """A person by id (no permission check: for lookups by other domains)."""
    person = session.get(Person, person_id) if _in_range(person_id) else None
    if person is None:
        raise NotFound("No person with number {id}.", id=person_id)
    return person


def find_person_by_id_number(session: Session, id_number: str) -> Person | None:
    """The person holding a resident ID, or None (the number is normalised first)."""
    number = _compact(id_number)
    if not number:
        return None
    return session.execute(select(Person).where(Person.id_number == number)).scalar_one_or_none()


def search_persons(
    *, session: Session, actor: User, q: str | None = None, limit: int = 50, offset: int = 0
) -> list[Person]:
    """Persons whose name, resident ID or mobile contains ``q``; newest first."""
    require(actor, PARTIES_VIEW)
    limit, offset = _page(limit, offset)
    stmt = select(Person).order_by(Person.id.desc())
    text = _one_line(q)[:100]
    if text:
        conditions = [Person.name.icontains(text, autoescape=True)]
        compact = _compact(text, drop=" -+")
        if compact:
            conditions.append(Person.id_number.contains(compact, autoescape=True))
            conditions.append(Person.mobile.contains(compact, autoescape=True))
        stmt = stmt.where(or_(*conditions))
    return list(session.execute(stmt.limit(limit).offset(offset)).scalars())


# --- organisations ------------------------------------------------------------------------


@dataclass(slots=True)
class _OrganisationFields:
    name: str
    kind: str
    uscc: str | None
    legal_person: str | None
    contact_name: str | None
    contact_mobile: str | None
    address: str | None
    notes: str


def _kind(value: str | None, *, field: str = "kind") -> str:
    kind = (value or "").strip()
    if kind not in ORGANISATION_KINDS:
        raise ValidationFailed("Choose the kind of organisation from the list.", field=field)
    return kind


def _check_organisation(
    *,
    name: str | None,
    kind: str | None,
    uscc: str | None,
    legal_person: str | None,
    contact_name: str | None,
    contact_mobile: str | None,
    address: str | None,
    notes: str | None,
) -> _OrganisationFields:
    errors = _Errors()
    clean_name = errors.check(_organisation_name, name)
    clean_kind = errors.check(_kind, kind)
    clean_uscc = _optional(errors, validate_uscc, uscc, "uscc")
    clean_legal = errors.check(_text, legal_person, field="legal_person", max_length=128)
    clean_contact = errors.check(_text, contact_name, field="contact_name", max_length=128)
    clean_mobile = _optional(errors, validate_mobile, contact_mobile, "contact_mobile")
    clean_address = errors.check(_text, address, field="address", max_length=255)
    clean_notes = errors.check(_text, notes, field="notes", max_length=2000, multiline=True)
    errors.raise_if_any()
    return _OrganisationFields(
        name=clean_name,
        kind=clean_kind,
        uscc=clean_uscc,
        legal_person=clean_legal,
        contact_name=clean_contact,
        contact_mobile=clean_mobile,
        address=clean_address,
        notes=clean_notes or "",
    )


def _uscc_taken(session: Session, code: str, *, exclude: int | None = None) -> None:
    stmt = select(Organisation).where(Organisation.uscc == code)
    if exclude is not None:
        stmt = stmt.where(Organisation.id != exclude)
    other = session.execute(stmt).scalar_one_or_none()
    if other is not None:
        raise Conflict(
            "An organisation with this unified social credit code is already registered: {name} (no. {id}).",
            field="uscc",
            name=other.name,
            id=other.id,
        )


def _apply_organisation(org: Organisation, fields: _OrganisationFields) -> None:
    org.name = fields.name
    org.kind = fields.kind
    org.uscc = fields.uscc
    org.legal_person = fields.legal_person
    org.contact_name = fields.contact_name
    org.contact_mobile = fields.contact_mobile
    org.address = fields.address
    org.notes = fields.notes


def create_organisation(
    *,
    session: Session,
    actor: User,
    name: str,
    kind: str,
    uscc: str | None = None,
    legal_person: str | None = None,
    contact_name: str | None = None,
    contact_mobile: str | None = None,
    address: str | None = None,
    notes: str | None = None,
) -> Organisation:
    """Register a merchant, service provider, supplier, property company, bank or other body."""
    require(actor, PARTIES_EDIT)
    fields = _check_organisation(
        name=name,
        kind=kind,
        uscc=uscc,
        legal_person=legal_person,
        contact_name=contact_name,
        contact_mobile=contact_mobile,
        address=address,
        notes=notes,
    )
    if fields.uscc:
        _uscc_taken(session, fields.uscc)
    org = Organisation(created_by_id=actor.id)
    _apply_organisation(org, fields)
    session.add(org)
    _flush_unique(
        session,
        Conflict(
            "An organisation with this unified social credit code is already registered.",
            field="uscc",
        ),
    )
    record(session, actor, "organisation.created", org)
    return org


def update_organisation(
    *,
    session: Session,
    actor: User,
    organisation_id: int,
    name: str | None = None,
    kind: str | None = None,
    uscc: str | None = None,
    legal_person: str | None = None,
    contact_name: str | None = None,
    contact_mobile: str | None = None,
    address: str | None = None,
    notes: str | None = None,
) -> Organisation:
    """Change an organisation. ``None`` leaves a field as it is; an empty string clears it."""
    require(actor, PARTIES_EDIT)
    org = get_organisation(session=session, organisation_id=organisation_id)
    before = snapshot(org)

    def pick(new: str | None, old: str | None) -> str | None:
        return old if new is None else new

    fields = _check_organisation(
        name=pick(name, org.name),
        kind=pick(kind, org.kind),
        uscc=pick(uscc, org.uscc),
        legal_person=pick(legal_person, org.legal_person),
        contact_name=pick(contact_name, org.contact_name),
        contact_mobile=pick(contact_mobile, org.contact_mobile),
        address=pick(address, org.address),
        notes=pick(notes, org.notes),
    )
    if fields.uscc and fields.uscc != org.uscc:
        _uscc_taken(session, fields.uscc, exclude=org.id)
    _apply_organisation(org, fields)
    _flush_unique(
        session,
        Conflict(
            "An organisation with this unified social credit code is already registered.",
            field="uscc",
        ),
    )
    after = snapshot(org)
    changed = {k for k in after if k != "updated_at" and after[k] != before.get(k)}
    if changed:
        record(session, actor, "organisation.updated", org, before=before, after=after)
    return org


def get_organisation(*, session: Session, organisation_id: int) -> Organisation:
    """An organisation by id (no permission check: for lookups by other domains)."""
    org = session.get(Organisation, organisation_id) if _in_range(organisation_id) else None
    if org is None:
        raise NotFound("No organisation with number {id}.", id=organisation_id)
    return org


def find_organisation_by_uscc(session: Session, code: str) -> Organisation | None:
    value = _compact(code)
    if not value:
        return None
    return session.execute(
        select(Organisation).where(Organisation.uscc == value)
    ).scalar_one_or_none()


def search_organisations(
    *,
    session: Session,
    actor: User,
    q: str | None = None,
    kind: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[Organisation]:
    """Organisations whose name or USCC contains ``q``, optionally of one kind; newest first."""
    require(actor, PARTIES_VIEW)
    limit, offset = _page(limit, offset)
    stmt = select(Organisation).order_by(Organisation.id.desc())
    if kind:
        stmt = stmt.where(Organisation.kind == _kind(kind))
    text = _one_line(q)[:100]
    if text:
        conditions = [Organisation.name.icontains(text, autoescape=True)]
        compact = _compact(text)
        if compact:
            conditions.append(Organisation.uscc.contains(compact, autoescape=True))
        stmt = stmt.where(or_(*conditions))
    return list(session.execute(stmt.limit(limit).offset(offset)).scalars())


# --- document owners ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DocumentOwner:
    """A kind of record documents can be attached to."""

    owner_type: str
    label: str  # English, translated on display
    exists: Callable[[Session, int], bool]
    url: Callable[[int], str] | None = None
    # may this user see this record's documents? (e.g. provider staff: their own subtree)
    visible: Callable[[Session, User, int], bool] | None = None


DOCUMENT_OWNERS: dict[str, DocumentOwner] = {}


def register_document_owner(
    owner_type: str,
    *,
    label: str,
    exists: Callable[[Session, int], bool],
    url: Callable[[int], str] | None = None,
    visible: Callable[[Session, User, int], bool] | None = None,
) -> None:
    """Let uploads to ``owner_type`` check that the record exists and link back to it.

    Example (in ``tickets/service.py``)::

        register_document_owner("ticket", label=N_("Ticket"),
                                exists=lambda s, i: s.get(Ticket, i) is not None,
                                url=lambda i: f"/tickets/{i}")
    """
    if not _OWNER_TYPE.fullmatch(owner_type):
        raise ValueError(f"bad owner type {owner_type!r}")
    DOCUMENT_OWNERS[owner_type] = DocumentOwner(owner_type, label, exists, url, visible)


def _owner_visible(session: Session, actor: User, owner_type: str, owner_id: int) -> bool:
    """False when the record's domain hides it from ``actor`` (its documents too)."""
    owner = DOCUMENT_OWNERS.get(owner_type)
    return owner is None or owner.visible is None or owner.visible(session, actor, owner_id)


register_document_owner(
    "person",
    label=N_("Person"),
    exists=lambda s, i: s.get(Person, i) is not None,
    url=lambda i: f"/persons/{i}",
)
register_document_owner(
    "organisation",
    label=N_("Organisation"),
    exists=lambda s, i: s.get(Organisation, i) is not None,
    url=lambda i: f"/organisations/{i}",
)


def owner_url(owner_type: str, owner_id: int) -> str | None:
    owner = DOCUMENT_OWNERS.get(owner_type)
    return owner.url(owner_id) if owner and owner.url else None


def _check_owner(session: Session, owner_type: str, owner_id: int) -> str:
    kind = (owner_type or "").strip().lower()
    if not _OWNER_TYPE.fullmatch(kind):
        raise ValidationFailed(
            "The owner type is 2–32 lower-case letters, digits or '_', for example “person”.",
            field="owner_type",
        )
    if not _in_range(owner_id):
        raise ValidationFailed("The owner number is not valid.", field="owner_id")
    owner = DOCUMENT_OWNERS.get(kind)
    if owner is not None and not owner.exists(session, owner_id):
        raise NotFound(
            "There is no {owner_type} with number {id} to attach the document to.",
            field="owner_id",
            owner_type=kind,
            id=owner_id,
        )
    return kind


# --- document store -----------------------------------------------------------------------


def document_path(sha256: str) -> Path:
    """Where the file with this SHA-256 lives: ``documents_dir/ab/abcdef…``."""
    if not _SHA256.fullmatch(sha256):
        raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
    return get_settings().documents_dir / sha256[:2] / sha256


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def store_bytes(data: bytes) -> tuple[str, Path]:
    """Write ``data`` content-addressed and durable; returns (sha256, path).

    An existing file with the same name already holds this content and is left alone; one
    whose content no longer matches (damaged on disk) is replaced by the correct bytes.
    The write goes to a temporary file in the same folder, is synced, then renamed into
    place, so a reader never sees a half-written file.
    """
    sha = hashlib.sha256(data).hexdigest()
    path = document_path(sha)
    if path.exists():
        if path.stat().st_size == len(data) and _hash_file(path) == sha:
            return sha, path
        log.warning("document file %s is damaged; restoring it from a new upload", path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".upload-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o440)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return sha, path


_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
)
_ZIP_BASED = {
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".ofd": "application/ofd",
}
_OLE_BASED = {".doc": "application/msword", ".xls": "application/vnd.ms-excel"}


def sniff_content_type(data: bytes, filename: str = "", declared: str | None = None) -> str:
    """The media type: from the file's first bytes when they are recognised, else the type
    the uploader declared, else a guess from the file name extension."""
    ext = Path(filename).suffix.lower()
    for magic, kind in _MAGIC:
        if data.startswith(magic):
            return kind
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1"):
        return "image/heic"
    if data.startswith(b"PK\x03\x04"):
        return _ZIP_BASED.get(ext, "application/zip")
    if data.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return _OLE_BASED.get(ext, "application/x-ole-storage")
    declared_clean = (declared or "").split(";")[0].strip().lower()
    if declared_clean != "application/octet-stream" and _CONTENT_TYPE.fullmatch(declared_clean):
        return declared_clean
    guessed, _ = mimetypes.guess_type(f"x{ext}") if ext else (None, None)
    return guessed or "application/octet-stream"


def clean_filename(name: str | None) -> str:
    """The last path component, without control characters, at most 255 characters."""
    text = unicodedata.normalize("NFC", name or "")
    text = re.split(r"[\\/]", text)[-1]
    text = "".join(c for c in text if unicodedata.category(c)[0] != "C").strip().strip(".")
    if len(text) > 255:
        stem, ext = os.path.splitext(text)
        ext = ext if len(ext) <= 16 else ""
        text = stem[: 255 - len(ext)] + ext
    return text or "document"


# --- documents ----------------------------------------------------------------------------


def upload_document(
    *,
    session: Session,
    actor: User,
    owner_type: str,
    owner_id: int,
    doc_type: str,
    filename: str,
    data: bytes,
    content_type: str | None = None,
    note: str | None = None,
    supersedes_id: int | None = None,
) -> Document:
    """Store a file for a record and add its document row.

    The file is kept under its SHA-256 (the same content twice is one file, two rows). Empty
    files and files above ``settings.documents_max_bytes`` are refused. ``supersedes_id`` names
    an earlier document of the same owner that this one replaces (the old row stays).
    """
    require(actor, DOCUMENTS_UPLOAD)
    errors = _Errors()
    kind = errors.check(_check_owner, session, owner_type, owner_id)
    if doc_type not in DOC_TYPES:
        errors.add(ValidationFailed("Choose the document type from the list.", field="doc_type"))
    limit = get_settings().documents_max_bytes
    if not data:
        errors.add(ValidationFailed("The file is empty. Choose a file to upload.", field="file"))
    elif len(data) > limit:
        errors.add(
            ValidationFailed(
                "The file is too large: at most {limit} is accepted.",
                field="file",
                limit=human_size(limit),
            )
        )
    clean_note = errors.check(_text, note, field="note", max_length=500) or ""
    errors.raise_if_any()
    if supersedes_id is not None:
        old = session.get(Document, supersedes_id) if _in_range(supersedes_id) else None
        if old is None or old.owner_type != kind or old.owner_id != owner_id:
            raise ValidationFailed(
                "The document to replace does not belong to the same record.",
                field="supersedes_id",
            )
    sha, _ = store_bytes(data)
    document = Document(
        sha256=sha,
        filename=clean_filename(filename),
        content_type=sniff_content_type(data, filename or "", content_type),
        size=len(data),
        doc_type=doc_type,
        owner_type=kind,
        owner_id=owner_id,
        uploaded_by_id=actor.id,
        uploaded_at=utcnow(),
        note=clean_note,
        supersedes_id=supersedes_id,
    )
    session.add(document)
    session.flush()
    record(session, actor, "document.uploaded", document)
    return document


def list_documents(
    *, session: Session, actor: User, owner_type: str, owner_id: int
) -> list[Document]:
    """Every document of a record, oldest first (replaced ones included)."""
    require(actor, DOCUMENTS_VIEW)
    if not _OWNER_TYPE.fullmatch(owner_type or ""):
        raise ValidationFailed(
            "The owner type is 2–32 lower-case letters, digits or '_', for example “person”.",
            field="owner_type",
        )
    if not _in_range(owner_id) or not _owner_visible(session, actor, owner_type, owner_id):
        return []
    stmt = (
        select(Document)
        .where(Document.owner_type == owner_type, Document.owner_id == owner_id)
        .order_by(Document.id)
    )
    return list(session.execute(stmt).scalars())


def superseded_ids(documents: list[Document]) -> set[int]:
    """The ids among ``documents`` that a later one replaces."""
    return {d.supersedes_id for d in documents if d.supersedes_id is not None}


def get_document(*, session: Session, actor: User, document_id: int) -> Document:
    require(actor, DOCUMENTS_VIEW)
    document = session.get(Document, document_id) if _in_range(document_id) else None
    if document is None or not _owner_visible(
        session, actor, document.owner_type, document.owner_id
    ):  # another provider's record: as if it did not exist
        raise NotFound("No document with number {id}.", id=document_id)
    return document


class StoredDocument(NamedTuple):
    document: Document
    path: Path


def open_document(*, session: Session, actor: User, document_id: int) -> StoredDocument:
    """The document row and the path of its file (which must exist)."""
    document = get_document(session=session, actor=actor, document_id=document_id)
    path = document_path(document.sha256)
    if not path.is_file():
        log.error("file of document %s is missing: %s", document.id, path)
        raise NotFound(
            "The file of document {id} is missing from the document store. Restore it from a backup.",
            code="file_missing",
            id=document.id,
        )
    return StoredDocument(document, path)


@dataclass(slots=True)
class DocumentCheck:
    document_id: int
    status: str  # "ok", "missing" or "mismatch"
    expected_sha256: str
    actual_sha256: str | None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _check_file(document: Document) -> DocumentCheck:
    path = document_path(document.sha256)
    if not path.is_file():
        return DocumentCheck(document.id, "missing", document.sha256, None)
    actual = _hash_file(path)
    status = "ok" if actual == document.sha256 else "mismatch"
    return DocumentCheck(document.id, status, document.sha256, actual)


def verify_document(*, session: Session, actor: User, document_id: int) -> DocumentCheck:
    """Re-hash the stored file and compare it with the SHA-256 recorded at upload."""
    document = get_document(session=session, actor=actor, document_id=document_id)
    return _check_file(document)


def verify_all_documents(
    session: Session, progress: Callable[[int], None] | None = None
) -> list[DocumentCheck]:
    """Re-hash every stored file once (documents sharing a file are checked together).
    Returns the problems only."""
    problems: list[DocumentCheck] = []
    seen: dict[str, DocumentCheck] = {}
    last_id = 0
    while True:
        batch = list(
            session.execute(
                select(Document).where(Document.id > last_id).order_by(Document.id).limit(1000)
            ).scalars()
        )
        if not batch:
            return problems
        for document in batch:
            cached = seen.get(document.sha256)
            if cached is None:
                cached = seen[document.sha256] = _check_file(document)
            if not cached.ok:
                problems.append(
                    DocumentCheck(document.id, cached.status, document.sha256, cached.actual_sha256)
                )
            if progress is not None:
                progress(1)
        last_id = batch[-1].id


def count_documents(session: Session) -> int:
    return session.execute(select(func.count()).select_from(Document)).scalar_one()


def latest_photo(session: Session, owner_type: str, owner_id: int) -> Document | None:
    """The newest image of type ``photo`` of a record, for display next to its name."""
    return session.execute(
        select(Document)
        .where(
            Document.owner_type == owner_type,
            Document.owner_id == owner_id,
            Document.doc_type == "photo",
            Document.content_type.like("image/%"),
        )
        .order_by(Document.id.desc())
        .limit(1)
    ).scalar_one_or_none()
