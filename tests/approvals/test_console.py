from __future__ import annotations

import re

from fastapi import FastAPI
from sqlalchemy.orm import Session

from cardops.approvals import service
from cardops.approvals.models import ApprovalRequest, RequestState
from tests.approvals.helpers import define
from tests.factories import ConsoleClient, console, field_error


def _request_id(location: str) -> int:
    match = re.fullmatch(r"/approvals/(\d+)", location)
    assert match, location
    return int(match.group(1))


def _submit(page: ConsoleClient, title: str = "New monitor", kind: str = "general") -> int:
    response = page.post(
        "/approvals/new", {"kind": kind, "title": title, "description": "27 inch\nfor the desk"}
    )
    assert response.status_code == 303, response.text
    return _request_id(response.headers["location"])


def test_submit_approve_and_see_history_in_the_console(app: FastAPI, db: Session) -> None:
    define(db, "general", ["department_manager", "finance_manager"])
    clerk = console(app, db, "front_desk_clerk")
    manager = console(app, db, "department_manager")
    finance = console(app, db, "finance_manager")

    form = clerk.get("/approvals/new")
    assert form.status_code == 200
    assert 'name="title"' in form.text
    rid = _submit(clerk)
    page = clerk.get(f"/approvals/{rid}")
    assert page.status_code == 200
    assert "has been submitted" in page.text or "已提交" in page.text
    assert 'id="approve-button"' not in page.text  # the submitter never decides
    assert 'id="withdraw-button"' in page.text
    assert "27 inch<br>for the desk" in page.text

    # the manager finds it in the inbox and on the home page
    inbox = manager.get("/approvals")
    assert f'href="/approvals/{rid}"' in inbox.text
    assert f'href="/approvals/{rid}"' in manager.get("/").text
    assert f'href="/approvals/{rid}"' not in finance.get("/approvals").text

    page = manager.get(f"/approvals/{rid}")
    assert 'id="approve-button"' in page.text
    assert 'id="reject-button"' in page.text
    assert 'name="comment"' in page.text
    response = manager.post(f"/approvals/{rid}/approve", {"comment": "Fine by me"})
    assert response.status_code == 303
    assert response.headers["location"] == "/approvals"

    assert f'href="/approvals/{rid}"' in finance.get("/approvals").text
    response = finance.post(f"/approvals/{rid}/approve", {"comment": ""})
    assert response.status_code == 303

    page = clerk.get(f"/approvals/{rid}")
    assert 'data-state="approved"' in page.text
    history = page.text.split('id="history-table"', 1)[1]
    assert history.count("<tr data-action=") == 3
    assert "Fine by me" in history
    assert 'id="withdraw-button"' not in page.text
    mine = clerk.get("/approvals/mine?state=approved")
    assert f'href="/approvals/{rid}"' in mine.text


def test_reject_needs_comment_then_submitter_corrects_and_resubmits(
    app: FastAPI, db: Session
) -> None:
    define(db, "general", ["department_manager"])
    clerk = console(app, db, "front_desk_clerk")
    manager = console(app, db, "department_manager")
    rid = _submit(clerk, title="Chair")

    response = manager.post(f"/approvals/{rid}/reject", {"comment": "   "})
    assert response.status_code == 422
    assert field_error(response.text, "comment")
    assert 'id="reject-button"' in response.text  # the form is shown again

    response = manager.post(f"/approvals/{rid}/reject", {"comment": "Which model?"})
    assert response.status_code == 303
    assert f'href="/approvals/{rid}"' not in manager.get("/approvals").text

    page = clerk.get(f"/approvals/{rid}")
    assert 'data-state="rejected"' in page.text
    assert "Which model?" in page.text
    assert 'id="resubmit-button"' in page.text

    # a bad correction re-renders with what was typed and the error next to the field
    response = clerk.post(
        f"/approvals/{rid}/resubmit",
        {"title": "", "description": "Typed text stays", "comment": ""},
    )
    assert response.status_code == 422
    assert field_error(response.text, "title")
    assert "Typed text stays" in response.text

    response = clerk.post(
        f"/approvals/{rid}/resubmit",
        {"title": "Chair, model Ergo 2", "description": "Ergo 2", "comment": "Model named"},
    )
    assert response.status_code == 303
    request = db.get(ApprovalRequest, rid)
    assert request is not None
    db.refresh(request)
    assert (request.state, request.round, request.title) == (
        RequestState.PENDING,
        2,
        "Chair, model Ergo 2",
    )
    assert f'href="/approvals/{rid}"' in manager.get("/approvals").text
    assert manager.post(f"/approvals/{rid}/approve").status_code == 303
    db.refresh(request)
    assert request.state == RequestState.APPROVED


