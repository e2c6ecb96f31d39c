"""Door codes: encrypted at rest, never in lists, revealed only to a permitted role (audited),
residents notified one week ahead."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from cardops.access import service
from cardops.access.models import DoorCode, Property
from cardops.audit.models import AuditEntry
from cardops.auth import service as auth
from cardops.core.errors import PermissionDenied, ValidationFailed
from cardops.notify.models import OutboxMessage
from cardops.parties.models import Person
from tests.access.conftest import make_card
from tests.factories import api_headers, console, make_user

QUARTER = service.next_quarter_start(service.local_today())


def _rotate(db: Session, sunny: Property) -> service.RotationResult:
    result = service.rotate_door_codes(
        session=db, actor=auth.system_user(db), quarter_start=QUARTER
    )
    db.commit()
    return result


def test_codes_are_encrypted_and_residents_notified(db: Session, sunny: Property) -> None:
    resident = Person(name="李四", email="li.si@example.com", mobile="13800138000")
    other = Person(name="王五", email="wang@example.com")
    db.add_all([resident, other])
    db.flush()
    make_card(db, sunny, "R-1", unit="1-101", person_id=resident.id)
    make_card(db, sunny, "R-2", unit="2-101", person_id=other.id, grants=[("B2", "ALWAYS")])
    make_card(db, sunny, "R-LOST", state="lost", unit="1-102", person_id=other.id)
    result = _rotate(db, sunny)
    assert len(result.created) == 4  # LOBBY-1, UNIT-1, LOBBY-2, UNIT-2
    rows = db.execute(select(DoorCode).where(DoorCode.valid_from == QUARTER)).scalars().all()
    assert {r.valid_until for r in rows} == {service.quarter_end(QUARTER)}
    for row in rows:
        plain = service.decrypt_code(row.code_encrypted)
        assert len(plain) == 6 and plain.isdigit()
        assert plain not in row.code_encrypted
    messages = (
        db.execute(select(OutboxMessage).where(OutboxMessage.ref.like("building:%")))
        .scalars()
        .all()
    )
    recipients = sorted((m.channel, m.recipient) for m in messages)
    assert recipients == [
        ("email", "li.si@example.com"),
        ("email", "wang@example.com"),
        ("sms", "13800138000"),
    ]
    # sent one week before the quarter (local midnight), or now if that has passed
    week_ahead = service._local_midnight(QUARTER - timedelta(days=7))
    assert {m.next_attempt_at for m in messages} == {max(week_ahead, messages[0].created_at)}
    # running again keeps the codes and queues nothing twice
    again = _rotate(db, sunny)
    assert again.created == []
    assert (
        len(
            db.execute(select(OutboxMessage).where(OutboxMessage.ref.like("building:%")))
            .scalars()
            .all()
        )
        == 3
    )


def test_rotation_needs_a_quarter_start(db: Session, sunny: Property) -> None:
    with pytest.raises(ValidationFailed):
        service.rotate_door_codes(
            session=db, actor=auth.system_user(db), quarter_start=QUARTER + timedelta(days=1)
        )
    assert service.codes_due(db, QUARTER - timedelta(days=11)) == QUARTER
    assert service.codes_due(db, QUARTER - timedelta(days=60)) is None
    _rotate(db, sunny)
    assert service.codes_due(db, QUARTER - timedelta(days=11)) is None


def test_list_never_shows_the_code_and_reveal_is_audited(
    app: FastAPI, db: Session, sunny: Property
) -> None:
    _rotate(db, sunny)
    row = db.execute(select(DoorCode).order_by(DoorCode.id)).scalars().first()
    assert row is not None
    plain = service.decrypt_code(row.code_encrypted)
    supervisor = console(app, db, "cs_supervisor")
    page = supervisor.get("/access/door-codes")
    assert page.status_code == 200
    assert "LOBBY-1" in page.text
    for code in db.execute(select(DoorCode)).scalars():
        assert service.decrypt_code(code.code_encrypted) not in page.text
    shown = supervisor.post(f"/access/door-codes/{row.id}/reveal", {"why": "resident called"})
    assert shown.status_code == 200
    assert plain in shown.text
    audit = (
        db.execute(select(AuditEntry).where(AuditEntry.action == "door_code.revealed"))
        .scalars()
        .all()
    )
    assert [(a.actor_name, a.entity_id) for a in audit] == [(supervisor.user.username, str(row.id))]
    assert plain not in str(audit[0].after)


def test_reveal_refused_without_the_permission(
    app: FastAPI, client: TestClient, db: Session, sunny: Property
) -> None:
    _rotate(db, sunny)
    row = db.execute(select(DoorCode)).scalars().first()
    assert row is not None
    clerk = console(app, db, "front_desk_clerk")
    assert clerk.get("/access/door-codes").status_code == 403
    refused = clerk.post(f"/access/door-codes/{row.id}/reveal")
    assert refused.status_code == 403
    assert service.decrypt_code(row.code_encrypted) not in refused.text
    with pytest.raises(PermissionDenied):
        service.reveal_door_code(
            session=db, actor=make_user(db, "department_manager"), door_code_id=row.id
        )
    api = client.post(
        f"/api/v1/access/door-codes/{row.id}/reveal", headers=api_headers(db, "front_desk_clerk")
    )
    assert api.status_code == 403
    listed = client.get("/api/v1/access/door-codes", headers=api_headers(db, "cs_supervisor"))
    assert listed.status_code == 200
    assert "code" not in listed.json()[0]
    revealed = client.post(
        f"/api/v1/access/door-codes/{row.id}/reveal", headers=api_headers(db, "cs_supervisor")
    )
    assert revealed.json()["code"] == service.decrypt_code(row.code_encrypted)
