from __future__ import annotations

import hashlib
import os
import uuid

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from cardops.audit import service as audit
from cardops.auth.models import User
from cardops.core.config import get_settings
from cardops.parties import service
from cardops.parties.models import Document, Person
from tests.factories import api_headers, bearer, make_user

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def _unique(prefix: bytes = b"%PDF-1.4\n") -> bytes:
    """Content no other test uploads, so that tampering with its file harms nobody else."""
    return prefix + uuid.uuid4().bytes * 8


def _person(db: Session, actor: User) -> Person:
    return service.create_person(session=db, actor=actor, name="Doc Owner")


def _upload(
    client: TestClient,
    headers: dict[str, str],
    data: bytes,
    *,
    owner_type: str = "person",
    owner_id: int,
    doc_type: str = "id_front",
    filename: str = "身份证正面.pdf",
    content_type: str = "application/octet-stream",
    **extra: str,
) -> httpx.Response:
    return client.post(
        "/api/v1/documents",
        headers=headers,
        data={"owner_type": owner_type, "owner_id": str(owner_id), "doc_type": doc_type, **extra},
        files={"file": (filename, data, content_type)},
    )


def test_upload_stores_by_sha256_with_metadata(client: TestClient, db: Session) -> None:
    clerk = make_user(db, "front_desk_clerk")
    headers = bearer(db, clerk)
    person = _person(db, clerk)
    data = _unique()
    response = _upload(client, headers, data, owner_id=person.id, note="front side")
    assert response.status_code == 201, response.text
    body = response.json()
    sha = hashlib.sha256(data).hexdigest()
    assert body["sha256"] == sha
    assert body["size"] == len(data)
    assert body["content_type"] == "application/pdf"  # sniffed from the bytes
    assert body["filename"] == "身份证正面.pdf"
    assert body["doc_type"] == "id_front"
    assert body["uploaded_by"] == clerk.username
    assert (body["owner_type"], body["owner_id"]) == ("person", person.id)
    assert body["note"] == "front side"
    path = get_settings().documents_dir / sha[:2] / sha
    assert path.read_bytes() == data
    assert [e.action for e in audit.history(db, "documents", body["id"])] == ["document.uploaded"]

    meta = client.get(f"/api/v1/documents/{body['id']}", headers=headers)
    assert meta.status_code == 200
    assert meta.json() == body
    listing = client.get(
        "/api/v1/documents", headers=headers, params={"owner_type": "person", "owner_id": person.id}
    )
    assert [d["id"] for d in listing.json()] == [body["id"]]


def test_same_content_twice_is_two_rows_one_file(client: TestClient, db: Session) -> None:
    clerk = make_user(db, "front_desk_clerk")
    headers = bearer(db, clerk)
    person = _person(db, clerk)
    data = _unique()
    first = _upload(client, headers, data, owner_id=person.id).json()
    path = service.document_path(first["sha256"])
    mtime = path.stat().st_mtime_ns
    second = _upload(client, headers, data, owner_id=person.id, doc_type="id_back").json()
    assert first["id"] != second["id"]
    assert first["sha256"] == second["sha256"]
    assert path.stat().st_mtime_ns == mtime  # not rewritten
    assert os.listdir(path.parent).count(path.name) == 1
    assert not [n for n in os.listdir(path.parent) if n.endswith(".tmp")]
    rows = db.query(Document).filter(Document.sha256 == first["sha256"]).count()
    assert rows == 2


def test_download_returns_the_exact_bytes(client: TestClient, db: Session) -> None:
    clerk = make_user(db, "front_desk_clerk")
    headers = bearer(db, clerk)
    person = _person(db, clerk)
    data = _unique(PNG)
    doc = _upload(client, headers, data, owner_id=person.id, doc_type="photo", filename="p.png")
    response = client.get(f"/api/v1/documents/{doc.json()['id']}/content", headers=headers)
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-type"] == "image/png"
    assert response.headers["content-disposition"].startswith("attachment")
    assert response.headers["x-content-type-options"] == "nosniff"


