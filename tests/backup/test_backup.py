"""The restore drill: back up, change things, restore, and find exactly what was backed up."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cardops.auth import service as auth
from cardops.auth.models import User
from cardops.backup import service as backup
from cardops.core.db import make_engine
from cardops.core.errors import CardopsError, ValidationFailed
from tests.backup.conftest import NewDatabase
from tests.factories import PASSWORD


def add_users(url: str, *names: str) -> None:
    """Users created by the system user (each writes audit entries), committed."""
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            system = auth.system_user(session)
            for name in names:
                auth.create_user(
                    session=session,
                    actor=system,
                    username=name,
                    display_name=name.title(),
                    password=PASSWORD,
                    roles=["front_desk_clerk"],
                )
            session.commit()
    finally:
        engine.dispose()


def rename_user(url: str, username: str, display_name: str) -> None:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            user = session.execute(select(User).where(User.username == username)).scalar_one()
            auth.update_user(
                session=session,
                actor=auth.system_user(session),
                user_id=user.id,
                display_name=display_name,
            )
            session.commit()
    finally:
        engine.dispose()


def display_name(url: str, username: str) -> str:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            return session.execute(
                select(User.display_name).where(User.username == username)
            ).scalar_one()
    finally:
        engine.dispose()


def write_documents(root: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def read_documents(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


DOCS = {
    "parties/7/id-front.jpg": b"\xff\xd8 front",
    "parties/7/租赁合同.pdf": "合同".encode() * 100,
}


def test_restore_drill(new_database: NewDatabase, tmp_path: Path) -> None:
    url = new_database()
    documents = tmp_path / "documents"
    add_users(url, "wang.fang", "zhao.lei")
    write_documents(documents, DOCS)
    at_backup = backup.database_state(url)
    assert at_backup.audit_ok and at_backup.audit_count > 0

    phases: set[str] = set()
    info = backup.create_backup(
        url,
        f"{tmp_path}/backups/",
        lambda phase, done, total: phases.add(phase),
        documents_dir=documents,
    )
    assert info.path.name.startswith("cardops-") and info.path.name.endswith(".tar.gz")
    assert {"database", "archive"} <= phases
    assert info.state.tables == at_backup.tables
    assert (info.state.audit_count, info.state.audit_head) == (
        at_backup.audit_count,
        at_backup.audit_head,
    )
    assert info.state.revision is not None
    assert info.documents == 2
    assert backup.verify_backup(info.path, deep=True).state.tables == at_backup.tables

    # Life goes on: new users, an edit, documents added and removed.
    add_users(url, "sun.li")
    rename_user(url, "wang.fang", "Wang Fang (renamed)")
    write_documents(documents, {"parties/8/new.pdf": b"new"})
    (documents / "parties/7/id-front.jpg").unlink()
    changed = backup.database_state(url)
    assert changed.tables["users"] == at_backup.tables["users"] + 1
    assert changed.audit_count > at_backup.audit_count

    result = backup.restore_backup(url, info.path, documents_dir=documents)
    assert result.matches
    assert result.state.tables == at_backup.tables
    assert result.state.audit_count == at_backup.audit_count
    assert result.state.audit_head == at_backup.audit_head
    assert result.state.audit_ok
    assert not result.needs_upgrade
    assert display_name(url, "wang.fang") == "Wang.Fang"
    assert read_documents(documents) == DOCS
    assert not list(tmp_path.glob(".documents-*"))

    # The restored database is usable: it takes new writes and the chain goes on.
    add_users(url, "qian.hui")
    assert backup.database_state(url).audit_ok


def test_restore_into_a_new_empty_database(new_database: NewDatabase, tmp_path: Path) -> None:
    source = new_database()
    add_users(source, "li.ming")
    info = backup.create_backup(source, tmp_path / "b.tar.gz", documents_dir=tmp_path / "none")
    target = new_database(migrated=False)  # a new server: empty database, no documents yet
    result = backup.restore_backup(target, info.path, documents_dir=tmp_path / "docs-new")
    assert result.matches and result.state.audit_ok
    assert result.state.tables == backup.database_state(source).tables
    assert display_name(target, "li.ming") == "Li.Ming"
    assert (tmp_path / "docs-new").is_dir() and result.documents == 0


def test_backup_while_another_connection_writes_is_consistent(
    new_database: NewDatabase, tmp_path: Path
) -> None:
    url = new_database()
    add_users(url, "a.one", "b.two")
    before = backup.database_state(url)
    writes: list[str] = []

    def write_meanwhile(phase: str, done: int, total: int) -> None:
        # While the database is being copied, another connection commits new rows.
        if phase == "database" and 0 < done < total and len(writes) < 2:
            name = f"during.{len(writes)}"
            add_users(url, name)
            writes.append(name)

    info = backup.create_backup(
        url, tmp_path / "busy.tar.gz", write_meanwhile, documents_dir=tmp_path / "d", step_pages=1
    )
    assert writes, "the copy finished before anything was written"
    after = backup.database_state(url)
    assert after.tables["users"] == before.tables["users"] + len(writes)
    # The backup is the database as of one instant: before the writes, chain intact.
    assert info.state.tables == before.tables
    assert (info.state.audit_count, info.state.audit_head) == (
        before.audit_count,
        before.audit_head,
    )
    assert info.state.audit_ok

    target = new_database(migrated=False)
    result = backup.restore_backup(target, info.path, documents_dir=tmp_path / "d2")
    assert result.matches and result.state.audit_ok


def test_restore_refuses_files_that_are_not_backups(
    new_database: NewDatabase, tmp_path: Path
) -> None:
    url = new_database()
    before = backup.database_state(url)
    docs = tmp_path / "docs"
    write_documents(docs, {"keep.txt": b"keep"})

    junk = tmp_path / "notes.tar.gz"
    junk.write_bytes(b"this is not an archive")
    plain = tmp_path / "other.tar.gz"
    with tarfile.open(plain, "w:gz") as tar:
        data = b'{"hello": "world"}'
        member = tarfile.TarInfo("manifest.json")
        member.size = len(data)
        tar.addfile(member, io.BytesIO(data))
    for path in (junk, plain):
        with pytest.raises(ValidationFailed) as caught:
            backup.restore_backup(url, path, documents_dir=docs)
        assert caught.value.code == "not_a_backup"
        assert "not a cardops backup" in str(caught.value)
    with pytest.raises(ValidationFailed) as missing:
        backup.restore_backup(url, tmp_path / "nope.tar.gz", documents_dir=docs)
    assert missing.value.code == "not_found"
    assert backup.database_state(url).tables == before.tables
    assert read_documents(docs) == {"keep.txt": b"keep"}


def _rewrite(source: Path, target: Path, change: dict[str, bytes]) -> None:
    """Copy an archive, replacing the data of some members."""
    with tarfile.open(source, "r:gz") as old, tarfile.open(target, "w:gz") as new:
        for member in old:
            handle = old.extractfile(member)
            data = change.get(member.name, handle.read() if handle else b"")
            member.size = len(data)
            new.addfile(member, io.BytesIO(data))


def test_restore_refuses_a_damaged_or_mismatched_backup(
    new_database: NewDatabase, tmp_path: Path
) -> None:
    url = new_database()
    add_users(url, "c.three")
    info = backup.create_backup(url, tmp_path / "good.tar.gz", documents_dir=tmp_path / "d")
    before = backup.database_state(url)
    member = backup.MEMBERS[info.kind]

    damaged = tmp_path / "damaged.tar.gz"
    _rewrite(info.path, damaged, {member: b"garbage"})
    with pytest.raises(ValidationFailed) as caught:
        backup.restore_backup(url, damaged, documents_dir=tmp_path / "d")
    assert caught.value.code == "backup_damaged"
    with pytest.raises(ValidationFailed):
        backup.verify_backup(damaged, deep=True)

    other_kind = "postgresql" if info.kind == "sqlite" else "sqlite"
    manifest = dict(info.manifest, database={**info.manifest["database"], "kind": other_kind})
    foreign = tmp_path / "foreign.tar.gz"
    _rewrite(info.path, foreign, {"manifest.json": json.dumps(manifest).encode()})
    with pytest.raises(ValidationFailed) as kind:
        backup.restore_backup(url, foreign, documents_dir=tmp_path / "d")
    assert kind.value.code == "backup_kind_mismatch"

    newer = dict(info.manifest, alembic_revision="9999")
    future = tmp_path / "future.tar.gz"
    _rewrite(info.path, future, {"manifest.json": json.dumps(newer).encode()})
    with pytest.raises(CardopsError) as too_new:
        backup.restore_backup(url, future, documents_dir=tmp_path / "d")
    assert too_new.value.code == "backup_too_new"

    assert backup.database_state(url).tables == before.tables
