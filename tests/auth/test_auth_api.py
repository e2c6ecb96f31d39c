from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from cardops.core.clock import freeze, utcnow
from tests.factories import PASSWORD, api_headers, bearer, make_user


def test_token_password_flow_and_me(client: TestClient, db: Session) -> None:
    make_user(db, "front_desk_clerk", username="clerk1")
    response = client.post("/api/v1/auth/token", data={"username": "clerk1", "password": PASSWORD})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    me = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["username"] == "clerk1"
    assert me.json()["roles"] == ["front_desk_clerk"]


def test_wrong_password_is_401_problem(client: TestClient, db: Session) -> None:
    make_user(db, username="clerk2")
    response = client.post("/api/v1/auth/token", data={"username": "clerk2", "password": "nope"})
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "authentication_failed"


def test_lockout_after_repeated_failures(client: TestClient, db: Session) -> None:
    make_user(db, username="clerk3")
    for _ in range(5):
        client.post("/api/v1/auth/token", data={"username": "clerk3", "password": "wrong"})
    response = client.post("/api/v1/auth/token", data={"username": "clerk3", "password": PASSWORD})
    assert response.status_code == 401
    assert response.json()["code"] == "account_locked"
    freeze(utcnow() + timedelta(minutes=16))
    response = client.post("/api/v1/auth/token", data={"username": "clerk3", "password": PASSWORD})
    assert response.status_code == 200


def test_password_age_policy_forces_change(client: TestClient, db: Session) -> None:
    make_user(db, username="clerk4")
    freeze(utcnow() + timedelta(days=91))
    response = client.post("/api/v1/auth/token", data={"username": "clerk4", "password": PASSWORD})
    assert response.status_code == 401
    assert response.json()["code"] == "password_expired"
    response = client.post(
        "/api/v1/auth/password",
        json={"username": "clerk4", "old_password": PASSWORD, "new_password": "short"},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "new_password"
    response = client.post(
        "/api/v1/auth/password",
        json={"username": "clerk4", "old_password": PASSWORD, "new_password": "Brand-new-99x"},
    )
    assert response.status_code == 204
    response = client.post(
        "/api/v1/auth/token", data={"username": "clerk4", "password": "Brand-new-99x"}
    )
    assert response.status_code == 200


def test_no_token_is_401(client: TestClient) -> None:
    response = client.get("/api/v1/users")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_user_management_needs_permission(client: TestClient, db: Session) -> None:
    clerk = api_headers(db, "front_desk_clerk")
    response = client.get("/api/v1/users", headers=clerk)
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    admin = api_headers(db, "sysadmin")
    response = client.post(
        "/api/v1/users",
        headers=admin,
        json={
            "username": "newbie",
            "display_name": "New",
            "password": "Fresh-pass-123",
            "roles": ["cashier"],
        },
    )
    assert response.status_code == 201, response.text
    assert response.json()["roles"] == ["cashier"]


def test_create_user_bad_input_names_the_field(client: TestClient, db: Session) -> None:
    admin = api_headers(db, "sysadmin")
    response = client.post(
        "/api/v1/users",
        headers=admin,
        json={"username": "Bad Name!", "display_name": "X", "password": "Fresh-pass-123"},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "username"
    response = client.post(
        "/api/v1/users",
        headers={**admin, "Accept-Language": "zh-CN"},
        json={
            "username": "okname",
            "display_name": "X",
            "password": "Fresh-pass-123",
            "roles": ["nope"],
        },
    )
    assert response.status_code == 404
    assert "角色" in response.json()["detail"]


def test_roles_editable_and_permission_takes_effect(client: TestClient, db: Session) -> None:
    admin = api_headers(db, "sysadmin")
    analyst = make_user(db, "data_analyst")
    headers = bearer(db, analyst)
    assert client.get("/api/v1/users", headers=headers).status_code == 403
    roles = {r["code"]: r for r in client.get("/api/v1/roles", headers=admin).json()}
    perms = [*roles["data_analyst"]["permissions"], "users.view"]
    response = client.put(
        "/api/v1/roles/data_analyst/permissions", headers=admin, json={"permissions": perms}
    )
    assert response.status_code == 200, response.text
    assert client.get("/api/v1/users", headers=headers).status_code == 200
    response = client.put(
        "/api/v1/roles/data_analyst/permissions", headers=admin, json={"permissions": ["bogus"]}
    )
    assert response.status_code == 422


def test_permission_review_lists_roles_since_and_last_login(
    client: TestClient, db: Session
) -> None:
    make_user(db, "cashier", username="reviewme")
    client.post("/api/v1/auth/token", data={"username": "reviewme", "password": PASSWORD})
    director = api_headers(db, "operations_director")
    rows = client.get("/api/v1/users/review", headers=director).json()
    row = next(r for r in rows if r["username"] == "reviewme")
    assert row["role_code"] == "cashier"
    assert row["granted_at"] is not None
    assert row["last_login_at"] is not None
    assert client.get("/api/v1/users/review", headers=api_headers(db, "cashier")).status_code == 403
