"""Writing and verifying the audit log.

Every state change calls :func:`record` in the same transaction as the change. Each entry
carries the hash of the one before it, so an edited or deleted row breaks the chain and
:func:`verify` reports the first broken link.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, func, insert, inspect, or_, select, text
from sqlalchemy.orm import Session

from cardops.audit.models import AuditEntry
from cardops.core.clock import as_utc, utcnow
from cardops.core.db import is_postgres

if TYPE_CHECKING:
    from cardops.auth.models import User

GENESIS = "0" * 64
_SKIP_COLUMNS = {"password_hash", "token_hash", "csrf_token"}
_LOCK_KEY = 81_834_551  # advisory lock id that serialises chain appends on PostgreSQL
_HEAD_KEY = "cardops.audit.head"
# built once: building them per entry cost more than running them
_HEAD = select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)
_INSERT = insert(AuditEntry)
_INSERTED = (
    "seq",
    "at",
    "actor_id",
    "actor_name",
    "action",
    "entity_type",
    "entity_id",
    "before",
    "after",
    "extra",
    "prev_hash",
    "hash",
)


_PLAIN = frozenset({str, int, float, bool, type(None)})


def _jsonable(value: Any) -> Any:
    kind = type(value)
    if kind in _PLAIN:  # exact types first: most values are (a str enum is not)
        return value
    if kind is dict:
        return {str(k): _jsonable(v) for k, v in value.items()}
    if kind is list:
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_jsonable(v) for v in value]
    return value


def snapshot(entity: Any) -> dict[str, Any]:
    """The column values of a mapped object, JSON-ready, secrets left out."""
    mapper = inspect(entity).mapper
    return {
        attr.key: _jsonable(getattr(entity, attr.key))
        for attr in mapper.column_attrs
        if attr.key not in _SKIP_COLUMNS
    }


def _entity_ref(entity: Any) -> tuple[str, str]:
    if isinstance(entity, tuple):
        return str(entity[0]), str(entity[1])
    state = inspect(entity)
    identity = state.identity
    key = "-".join(str(v) for v in identity) if identity else ""
    return getattr(entity, "__tablename__", type(entity).__name__), key


def _digest(entry: AuditEntry) -> str:
    payload = {
        "seq": entry.seq,
        "at": as_utc(entry.at).isoformat(),
        "actor_id": entry.actor_id,
        "actor_name": entry.actor_name,
        "action": entry.action,
        "entity_type": entry.entity_type,
        "entity_id": entry.entity_id,
        "before": entry.before,
        "after": entry.after,
        "extra": entry.extra,
        "prev": entry.prev_hash,
    }
    canonical = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def record(
    session: Session,
    actor: User | None,
    action: str,
    entity: Any,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    **extra: Any,
) -> AuditEntry:
    """Append an entry. ``entity`` is a mapped object or a ``(type, id)`` pair.

    When ``after`` is omitted and ``entity`` is a mapped object, its current columns are used.
    The entry returned is written but not attached to the session (it has no ``id``).
    """
    session.flush()
    head: tuple[int, str] | None = session.info.get(_HEAD_KEY)
    if head is None:
        # First entry of this transaction: take the chain lock (held to the end of the
        # transaction on PostgreSQL; SQLite transactions already hold the write lock) and
        # read the head once. Later entries of the same transaction reuse it.
        if is_postgres(session):
            session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
        last = session.connection().execute(_HEAD).first()
        head = (last.seq, last.hash) if last else (0, GENESIS)
    entity_type, entity_id = _entity_ref(entity)
    if after is None and not isinstance(entity, tuple):
        after = snapshot(entity)
    entry = AuditEntry(
        seq=head[0] + 1,
        at=utcnow(),
        actor_id=actor.id if actor is not None else None,
        actor_name=actor.username if actor is not None else "system",
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        before=_jsonable(before) if before is not None else None,
        after=_jsonable(after) if after is not None else None,
        extra=_jsonable(extra) if extra else None,
        prev_hash=head[1],
    )
    entry.hash = _digest(entry)
    # a Core insert: an ORM add + flush cost several times more, on every audited change
    session.connection().execute(_INSERT, {column: getattr(entry, column) for column in _INSERTED})
    session.info[_HEAD_KEY] = (entry.seq, entry.hash)
    return entry


@event.listens_for(Session, "after_transaction_end")
def _forget_head(session: Session, _transaction: Any) -> None:
    """Any transaction or savepoint ending may have dropped entries: read the head again."""
    session.info.pop(_HEAD_KEY, None)


@dataclass(slots=True)
class VerifyResult:
    checked: int
    ok: bool
    broken_seq: int | None = None
    reason: str | None = None


def verify(session: Session, progress: Callable[[int], None] | None = None) -> VerifyResult:
    """Walk the chain in order; stop at the first entry that does not fit."""
    prev_hash = GENESIS
    expected_seq = 1
    checked = 0
    for entry in _iter_entries(session):
        if entry.seq != expected_seq:
            return VerifyResult(checked, False, expected_seq, "missing")
        if entry.prev_hash != prev_hash:
            return VerifyResult(checked, False, entry.seq, "prev_hash")
        if _digest(entry) != entry.hash:
            return VerifyResult(checked, False, entry.seq, "hash")
        prev_hash = entry.hash
        expected_seq += 1
        checked += 1
        if progress is not None:
            progress(1)
    return VerifyResult(checked, True)


def _iter_entries(session: Session, batch: int = 2000) -> Iterator[AuditEntry]:
    last_seq = 0
    while True:
        rows = (
            session.execute(
                select(AuditEntry)
                .where(AuditEntry.seq > last_seq)
                .order_by(AuditEntry.seq)
                .limit(batch)
            )
            .scalars()
            .all()
        )
        if not rows:
            return
        yield from rows
        last_seq = rows[-1].seq
        session.expunge_all()


def count(session: Session) -> int:
    return session.execute(select(func.count()).select_from(AuditEntry)).scalar_one()


def head_hash(session: Session) -> str:
    value = session.execute(
        select(AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)
    ).scalar_one_or_none()
    return value or GENESIS


def search(
    session: Session,
    *,
    q: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    entity_type: str | None = None,
    entity_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[AuditEntry]:
    stmt = select(AuditEntry).order_by(AuditEntry.seq.desc())
    if actor:
        stmt = stmt.where(AuditEntry.actor_name == actor)
    if action:
        stmt = stmt.where(AuditEntry.action.like(f"{action}%"))
    if entity_type:
        stmt = stmt.where(AuditEntry.entity_type == entity_type)
    if entity_id:
        stmt = stmt.where(AuditEntry.entity_id == entity_id)
    if since:
        stmt = stmt.where(AuditEntry.at >= since)
    if until:
        stmt = stmt.where(AuditEntry.at < until)
    if q:
        like = f"%{q}%"
        stmt = stmt.where(
            or_(
                AuditEntry.action.like(like),
                AuditEntry.actor_name.like(like),
                AuditEntry.entity_type.like(like),
                AuditEntry.entity_id == q,
            )
        )
    return list(session.execute(stmt.limit(limit).offset(offset)).scalars())


def history(session: Session, entity_type: str, entity_id: str | int) -> list[AuditEntry]:
    """Every entry about one entity, oldest first."""
    stmt = (
        select(AuditEntry)
        .where(AuditEntry.entity_type == entity_type, AuditEntry.entity_id == str(entity_id))
        .order_by(AuditEntry.seq)
    )
    return list(session.execute(stmt).scalars())
