from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from cardops.audit import service as audit
from tests.factories import api_headers

VALID_ID = "11010519491231002X"
OTHER_ID = "110108197501010017"
VALID_USCC = "91110000600037341L"


def test_register_person_derives_birth_date_and_gender(client: TestClient, db: Session) -> None:
    headers = api_headers(db, "front_desk_clerk")
    response = client.post(
        "/api/v1/persons",
        headers=headers,
        json={"name": " 王  晓雨 ", "id_number": "11010519491231002x", "mobile": "138 0013 8000"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["name"] == "王 晓雨"
    assert body["id_number"] == VALID_ID
    assert body["birth_date"] == "1949-12-31"
    assert body["gender"] == "female"
    assert body["mobile"] == "13800138000"
    got = client.get(f"/api/v1/persons/{body['id']}", headers=headers)
    assert got.status_code == 200
    assert got.json()["id_number"] == VALID_ID
    assert [e.action for e in audit.history(db, "persons", body["id"])] == ["person.created"]


def test_invalid_resident_id_is_422_naming_the_field(client: TestClient, db: Session) -> None:
    headers = api_headers(db, "front_desk_clerk")
    response = client.post(
        "/api/v1/persons", headers=headers, json={"name": "A", "id_number": "110105194912310021"}
    )
    assert response.status_code == 422
    body = response.json()
    assert body["code"] == "invalid"
    assert body["errors"][0]["field"] == "id_number"
    assert "check digit" in body["errors"][0]["message"]
    response = client.post(
        "/api/v1/persons",
        headers={**headers, "Accept-Language": "zh-CN"},
        json={"name": "A", "id_number": "12345"},
    )
    assert response.status_code == 422
    assert "身份证" in response.json()["errors"][0]["message"]


def test_several_bad_fields_are_reported_together(client: TestClient, db: Session) -> None:
    headers = api_headers(db, "front_desk_clerk")
    response = client.post(
        "/api/v1/persons",
        headers=headers,
        json={"name": " ", "id_number": "123", "mobile": "12345", "email": "nope"},
    )
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"name", "id_number", "mobile", "email"}


def test_mobile_is_validated(client: TestClient, db: Session) -> None:
    headers = api_headers(db, "front_desk_clerk")
    response = client.post(
        "/api/v1/persons", headers=headers, json={"name": "A", "mobile": "23800138000"}
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {
            "field": "mobile",
            "message": "A mobile number has 11 digits and starts with 13 to 19, for example 13800138000.",
        }
    ]


def test_duplicate_resident_id_is_409(client: TestClient, db: Session) -> None:
    headers = api_headers(db, "front_desk_clerk")
    first = client.post(
        "/api/v1/persons", headers=headers, json={"name": "A", "id_number": OTHER_ID}
    )
    assert first.status_code == 201
    again = client.post(
        "/api/v1/persons", headers=headers, json={"name": "B", "id_number": OTHER_ID.lower()}
    )
    assert again.status_code == 409
    assert again.json()["code"] == "conflict"
    assert again.json()["errors"][0]["field"] == "id_number"
    # changing another person to the taken number is refused too
    other = client.post("/api/v1/persons", headers=headers, json={"name": "C"}).json()
    patched = client.patch(
        f"/api/v1/persons/{other['id']}", headers=headers, json={"id_number": OTHER_ID}
    )
    assert patched.status_code == 409


def test_patch_person_and_clear_fields(client: TestClient, db: Session) -> None:
    headers = api_headers(db, "front_desk_clerk")
    person = client.post(
        "/api/v1/persons",
        headers=headers,
        json={"name": "A", "id_number": VALID_ID, "mobile": "13800138000"},
    ).json()
    response = client.patch(
        f"/api/v1/persons/{person['id']}",
        headers=headers,
        json={"name": "Anna", "id_number": "", "mobile": "13900139000"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["name"], body["id_number"], body["birth_date"], body["gender"]) == (
        "Anna",
        None,
        None,
        None,
    )
    assert body["mobile"] == "13900139000"
    entries = audit.history(db, "persons", person["id"])
    assert entries[-1].action == "person.updated"
    assert entries[-1].before is not None and entries[-1].before["id_number"] == VALID_ID
    bad = client.patch(f"/api/v1/persons/{person['id']}", headers=headers, json={"mobile": "1"})
    assert bad.status_code == 422
    assert client.get(f"/api/v1/persons/{person['id']}", headers=headers).json()["mobile"] == (
        "13900139000"
    )


def test_search_persons_by_name_id_and_mobile(client: TestClient, db: Session) -> None:
    headers = api_headers(db, "front_desk_clerk")
    client.post(
        "/api/v1/persons",
        headers=headers,
        json={"name": "搜索测试甲", "id_number": VALID_ID, "mobile": "13712345678"},
    )
    client.post("/api/v1/persons", headers=headers, json={"name": "搜索测试乙"})

    def names(q: str) -> list[str]:
        response = client.get("/api/v1/persons", headers=headers, params={"q": q})
        assert response.status_code == 200
        return [p["name"] for p in response.json()]

    assert names("搜索测试") == ["搜索测试乙", "搜索测试甲"]
    assert names("19491231002x") == ["搜索测试甲"]
    assert names("137 1234") == ["搜索测试甲"]
    assert names("no such person %_") == []
    page = client.get("/api/v1/persons", headers=headers, params={"q": "搜索测试", "limit": 1})
    assert len(page.json()) == 1
    assert client.get("/api/v1/persons", headers=headers, params={"limit": 0}).status_code == 422
    assert client.get("/api/v1/persons", headers=headers, params={"q": "x" * 101}).status_code == (
        422
    )


def test_person_permissions(client: TestClient, db: Session) -> None:
    picker = api_headers(db, "picker")
    assert client.get("/api/v1/persons", headers=picker).status_code == 403
    response = client.post("/api/v1/persons", headers=picker, json={"name": "A"})
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"
    agent = api_headers(db, "call_agent")  # may look people up, not register them
    assert client.get("/api/v1/persons", headers=agent).status_code == 200
    assert client.post("/api/v1/persons", headers=agent, json={"name": "A"}).status_code == 403


def test_bad_ids_are_404_not_500(client: TestClient, db: Session) -> None:
    headers = api_headers(db, "front_desk_clerk")
    assert client.get("/api/v1/persons/999999", headers=headers).status_code == 404
    assert client.get(f"/api/v1/persons/{2**70}", headers=headers).status_code == 404
    assert client.get("/api/v1/persons/abc", headers=headers).status_code == 422
    assert client.get(f"/api/v1/organisations/{2**64}", headers=headers).status_code == 404
    too_long = client.post("/api/v1/persons", headers=headers, json={"name": "x" * 129})
    assert too_long.status_code == 422
    assert too_long.json()["errors"][0]["field"] == "name"


def test_organisations_with_uscc(client: TestClient, db: Session) -> None:
    headers = api_headers(db, "channel_specialist")
    response = client.post(
        "/api/v1/organisations",
        headers=headers,
        json={
            "name": "示例商户",
            "kind": "merchant",
            "uscc": "9111 0000 6000 3734 1l",
            "contact_mobile": "13800138000",
        },
    )
    assert response.status_code == 201, response.text
    org = response.json()
    assert org["uscc"] == VALID_USCC
    bad = client.post(
        "/api/v1/organisations",
        headers=headers,
        json={"name": "X", "kind": "merchant", "uscc": "91110000600037341M"},
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "uscc"
    duplicate = client.post(
        "/api/v1/organisations",
        headers=headers,
        json={"name": "Y", "kind": "supplier", "uscc": VALID_USCC},
    )
    assert duplicate.status_code == 409
    assert duplicate.json()["errors"][0]["field"] == "uscc"
    kind = client.post("/api/v1/organisations", headers=headers, json={"name": "Z", "kind": "x"})
    assert kind.status_code == 422
    assert kind.json()["errors"][0]["field"] == "kind"
    patched = client.patch(
        f"/api/v1/organisations/{org['id']}",
        headers=headers,
        json={"legal_person": "周明", "contact_mobile": "123"},
    )
    assert patched.status_code == 422
    assert patched.json()["errors"][0]["field"] == "contact_mobile"
    patched = client.patch(
        f"/api/v1/organisations/{org['id']}", headers=headers, json={"legal_person": "周明"}
    )
    assert patched.status_code == 200
    assert patched.json()["legal_person"] == "周明"

    found = client.get("/api/v1/organisations", headers=headers, params={"q": "37341L"}).json()
    assert [o["id"] for o in found] == [org["id"]]
    found = client.get(
        "/api/v1/organisations", headers=headers, params={"q": "示例商户", "kind": "supplier"}
    ).json()
    assert found == []
    assert (
        client.get("/api/v1/organisations", headers=headers, params={"kind": "nope"}).status_code
        == 422
    )
    kinds = client.get("/api/v1/organisations/kinds", headers=headers).json()
    assert {k["code"] for k in kinds} >= {"merchant", "service_provider", "supplier", "property"}


def test_control_characters_and_odd_input_never_cause_500(client: TestClient, db: Session) -> None:
    headers = api_headers(db, "front_desk_clerk")
    response = client.post(
        "/api/v1/persons",
        headers={**headers, "Content-Type": "application/json"},
        content=b'{"name": "A\\u0000B", "notes": "line 1\\r\\nline 2\\u0000",'
        b' "address": "\\u0007x"}',
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["name"], body["notes"], body["address"]) == ("AB", "line 1\nline 2", "x")
    for q in ("\x00", "%", "_", "'; drop table persons; --"):
        found = client.get("/api/v1/persons", headers=headers, params={"q": q})
        assert found.status_code == 200, q
        found = client.get("/api/v1/organisations", headers=headers, params={"q": q})
        assert found.status_code == 200, q
    email = client.post(
        "/api/v1/persons", headers=headers, json={"name": "E", "email": "a@b.cn\u0000"}
    )
    assert email.status_code == 422
    docs = client.get(
        "/api/v1/documents", headers=headers, params={"owner_type": "person\x00", "owner_id": 1}
    )
    assert docs.status_code == 422
