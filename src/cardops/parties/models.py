"""Persons, organisations and the documents attached to them (or to any other record).

A document row is written once and never changed or deleted: a replacement is a new row that
names the one it ``supersedes``. The file itself is stored by its SHA-256 under
``settings.documents_dir``, so the same content uploaded twice is one file and two rows.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import BigInteger, Date, ForeignKey, Index, String, Text, event
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cardops.auth.models import User
from cardops.core.clock import utcnow
from cardops.core.db import Base, TimestampMixin
from cardops.core.i18n import N_

GENDERS: dict[str, str] = {"male": N_("Male"), "female": N_("Female")}

ORGANISATION_KINDS: dict[str, str] = {
    "merchant": N_("Merchant"),
    "service_provider": N_("Service provider"),
    "supplier": N_("Supplier / manufacturer"),
    "property": N_("Property company"),
    "bank": N_("Bank"),
    "other": N_("Other"),
}

# The fixed list of document types (code -> English label, Chinese in locale/zh_CN.po).
DOC_TYPES: dict[str, str] = {
    "id_front": N_("ID copy (front)"),
    "id_back": N_("ID copy (back)"),
    "photo": N_("Photo"),
    "lease_contract": N_("Lease contract"),
    "business_licence": N_("Business licence"),
    "vehicle_licence": N_("Vehicle licence"),
    "driving_licence": N_("Driving licence"),
    "insurance_policy": N_("Insurance policy"),
    "payment_slip": N_("Payment slip"),
    "signed_form": N_("Signed form"),
    "application_form": N_("Application form"),
    # a merchant's file (SPEC §3, seed 001)
    "organisation_code_certificate": N_("Organisation code certificate"),
    "tax_registration_certificate": N_("Tax registration certificate"),
    "bank_account_permit": N_("Bank account permit"),
    "bank_card": N_("Bank card or account proof"),
    "other": N_("Other"),
}


def human_size(size: int) -> str:
    """``532 B``, ``12.5 KB``, ``3.1 MB``."""
    value = float(size)
    unit = "B"
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            break
        value /= 1024
    number = f"{value:.1f}".removesuffix(".0")
    return f"{number} {unit}"


# Types a browser may show in the page; every other type is always downloaded.
INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"})


class Person(TimestampMixin, Base):
    __tablename__ = "persons"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), index=True)
    id_number: Mapped[str | None] = mapped_column(String(18), unique=True)
    mobile: Mapped[str | None] = mapped_column(String(16), index=True)
    email: Mapped[str | None] = mapped_column(String(254))
    address: Mapped[str | None] = mapped_column(String(255))
    birth_date: Mapped[date | None] = mapped_column(Date)
    gender: Mapped[str | None] = mapped_column(String(8))
    notes: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    created_by: Mapped[User | None] = relationship(lazy="joined")

    @property
    def gender_label(self) -> str:
        return GENDERS.get(self.gender or "", "")

    def __repr__(self) -> str:
        return f"<Person {self.id} {self.name}>"


class Organisation(TimestampMixin, Base):
    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), index=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    uscc: Mapped[str | None] = mapped_column(String(18), unique=True)
    legal_person: Mapped[str | None] = mapped_column(String(128))
    contact_name: Mapped[str | None] = mapped_column(String(128))
    contact_mobile: Mapped[str | None] = mapped_column(String(16))
    address: Mapped[str | None] = mapped_column(String(255))
    notes: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    created_by: Mapped[User | None] = relationship(lazy="joined")

    @property
    def kind_label(self) -> str:
        return ORGANISATION_KINDS.get(self.kind, self.kind)

    def __repr__(self) -> str:
        return f"<Organisation {self.id} {self.name}>"


class Document(Base):
    """One uploaded file attached to ``(owner_type, owner_id)``; written once, never changed."""

    __tablename__ = "documents"
    __table_args__ = (Index("ix_documents_owner", "owner_type", "owner_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(127))
    size: Mapped[int] = mapped_column(BigInteger)
    doc_type: Mapped[str] = mapped_column(String(32))
    owner_type: Mapped[str] = mapped_column(String(32))
    owner_id: Mapped[int] = mapped_column(BigInteger)
    uploaded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    uploaded_at: Mapped[datetime] = mapped_column(default=utcnow)
    note: Mapped[str] = mapped_column(String(500), default="")
    supersedes_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id"), index=True)

    uploaded_by: Mapped[User] = relationship(lazy="joined")

    @property
    def doc_type_label(self) -> str:
        return DOC_TYPES.get(self.doc_type, self.doc_type)

    @property
    def size_label(self) -> str:
        return human_size(self.size)

    @property
    def is_image(self) -> bool:
        return self.content_type in INLINE_TYPES and self.content_type.startswith("image/")

    @property
    def short_sha(self) -> str:
        return self.sha256[:12]

    def __repr__(self) -> str:
        return f"<Document {self.id} {self.doc_type} {self.sha256[:12]}>"


@event.listens_for(Document, "before_update")
def _refuse_update(_mapper: Any, _connection: Any, target: Document) -> None:
    raise RuntimeError(f"document {target.id} is immutable; upload a new one that supersedes it")


@event.listens_for(Document, "before_delete")
def _refuse_delete(_mapper: Any, _connection: Any, target: Document) -> None:
    raise RuntimeError(f"document {target.id} must never be deleted")
