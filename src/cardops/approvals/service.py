"""Approval chains and requests. The only code that changes them; it never commits.

Other domains use two things from here:

* :func:`submit` puts a request (linked to their record with ``subject=``) into a chain;
* :func:`on_decided` registers a callback that runs in the same transaction when a request
  of a kind is approved at its last step, rejected, or withdrawn.

Deciding on a step needs no permission: it needs the step's role, and the person who
submitted a request may never decide on it (segregation of duties).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from sqlalchemy import and_, inspect, select
from sqlalchemy.orm import Session

from cardops.approvals.models import (
    ActionKind,
    ApprovalAction,
    ApprovalChain,
    ApprovalRequest,
    ApprovalRequestStep,
    ApprovalStep,
    RequestState,
)
from cardops.approvals.permissions import APPROVALS_DEFINE, APPROVALS_SUBMIT, APPROVALS_VIEW_ALL
from cardops.audit.service import record
from cardops.auth.models import Role, User
from cardops.auth.service import has_permission, require
from cardops.core.clock import utcnow
from cardops.core.errors import CardopsError, NotFound, PermissionDenied, ValidationFailed
from cardops.core.i18n import current_locale
from cardops.core.models import next_number

KIND_PATTERN = re.compile(r"^[a-z][a-z0-9_]{1,63}$")
NAME_MAX = 128
LABEL_MAX = 128
TITLE_MAX = 200
DESCRIPTION_MAX = 4000
COMMENT_MAX = 2000
PAYLOAD_MAX = 20_000  # characters of JSON
MAX_STEPS = 20

Box = Literal["inbox", "mine", "all"]


@dataclass(frozen=True, slots=True)
class StepSpec:
    """One step of a chain being defined: a role code and an optional label."""

    role: str
    label: str = ""


# --- the extension point for other domains ----------------------------------------------


class DecisionHandler(Protocol):
    def __call__(self, *, session: Session, request: ApprovalRequest, actor: User) -> None: ...


_HANDLERS: dict[str, list[DecisionHandler]] = {}


def on_decided(kind: str, callback: DecisionHandler) -> DecisionHandler:
    """Call ``callback(session=…, request=…, actor=…)`` when a request of ``kind`` is decided.

    It runs inside the transaction that approves (at the last step), rejects or withdraws the
    request; look at ``request.state`` to tell which. An exception it raises undoes the
    decision. Requests submitted by hand through the console or API carry no subject, so a
    handler that acts on ``request.subject_id`` must ignore requests without one.
    """
    handlers = _HANDLERS.setdefault(kind, [])
    if callback not in handlers:
        handlers.append(callback)
    return callback


def remove_handler(kind: str, callback: DecisionHandler) -> None:
    handlers = _HANDLERS.get(kind, [])
    if callback in handlers:
        handlers.remove(callback)


def _fire_decided(session: Session, request: ApprovalRequest, actor: User) -> None:
    for handler in list(_HANDLERS.get(request.kind, ())):
        handler(session=session, request=request, actor=actor)


# --- input checks ---------------------------------------------------------------------------


def _text(value: str | None, *, field: str, max_len: int) -> str:
    text = (value or "").strip()
    if "\x00" in text:
        raise ValidationFailed("The text contains a character that is not allowed.", field=field)
    if len(text) > max_len:
        raise ValidationFailed("Too long: at most {n} characters.", field=field, n=max_len)
    return text


def _title(value: str | None) -> str:
    title = _text(value, field="title", max_len=TITLE_MAX)
    if not title:
        raise ValidationFailed("Enter a title.", field="title")
    return title


def _payload(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValidationFailed("The details must be a JSON object.", field="payload")
    try:
        dumped = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValidationFailed("The details must be a JSON object.", field="payload") from exc
    if len(dumped) > PAYLOAD_MAX:
        raise ValidationFailed(
            "The details are too large: at most {n} characters of JSON.",
            field="payload",
            n=PAYLOAD_MAX,
        )
    if "\x00" in dumped or "\\u0000" in dumped:
        raise ValidationFailed(
            "The text contains a character that is not allowed.", field="payload"
        )
    loaded: dict[str, Any] = json.loads(dumped)
    return loaded


def _subject_ref(session: Session, subject: Any) -> tuple[str | None, str | None]:
    """``subject`` is a mapped object or a ``(type, id)`` pair; stored as two strings."""
    if subject is None:
        return None, None
    if isinstance(subject, tuple):
        kind, key = str(subject[0]), str(subject[1])
    else:
        session.flush()
        identity = inspect(subject).identity
        if not identity:
            raise ValueError("the subject of an approval request must be saved first")
        kind = str(getattr(subject, "__tablename__", type(subject).__name__))
        key = "-".join(str(v) for v in identity)
    if not kind or len(kind) > 64 or len(key) > 64:
        raise ValueError(f"subject reference too long: {kind!r} {key!r}")
    return kind, key


def _role_ids(user: User) -> set[int]:
    return {link.role_id for link in user.roles}


def _locale() -> str:
    return current_locale.get()


# --- chains ---------------------------------------------------------------------------------


def _chain_snapshot(chain: ApprovalChain) -> dict[str, Any]:
    return {
        "kind": chain.kind,
        "name_en": chain.name_en,
        "name_zh": chain.name_zh,
        "active": chain.active,
        "steps": [{"role": s.role.code, "label": s.label} for s in chain.steps],
    }


def role_choices(session: Session) -> list[Role]:
    """Every role, for picking the steps of a chain."""
    return list(session.execute(select(Role).order_by(Role.code)).scalars())


def list_chains(*, session: Session, active_only: bool = False) -> list[ApprovalChain]:
    stmt = select(ApprovalChain).order_by(ApprovalChain.kind)
    if active_only:
        stmt = stmt.where(ApprovalChain.active.is_(True))
    return list(session.execute(stmt).scalars())


def find_chain(session: Session, kind: str) -> ApprovalChain | None:
    return session.execute(
        select(ApprovalChain).where(ApprovalChain.kind == (kind or "").strip().lower())
    ).scalar_one_or_none()


def get_chain(*, session: Session, kind: str) -> ApprovalChain:
    chain = find_chain(session, kind)
    if chain is None:
        raise NotFound("There is no approval chain for the kind “{kind}”.", field="kind", kind=kind)
    return chain


def define_chain(
    *,
    session: Session,
    actor: User,
    kind: str,
    name_en: str,
    name_zh: str,
    steps: Sequence[str | StepSpec],
    active: bool = True,
) -> ApprovalChain:
    """Create the chain for ``kind`` or replace its names and steps (role codes, in order).

    Requests already submitted keep the steps they were submitted with.
    """
    require(actor, APPROVALS_DEFINE)
    kind = (kind or "").strip().lower()
    if not KIND_PATTERN.match(kind):
        raise ValidationFailed(
            "A kind is 2–64 lower-case letters, digits or '_', starting with a letter.",
            field="kind",
        )
    name_en = _text(name_en, field="name_en", max_len=NAME_MAX)
    if not name_en:
        raise ValidationFailed("Enter the English name.", field="name_en")
    name_zh = _text(name_zh, field="name_zh", max_len=NAME_MAX)
    if not name_zh:
        raise ValidationFailed("Enter the Chinese name.", field="name_zh")
    specs = [StepSpec(role=s) if isinstance(s, str) else s for s in steps]
    if not specs:
        raise ValidationFailed("A chain needs at least one step.", field="steps")
    if len(specs) > MAX_STEPS:
        raise ValidationFailed("A chain has at most {n} steps.", field="steps", n=MAX_STEPS)
    resolved: list[tuple[Role, str]] = []
    seen: set[int] = set()
    for spec in specs:
        code = _text(spec.role, field="steps", max_len=64).lower()
        role = session.execute(select(Role).where(Role.code == code)).scalar_one_or_none()
        if role is None:
            raise ValidationFailed("No role with code “{role}”.", field="steps", role=code)
        if role.id in seen:
            raise ValidationFailed(
                "The role “{role}” appears more than once in the chain.", field="steps", role=code
            )
        seen.add(role.id)
        resolved.append((role, _text(spec.label, field="steps", max_len=LABEL_MAX)))

    chain = find_chain(session, kind)
    before = None
    if chain is None:
        chain = ApprovalChain(kind=kind, name_en=name_en, name_zh=name_zh, active=active)
        session.add(chain)
    else:
        before = _chain_snapshot(chain)
        chain.steps.clear()
        session.flush()  # old positions go before new ones take their place
    chain.name_en = name_en
    chain.name_zh = name_zh
    chain.active = active
    for position, (role, label) in enumerate(resolved, start=1):
        chain.steps.append(ApprovalStep(position=position, role=role, label=label))
    session.flush()
    record(
        session,
        actor,
        "approval_chain.defined",
        chain,
        before=before,
        after=_chain_snapshot(chain),
    )
    return chain


# --- requests -------------------------------------------------------------------------------


def _state_snapshot(request: ApprovalRequest) -> dict[str, Any]:
    return {"state": request.state, "current_step": request.current_step, "round": request.round}


def _log(
    session: Session,
    request: ApprovalRequest,
    actor: User,
    action: ActionKind,
    *,
    comment: str = "",
    step: ApprovalRequestStep | None = None,
) -> ApprovalAction:
    entry = ApprovalAction(
        request=request,
        round=request.round,
        step=step.position if step else None,
        role_id=step.role_id if step else None,
        action=action,
        actor_id=actor.id,
        comment=comment,
        at=utcnow(),
    )
    session.add(entry)
    return entry


def submit(
    *,
    session: Session,
    actor: User,
    kind: str,
    title: str,
    description: str = "",
    payload: dict[str, Any] | None = None,
    subject: Any = None,
    check_permission: bool = True,
) -> ApprovalRequest:
    """Put a request into the chain for ``kind``; it waits at step 1.

    ``subject`` links the request to the record being approved: a saved mapped object or a
    ``(type, id)`` pair. A service that has already checked its own permission (say,
    ``orders.create``) may pass ``check_permission=False`` so that its users need not also
    hold ``approvals.submit``.
    """
    if check_permission:
        require(actor, APPROVALS_SUBMIT)
    chain = find_chain(session, (kind or "")[:64])
    if chain is None:
        raise ValidationFailed(
            "There is no approval chain for the kind “{kind}”.", field="kind", kind=kind
        )
    if not chain.active:
        raise ValidationFailed(
            "The approval chain “{kind}” is not in use.", field="kind", kind=chain.kind
        )
    if not chain.steps:
        raise ValidationFailed(
            "The approval chain “{kind}” has no steps; define them first.",
            field="kind",
            kind=chain.kind,
        )
    subject_type, subject_id = _subject_ref(session, subject)
    request = ApprovalRequest(
        number=next_number(session, "approval", "AP"),
        kind=chain.kind,
        chain=chain,
        title=_title(title),
        description=_text(description, field="description", max_len=DESCRIPTION_MAX),
        payload=_payload(payload),
        subject_type=subject_type,
        subject_id=subject_id,
        submitter_id=actor.id,
        state=RequestState.PENDING,
        current_step=1,
        round=1,
        submitted_at=utcnow(),
    )
    request.steps = [
        ApprovalRequestStep(position=position, role_id=step.role_id, label=step.label)
        for position, step in enumerate(chain.steps, start=1)
    ]
    session.add(request)
    session.flush()
    _log(session, request, actor, ActionKind.SUBMIT)
    record(session, actor, "approval.submitted", request)
    return request


def _load_for_update(session: Session, request_id: int) -> ApprovalRequest:
    request = session.execute(
        select(ApprovalRequest)
        .where(ApprovalRequest.id == request_id)
        .with_for_update(of=ApprovalRequest)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if request is None:
        raise NotFound("No approval request with id {id}.", id=request_id)
    return request


def _check_decider(actor: User, request: ApprovalRequest) -> ApprovalRequestStep:
    step = request.current
    if step is None:  # not pending: the caller checks the transition first
        raise PermissionDenied(
            "Request {number} is not waiting for a decision.", number=request.number
        )
    if actor.id == request.submitter_id:
        raise PermissionDenied(
            "You submitted request {number}; someone else must decide on it.",
            number=request.number,
        )
    if not actor.is_active or step.role_id not in _role_ids(actor):
        raise PermissionDenied(
            "Step {position} of request {number} needs the role “{role}”, which you do not hold.",
            position=step.position,
            number=request.number,
            role=step.role.name(_locale()),
        )
    return step


def can_decide(user: User | None, request: ApprovalRequest) -> bool:
    """Whether ``user`` may approve or reject the step ``request`` is waiting at."""
    if user is None or not request.is_open:
        return False
    try:
        _check_decider(user, request)
    except CardopsError:
        return False
    return True


def can_resubmit(user: User | None, request: ApprovalRequest) -> bool:
    return (
        user is not None
        and user.id == request.submitter_id
        and request.can_become(RequestState.PENDING)
    )


def can_withdraw(user: User | None, request: ApprovalRequest) -> bool:
    return (
        user is not None
        and user.id == request.submitter_id
        and request.can_become(RequestState.WITHDRAWN)
    )


def approve(
    *, session: Session, actor: User, request_id: int, comment: str = ""
) -> ApprovalRequest:
    """Approve the current step; at the last step the request is approved."""
    request = _load_for_update(session, request_id)
    request.check_transition(RequestState.APPROVED)
    step = _check_decider(actor, request)
    comment = _text(comment, field="comment", max_len=COMMENT_MAX)
    before = _state_snapshot(request)
    _log(session, request, actor, ActionKind.APPROVE, comment=comment, step=step)
    last = max(s.position for s in request.steps)
    if step.position >= last:
        request.transition(RequestState.APPROVED)
        request.current_step = None
        request.decided_at = utcnow()
    else:
        request.current_step = step.position + 1
    session.flush()
    final = request.state == RequestState.APPROVED
    record(
        session,
        actor,
        "approval.approved" if final else "approval.step_approved",
        request,
        before=before,
        after=_state_snapshot(request),
        step=step.position,
        comment=comment,
    )
    if final:
        _fire_decided(session, request, actor)
    return request


def reject(*, session: Session, actor: User, request_id: int, comment: str) -> ApprovalRequest:
    """Send the request back to its submitter; a reason is required."""
    request = _load_for_update(session, request_id)
    request.check_transition(RequestState.REJECTED)
    step = _check_decider(actor, request)
    comment = _text(comment, field="comment", max_len=COMMENT_MAX)
    if not comment:
        raise ValidationFailed("Give a reason for the rejection.", field="comment")
    before = _state_snapshot(request)
    _log(session, request, actor, ActionKind.REJECT, comment=comment, step=step)
    request.transition(RequestState.REJECTED)
    request.current_step = None
    request.decided_at = utcnow()
    session.flush()
    record(
        session,
        actor,
        "approval.rejected",
        request,
        before=before,
        after=_state_snapshot(request),
        step=step.position,
        comment=comment,
    )
    _fire_decided(session, request, actor)
    return request


def resubmit(
    *,
    session: Session,
    actor: User,
    request_id: int,
    title: str | None = None,
    description: str | None = None,
    payload: dict[str, Any] | None = None,
    comment: str = "",
) -> ApprovalRequest:
    """The submitter corrects a rejected request and sends it again from step 1.

    ``None`` keeps a field as it was.
    """
    request = _load_for_update(session, request_id)
    if actor.id != request.submitter_id:
        raise PermissionDenied(
            "Only the submitter of request {number} may resubmit it.", number=request.number
        )
    request.check_transition(RequestState.PENDING)
    new_title = _title(title) if title is not None else None
    new_description = (
        _text(description, field="description", max_len=DESCRIPTION_MAX)
        if description is not None
        else None
    )
    new_payload = _payload(payload) if payload is not None else None
    comment = _text(comment, field="comment", max_len=COMMENT_MAX)
    before = {
        **_state_snapshot(request),
        "title": request.title,
        "description": request.description,
    }
    if payload is not None:
        before["payload"] = request.payload
    if new_title is not None:
        request.title = new_title
    if new_description is not None:
        request.description = new_description
    if payload is not None:
        request.payload = new_payload
    request.transition(RequestState.PENDING)
    request.round += 1
    request.current_step = min(s.position for s in request.steps)
    request.decided_at = None
    request.submitted_at = utcnow()
    _log(session, request, actor, ActionKind.RESUBMIT, comment=comment)
    session.flush()
    after = {**_state_snapshot(request), "title": request.title, "description": request.description}
    if payload is not None:
        after["payload"] = request.payload
    record(session, actor, "approval.resubmitted", request, before=before, after=after)
    return request


def withdraw(
    *, session: Session, actor: User, request_id: int, comment: str = ""
) -> ApprovalRequest:
    """The submitter takes back a pending or rejected request; it is closed for good."""
    request = _load_for_update(session, request_id)
    if actor.id != request.submitter_id:
        raise PermissionDenied(
            "Only the submitter of request {number} may withdraw it.", number=request.number
        )
    return _withdraw(session, actor, request, comment)


def withdraw_for_subject(
    *, session: Session, actor: User, request_id: int, comment: str
) -> ApprovalRequest | None:
    """Close a request whose subject its own service has just closed (a cancelled return, say),
    whoever closed it: there is nothing left to decide. A request no longer open is left as
    it is (returns None)."""
    request = _load_for_update(session, request_id)
    if not request.can_become(RequestState.WITHDRAWN):
        return None
    return _withdraw(session, actor, request, comment)


def _withdraw(
    session: Session, actor: User, request: ApprovalRequest, comment: str
) -> ApprovalRequest:
    request.check_transition(RequestState.WITHDRAWN)
    comment = _text(comment, field="comment", max_len=COMMENT_MAX)
    before = _state_snapshot(request)
    _log(session, request, actor, ActionKind.WITHDRAW, comment=comment)
    request.transition(RequestState.WITHDRAWN)
    request.current_step = None
    request.decided_at = utcnow()
    session.flush()
    record(
        session,
        actor,
        "approval.withdrawn",
        request,
        before=before,
        after=_state_snapshot(request),
        comment=comment,
    )
    _fire_decided(session, request, actor)
    return request


# --- reading --------------------------------------------------------------------------------


def can_view(user: User | None, request: ApprovalRequest) -> bool:
    """The submitter, holders of any of its step roles, past actors and approvals.view_all."""
    if user is None or not user.is_active:
        return False
    if user.id == request.submitter_id or has_permission(user, APPROVALS_VIEW_ALL):
        return True
    roles = _role_ids(user)
    if any(step.role_id in roles for step in request.steps):
        return True
    return any(action.actor_id == user.id for action in request.actions)


def get_request(*, session: Session, request_id: int, actor: User | None = None) -> ApprovalRequest:
    """One request; with ``actor``, only if they may see it (403 otherwise)."""
    request = session.get(ApprovalRequest, request_id)
    if request is None:
        raise NotFound("No approval request with id {id}.", id=request_id)
    if actor is not None and not can_view(actor, request):
        raise PermissionDenied("You may not see request {number}.", number=request.number)
    return request


def history(
    *, session: Session, request_id: int, actor: User | None = None
) -> list[ApprovalAction]:
    """Every submission, decision, resubmission and withdrawal, oldest first."""
    request = get_request(session=session, request_id=request_id, actor=actor)
    return list(request.actions)


def inbox(*, session: Session, user: User | None) -> list[ApprovalRequest]:
    """Pending requests waiting at a step whose role ``user`` holds, not their own."""
    if user is None or not user.is_active:
        return []
    roles = _role_ids(user)
    if not roles:
        return []
    stmt = (
        select(ApprovalRequest)
        .join(
            ApprovalRequestStep,
            and_(
                ApprovalRequestStep.request_id == ApprovalRequest.id,
                ApprovalRequestStep.position == ApprovalRequest.current_step,
            ),
        )
        .where(
            ApprovalRequest.state == RequestState.PENDING,
            ApprovalRequestStep.role_id.in_(roles),
            ApprovalRequest.submitter_id != user.id,
        )
        .order_by(ApprovalRequest.submitted_at, ApprovalRequest.id)
    )
    return list(session.execute(stmt).scalars())


def my_requests(
    *,
    session: Session,
    user: User,
    state: str | None = None,
    kind: str | None = None,
    limit: int = 200,
    offset: int = 0,
) -> list[ApprovalRequest]:
    """Requests ``user`` submitted, newest first."""
    stmt = select(ApprovalRequest).where(ApprovalRequest.submitter_id == user.id)
    if state:
        stmt = stmt.where(ApprovalRequest.state == state)
    if kind:
        stmt = stmt.where(ApprovalRequest.kind == kind)
    stmt = stmt.order_by(ApprovalRequest.id.desc()).limit(limit).offset(offset)
    return list(session.execute(stmt).scalars())


def list_requests(
    *,
    session: Session,
    actor: User,
    state: str | None = None,
    kind: str | None = None,
    limit: int = 200,
    offset: int = 0,
) -> list[ApprovalRequest]:
    """Every request (approvals.view_all), newest first."""
    require(actor, APPROVALS_VIEW_ALL)
    stmt = select(ApprovalRequest)
    if state:
        stmt = stmt.where(ApprovalRequest.state == state)
    if kind:
        stmt = stmt.where(ApprovalRequest.kind == kind)
    stmt = stmt.order_by(ApprovalRequest.id.desc()).limit(limit).offset(offset)
    return list(session.execute(stmt).scalars())


def requests_in_box(
    *,
    session: Session,
    actor: User,
    box: Box,
    state: str | None = None,
    kind: str | None = None,
    limit: int = 200,
    offset: int = 0,
) -> list[ApprovalRequest]:
    if box == "inbox":
        rows = [r for r in inbox(session=session, user=actor) if not kind or r.kind == kind]
        return rows[offset : offset + limit]
    if box == "mine":
        return my_requests(
            session=session, user=actor, state=state, kind=kind, limit=limit, offset=offset
        )
    return list_requests(
        session=session, actor=actor, state=state, kind=kind, limit=limit, offset=offset
    )


def find_for_subject(*, session: Session, subject: Any) -> list[ApprovalRequest]:
    """Requests linked to a record (mapped object or ``(type, id)``), newest first."""
    subject_type, subject_id = _subject_ref(session, subject)
    stmt = (
        select(ApprovalRequest)
        .where(
            ApprovalRequest.subject_type == subject_type,
            ApprovalRequest.subject_id == subject_id,
        )
        .order_by(ApprovalRequest.id.desc())
    )
    return list(session.execute(stmt).scalars())
