"""Merchant onboarding: required documents per kind, validated numbers, KYC and the MID."""

from __future__ import annotations

import pytest

from cardops.core.errors import Conflict, InvalidTransition, PermissionDenied, ValidationFailed
from cardops.merchants import service
from cardops.merchants.models import Merchant
from cardops.parties.models import Person
from tests.factories import make_user
from tests.merchants.conftest import PNG, World


def _upload(world: World, merchant: Merchant, *doc_types: str) -> None:
    for doc_type in doc_types:
        service.upload_merchant_document(
            session=world.db,
            actor=world.specialist,
            merchant_id=merchant.id,
            doc_type=doc_type,
            filename=f"{doc_type}.png",
            data=PNG + doc_type.encode(),
        )


def test_corporate_merchant_needs_all_five_documents(world: World) -> None:
    merchant = service.create_merchant(
        session=world.db, actor=world.specialist, **world.merchant_fields("corporate")
    )
    assert merchant.state == "draft"
    assert merchant.mid is None
    person = world.db.get(Person, merchant.legal_person_id)
    assert person is not None and person.name == "张三"
    _upload(world, merchant, "business_licence", "id_front", "id_back")
    with pytest.raises(ValidationFailed) as exc:
        service.submit_for_kyc(session=world.db, actor=world.specialist, merchant_id=merchant.id)
    assert exc.value.field == "documents"
    text = str(exc.value)
    assert "Organisation code certificate" in text
    assert "Tax registration certificate" in text
    assert "Bank account permit" in text
    assert "Business licence" not in text
    _upload(
        world,
        merchant,
        "organisation_code_certificate",
        "tax_registration_certificate",
        "bank_account_permit",
    )
    service.submit_for_kyc(session=world.db, actor=world.specialist, merchant_id=merchant.id)
    assert merchant.state == "kyc_review"


def test_individual_merchant_needs_licence_id_and_bank_account_only(world: World) -> None:
    merchant = service.create_merchant(
        session=world.db, actor=world.specialist, **world.merchant_fields("individual")
    )
    _upload(world, merchant, "business_licence", "id_front")
    with pytest.raises(ValidationFailed) as exc:
        service.submit_for_kyc(session=world.db, actor=world.specialist, merchant_id=merchant.id)
    assert "ID copy (back)" in str(exc.value)
    assert "Bank account permit / Bank card or account proof" in str(exc.value)
    assert "Organisation code" not in str(exc.value)
    # in Chinese the labels are Chinese too, alternatives joined with 或, items with 、
    zh = "请先上传缺少的资料：身份证复印件（反面）、开户许可证或银行卡或账户证明。"
    assert exc.value.localized("zh_CN") == zh
    _upload(world, merchant, "id_back", "bank_card")
    service.submit_for_kyc(session=world.db, actor=world.specialist, merchant_id=merchant.id)
    assert merchant.state == "kyc_review"


def test_bad_numbers_are_refused_naming_each_field(world: World) -> None:
    fields = world.merchant_fields(
        business_licence_no="91510100000000001X",
        legal_person_id_number="510100199001010014",
        mcc="54A1",
        bank_account="12345",
    )
    with pytest.raises(ValidationFailed) as exc:
        service.create_merchant(session=world.db, actor=world.specialist, **fields)
    named = {item["field"] for item in exc.value.field_errors("en")}
    assert named == {"business_licence_no", "legal_person_id_number", "mcc", "bank_account"}
    messages = {item["field"]: item["message"] for item in exc.value.field_errors("en")}
    assert "4 digits" in messages["mcc"]
    assert "check" in messages["business_licence_no"]
    assert world.db.query(Merchant).filter_by(name=fields["name"]).count() == 0


def test_document_type_not_for_merchants_is_refused_by_name(world: World) -> None:
    merchant = service.create_merchant(
        session=world.db, actor=world.specialist, **world.merchant_fields()
    )
    with pytest.raises(ValidationFailed) as exc:
        _upload(world, merchant, "lease_contract")
    assert exc.value.field == "doc_type"
    assert "lease_contract" in str(exc.value)