def test_empty_and_too_large_files_are_refused(
    client: TestClient, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    clerk = make_user(db, "front_desk_clerk")
    headers = bearer(db, clerk)
    person = _person(db, clerk)
    empty = _upload(client, headers, b"", owner_id=person.id)
    assert empty.status_code == 422
    assert empty.json()["errors"][0]["field"] == "file"
    monkeypatch.setattr(get_settings(), "documents_max_bytes", 1024)
    big = _upload(client, headers, b"x" * 1025, owner_id=person.id)
    assert big.status_code == 422
    assert big.json()["errors"] == [
        {"field": "file", "message": "The file is too large: at most 1 KB is accepted."}
    ]
    exact = _upload(client, headers, _unique()[:1024], owner_id=person.id)
    assert exact.status_code == 201
    assert not service.document_path(hashlib.sha256(b"x" * 1025).hexdigest()).exists()


def test_owner_and_type_are_checked(client: TestClient, db: Session) -> None:
    clerk = make_user(db, "front_desk_clerk")
    headers = bearer(db, clerk)
    person = _person(db, clerk)
    missing = _upload(client, headers, _unique(), owner_id=987654321)
    assert missing.status_code == 404
    assert missing.json()["errors"][0]["field"] == "owner_id"
    bad_type = _upload(client, headers, _unique(), owner_id=person.id, doc_type="selfie")
    assert bad_type.status_code == 422
    assert bad_type.json()["errors"][0]["field"] == "doc_type"
    bad_owner = _upload(client, headers, _unique(), owner_type="Person!", owner_id=person.id)
    assert bad_owner.status_code == 422
    no_file = client.post(
        "/api/v1/documents",
        headers=headers,
        data={"owner_type": "person", "owner_id": str(person.id), "doc_type": "photo"},
    )
    assert no_file.status_code == 422
    huge_id = _upload(client, headers, _unique(), owner_id=2**64)
    assert huge_id.status_code == 422
    # another domain's record ("case"): accepted without a registered owner check
    other = _upload(client, headers, _unique(), owner_type="shipment", owner_id=40)
    assert other.status_code == 201
    assert (other.json()["owner_type"], other.json()["owner_id"]) == ("shipment", 40)


def test_registered_owner_types_are_checked(db: Session) -> None:
    clerk = make_user(db, "front_desk_clerk")
    service.register_document_owner("testcase", label="Test case", exists=lambda s, i: i == 7)
    try:
        doc = service.upload_document(
            session=db,
            actor=clerk,
            owner_type="testcase",
            owner_id=7,
            doc_type="signed_form",
            filename="f.pdf",
            data=_unique(),
        )
        assert doc.owner_id == 7
        from cardops.core.errors import NotFound

        with pytest.raises(NotFound):
            service.upload_document(
                session=db,
                actor=clerk,
                owner_type="testcase",
                owner_id=8,
                doc_type="signed_form",
                filename="f.pdf",
                data=_unique(),
            )
    finally:
        service.DOCUMENT_OWNERS.pop("testcase")


def test_replacement_is_a_new_row_and_rows_are_immutable(client: TestClient, db: Session) -> None:
    clerk = make_user(db, "front_desk_clerk")
    headers = bearer(db, clerk)
    person = _person(db, clerk)
    old = _upload(client, headers, _unique(), owner_id=person.id).json()
    new = _upload(
        client, headers, _unique(), owner_id=person.id, supersedes_id=str(old["id"])
    ).json()
    assert new["supersedes_id"] == old["id"]
    other = _person(db, clerk)
    wrong = _upload(client, headers, _unique(), owner_id=other.id, supersedes_id=str(old["id"]))
    assert wrong.status_code == 422
    documents = service.list_documents(
        session=db, actor=clerk, owner_type="person", owner_id=person.id
    )
    assert service.superseded_ids(documents) == {old["id"]}
    row = db.get(Document, old["id"])
    assert row is not None
    row.note = "changed"
    with pytest.raises(RuntimeError):
        db.flush()
    db.rollback()


def test_verify_detects_a_changed_or_missing_file(client: TestClient, db: Session) -> None:
    clerk = make_user(db, "front_desk_clerk")
    headers = bearer(db, clerk)
    person = _person(db, clerk)
    doc = _upload(client, headers, _unique(), owner_id=person.id).json()
    check = client.get(f"/api/v1/documents/{doc['id']}/verify", headers=headers).json()
    assert check["ok"] and check["status"] == "ok"
    path = service.document_path(doc["sha256"])
    path.chmod(0o640)
    path.write_bytes(b"tampered")
    check = client.get(f"/api/v1/documents/{doc['id']}/verify", headers=headers).json()
    assert check["status"] == "mismatch"
    assert check["actual_sha256"] == hashlib.sha256(b"tampered").hexdigest()
    problems = service.verify_all_documents(db)
    assert doc["id"] in {p.document_id for p in problems}
    path.unlink()
    check = client.get(f"/api/v1/documents/{doc['id']}/verify", headers=headers).json()
    assert check["status"] == "missing"
    download = client.get(f"/api/v1/documents/{doc['id']}/content", headers=headers)
    assert download.status_code == 404
    assert download.json()["code"] == "file_missing"


def test_a_damaged_file_is_restored_by_uploading_the_same_content(
    client: TestClient, db: Session
) -> None:
    clerk = make_user(db, "front_desk_clerk")
    headers = bearer(db, clerk)
    person = _person(db, clerk)
    data = _unique()
    doc = _upload(client, headers, data, owner_id=person.id).json()
    path = service.document_path(doc["sha256"])
    path.chmod(0o640)
    path.write_bytes(b"bit rot")
    _upload(client, headers, data, owner_id=person.id)
    assert path.read_bytes() == data


def test_document_permissions(client: TestClient, db: Session) -> None:
    clerk = make_user(db, "front_desk_clerk")
    person = _person(db, clerk)
    doc = _upload(client, bearer(db, clerk), _unique(), owner_id=person.id).json()
    picker = api_headers(db, "picker")
    assert _upload(client, picker, _unique(), owner_id=person.id).status_code == 403
    assert client.get(f"/api/v1/documents/{doc['id']}", headers=picker).status_code == 403
    assert client.get(f"/api/v1/documents/{doc['id']}/content", headers=picker).status_code == 403
    listing = client.get(
        "/api/v1/documents", headers=picker, params={"owner_type": "person", "owner_id": person.id}
    )
    assert listing.status_code == 403
    agent = api_headers(db, "call_agent")  # sees persons, not their ID copies
    assert client.get(f"/api/v1/documents/{doc['id']}/content", headers=agent).status_code == 403
    assert client.get("/api/v1/documents/999999", headers=bearer(db, clerk)).status_code == 404
