from __future__ import annotations

import hashlib
import re
import uuid

from fastapi import FastAPI
from sqlalchemy.orm import Session

from cardops.parties import service
from cardops.parties.models import Person
from tests.factories import console, field_error

VALID_ID = "320102199203300083"
PERSON_FORM = {
    "name": "张小梅",
    "id_number": "320102199203300084",  # wrong check digit
    "mobile": "13800138000",
    "email": "xm@example.com",
    "address": "幸福里 3 栋",
    "notes": "业主",
}


def test_new_person_form_shows_field_error_and_keeps_values(app: FastAPI, db: Session) -> None:
    clerk = console(app, db, "front_desk_clerk")
    page = clerk.get("/persons/new")
    assert page.status_code == 200
    assert 'id="save-person"' in page.text
    for name in PERSON_FORM:
        assert f'name="{name}"' in page.text

    response = clerk.post("/persons/new", data=PERSON_FORM)
    assert response.status_code == 422
    message = field_error(response.text, "id_number")
    assert message and ("check digit" in message or "校验" in message)
    assert 'value="320102199203300084"' in response.text
    assert 'value="张小梅"' in response.text
    assert 'value="13800138000"' in response.text
    assert "业主" in response.text
    assert db.query(Person).filter(Person.name == "张小梅").count() == 0

    response = clerk.post("/persons/new", data={**PERSON_FORM, "id_number": VALID_ID.lower()})
    assert response.status_code == 303
    location = response.headers["location"]
    assert re.fullmatch(r"/persons/\d+", location)
    detail = clerk.get(location)
    assert detail.status_code == 200
    assert VALID_ID in detail.text
    assert "1992-03-30" in detail.text
    assert 'id="person-gender">女<' in detail.text or 'id="person-gender">Female<' in detail.text


def test_english_console_messages(app: FastAPI, db: Session) -> None:
    clerk = console(app, db, "front_desk_clerk")
    clerk.http.cookies.set("cardops_lang", "en")
    response = clerk.post("/persons/new", data={**PERSON_FORM, "mobile": "12"})
    assert response.status_code == 422
    assert "check digit" in (field_error(response.text, "id_number") or "")
    assert "11 digits" in (field_error(response.text, "mobile") or "")


def test_duplicate_id_in_console_is_a_field_error(app: FastAPI, db: Session) -> None:
    clerk = console(app, db, "front_desk_clerk")
    assert clerk.post("/persons/new", data={"name": "A", "id_number": VALID_ID}).status_code == 303
    again = clerk.post("/persons/new", data={"name": "B", "id_number": VALID_ID})
    assert again.status_code == 409
    assert field_error(again.text, "id_number")


def test_edit_person(app: FastAPI, db: Session) -> None:
    clerk = console(app, db, "front_desk_clerk")
    person = service.create_person(session=db, actor=clerk.user, name="Old", mobile="13800138000")
    form = clerk.get(f"/persons/{person.id}/edit")
    assert 'value="Old"' in form.text
    bad = clerk.post(f"/persons/{person.id}/edit", data={"name": "New", "mobile": "99"})
    assert bad.status_code == 422
    assert field_error(bad.text, "mobile")
    assert 'value="New"' in bad.text
    ok = clerk.post(
        f"/persons/{person.id}/edit", data={"name": "New", "mobile": "139 0013 9000", "notes": ""}
    )
    assert ok.status_code == 303
    db.refresh(person)
    assert (person.name, person.mobile) == ("New", "13900139000")


def test_person_list_search(app: FastAPI, db: Session) -> None:
    clerk = console(app, db, "front_desk_clerk")
    service.create_person(session=db, actor=clerk.user, name="列表查找人", id_number=VALID_ID)
    page = clerk.get("/persons", params={"q": "列表查找"})
    assert page.status_code == 200
    assert "列表查找人" in page.text
    assert "列表查找人" not in clerk.get("/persons", params={"q": "nobody-like-this"}).text
    assert "列表查找人" in clerk.get("/persons", params={"q": "199203300083"}).text


def test_console_permission_refused(app: FastAPI, db: Session) -> None:
    picker = console(app, db, "picker")
    assert picker.get("/persons").status_code == 403
    assert picker.get("/persons/new").status_code == 403
    assert picker.post("/persons/new", data={"name": "A"}).status_code == 403
    assert picker.get("/organisations").status_code == 403
    agent = console(app, db, "call_agent")
    assert agent.get("/persons").status_code == 200
    assert agent.get("/persons/new").status_code == 403


