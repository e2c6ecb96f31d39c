"""Opening sub-ledgers in bulk: what exists is kept, the rest is opened with one audit entry,
every spec is checked like create_account, and the audit chain stays valid."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cardops.audit import service as audit
from cardops.audit.models import AuditEntry
from cardops.auth.models import User
from cardops.core.errors import PermissionDenied, ValidationFailed
from cardops.ledger import service
from cardops.ledger.chart import CASH, WALLET_FLOAT
from cardops.ledger.models import Account
from tests.factories import make_user


def _spec(n: int, **kw: object) -> service.AccountSpec:
    values: dict[str, object] = {
        "code": f"wallet:card:{n}",
        "name_en": f"Wallet of card {n}",
        "name_zh": f"卡{n}钱包",
        "type": "liability",
        "parent_code": WALLET_FLOAT,
        "owner_type": "card",
        "owner_id": n,
    }
    values.update(kw)
    return service.AccountSpec(**values)  # type: ignore[arg-type]


def _audit_count(db: Session) -> int:
    return db.execute(select(func.count()).select_from(AuditEntry)).scalar_one()


def test_opens_the_missing_ones_once_with_one_audit_entry(db: Session, finance: User) -> None:
    kept = service.ensure_account(
        session=db,
        actor=finance,
        code="wallet:card:2",
        name_en="Old name",
        name_zh="旧名",
        type="liability",
        parent_code=WALLET_FLOAT,
        owner_type="card",
        owner_id=2,
    )
    entries = _audit_count(db)
    opened = service.ensure_accounts(
        session=db, actor=finance, specs=[_spec(n) for n in (1, 2, 3, 3)]
    )
    assert opened == 2
    assert _audit_count(db) == entries + 1
    entry = db.execute(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1)).scalar_one()
    assert entry.action == "ledger.accounts_created"
    assert entry.after == {"count": 2, "codes": ["wallet:card:1", "wallet:card:3"]}
    parent = service.get_account_by_code(db, WALLET_FLOAT)
    three = service.get_account_by_code(db, "wallet:card:3")
    assert (three.parent_id, three.owner_type, three.owner_id, three.type, three.currency) == (
        parent.id,
        "card",
        3,
        "liability",
        parent.currency,
    )
    assert three.name_zh == "卡3钱包" and three.is_active
    db.refresh(kept)
    assert kept.name_en == "Old name"
    # again: nothing to open, nothing audited
    assert service.ensure_accounts(session=db, actor=finance, specs=[_spec(1), _spec(3)]) == 0
    assert _audit_count(db) == entries + 1
    # the new accounts take postings and roll up
    service.post(
        session=db, actor=finance, lines=[(CASH, 700), ("wallet:card:3", -700)], description="t"
    )
    assert service.balance(db, "wallet:card:3") == -700
    assert audit.verify(db).ok


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"code": "has space"}, "code"),
        ({"type": "liabilities"}, "type"),
        ({"parent_code": "no-such"}, "parent"),
        ({"type": "asset", "parent_code": WALLET_FLOAT}, "parent"),
        ({"owner_id": None}, "owner_id"),
        ({"name_zh": ""}, "name_zh"),
    ],
)
def test_a_bad_spec_opens_nothing(
    db: Session, finance: User, bad: dict[str, object], field: str
) -> None:
    before = db.execute(select(func.count()).select_from(Account)).scalar_one()
    with pytest.raises(ValidationFailed) as exc:
        service.ensure_accounts(
            session=db, actor=finance, specs=[_spec(10), _spec(11, **bad), _spec(12)]
        )
    assert exc.value.field == field
    assert db.execute(select(func.count()).select_from(Account)).scalar_one() == before


def test_a_sub_account_as_parent_is_refused(db: Session, finance: User) -> None:
    service.ensure_accounts(session=db, actor=finance, specs=[_spec(20)])
    with pytest.raises(ValidationFailed) as exc:
        service.ensure_accounts(
            session=db, actor=finance, specs=[_spec(21, parent_code="wallet:card:20")]
        )
    assert exc.value.field == "parent"


def test_needs_the_permission(db: Session) -> None:
    cashier = make_user(db, "cashier")
    with pytest.raises(PermissionDenied):
        service.ensure_accounts(session=db, actor=cashier, specs=[_spec(30)])
