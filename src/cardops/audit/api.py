"""REST API of the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from cardops.audit import service
from cardops.audit.permissions import AUDIT_VERIFY, AUDIT_VIEW
from cardops.auth.service import require
from cardops.web.deps import DB, ApiUser

router = APIRouter(tags=["audit"])


class AuditEntryOut(BaseModel):
    seq: int
    at: datetime
    actor_name: str
    action: str
    entity_type: str
    entity_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    extra: dict[str, Any] | None
    hash: str


class VerifyOut(BaseModel):
    ok: bool
    checked: int
    broken_seq: int | None
    reason: str | None


@router.get("/audit", response_model=list[AuditEntryOut], summary="Search the audit log")
def search(
    db: DB,
    user: ApiUser,
    q: str | None = Query(None, max_length=200),
    actor: str | None = Query(None, max_length=64),
    action: str | None = Query(None, max_length=96),
    entity_type: str | None = Query(None, max_length=64),
    entity_id: str | None = Query(None, max_length=64),
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=10_000_000),
) -> list[AuditEntryOut]:
    require(user, AUDIT_VIEW)
    rows = service.search(
        db,
        q=q,
        actor=actor,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
    return [
        AuditEntryOut(
            seq=r.seq,
            at=r.at,
            actor_name=r.actor_name,
            action=r.action,
            entity_type=r.entity_type,
            entity_id=r.entity_id,
            before=r.before,
            after=r.after,
            extra=r.extra,
            hash=r.hash,
        )
        for r in rows
    ]


@router.post("/audit/verify", response_model=VerifyOut, summary="Verify the hash chain")
def verify(db: DB, user: ApiUser) -> VerifyOut:
    require(user, AUDIT_VERIFY)
    result = service.verify(db)
    return VerifyOut(
        ok=result.ok, checked=result.checked, broken_seq=result.broken_seq, reason=result.reason
    )