def test_console_refuses_people_without_the_step_role(app: FastAPI, db: Session) -> None:
    define(db, "general", ["department_manager", "finance_manager"])
    clerk = console(app, db, "front_desk_clerk")
    rid = _submit(clerk)
    # holds a later step's role: may look, may not decide now
    finance = console(app, db, "finance_manager")
    page = finance.get(f"/approvals/{rid}")
    assert page.status_code == 200
    assert 'id="approve-button"' not in page.text
    response = finance.post(f"/approvals/{rid}/approve", {"comment": "sneaky"})
    assert response.status_code == 403
    # holds no role of the chain: may not even look
    cashier = console(app, db, "cashier")
    assert cashier.get(f"/approvals/{rid}").status_code == 403
    assert cashier.post(f"/approvals/{rid}/approve").status_code == 403
    # the submitter, even when holding the role
    own = console(app, db, "department_manager")
    own_id = _submit(own, title="Mine")
    assert own.post(f"/approvals/{own_id}/approve").status_code == 403
    request = db.get(ApprovalRequest, rid)
    assert request is not None
    db.refresh(request)
    assert request.current_step == 1
    # approving twice: the second is a conflict shown on the page
    manager = console(app, db, "department_manager")
    assert manager.post(f"/approvals/{rid}/approve").status_code == 303
    assert manager.post(f"/approvals/{rid}/approve").status_code == 403
    # withdraw after approval is an illegal move
    finance.post(f"/approvals/{rid}/approve")
    assert clerk.post(f"/approvals/{rid}/withdraw").status_code == 409


def test_new_request_form_errors_and_permissions(app: FastAPI, db: Session) -> None:
    define(db, "general", ["department_manager"])
    clerk = console(app, db, "front_desk_clerk")
    response = clerk.post("/approvals/new", {"kind": "general", "title": "", "description": "kept"})
    assert response.status_code == 422
    assert field_error(response.text, "title")
    assert "kept" in response.text
    response = clerk.post("/approvals/new", {"kind": "nope", "title": "x"})
    assert response.status_code == 422
    assert field_error(response.text, "kind")
    picker = console(app, db, "picker")
    assert picker.get("/approvals/new").status_code == 403
    assert picker.post("/approvals/new", {"kind": "general", "title": "x"}).status_code == 403
    assert picker.get("/approvals").status_code == 200
    assert clerk.get("/approvals/all").status_code == 403
    assert clerk.get("/approvals/999999999999").status_code == 422
    assert clerk.get("/approvals/2000000000").status_code == 404


def test_chains_are_edited_by_picking_roles(app: FastAPI, db: Session) -> None:
    director = console(app, db, "operations_director")
    clerk = console(app, db, "front_desk_clerk")
    assert clerk.get("/approvals/chains").status_code == 403
    assert clerk.get("/approvals/chains/edit").status_code == 403
    assert "/approvals/chains" not in clerk.get("/").text
    assert 'href="/approvals/chains"' in director.get("/").text

    form = director.get("/approvals/chains/edit")
    assert form.status_code == 200
    assert form.text.count('name="step_role[]"') == 3

    response = director.post(
        "/approvals/chains/edit",
        {
            "kind": "laptop_request",
            "name_en": "Laptop request",
            "name_zh": "笔记本电脑申请",
            "active": "1",
            "step_role[]": ["department_manager", "", "finance_manager"],
            "step_label[]": ["Team lead", "", ""],
        },
    )
    assert response.status_code == 303, response.text
    chain = service.get_chain(session=db, kind="laptop_request")
    assert [(s.position, s.role.code, s.label) for s in chain.steps] == [
        (1, "department_manager", "Team lead"),
        (2, "finance_manager", ""),
    ]
    listing = director.get("/approvals/chains")
    assert 'data-kind="laptop_request"' in listing.text

    form = director.get("/approvals/chains/edit?kind=laptop_request")
    assert form.text.count('name="step_role[]"') == 5
    assert 'value="Team lead"' in form.text

    # errors keep what was typed
    response = director.post(
        "/approvals/chains/edit",
        {
            "kind": "laptop_request",
            "name_en": "Laptop request",
            "name_zh": "",
            "step_role[]": ["cashier"],
            "step_label[]": ["Typed label"],
        },
    )
    assert response.status_code == 422
    assert field_error(response.text, "name_zh")
    assert 'value="Typed label"' in response.text
    response = director.post(
        "/approvals/chains/edit",
        {"kind": "laptop_request", "name_en": "L", "name_zh": "L", "step_role[]": ""},
    )
    assert response.status_code == 422
    assert field_error(response.text, "steps")

    # unticking "in use" takes the kind off the new-request form
    response = director.post(
        "/approvals/chains/edit",
        {
            "kind": "laptop_request",
            "name_en": "Laptop request",
            "name_zh": "笔记本电脑申请",
            "step_role[]": "department_manager",
            "step_label[]": "",
        },
    )
    assert response.status_code == 303
    assert 'value="laptop_request"' not in clerk.get("/approvals/new").text


def test_pages_speak_chinese(app: FastAPI, db: Session) -> None:
    define(db, "general", ["department_manager"])
    clerk = console(app, db, "front_desk_clerk")
    rid = _submit(clerk)
    clerk.http.cookies.set("cardops_lang", "zh_CN")
    page = clerk.get(f"/approvals/{rid}")
    assert "审批记录" in page.text or "历史" in page.text
    assert "待审批" in page.text
    assert "审批" in clerk.get("/approvals").text
