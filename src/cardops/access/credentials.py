"""The credential-change log that door controllers and the decision cache follow.

Every service that changes something a door decision depends on (a card's state, holder,
validity, grants, parking permits; a door, group or schedule) calls :func:`touch_card` or
:func:`touch_door` in the same transaction. The row id is the credential-list version.
After the transaction commits, this process's decision cache is told to refresh before its next
decision (see ``access.engine``), so a loss report is enforced by every decision that starts
after the report commits.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from cardops.access.models import CredentialChange

_PENDING = "cardops.access.pending"
_listeners: list[Any] = []


def touch_card(session: Session, *, card_id: int, property_id: int, reason: str) -> None:
    session.add(CredentialChange(property_id=property_id, card_id=card_id, reason=reason[:32]))
    session.info[_PENDING] = True


def touch_door(session: Session, *, door_id: int | None, property_id: int, reason: str) -> None:
    session.add(CredentialChange(property_id=property_id, door_id=door_id, reason=reason[:32]))
    session.info[_PENDING] = True


def current_version(session: Session, property_id: int | None = None) -> int:
    stmt = select(func.max(CredentialChange.id))
    if property_id is not None:
        stmt = stmt.where(CredentialChange.property_id == property_id)
    return session.execute(stmt).scalar_one() or 0


def on_committed(callback: Any) -> Any:
    """Register ``callback()`` to run after a transaction with credential changes commits."""
    _listeners.append(callback)
    return callback


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.info.pop(_PENDING, False):
        for callback in list(_listeners):
            callback()


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, _previous: Any) -> None:
    session.info.pop(_PENDING, None)
