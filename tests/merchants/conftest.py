"""A small world for the merchants tests: regions with reviewers, a provider tree, units
delivered to the Chengdu provider, and valid licence / ID numbers."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from stdnum.cn import ric, uscc

from cardops.auth.models import User
from cardops.channel.models import Provider, Region
from cardops.merchants import service
from cardops.merchants.models import ActivationCase, Merchant
from cardops.terminals.models import Supplier
from cardops.terminals.service import Terminal, TerminalModel, location_for
from tests.factories import make_user

_seq = itertools.count(1)
PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 32


def make_uscc(n: int | None = None, area: str = "510100") -> str:
    """A valid unified social credit code for Chengdu (area 510100)."""
    number = n if n is not None else next(_seq)
    body = f"91{area}{number:09d}"
    return body + uscc.calc_check_digit(body)


def make_id(n: int | None = None) -> str:
    """A valid resident ID (Chengdu, born 1990)."""
    number = n if n is not None else next(_seq)
    body = f"51010019900101{number % 1000:03d}"
    return body + ric.calc_check_digit(body + "0")


def _region(db: Session, code: str, name_zh: str, name_en: str, provinces: list[str]) -> Region:
    region = db.get(Region, code)
    if region is None:
        region = Region(code=code, name_zh=name_zh, name_en=name_en, provinces=provinces)
        db.add(region)
    else:
        region.provinces = sorted(set(region.provinces or []) | set(provinces))
    db.flush()
    return region


def _provider(db: Session, code: str, **kw: object) -> Provider:
    provider = db.execute(select(Provider).where(Provider.code == code)).scalar_one_or_none()
    if provider is None:
        provider = Provider(code=code, **kw)
        db.add(provider)
        db.flush()
    return provider


@dataclass
class World:
    db: Session
    specialist: User
    reviewer: User  # south-west (四川)
    north_reviewer: User  # north (北京)
    hq: Provider
    cd: Provider
    bj: Provider
    model: TerminalModel
    supplier: Supplier
    terminals: list[Terminal] = field(default_factory=list)

    def unit(self, provider: Provider | None = None) -> Terminal:
        """A fresh unit at a provider (Chengdu by default)."""
        provider = provider or self.cd
        n = next(_seq)
        location = location_for(self.db, "provider", provider.id, provider.name)
        unit = Terminal(
            serial=f"MT{n:08d}",
            model_id=self.model.id,
            supplier_id=self.supplier.id,
            state="at_provider",
            location_id=location.id,
            provider_id=provider.id,
        )
        self.db.add(unit)
        self.db.flush()
        return unit

    def reviewer_for(self, case: ActivationCase) -> User:
        return self.north_reviewer if case.region_code == "north" else self.reviewer

    def merchant_fields(self, kind: str = "corporate", **over: object) -> dict[str, object]:
        values: dict[str, object] = {
            "kind": kind,
            "name": f"测试商户 {next(_seq)}",
            "business_licence_no": make_uscc(),
            "legal_person_name": "张三",
            "legal_person_id_number": make_id(),
            "bank_name": "中国银行成都分行",
            "bank_account": "6222020200112233445",
            "bank_account_name": "测试商户",
            "mcc": "5411",
            "province": "四川",
            "city": "成都",
            "address": "高新区天府大道 1 号",
            "provider_id": self.cd.id,
        }
        values.update(over)
        return values

    def approved_merchant(self, kind: str = "corporate") -> Merchant:
        merchant = service.create_merchant(
            session=self.db,
            actor=self.specialist,
            **self.merchant_fields(kind),  # type: ignore[arg-type]
        )
        for doc_type in (
            "business_licence",
            "organisation_code_certificate",
            "tax_registration_certificate",
            "id_front",
            "id_back",
            "bank_account_permit",
        ):
            service.upload_merchant_document(
                session=self.db,
                actor=self.specialist,
                merchant_id=merchant.id,
                doc_type=doc_type,
                filename=f"{doc_type}.png",
                data=PNG + doc_type.encode(),
            )
        service.submit_for_kyc(session=self.db, actor=self.specialist, merchant_id=merchant.id)
        return service.approve_kyc(session=self.db, actor=self.reviewer, merchant_id=merchant.id)


def case_documents() -> list[service.NewDocument]:
    return [
        service.NewDocument("application_form", "form.pdf", b"%PDF-1.4 application form"),
        service.NewDocument("id_front", "front.png", PNG + b"front"),
        service.NewDocument("id_back", "back.png", PNG + b"back"),
    ]


@pytest.fixture
def world(db: Session) -> World:
    reviewer = make_user(db, "user_mgmt_reviewer")
    north_reviewer = make_user(db, "user_mgmt_reviewer")
    _region(
        db, "southwest", "西南", "South-west", ["四川", "贵州", "云南", "广西"]
    ).reviewer_id = reviewer.id
    _region(
        db, "north", "华北", "North", ["山西", "陕西", "河北", "北京", "天津"]
    ).reviewer_id = north_reviewer.id
    db.flush()
    hq = _provider(db, "MT-HQ", name="总部 HQ (test)", level="hq")
    cd = _provider(
        db,
        "MT-CD",
        name="成都测试服务商",
        level="city",
        parent_id=hq.id,
        provinces=["四川"],
        cities=["成都"],
    )
    bj = _provider(
        db, "MT-BJ", name="北京测试服务商", level="city", parent_id=hq.id, provinces=["北京"]
    )
    supplier = Supplier(name=f"MT supplier {next(_seq)}", kind="manufacturer")
    db.add(supplier)
    db.flush()
    model = TerminalModel(code=f"MT-POS-{next(_seq)}", name="Test POS", supplier_id=supplier.id)
    db.add(model)
    db.flush()
    return World(
        db=db,
        specialist=make_user(db, "channel_specialist"),
        reviewer=reviewer,
        north_reviewer=north_reviewer,
        hq=hq,
        cd=cd,
        bj=bj,
        model=model,
        supplier=supplier,
    )
