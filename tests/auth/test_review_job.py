from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from cardops.auth import service as auth
from cardops.auth.jobs import queue_permission_review
from cardops.notify.models import OutboxMessage
from tests.factories import make_user


def test_quarterly_review_is_mailed_once_per_quarter_to_reviewers(db: Session) -> None:
    director = make_user(db, "operations_director", username="director1")
    auth.update_user(
        session=db, actor=auth.system_user(db), user_id=director.id, email="director1@example.com"
    )
    make_user(db, "cashier", username="cash1")

    assert queue_permission_review(db, date(2026, 10, 1)) >= 1
    queue_permission_review(db, date(2026, 11, 15))  # same quarter: nothing new for director1
    queue_permission_review(db, date(2027, 1, 2))  # next quarter

    mails = (
        db.execute(select(OutboxMessage).where(OutboxMessage.recipient == "director1@example.com"))
        .scalars()
        .all()
    )
    assert len(mails) == 2
    assert "2026Q4" in mails[0].subject and "2027Q1" in mails[1].subject
    assert "cash1" in mails[0].body and "cashier" in mails[0].body
