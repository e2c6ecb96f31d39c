from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.approvals.helpers import ORDER_STEPS, define
from tests.factories import api_headers, bearer, make_user

BASE = "/api/v1/approvals"


def _fields(response: Any) -> list[str]:
    return [e["field"] for e in response.json().get("errors", [])]


def test_chains_are_defined_with_role_codes_and_replaced(client: TestClient, db: Session) -> None:
    director = api_headers(db, "operations_director")
    response = client.put(
        f"{BASE}/chains/distributor_order",
        headers=director,
        json={"name_en": "Distributor order", "name_zh": "经销商订单", "steps": ORDER_STEPS},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [s["role"] for s in body["steps"]] == ORDER_STEPS
    assert [s["position"] for s in body["steps"]] == [1, 2, 3, 4, 5]

    # replace the steps; names may be left out when the chain exists; labels are optional
    response = client.put(
        f"{BASE}/chains/distributor_order",
        headers=director,
        json={"steps": ["channel_supervisor", {"role": "finance_manager", "label": "Credit"}]},
    )
    assert response.status_code == 200, response.text
    assert response.json()["name_zh"] == "经销商订单"
    assert [(s["role"], s["label"]) for s in response.json()["steps"]] == [
        ("channel_supervisor", ""),
        ("finance_manager", "Credit"),
    ]

    anyone = api_headers(db, "front_desk_clerk")
    listed = client.get(f"{BASE}/chains", headers=anyone).json()
    assert "distributor_order" in [c["kind"] for c in listed]
    one = client.get(f"{BASE}/chains/distributor_order", headers=anyone)
    assert one.status_code == 200
    assert client.get(f"{BASE}/chains/nope", headers=anyone).status_code == 404


def test_chain_definition_errors(client: TestClient, db: Session) -> None:
    director = api_headers(db, "operations_director")
    clerk = api_headers(db, "front_desk_clerk")
    good = {"name_en": "G", "name_zh": "G", "steps": ["cashier"]}
    response = client.put(f"{BASE}/chains/general", headers=clerk, json=good)
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"

    response = client.put(f"{BASE}/chains/general", headers=director, json={**good, "steps": []})
    assert response.status_code == 422
    assert _fields(response) == ["steps"]
    response = client.put(
        f"{BASE}/chains/general", headers=director, json={**good, "steps": ["no_such_role"]}
    )
    assert response.status_code == 422
    assert _fields(response) == ["steps"]
    response = client.put(f"{BASE}/chains/Not-OK", headers=director, json=good)
    assert response.status_code == 422
    assert _fields(response) == ["kind"]
    response = client.put(f"{BASE}/chains/brand_new", headers=director, json={"steps": ["cashier"]})
    assert response.status_code == 422
    assert _fields(response) == ["name_en"]
    response = client.put(
        f"{BASE}/chains/general", headers=director, json={**good, "steps": ["x"] * 21}
    )
    assert response.status_code == 422


def test_submit_approve_through_every_step(client: TestClient, db: Session) -> None:
    define(db, "distributor_order", ORDER_STEPS)
    people = {role: make_user(db, role) for role in ORDER_STEPS}
    headers = {role: bearer(db, user) for role, user in people.items()}
    specialist = api_headers(db, "channel_specialist")

    response = client.post(
        f"{BASE}/requests",
        headers=specialist,
        json={
            "kind": "distributor_order",
            "title": "Order 88 for Acme",
            "description": "200 terminals",
            "payload": {"order": 88, "lines": [{"sku": "A920", "qty": 200}]},
        },
    )
    assert response.status_code == 201, response.text
    request = response.json()
    rid = request["id"]
    assert request["state"] == "pending"
    assert request["current_role"] == "channel_supervisor"
    assert request["payload"]["order"] == 88
    assert not request["can_decide"]
    assert request["can_withdraw"]

    for position, role in enumerate(ORDER_STEPS, start=1):
        inbox = client.get(f"{BASE}/requests", headers=headers[role]).json()
        assert [r["id"] for r in inbox] == [rid]
        for other in ORDER_STEPS:
            if other != role:
                assert client.get(f"{BASE}/requests?box=inbox", headers=headers[other]).json() == []
        detail = client.get(f"{BASE}/requests/{rid}", headers=headers[role]).json()
        assert detail["can_decide"] is True
        assert detail["current_step"] == position
        response = client.post(
            f"{BASE}/requests/{rid}/approve", headers=headers[role], json={"comment": f"ok {role}"}
        )
        assert response.status_code == 200, response.text

    body = response.json()
    assert body["state"] == "approved"
    assert body["current_step"] is None
    assert body["decided_at"] is not None
    assert [(h["action"], h["step"], h["role"]) for h in body["history"]] == [
        ("submit", None, None),
        *[("approve", i, role) for i, role in enumerate(ORDER_STEPS, start=1)],
    ]
    mine = client.get(f"{BASE}/requests?box=mine", headers=specialist).json()
    assert [(r["id"], r["state"]) for r in mine] == [(rid, "approved")]

    # an approved request cannot be approved again
    response = client.post(
        f"{BASE}/requests/{rid}/approve", headers=headers["warehouse_supervisor"]
    )
    assert response.status_code == 409
    assert response.json()["code"] == "invalid_transition"


def test_reject_with_comment_resubmit_and_approve(client: TestClient, db: Session) -> None:
    define(db, "purchase_request", ["business_manager", "finance_manager"])
    manager = bearer(db, make_user(db, "business_manager"))
    finance = bearer(db, make_user(db, "finance_manager"))
    submitter = api_headers(db, "cashier")
    rid = client.post(
        f"{BASE}/requests",
        headers=submitter,
        json={"kind": "purchase_request", "title": "Printer", "description": "One laser printer"},
    ).json()["id"]
    assert client.post(f"{BASE}/requests/{rid}/approve", headers=manager).status_code == 200

    response = client.post(f"{BASE}/requests/{rid}/reject", headers=finance, json={})
    assert response.status_code == 422
    assert _fields(response) == ["comment"]
    response = client.post(f"{BASE}/requests/{rid}/reject", headers=finance, json={"comment": " "})
    assert response.status_code == 422
    assert _fields(response) == ["comment"]

    response = client.post(
        f"{BASE}/requests/{rid}/reject", headers=finance, json={"comment": "Need 3 quotes"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "rejected"
    assert client.get(f"{BASE}/requests", headers=finance).json() == []

    # only the submitter may resubmit
    response = client.post(f"{BASE}/requests/{rid}/resubmit", headers=finance, json={})
    assert response.status_code == 403
    detail = client.get(f"{BASE}/requests/{rid}", headers=submitter).json()
    assert detail["can_resubmit"] is True
    response = client.post(
        f"{BASE}/requests/{rid}/resubmit",
        headers=submitter,
        json={
            "title": "Printer (3 quotes)",
            "payload": {"quotes": ["A", "B", "C"]},
            "comment": "Quotes added",
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["state"], body["round"], body["current_role"]) == (
        "pending",
        2,
        "business_manager",
    )
    assert body["title"] == "Printer (3 quotes)"
    assert body["description"] == "One laser printer"

    assert client.post(f"{BASE}/requests/{rid}/approve", headers=manager).status_code == 200
    body = client.post(f"{BASE}/requests/{rid}/approve", headers=finance).json()
    assert body["state"] == "approved"
    assert [(h["round"], h["action"], h["comment"]) for h in body["history"]] == [
        (1, "submit", ""),
        (1, "approve", ""),
        (1, "reject", "Need 3 quotes"),
        (2, "resubmit", "Quotes added"),
        (2, "approve", ""),
        (2, "approve", ""),
    ]


def test_segregation_and_roles_are_enforced(client: TestClient, db: Session) -> None:
    define(db, "general", ["department_manager"])
    manager_user = make_user(db, "department_manager")
    manager = bearer(db, manager_user)
    rid = client.post(
        f"{BASE}/requests", headers=manager, json={"kind": "general", "title": "My own"}
    ).json()["id"]
    response = client.post(f"{BASE}/requests/{rid}/approve", headers=manager)
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    assert client.get(f"{BASE}/requests", headers=manager).json() == []

    # a user who lacks the step's role is refused, whatever else they hold
    director = api_headers(db, "operations_director")
    response = client.post(f"{BASE}/requests/{rid}/approve", headers=director)
    assert response.status_code == 403
    response = client.post(f"{BASE}/requests/{rid}/reject", headers=director, json={"comment": "x"})
    assert response.status_code == 403
    # a stranger may not even look at it
    stranger = api_headers(db, "cashier")
    assert client.get(f"{BASE}/requests/{rid}", headers=stranger).status_code == 403
    assert client.get(f"{BASE}/requests?box=all", headers=stranger).status_code == 403
    everyone = client.get(f"{BASE}/requests?box=all&state=pending", headers=director).json()
    assert rid in [r["id"] for r in everyone]


def test_withdraw(client: TestClient, db: Session) -> None:
    define(db, "general", ["department_manager"])
    clerk = api_headers(db, "front_desk_clerk")
    manager = api_headers(db, "department_manager")
    rid = client.post(
        f"{BASE}/requests", headers=clerk, json={"kind": "general", "title": "Oops"}
    ).json()["id"]
    assert client.post(f"{BASE}/requests/{rid}/withdraw", headers=manager).status_code == 403
    response = client.post(f"{BASE}/requests/{rid}/withdraw", headers=clerk)
    assert response.status_code == 200
    assert response.json()["state"] == "withdrawn"
    assert client.post(f"{BASE}/requests/{rid}/approve", headers=manager).status_code == 409
    assert client.post(f"{BASE}/requests/{rid}/withdraw", headers=clerk).status_code == 409


def test_bad_input_is_a_4xx_with_the_field_never_a_500(client: TestClient, db: Session) -> None:
    define(db, "general", ["department_manager"])
    clerk = api_headers(db, "front_desk_clerk")
    picker = api_headers(db, "picker")

    def post(body: Any, headers: dict[str, str] = clerk) -> Any:
        return client.post(f"{BASE}/requests", headers=headers, json=body)

    cases: list[tuple[Any, int, str]] = [
        ({"kind": "nope", "title": "t"}, 422, "kind"),
        ({"kind": "general", "title": ""}, 422, "title"),
        ({"kind": "general", "title": "x" * 201}, 422, "title"),
        ({"kind": "general", "title": "nul\u0000"}, 422, "title"),
        ({"kind": "general", "title": "t", "description": "d" * 4001}, 422, "description"),
        ({"kind": "general", "title": "t", "payload": [1, 2]}, 422, "payload"),
        ({"kind": "general", "title": "t", "payload": {"a": "\u0000"}}, 422, "payload"),
        ({"kind": "k" * 65, "title": "t"}, 422, "kind"),
        ({"title": "t"}, 422, "kind"),
    ]
    for body, status, field in cases:
        response = post(body)
        assert response.status_code == status, (body, response.text)
        assert field in _fields(response), (body, response.json())

    response = client.post(
        f"{BASE}/requests",
        headers={**clerk, "Content-Type": "application/json"},
        content=b'{"kind": "general", "title": "t", "payload": {"a": NaN}}',
    )
    assert response.status_code == 422, response.text
    assert _fields(response) == ["payload"]
    assert post({"kind": "general", "title": "t"}, picker).status_code == 403

    for url in (
        f"{BASE}/requests/99999999999999999999",
        f"{BASE}/requests/0",
        f"{BASE}/requests/abc",
    ):
        assert client.get(url, headers=clerk).status_code == 422
    assert client.get(f"{BASE}/requests/2000000000", headers=clerk).status_code == 404
    assert client.get(f"{BASE}/requests?box=bogus", headers=clerk).status_code == 422
    assert client.get(f"{BASE}/requests?box=mine&state=bogus", headers=clerk).status_code == 422
    assert client.get(f"{BASE}/requests?limit=100000", headers=clerk).status_code == 422
    assert client.get(f"{BASE}/requests", headers={}).status_code == 401
