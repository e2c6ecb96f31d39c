"""REST API of the approvals domain: chains, requests, decisions, history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from cardops.approvals import service
from cardops.approvals.models import (
    ApprovalChain,
    ApprovalRequest,
    ApprovalRequestStep,
    ApprovalStep,
    RequestState,
)
from cardops.approvals.schemas import (
    ActionOut,
    ChainIn,
    ChainOut,
    DecisionIn,
    RequestIn,
    RequestOut,
    RequestSummaryOut,
    ResubmitIn,
    StepOut,
)
from cardops.auth.models import User
from cardops.web.deps import DB, ApiUser

router = APIRouter(tags=["approvals"])

RequestId = Annotated[int, Path(ge=1, le=2_147_483_647)]
Kind = Annotated[str, Path(min_length=1, max_length=64)]


def step_out(step: ApprovalStep | ApprovalRequestStep) -> StepOut:
    return StepOut(
        position=step.position,
        role=step.role.code,
        role_name_en=step.role.name_en,
        role_name_zh=step.role.name_zh,
        label=step.label,
    )


def chain_out(chain: ApprovalChain) -> ChainOut:
    return ChainOut(
        kind=chain.kind,
        name_en=chain.name_en,
        name_zh=chain.name_zh,
        active=chain.active,
        steps=[step_out(s) for s in chain.steps],
    )


def _summary(request: ApprovalRequest) -> dict[str, object]:
    current = request.current
    return {
        "id": request.id,
        "number": request.number,
        "kind": request.kind,
        "title": request.title,
        "state": request.state,
        "round": request.round,
        "current_step": request.current_step,
        "current_role": current.role.code if current else None,
        "submitter": request.submitter.username,
        "submitted_at": request.submitted_at,
        "decided_at": request.decided_at,
    }


def summary_out(request: ApprovalRequest) -> RequestSummaryOut:
    return RequestSummaryOut.model_validate(_summary(request))


def request_out(request: ApprovalRequest, user: User) -> RequestOut:
    return RequestOut.model_validate(
        {
            **_summary(request),
            "description": request.description,
            "payload": request.payload,
            "subject_type": request.subject_type,
            "subject_id": request.subject_id,
            "steps": [step_out(s) for s in request.steps],
            "history": [
                ActionOut(
                    round=a.round,
                    step=a.step,
                    role=a.role.code if a.role else None,
                    action=a.action,
                    actor=a.actor.username,
                    actor_name=a.actor.display_name,
                    comment=a.comment,
                    at=a.at,
                )
                for a in request.actions
            ],
            "can_decide": service.can_decide(user, request),
            "can_resubmit": service.can_resubmit(user, request),
            "can_withdraw": service.can_withdraw(user, request),
        }
    )


# --- chains ---------------------------------------------------------------------------------


@router.get("/approvals/chains", response_model=list[ChainOut], summary="List approval chains")
def list_chains(
    db: DB, user: ApiUser, active_only: bool = Query(False, description="Only chains in use")
) -> list[ChainOut]:
    return [chain_out(c) for c in service.list_chains(session=db, active_only=active_only)]


@router.get("/approvals/chains/{kind}", response_model=ChainOut, summary="One approval chain")
def get_chain(db: DB, user: ApiUser, kind: Kind) -> ChainOut:
    return chain_out(service.get_chain(session=db, kind=kind))


@router.put(
    "/approvals/chains/{kind}",
    response_model=ChainOut,
    summary="Define or replace the chain of a kind of request (steps are role codes, in order)",
)
def put_chain(db: DB, user: ApiUser, kind: Kind, body: ChainIn) -> ChainOut:
    existing = service.find_chain(db, kind)
    steps = [
        s if isinstance(s, str) else service.StepSpec(role=s.role, label=s.label)
        for s in body.steps
    ]
    chain = service.define_chain(
        session=db,
        actor=user,
        kind=kind,
        name_en=body.name_en
        if body.name_en is not None
        else (existing.name_en if existing else ""),
        name_zh=body.name_zh
        if body.name_zh is not None
        else (existing.name_zh if existing else ""),
        steps=steps,
        active=body.active,
    )
    db.commit()
    return chain_out(chain)


# --- requests -------------------------------------------------------------------------------


@router.post(
    "/approvals/requests", response_model=RequestOut, status_code=201, summary="Submit a request"
)
def submit(db: DB, user: ApiUser, body: RequestIn) -> RequestOut:
    request = service.submit(
        session=db,
        actor=user,
        kind=body.kind,
        title=body.title,
        description=body.description,
        payload=body.payload,
    )
    db.commit()
    return request_out(request, user)


@router.get(
    "/approvals/requests",
    response_model=list[RequestSummaryOut],
    summary="Requests waiting for you (box=inbox), yours (mine) or all (all, approvals.view_all)",
)
def list_requests(
    db: DB,
    user: ApiUser,
    box: service.Box = "inbox",
    state: RequestState | None = None,
    kind: str | None = Query(None, max_length=64),
    limit: int = Query(100, ge=1, le=500),
    offset: int = Query(0, ge=0, le=1_000_000),
) -> list[RequestSummaryOut]:
    rows = service.requests_in_box(
        session=db,
        actor=user,
        box=box,
        state=state.value if state else None,
        kind=kind,
        limit=limit,
        offset=offset,
    )
    return [summary_out(r) for r in rows]


@router.get(
    "/approvals/requests/{request_id}",
    response_model=RequestOut,
    summary="One request with its steps and full history",
)
def get_request(db: DB, user: ApiUser, request_id: RequestId) -> RequestOut:
    return request_out(service.get_request(session=db, request_id=request_id, actor=user), user)


@router.post(
    "/approvals/requests/{request_id}/approve",
    response_model=RequestOut,
    summary="Approve the current step (you must hold its role)",
)
def approve(
    db: DB, user: ApiUser, request_id: RequestId, body: DecisionIn | None = None
) -> RequestOut:
    request = service.approve(
        session=db, actor=user, request_id=request_id, comment=body.comment if body else ""
    )
    db.commit()
    return request_out(request, user)


@router.post(
    "/approvals/requests/{request_id}/reject",
    response_model=RequestOut,
    summary="Reject with a comment; the request goes back to its submitter",
)
def reject(db: DB, user: ApiUser, request_id: RequestId, body: DecisionIn) -> RequestOut:
    request = service.reject(session=db, actor=user, request_id=request_id, comment=body.comment)
    db.commit()
    return request_out(request, user)


@router.post(
    "/approvals/requests/{request_id}/resubmit",
    response_model=RequestOut,
    summary="Correct a rejected request and send it again from step 1 (submitter only)",
)
def resubmit(db: DB, user: ApiUser, request_id: RequestId, body: ResubmitIn) -> RequestOut:
    request = service.resubmit(
        session=db,
        actor=user,
        request_id=request_id,
        title=body.title,
        description=body.description,
        payload=body.payload,
        comment=body.comment,
    )
    db.commit()
    return request_out(request, user)


@router.post(
    "/approvals/requests/{request_id}/withdraw",
    response_model=RequestOut,
    summary="Withdraw a pending or rejected request (submitter only)",
)
def withdraw(
    db: DB, user: ApiUser, request_id: RequestId, body: DecisionIn | None = None
) -> RequestOut:
    request = service.withdraw(
        session=db, actor=user, request_id=request_id, comment=body.comment if body else ""
    )
    db.commit()
    return request_out(request, user)
