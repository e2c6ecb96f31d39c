"""Console pages of the approvals domain: inbox, my requests, new request, detail, chains."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import HTMLResponse, Response

from cardops.approvals import service
from cardops.approvals.models import STATE_LABELS, RequestState
from cardops.approvals.permissions import APPROVALS_DEFINE, APPROVALS_SUBMIT, APPROVALS_VIEW_ALL
from cardops.auth.service import require
from cardops.core.errors import CardopsError
from cardops.core.i18n import N_
from cardops.web.deps import Console, ConsoleForm, ConsolePage, form_error_context
from cardops.web.nav import NavItem

router = APIRouter()

SECTION = N_("Approvals")
NAV = [
    NavItem(N_("Inbox"), "/approvals", None, section=SECTION, order=20),
    NavItem(N_("My requests"), "/approvals/mine", None, section=SECTION, order=21),
    NavItem(N_("New request"), "/approvals/new", APPROVALS_SUBMIT, section=SECTION, order=22),
    NavItem(N_("All requests"), "/approvals/all", APPROVALS_VIEW_ALL, section=SECTION, order=23),
    NavItem(N_("Chains"), "/approvals/chains", APPROVALS_DEFINE, section=SECTION, order=24),
]

RequestId = Annotated[int, Path(ge=1, le=2_147_483_647)]
EXTRA_STEP_ROWS = 3
BADGES = {
    RequestState.PENDING: "warn",
    RequestState.APPROVED: "ok",
    RequestState.REJECTED: "bad",
    RequestState.WITHDRAWN: "",
}


def _text(form: dict[str, Any], name: str) -> str:
    value = form.get(name)
    if isinstance(value, list):
        value = value[0] if value else ""
    return str(value or "")


def _list(form: dict[str, Any], name: str) -> list[str]:
    value = form.get(name)
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return [str(value)]


def _state(value: str) -> str | None:
    return value if value in STATE_LABELS else None


HEADINGS = {"inbox": N_("Inbox"), "mine": N_("My requests"), "all": N_("All requests")}


def _common(box: str | None = None) -> dict[str, Any]:
    context: dict[str, Any] = {"state_labels": STATE_LABELS, "badges": BADGES}
    if box:
        context.update(box=box, heading=HEADINGS[box], states=STATE_LABELS)
    return context


# --- lists ----------------------------------------------------------------------------------


@router.get("/approvals", response_class=HTMLResponse)
def inbox_page(console: ConsolePage) -> HTMLResponse:
    rows = service.inbox(session=console.db, user=console.user)
    return console.render("approvals/list.html", rows=rows, state="", **_common("inbox"))


@router.get("/approvals/mine", response_class=HTMLResponse)
def mine_page(console: ConsolePage, state: str = "") -> HTMLResponse:
    rows = service.my_requests(session=console.db, user=console.user, state=_state(state))
    return console.render("approvals/list.html", rows=rows, state=state, **_common("mine"))


@router.get("/approvals/all", response_class=HTMLResponse)
def all_page(console: ConsolePage, state: str = "") -> HTMLResponse:
    require(console.user, APPROVALS_VIEW_ALL)
    rows = service.list_requests(session=console.db, actor=console.user, state=_state(state))
    return console.render("approvals/list.html", rows=rows, state=state, **_common("all"))


# --- new request ----------------------------------------------------------------------------


def _new_form(console: Console, status_code: int = 200, **context: Any) -> HTMLResponse:
    chains = [c for c in service.list_chains(session=console.db, active_only=True) if c.steps]
    kinds = [(c.kind, c.name(console.locale)) for c in chains]
    context.setdefault(
        "values", {"kind": "general" if any(k == "general" for k, _ in kinds) else ""}
    )
    return console.render(
        "approvals/new.html", status_code=status_code, kinds=kinds, chains=chains, **context
    )


@router.get("/approvals/new", response_class=HTMLResponse)
def new_form(console: ConsolePage, kind: str = "") -> HTMLResponse:
    require(console.user, APPROVALS_SUBMIT)
    if kind:
        return _new_form(console, values={"kind": kind[:64]})
    return _new_form(console)


@router.post("/approvals/new", response_class=HTMLResponse)
def new_submit(console: ConsoleForm) -> Response:
    require(console.user, APPROVALS_SUBMIT)
    values = {
        "kind": _text(console.form, "kind"),
        "title": _text(console.form, "title"),
        "description": _text(console.form, "description"),
    }
    try:
        request = service.submit(
            session=console.db,
            actor=console.user,
            kind=values["kind"],
            title=values["title"],
            description=values["description"],
        )
    except CardopsError as exc:
        console.db.rollback()
        return _new_form(console, status_code=exc.status, values=values, **form_error_context(exc))
    console.flash("Request {number} has been submitted.", number=request.number)
    console.db.commit()
    return console.redirect(f"/approvals/{request.id}")


# --- chains ---------------------------------------------------------------------------------


@router.get("/approvals/chains", response_class=HTMLResponse)
def chains_page(console: ConsolePage) -> HTMLResponse:
    require(console.user, APPROVALS_DEFINE)
    return console.render("approvals/chains.html", chains=service.list_chains(session=console.db))


def _chain_form(
    console: Console,
    *,
    values: dict[str, Any],
    rows: list[tuple[str, str]],
    existing: bool,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    roles = [(r.code, r.name(console.locale)) for r in service.role_choices(console.db)]
    rows = [*rows, *([("", "")] * EXTRA_STEP_ROWS)]
    return console.render(
        "approvals/chain_form.html",
        status_code=status_code,
        values=values,
        rows=rows,
        roles=roles,
        existing=existing,
        **context,
    )


@router.get("/approvals/chains/edit", response_class=HTMLResponse)
def chain_edit(console: ConsolePage, kind: str = "") -> HTMLResponse:
    require(console.user, APPROVALS_DEFINE)
    chain = service.find_chain(console.db, kind[:64]) if kind else None
    if chain is None:
        return _chain_form(console, values={"kind": "", "active": True}, rows=[], existing=False)
    return _chain_form(
        console,
        values={
            "kind": chain.kind,
            "name_en": chain.name_en,
            "name_zh": chain.name_zh,
            "active": chain.active,
        },
        rows=[(s.role.code, s.label) for s in chain.steps],
        existing=True,
    )


@router.post("/approvals/chains/edit", response_class=HTMLResponse)
def chain_save(console: ConsoleForm) -> Response:
    require(console.user, APPROVALS_DEFINE)
    form = console.form
    values: dict[str, Any] = {
        "kind": _text(form, "kind").strip().lower(),
        "name_en": _text(form, "name_en"),
        "name_zh": _text(form, "name_zh"),
        "active": bool(_text(form, "active")),
    }
    roles = _list(form, "step_role[]")
    labels = _list(form, "step_label[]")
    labels += [""] * (len(roles) - len(labels))
    rows = [(r.strip(), lab) for r, lab in zip(roles, labels, strict=False) if r.strip()]
    existing = service.find_chain(console.db, values["kind"]) is not None
    try:
        chain = service.define_chain(
            session=console.db,
            actor=console.user,
            kind=values["kind"],
            name_en=values["name_en"],
            name_zh=values["name_zh"],
            steps=[service.StepSpec(role=r, label=lab) for r, lab in rows],
            active=values["active"],
        )
    except CardopsError as exc:
        console.db.rollback()
        return _chain_form(
            console,
            values=values,
            rows=rows,
            existing=existing,
            status_code=exc.status,
            **form_error_context(exc),
        )
    console.flash("The approval chain “{kind}” has been saved.", kind=chain.kind)
    console.db.commit()
    return console.redirect("/approvals/chains")


# --- one request ----------------------------------------------------------------------------


def _detail(
    console: Console, request_id: int, status_code: int = 200, **context: Any
) -> HTMLResponse:
    request = service.get_request(session=console.db, request_id=request_id, actor=console.user)
    context["values"] = {
        "title": request.title,
        "description": request.description,
        **context.get("values", {}),
    }
    payload = json.dumps(request.payload, ensure_ascii=False, indent=1) if request.payload else ""
    return console.render(
        "approvals/detail.html",
        status_code=status_code,
        req=request,
        history=list(request.actions),
        payload=payload,
        may_decide=service.can_decide(console.user, request),
        may_resubmit=service.can_resubmit(console.user, request),
        may_withdraw=service.can_withdraw(console.user, request),
        **_common(),
        **context,
    )


@router.get("/approvals/{request_id}", response_class=HTMLResponse)
def detail_page(console: ConsolePage, request_id: RequestId) -> HTMLResponse:
    return _detail(console, request_id)


def _failed(
    console: Console, request_id: int, exc: CardopsError, values: dict[str, str]
) -> Response:
    console.db.rollback()
    return _detail(
        console, request_id, status_code=exc.status, values=values, **form_error_context(exc)
    )


@router.post("/approvals/{request_id}/approve", response_class=HTMLResponse)
def approve_submit(console: ConsoleForm, request_id: RequestId) -> Response:
    comment = _text(console.form, "comment")
    try:
        request = service.approve(
            session=console.db, actor=console.user, request_id=request_id, comment=comment
        )
    except CardopsError as exc:
        return _failed(console, request_id, exc, {"comment": comment})
    console.flash("Request {number}: your approval has been recorded.", number=request.number)
    console.db.commit()
    return console.redirect("/approvals")


@router.post("/approvals/{request_id}/reject", response_class=HTMLResponse)
def reject_submit(console: ConsoleForm, request_id: RequestId) -> Response:
    comment = _text(console.form, "comment")
    try:
        request = service.reject(
            session=console.db, actor=console.user, request_id=request_id, comment=comment
        )
    except CardopsError as exc:
        return _failed(console, request_id, exc, {"comment": comment})
    console.flash(
        "Request {number} has been rejected and sent back to its submitter.",
        number=request.number,
    )
    console.db.commit()
    return console.redirect("/approvals")


@router.post("/approvals/{request_id}/resubmit", response_class=HTMLResponse)
def resubmit_submit(console: ConsoleForm, request_id: RequestId) -> Response:
    values = {
        "title": _text(console.form, "title"),
        "description": _text(console.form, "description"),
        "comment": _text(console.form, "comment"),
    }
    try:
        request = service.resubmit(
            session=console.db,
            actor=console.user,
            request_id=request_id,
            title=values["title"],
            description=values["description"],
            comment=values["comment"],
        )
    except CardopsError as exc:
        return _failed(console, request_id, exc, values)
    console.flash("Request {number} has been resubmitted.", number=request.number)
    console.db.commit()
    return console.redirect(f"/approvals/{request.id}")


@router.post("/approvals/{request_id}/withdraw", response_class=HTMLResponse)
def withdraw_submit(console: ConsoleForm, request_id: RequestId) -> Response:
    try:
        request = service.withdraw(session=console.db, actor=console.user, request_id=request_id)
    except CardopsError as exc:
        return _failed(console, request_id, exc, {})
    console.flash("Request {number} has been withdrawn.", number=request.number)
    console.db.commit()
    return console.redirect(f"/approvals/{request.id}")
