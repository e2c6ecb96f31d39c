"""Issuing, topping up and ending parking permits."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cardops.access.models import CredentialChange
from cardops.auth.models import User
from cardops.cards.models import CardEvent
from cardops.core.clock import freeze
from cardops.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from cardops.core.i18n import current_locale
from cardops.ledger import service as ledger
from cardops.ledger.chart import CASH, PARKING_INCOME
from cardops.parking import service
from cardops.parking.models import ParkingPermit
from cardops.parties import service as parties
from tests.factories import make_user
from tests.parking.conftest import ALL_UPLOADS, PDF, Estate, make_card, make_person, uploads


def _changes(db: Session, card_id: int) -> int:
    return db.execute(
        select(func.count())
        .select_from(CredentialChange)
        .where(CredentialChange.card_id == card_id)
    ).scalar_one()


def _issue(db: Session, clerk: User, card_number: str, **kw: object) -> ParkingPermit:
    args: dict[str, object] = {
        "plate": "川A12345",
        "monthly_fee": 30000,
        "space": "B2-018",
        "documents": uploads(*ALL_UPLOADS),
    }
    args.update(kw)
    return service.issue_permit(session=db, actor=clerk, card_number=card_number, **args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("typed", "plate"),
    [
        ("川A12345", "川A12345"),
        ("川a 12345", "川A12345"),
        ("粤B D12345", "粤BD12345"),
        ("粤B·12345F", "粤B12345F"),
        ("京Ａ１２３４５", "京A12345"),
        ("苏E-1234学", "苏E1234学"),
    ],
)
def test_plates_are_normalised(typed: str, plate: str) -> None:
    assert service.normalize_plate(typed) == plate


@pytest.mark.parametrize(
    "typed", ["", "A12345", "川A1234", "川A123456", "川AI2345", "XA12345", "粤BX12345"]
)
def test_bad_plates_are_refused(typed: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        service.normalize_plate(typed)
    assert info.value.field == "plate"


def test_issue_takes_payment_posts_income_and_touches_the_card(
    db: Session, estate: Estate, clerk: User
) -> None:
    freeze(datetime(2026, 6, 9, 2, 0, tzinfo=UTC))  # 10:00 in Shanghai
    person = make_person(db)
    card = make_card(db, estate, person)
    income_before = ledger.balance(db, PARKING_INCOME)
    cash_before = ledger.balance(db, CASH)
    changes_before = _changes(db, card.id)

    permit = _issue(db, clerk, card.number, months=2, plate="川a 12345")

    assert permit.plate == "川A12345"
    assert (permit.valid_from, permit.valid_until) == (date(2026, 6, 9), date(2026, 8, 8))
    assert service.is_current(permit, on=date(2026, 8, 8))
    assert not service.is_current(permit, on=date(2026, 8, 9))
    [period] = permit.periods
    assert period.amount == 60000
    receipt = ledger.get_receipt(db, period.receipt_no or "")
    assert receipt.amount == 60000 and receipt.payer_name == "王芳"
    assert ledger.balance(db, PARKING_INCOME) == income_before - 60000
    assert ledger.balance(db, CASH) == cash_before + 60000
    assert _changes(db, card.id) == changes_before + 1
    # the card's history shows the permit
    kinds = db.execute(select(CardEvent.kind).where(CardEvent.card_id == card.id)).scalars().all()
    assert "parking_issued" in kinds
    docs = parties.list_documents(
        session=db, actor=clerk, owner_type="parking_permit", owner_id=permit.id
    )
    assert {d.doc_type for d in docs} == {
        "id_front",
        "driving_licence",
        "vehicle_licence",
        "insurance_policy",
        "signed_form",
    }


def test_parking_without_documents_names_every_missing_one(
    db: Session, estate: Estate, clerk: User
) -> None:
    person = make_person(db)
    card = make_card(db, estate, person, kind="tenant")
    income_before = ledger.balance(db, PARKING_INCOME)
    token = current_locale.set("en")
    try:
        with pytest.raises(ValidationFailed) as info:
            _issue(db, clerk, card.number, documents=uploads("id_copy", "vehicle_licence"))
    finally:
        current_locale.reset(token)
    message = info.value.localized("en")
    for name in (
        "Driving licence",
        "Insurance policy",
        "Lease contract",
        "parking space agreement",
    ):
        assert name in message
    assert "Vehicle licence" not in message and "ID copy" not in message
    fields = {item["field"] for item in info.value.field_errors("en")}
    assert {
        "doc_driving_licence",
        "doc_insurance_policy",
        "doc_lease_contract",
        "doc_agreement",
    } <= fields
    assert (
        db.execute(
            select(func.count()).select_from(ParkingPermit).where(ParkingPermit.card_id == card.id)
        ).scalar_one()
        == 0
    )
    assert ledger.balance(db, PARKING_INCOME) == income_before


def test_documents_on_the_persons_file_count_but_the_agreement_is_per_permit(
    db: Session, estate: Estate, clerk: User
) -> None:
    person = make_person(db)
    card = make_card(db, estate, person)
    for doc_type in (
        "id_front",
        "driving_licence",
        "vehicle_licence",
        "insurance_policy",
        "signed_form",
    ):
        parties.upload_document(
            session=db,
            actor=clerk,
            owner_type="person",
            owner_id=person.id,
            doc_type=doc_type,
            filename=f"{doc_type}.pdf",
            data=PDF + doc_type.encode(),
        )
    with pytest.raises(ValidationFailed) as info:
        _issue(db, clerk, card.number, documents={})
    assert [e["field"] for e in info.value.field_errors("en")] == ["documents", "doc_agreement"]
    permit = _issue(db, clerk, card.number, documents=uploads("agreement"))
    assert all(
        item.satisfied
        for item in service.checklist(db, card=card, person_id=person.id, permit=permit)
    )


def test_lost_or_unknown_card_and_duplicates_are_refused(
    db: Session, estate: Estate, clerk: User
) -> None:
    person = make_person(db)
    lost = make_card(db, estate, person, state="lost")
    with pytest.raises(Conflict) as info:
        _issue(db, clerk, lost.number)
    assert "lost" in str(info.value)
    with pytest.raises(NotFound):
        _issue(db, clerk, "NO-SUCH-CARD")
    card = make_card(db, estate, person)
    first = _issue(db, clerk, card.number)
    other = make_card(db, estate, person)
    with pytest.raises(Conflict) as info:
        _issue(db, clerk, other.number, plate="川A 12345")
    assert first.number in str(info.value)
    with pytest.raises(ValidationFailed) as info2:
        _issue(db, clerk, other.number, monthly_fee=-5, months=0, plate="bad")
    fields = {e["field"] for e in info2.value.field_errors("en")}
    assert {"monthly_fee", "months", "plate"} <= fields


def test_top_up_extends_from_the_end_or_from_today_when_expired(
    db: Session, estate: Estate, clerk: User
) -> None:
    freeze(datetime(2026, 1, 31, 2, 0, tzinfo=UTC))
    card = make_card(db, estate, make_person(db))
    permit = _issue(db, clerk, card.number)
    assert permit.valid_until == date(2026, 2, 27)
    changes = _changes(db, card.id)

    period = service.top_up(session=db, actor=clerk, number=permit.number, months=1)
    assert (period.period_from, period.period_until) == (date(2026, 2, 28), date(2026, 3, 27))
    assert permit.valid_until == date(2026, 3, 27)
    assert period.receipt_no and ledger.get_receipt(db, period.receipt_no).amount == 30000
    assert _changes(db, card.id) == changes + 1

    freeze(datetime(2026, 5, 10, 2, 0, tzinfo=UTC))  # it ran out on 27 March
    period = service.top_up(
        session=db, actor=clerk, number=permit.number, months=1, monthly_fee=35000
    )
    assert (period.period_from, period.period_until) == (date(2026, 5, 10), date(2026, 6, 9))
    assert (permit.valid_from, permit.valid_until) == (date(2026, 5, 10), date(2026, 6, 9))
    assert period.amount == 35000
    assert len(permit.periods) == 3

    with pytest.raises(ValidationFailed) as info:
        service.top_up(session=db, actor=clerk, number=permit.number, months=0)
    assert info.value.field == "months"
    assert permit.valid_until == date(2026, 6, 9)


def test_end_requires_the_owners_confirmation(db: Session, estate: Estate, clerk: User) -> None:
    card = make_card(db, estate, make_person(db))
    permit = _issue(db, clerk, card.number)
    changes = _changes(db, card.id)
    with pytest.raises(ValidationFailed) as info:
        service.end_permit(
            session=db,
            actor=clerk,
            number=permit.number,
            reason="lease ended",
            owner_confirmed=False,
        )
    assert info.value.field == "owner_confirmed"
    assert permit.state == "active" and _changes(db, card.id) == changes

    service.end_permit(
        session=db,
        actor=clerk,
        number=permit.number,
        reason="lease ended",
        owner_confirmed=True,
        confirmation="phone call with the owner 13800138000",
    )
    assert permit.state == "ended" and permit.ended_by_id == clerk.id
    assert "13800138000" in permit.owner_confirmation
    assert not service.is_current(permit)
    assert _changes(db, card.id) == changes + 1
    with pytest.raises(Conflict):
        service.end_permit(
            session=db, actor=clerk, number=permit.number, reason="again", owner_confirmed=True
        )
    with pytest.raises(Conflict):
        service.top_up(session=db, actor=clerk, number=permit.number, months=1)


def test_permissions(db: Session, estate: Estate) -> None:
    card = make_card(db, estate, make_person(db))
    analyst = make_user(db, "data_analyst")
    with pytest.raises(PermissionDenied):
        _issue(db, analyst, card.number)
    assert service.list_permits(session=db, actor=analyst) is not None
    outsider = make_user(db, "picker")
    with pytest.raises(PermissionDenied):
        service.list_permits(session=db, actor=outsider)


def test_expiry_reminders_go_out_once_per_permit_and_channel(
    db: Session, estate: Estate, clerk: User
) -> None:
    from cardops.notify.models import OutboxMessage

    freeze(datetime(2026, 6, 9, 2, 0, tzinfo=UTC))
    person = make_person(db, "李雷")
    person.mobile = "13800138000"
    person.email = "lilei@example.com"
    soon = _issue(db, clerk, make_card(db, estate, person).number, months=1, plate="川A11111")
    later = _issue(db, clerk, make_card(db, estate, person).number, months=3, plate="川A22222")
    assert soon.valid_until == date(2026, 7, 8) and later.valid_until == date(2026, 9, 8)

    assert service.queue_expiry_reminders(db, on=date(2026, 7, 1), days_ahead=7) == 2
    assert service.queue_expiry_reminders(db, on=date(2026, 7, 2), days_ahead=7) == 0  # once
    sent = db.execute(
        select(OutboxMessage).where(OutboxMessage.ref == f"parking:{soon.number}")
    ).scalars()
    by_channel = {m.channel: m for m in sent}
    assert set(by_channel) == {"sms", "email"}
    assert "川A11111" in by_channel["sms"].body and "2026-07-08" in by_channel["sms"].body
    assert by_channel["sms"].recipient == "13800138000"
    # the other permit ends outside the window; an ended permit is never reminded
    assert not db.execute(
        select(OutboxMessage).where(OutboxMessage.ref == f"parking:{later.number}")
    ).first()
    service.end_permit(
        session=db, actor=clerk, number=later.number, reason="sold the car", owner_confirmed=True
    )
    assert service.queue_expiry_reminders(db, on=date(2026, 9, 1), days_ahead=7) == 0