def test_kyc_approval_assigns_unique_mids(world: World) -> None:
    first = world.approved_merchant()
    second = world.approved_merchant("corporate")
    assert first.state == "approved"
    assert first.mid is not None and len(first.mid) == 15 and first.mid.isdigit()
    # 898 + area code from the licence (5101 = Chengdu) + MCC + sequence
    assert first.mid.startswith("89851015411")
    assert second.mid != first.mid
    assert int(second.mid[-4:]) == int(first.mid[-4:]) + 1


def test_kyc_reject_then_correct_and_resubmit(world: World) -> None:
    merchant = service.create_merchant(
        session=world.db, actor=world.specialist, **world.merchant_fields("individual")
    )
    _upload(world, merchant, "business_licence", "id_front", "id_back", "bank_card")
    service.submit_for_kyc(session=world.db, actor=world.specialist, merchant_id=merchant.id)
    with pytest.raises(ValidationFailed):
        service.reject_kyc(
            session=world.db, actor=world.reviewer, merchant_id=merchant.id, reason=""
        )
    service.reject_kyc(
        session=world.db, actor=world.reviewer, merchant_id=merchant.id, reason="ID copy blurred"
    )
    assert merchant.state == "rejected"
    assert merchant.kyc_notes == "ID copy blurred"
    assert merchant.mid is None
    fields = world.merchant_fields("individual", name="改正后的商户")
    fields["business_licence_no"] = merchant.business_licence_no
    fields["legal_person_id_number"] = world.db.get(Person, merchant.legal_person_id).id_number
    service.update_merchant(
        session=world.db, actor=world.specialist, merchant_id=merchant.id, **fields
    )
    assert merchant.state == "draft"
    assert merchant.name == "改正后的商户"
    service.submit_for_kyc(session=world.db, actor=world.specialist, merchant_id=merchant.id)
    service.approve_kyc(session=world.db, actor=world.reviewer, merchant_id=merchant.id)
    assert merchant.state == "approved" and merchant.mid


def test_only_kyc_reviewers_approve_and_approval_needs_review_state(world: World) -> None:
    merchant = service.create_merchant(
        session=world.db, actor=world.specialist, **world.merchant_fields()
    )
    with pytest.raises(PermissionDenied):
        service.approve_kyc(session=world.db, actor=world.specialist, merchant_id=merchant.id)
    with pytest.raises(InvalidTransition):
        service.approve_kyc(session=world.db, actor=world.reviewer, merchant_id=merchant.id)
    outsider = make_user(world.db, "front_desk_clerk")
    with pytest.raises(PermissionDenied):
        service.create_merchant(session=world.db, actor=outsider, **world.merchant_fields())


def test_same_licence_twice_is_a_conflict(world: World) -> None:
    fields = world.merchant_fields()
    service.create_merchant(session=world.db, actor=world.specialist, **fields)
    again = world.merchant_fields(business_licence_no=fields["business_licence_no"])
    with pytest.raises(Conflict) as exc:
        service.create_merchant(session=world.db, actor=world.specialist, **again)
    assert exc.value.field == "business_licence_no"


def test_provider_staff_see_only_their_own_subtrees_merchant_documents(world: World) -> None:
    """The generic document pages and API follow the merchants' provider scope."""
    from cardops.channel.models import ProviderUser
    from cardops.core.errors import NotFound
    from cardops.parties import service as parties

    merchant = service.create_merchant(
        session=world.db, actor=world.specialist, **world.merchant_fields("corporate")
    )
    _upload(world, merchant, "business_licence")
    [document] = parties.list_documents(
        session=world.db, actor=world.specialist, owner_type="merchant", owner_id=merchant.id
    )
    chengdu = make_user(world.db, "channel_specialist")
    beijing = make_user(world.db, "channel_specialist")
    world.db.add_all(
        [
            ProviderUser(user_id=chengdu.id, provider_id=world.cd.id),
            ProviderUser(user_id=beijing.id, provider_id=world.bj.id),
        ]
    )
    world.db.flush()
    assert parties.get_document(session=world.db, actor=chengdu, document_id=document.id)
    with pytest.raises(NotFound):
        parties.get_document(session=world.db, actor=beijing, document_id=document.id)
    with pytest.raises(NotFound):
        parties.open_document(session=world.db, actor=beijing, document_id=document.id)
    assert (
        parties.list_documents(
            session=world.db, actor=beijing, owner_type="merchant", owner_id=merchant.id
        )
        == []
    )
