"""Demo merchants: two corporate merchants and one individual merchant, approved with MIDs, and
activation cases on units the channel demo delivered to provider CD: two activated (one of
them installed in 北京, outside CD's region, so flagged cross-region), one in initial review,
one overdue (submitted five days ago) and one returned for correction. Skipped gracefully when
the provider or its units are missing."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session
from stdnum.cn import ric, uscc

from cardops.channel.models import Provider
from cardops.core.clock import utcnow
from cardops.core.demo_loader import DemoContext
from cardops.merchants import service
from cardops.merchants.models import REQUIRED_DOCS, Merchant
from cardops.terminals.models import Terminal, TerminalState

PNG = b"\x89PNG\r\n\x1a\n" + b"cardops demo document"


def _uscc(n: int, area: str = "510100") -> str:
    body = f"91{area}MA{n:07d}"
    return body + uscc.calc_check_digit(body)


def _resident_id(n: int, area: str = "510100") -> str:
    body = f"{area}19850312{n:03d}"
    return body + ric.calc_check_digit(body + "0")


_Spec = tuple[str, str, int, str, str, str, str, str]
MERCHANTS: tuple[_Spec, ...] = (
    (
        "corporate",
        "成都蓉城便利店有限公司",
        1,
        "5411",
        "四川",
        "成都",
        "锦江区春熙路 18 号",
        "王建国",
    ),
    (
        "corporate",
        "成都天府餐饮管理有限公司",
        2,
        "5812",
        "四川",
        "成都",
        "武侯区人民南路 66 号",
        "刘芳",
    ),
    ("individual", "郫都区小李水果店", 3, "5499", "四川", "成都", "郫都区望丛路 9 号", "李小明"),
)


def _merchant(session: Session, ctx: DemoContext, spec: _Spec, provider: Provider) -> Merchant:
    kind, name, n, mcc, province, city, address, legal = spec
    clerk = ctx.users.get("channel_specialist") or ctx.admin
    reviewer = ctx.users.get("user_mgmt_reviewer") or ctx.admin
    merchant = service.create_merchant(
        session=session,
        actor=clerk,
        kind=kind,
        name=name,
        business_licence_no=_uscc(n),
        legal_person_name=legal,
        legal_person_id_number=_resident_id(n),
        legal_person_mobile=f"1390280{n:04d}",
        organisation_code=None,
        tax_registration_no=None,
        bank_name="中国银行成都分行",
        bank_account=f"62166100000{n:08d}",
        bank_account_name=name,
        mcc=mcc,
        province=province,
        city=city,
        address=address,
        provider_id=provider.id,
    )
    for options in REQUIRED_DOCS[kind]:
        doc_type = options[0]
        service.upload_merchant_document(
            session=session,
            actor=clerk,
            merchant_id=merchant.id,
            doc_type=doc_type,
            filename=f"{doc_type}.png",
            data=PNG + doc_type.encode() + name.encode(),
            content_type="image/png",
        )
    service.submit_for_kyc(session=session, actor=clerk, merchant_id=merchant.id)
    return service.approve_kyc(
        session=session, actor=reviewer, merchant_id=merchant.id, note="资料齐全"
    )


def _documents(tag: str) -> list[service.NewDocument]:
    return [
        service.NewDocument(
            "application_form", f"申请表-{tag}.pdf", b"%PDF-1.4 demo " + tag.encode()
        ),
        service.NewDocument("id_front", f"身份证正面-{tag}.png", PNG + b"front" + tag.encode()),
        service.NewDocument("id_back", f"身份证反面-{tag}.png", PNG + b"back" + tag.encode()),
    ]


def load(session: Session, ctx: DemoContext) -> None:
    provider = session.execute(select(Provider).where(Provider.code == "CD")).scalar_one_or_none()
    if provider is None:
        return
    merchants = [_merchant(session, ctx, spec, provider) for spec in MERCHANTS]
    units = list(
        session.execute(
            select(Terminal)
            .where(
                Terminal.provider_id == provider.id,
                Terminal.state == TerminalState.AT_PROVIDER.value,
            )
            .order_by(Terminal.id)
            .limit(5)
        ).scalars()
    )
    if len(units) < 5 or service.region_for_province(session, "四川") is None:
        return
    clerk = ctx.users.get("channel_specialist") or ctx.admin
    reviewer = ctx.users.get("user_mgmt_reviewer") or ctx.admin
    callback = ctx.users.get("call_agent") or reviewer
    plans = (
        ("activated", merchants[0], "四川", "成都", "锦江区春熙路 18 号", "张伟"),
        ("activated", merchants[1], "北京", "北京", "朝阳区建国路 88 号", "陈静"),
        ("in_review", merchants[1], "四川", "成都", "武侯区人民南路 66 号", "杨洋"),
        ("overdue", merchants[2], "四川", "成都", "郫都区望丛路 9 号", "赵磊"),
        ("returned", merchants[0], "四川", "成都", "青羊区宽窄巷子 3 号", "黄丽"),
    )
    for i, (plan, merchant, province, city, address, applicant) in enumerate(plans):
        case = service.apply(
            session=session,
            actor=clerk,
            serial=units[i].serial,
            merchant_id=merchant.id,
            applicant_name=applicant,
            applicant_id_number=_resident_id(100 + i),
            applicant_mobile=f"1380280{i:04d}",
            install_province=province,
            install_city=city,
            install_address=address,
            documents=_documents(str(i)),
        )
        if plan == "activated":
            service.pass_review(
                session=session,
                actor=reviewer,
                case_id=case.id,
                platform="富友",
                platform_reference=f"FY2026{i:06d}",
            )
            service.record_verdict(
                session=session, actor=reviewer, case_id=case.id, approved=True, note="平台已开通"
            )
            service.record_callback(
                session=session, actor=callback, case_id=case.id, note="已电话通知用户，可以使用"
            )
            if i == 0:
                service.archive(session=session, actor=reviewer, case_id=case.id)
        elif plan == "in_review":
            service.start_review(session=session, actor=reviewer, case_id=case.id)
        elif plan == "overdue":
            case.submitted_at = utcnow() - timedelta(days=5)
            case.due_at = service.add_working_days(case.submitted_at, service.WORKING_DAYS_TARGET)
            session.flush()
        elif plan == "returned":
            service.return_case(
                session=session,
                actor=reviewer,
                case_id=case.id,
                reason="身份证复印件不清晰，请重新扫描",
            )