def test_organisation_console(app: FastAPI, db: Session) -> None:
    specialist = console(app, db, "channel_specialist")
    page = specialist.get("/organisations/new")
    assert page.status_code == 200 and 'id="save-organisation"' in page.text
    bad = specialist.post(
        "/organisations/new",
        data={"name": "某服务商", "kind": "service_provider", "uscc": "91110000600037341M"},
    )
    assert bad.status_code == 422
    assert field_error(bad.text, "uscc")
    assert 'value="某服务商"' in bad.text
    ok = specialist.post(
        "/organisations/new",
        data={"name": "某服务商", "kind": "service_provider", "uscc": "91110000600037341L"},
    )
    assert ok.status_code == 303
    detail = specialist.get(ok.headers["location"])
    assert "91110000600037341L" in detail.text
    listing = specialist.get("/organisations", params={"kind": "service_provider"})
    assert "某服务商" in listing.text


def test_upload_and_download_in_console(app: FastAPI, db: Session) -> None:
    clerk = console(app, db, "front_desk_clerk")
    person = service.create_person(session=db, actor=clerk.user, name="Up Loader")
    detail = clerk.get(f"/persons/{person.id}")
    assert 'id="upload-document"' in detail.text
    data = b"%PDF-1.4\n" + uuid.uuid4().bytes
    response = clerk.post(
        "/documents/upload",
        data={
            "owner_type": "person",
            "owner_id": str(person.id),
            "doc_type": "lease_contract",
            "note": "2026 lease",
            "next": f"/persons/{person.id}",
        },
        files={"file": ("lease.pdf", data, "application/pdf")},
    )
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"/persons/{person.id}"
    detail = clerk.get(f"/persons/{person.id}")
    sha = hashlib.sha256(data).hexdigest()
    assert "lease.pdf" in detail.text
    assert sha[:12] in detail.text
    doc_id = int(re.search(r'data-document="(\d+)"', detail.text).group(1))  # type: ignore[union-attr]
    download = clerk.get(f"/documents/{doc_id}/download")
    assert download.status_code == 200 and download.content == data
    verify = clerk.get(f"/documents/{doc_id}/verify")
    assert verify.status_code == 303

    # errors re-render an upload form with the message next to the field
    empty = clerk.post(
        "/documents/upload",
        data={"owner_type": "person", "owner_id": str(person.id), "doc_type": "photo"},
        files={"file": ("empty.png", b"", "image/png")},
    )
    assert empty.status_code == 422
    assert field_error(empty.text, "file")
    no_type = clerk.post(
        "/documents/upload",
        data={"owner_type": "person", "owner_id": str(person.id), "doc_type": ""},
        files={"file": ("a.pdf", data, "application/pdf")},
    )
    assert no_type.status_code == 422
    assert field_error(no_type.text, "doc_type")
    bad_owner = clerk.post(
        "/documents/upload",
        data={"owner_type": "person", "owner_id": "x", "doc_type": "photo"},
        files={"file": ("a.pdf", data, "application/pdf")},
    )
    assert bad_owner.status_code == 422
    offsite = clerk.post(
        "/documents/upload",
        data={
            "owner_type": "person",
            "owner_id": str(person.id),
            "doc_type": "other",
            "next": "//evil.example/",
        },
        files={"file": ("a.pdf", data, "application/pdf")},
    )
    assert offsite.headers["location"] == f"/persons/{person.id}"

    picker = console(app, db, "picker")
    assert picker.get(f"/documents/{doc_id}/download").status_code == 403
    refused = picker.post(
        "/documents/upload",
        data={"owner_type": "person", "owner_id": str(person.id), "doc_type": "photo"},
        files={"file": ("a.pdf", data, "application/pdf")},
    )
    assert refused.status_code == 403


def test_console_bad_ids_are_404(app: FastAPI, db: Session) -> None:
    clerk = console(app, db, "front_desk_clerk")
    assert clerk.get("/persons/999999").status_code == 404
    assert clerk.get(f"/persons/{2**70}").status_code == 404
    assert clerk.get("/persons/abc").status_code == 404
    assert clerk.get("/documents/999999/download").status_code == 404
    assert clerk.get("/persons", params={"page": "-5"}).status_code == 200
