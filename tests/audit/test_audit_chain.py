from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

from cardops.audit import service as audit
from cardops.audit.models import AuditEntry
from tests.factories import make_user


def test_state_changes_are_audited_with_before_and_after(db: Session) -> None:
    from cardops.auth import service as auth

    user = make_user(db, "cashier")
    admin = make_user(db, "sysadmin")
    auth.update_user(session=db, actor=admin, user_id=user.id, display_name="Renamed")
    entries = audit.history(db, "users", user.id)
    actions = [e.action for e in entries]
    assert "user.created" in actions and "user.role_granted" in actions
    last = entries[-1]
    assert last.action == "user.updated"
    assert last.actor_name == admin.username
    assert last.after is not None and last.after["display_name"] == "Renamed"
    assert last.before is not None and last.before["display_name"] != "Renamed"
    assert "password_hash" not in last.after


def test_verify_catches_an_edited_row(db: Session) -> None:
    make_user(db, "cashier")
    make_user(db, "cashier")
    assert audit.verify(db).ok
    victim = db.query(AuditEntry).order_by(AuditEntry.seq.desc()).offset(2).first()
    assert victim is not None
    seq = victim.seq
    db.execute(
        text("UPDATE audit_log SET actor_name = 'mallory' WHERE id = :id"), {"id": victim.id}
    )
    db.expire_all()
    result = audit.verify(db)
    assert not result.ok
    assert result.broken_seq == seq
    assert result.reason == "hash"


def test_verify_catches_a_deleted_row(db: Session) -> None:
    make_user(db, "cashier")
    make_user(db, "cashier")
    victim = db.query(AuditEntry).order_by(AuditEntry.seq.desc()).offset(1).first()
    assert victim is not None
    seq = victim.seq
    db.execute(text("DELETE FROM audit_log WHERE id = :id"), {"id": victim.id})
    db.expire_all()
    result = audit.verify(db)
    assert not result.ok
    assert result.broken_seq == seq
    assert result.reason == "missing"
