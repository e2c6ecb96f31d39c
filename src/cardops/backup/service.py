"""Consistent backups of the database and the documents folder, and restoring them.

A backup is one gzip-compressed tar file (``cardops-YYYYMMDD-HHMMSS.tar.gz``) holding, in
this order:

``manifest.json``
    ``format`` ("cardops-backup"), ``format_version``, ``created_at``, the database ``kind``,
    its ``alembic_revision``, the SHA-256 of the database member, the row count of every
    table, the audit chain's entry count and head hash (and whether it verified), and the
    number and size of the documents.
``database.sqlite`` (SQLite) or ``database.pgdump`` (PostgreSQL, ``pg_dump --format=custom``)
``documents/…``
    the files under ``settings.documents_dir``.

Both kinds are taken while the server runs. SQLite: the online backup API copies the pages
inside one read transaction (WAL lets writers go on), so the copy is the database as of one
instant. PostgreSQL: a REPEATABLE READ transaction exports its snapshot, the manifest's counts
are read in it and ``pg_dump --snapshot`` dumps exactly that snapshot. Documents are copied
after the database snapshot; they are write-once, so every file a backed-up row refers to is
in the archive.

These are plain functions over a database URL; the CLI (``cardops backup …``) calls them.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from sqlalchemy import URL, Connection, create_engine, func, inspect, make_url, select, table, text
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

import cardops
from cardops.audit import service as audit
from cardops.core.clock import utcnow
from cardops.core.config import get_settings
from cardops.core.errors import CardopsError, ValidationFailed

FORMAT = "cardops-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DOCUMENTS = "documents"
MEMBERS = {"sqlite": "database.sqlite", "postgresql": "database.pgdump"}
KINDS = tuple(MEMBERS)
STEP_PAGES = 1024  # SQLite pages copied per backup step (4 MiB with the default page size)

# (phase, done, total): phases are "database", "archive", "documents", "restore".
Progress = Callable[[str, int, int], None]


def _no_progress(phase: str, done: int, total: int) -> None:
    return None


@dataclass(slots=True)
class DatabaseState:
    """What a restore must reproduce: row counts and the audit chain."""

    revision: str | None
    tables: dict[str, int]
    audit_count: int
    audit_head: str
    audit_ok: bool
    audit_broken_seq: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "alembic_revision": self.revision,
            "tables": self.tables,
            "audit": {
                "count": self.audit_count,
                "head_hash": self.audit_head,
                "verified": self.audit_ok,
                "broken_seq": self.audit_broken_seq,
            },
        }


@dataclass(slots=True)
class BackupInfo:
    path: Path
    created_at: datetime
    kind: str
    state: DatabaseState
    database_sha256: str
    database_bytes: int
    documents: int
    documents_bytes: int
    cardops_version: str
    manifest: dict[str, Any] = field(repr=False)

    @property
    def size(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0


@dataclass(slots=True)
class RestoreInfo:
    backup: BackupInfo
    state: DatabaseState  # of the target database after the restore
    documents: int
    needs_upgrade: bool  # the backup's schema is older than this cardops: run `cardops db upgrade`

    @property
    def matches(self) -> bool:
        """Row counts and the audit chain are those recorded at backup time."""
        want, got = self.backup.state, self.state
        return (
            got.revision == want.revision
            and got.tables == want.tables
            and got.audit_count == want.audit_count
            and got.audit_head == want.audit_head
        )


# --- helpers ------------------------------------------------------------------------------


def database_kind(url: str) -> str:
    kind = make_url(url).get_backend_name()
    if kind not in KINDS:
        raise CardopsError(
            "Only SQLite and PostgreSQL databases can be backed up, not {kind}.",
            code="backup_unsupported",
            kind=kind,
        )
    return kind


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise CardopsError(
            "A backup needs a SQLite database file, not an in-memory database.",
            code="backup_unsupported",
        )
    return Path(database)


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """The libpq form of a SQLAlchemy URL (postgresql+psycopg://… → postgresql://…).

    The password goes into the environment (PGPASSWORD), not onto the command line.
    """
    parsed = make_url(url)
    dsn = URL.create(
        "postgresql",
        username=parsed.username,
        host=parsed.host,
        port=parsed.port,
        database=parsed.database,
        query=parsed.query,
    ).render_as_string(hide_password=False)
    env = dict(os.environ)
    if parsed.password:
        env["PGPASSWORD"] = str(parsed.password)
    return dsn, env


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_state(connection: Connection) -> DatabaseState:
    """Row counts of every table, the schema revision and the audit chain, as ``connection``
    sees them (inside its transaction)."""
    names = sorted(inspect(connection).get_table_names())
    counts = {
        name: int(connection.execute(select(func.count()).select_from(table(name))).scalar_one())
        for name in names
    }
    revision = None
    if "alembic_version" in names:
        revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    if "audit_log" not in names:
        return DatabaseState(revision, counts, 0, audit.GENESIS, True)
    with Session(bind=connection) as session:
        result = audit.verify(session)
        return DatabaseState(
            revision=revision,
            tables=counts,
            audit_count=audit.count(session),
            audit_head=audit.head_hash(session),
            audit_ok=result.ok,
            audit_broken_seq=result.broken_seq,
        )


def database_state(url: str) -> DatabaseState:
    """:func:`read_state` of the database at ``url``."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return read_state(connection)
    finally:
        engine.dispose()


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise CardopsError(
            "{tool} was not found. Install the PostgreSQL client programs (the same major version as the server or newer).",
            code="backup_failed",
            tool=name,
        )
    return found


def _run_tool(
    args: list[str],
    *,
    env: dict[str, str],
    progress: Progress,
    phase: str,
    total: int,
    step: re.Pattern[str],
) -> None:
    """Run a PostgreSQL client program; advance ``phase`` on each ``--verbose`` line matching
    ``step``; refuse with its error message when it fails."""
    process = subprocess.Popen(
        args,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
    )
    assert process.stderr is not None
    done = 0
    tail: list[str] = []
    progress(phase, 0, total)
    for line in process.stderr:
        if step.search(line):
            done += 1
            progress(phase, min(done, total), total)
        if "error" in line.lower() or "fatal" in line.lower():
            tail.append(line.strip())
    code = process.wait()
    if code != 0:
        raise CardopsError(
            "{tool} failed (exit code {exit}): {detail}",
            code="backup_failed",
            tool=Path(args[0]).name,
            exit=code,
            detail=" / ".join(tail[-5:]) or "no message",
        )
    progress(phase, total, total)


# --- creating -----------------------------------------------------------------------------


def _snapshot_sqlite(url: str, out: Path, progress: Progress, step_pages: int) -> DatabaseState:
    source = _sqlite_path(url)
    if not source.exists():
        raise CardopsError(
            "The database file {path} does not exist.", code="backup_failed", path=str(source)
        )
    src = sqlite3.connect(source, isolation_level=None)
    try:
        src.execute("PRAGMA busy_timeout=10000")
        # One read transaction for the whole copy: the backup sees a single instant, and in
        # WAL mode writers are not blocked meanwhile.
        src.execute("BEGIN")
        src.execute("SELECT count(*) FROM sqlite_master").fetchone()
        dst = sqlite3.connect(out)
        try:
            src.backup(
                dst,
                pages=step_pages,
                progress=lambda _status, remaining, total: progress(
                    "database", total - remaining, total
                ),
            )
        finally:
            dst.close()
        src.execute("COMMIT")
    finally:
        src.close()
    # A self-contained single file (no -wal/-shm companions).
    copy = sqlite3.connect(out, isolation_level=None)
    try:
        copy.execute("PRAGMA journal_mode=DELETE")
    finally:
        copy.close()
    return database_state(f"sqlite:///{out}")


def _dump_postgres(url: str, out: Path, progress: Progress) -> DatabaseState:
    pg_dump = _tool("pg_dump")
    dsn, env = _libpq(url)
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            connection.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
            with connection.begin():
                snapshot = connection.execute(text("SELECT pg_export_snapshot()")).scalar_one()
                state = read_state(connection)
                # The exporting transaction stays open until pg_dump has finished with it.
                _run_tool(
                    [
                        pg_dump,
                        "--format=custom",
                        f"--snapshot={snapshot}",
                        "--verbose",
                        f"--file={out}",
                        f"--dbname={dsn}",
                    ],
                    env=env,
                    progress=progress,
                    phase="database",
                    total=max(len(state.tables), 1),
                    step=re.compile(r"dumping contents of table"),
                )
    finally:
        engine.dispose()
    return state


def _list_documents(documents_dir: Path) -> list[tuple[Path, str, int]]:
    """(file, name in the archive, size) for every regular file under ``documents_dir``."""
    if not documents_dir.is_dir():
        return []
    found = []
    for path in sorted(documents_dir.rglob("*")):
        if path.is_file() and not path.is_symlink():
            relative = path.relative_to(documents_dir).as_posix()
            found.append((path, f"{DOCUMENTS}/{relative}", path.stat().st_size))
    return found


class _CountingReader(io.RawIOBase):
    """Reads a file and reports the bytes read (for the archive progress bar)."""

    def __init__(self, handle: IO[bytes], advance: Callable[[int], None]) -> None:
        self.handle = handle
        self.advance = advance

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.advance(len(data))
        return data


def _write_archive(
    path: Path,
    manifest: dict[str, Any],
    database: tuple[Path, str],
    documents: list[tuple[Path, str, int]],
    progress: Progress,
) -> None:
    total = database[0].stat().st_size + sum(size for _, _, size in documents)
    done = 0

    def advance(n: int) -> None:
        nonlocal done
        done += n
        progress("archive", done, total)

    progress("archive", 0, total)
    with tarfile.open(path, "w:gz", compresslevel=6, format=tarfile.PAX_FORMAT) as tar:
        data = json.dumps(manifest, ensure_ascii=False, indent=2).encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size = len(data)
        info.mtime = int(utcnow().timestamp())
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(data))
        for source, name in [database, *((p, n) for p, n, _ in documents)]:
            try:
                info = tar.gettarinfo(str(source), arcname=name)
                with source.open("rb") as handle:
                    tar.addfile(info, _CountingReader(handle, advance))
            except FileNotFoundError:
                continue  # a document removed while the backup ran


def default_backup_name(now: datetime | None = None) -> str:
    return f"cardops-{(now or utcnow()).strftime('%Y%m%d-%H%M%S')}.tar.gz"


def create_backup(
    url: str,
    path: str | Path,
    progress: Progress | None = None,
    *,
    documents_dir: Path | None = None,
    step_pages: int = STEP_PAGES,
) -> BackupInfo:
    """Take a consistent backup of the database at ``url`` and the documents into ``path``
    (a ``.tar.gz`` file; a directory, or a path ending in "/", gets a dated file name
    inside it)."""
    progress = progress or _no_progress
    kind = database_kind(url)
    documents_dir = documents_dir if documents_dir is not None else get_settings().documents_dir
    target = Path(path)
    if target.is_dir() or str(path).endswith(("/", os.sep)):
        target = target / default_backup_name()
    target.parent.mkdir(parents=True, exist_ok=True)
    created_at = utcnow()
    with tempfile.TemporaryDirectory(prefix=".cardops-backup-", dir=target.parent) as tmp:
        database = Path(tmp) / MEMBERS[kind]
        if kind == "sqlite":
            state = _snapshot_sqlite(url, database, progress, step_pages)
        else:
            state = _dump_postgres(url, database, progress)
        documents = _list_documents(documents_dir)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "created_at": created_at.isoformat(),
            "cardops_version": cardops.__version__,
            "database": {
                "kind": kind,
                "member": MEMBERS[kind],
                "sha256": _sha256(database),
                "bytes": database.stat().st_size,
            },
            **state.to_json(),
            "documents": {
                "files": len(documents),
                "bytes": sum(size for _, _, size in documents),
            },
        }
        partial = target.with_name(target.name + ".partial")
        try:
            _write_archive(partial, manifest, (database, MEMBERS[kind]), documents, progress)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
    return _info(target, manifest)


# --- reading ------------------------------------------------------------------------------


def _not_a_backup(path: Path, reason: str) -> ValidationFailed:
    return ValidationFailed(
        "{path} is not a cardops backup ({reason}).",
        code="not_a_backup",
        field="path",
        path=str(path),
        reason=reason,
    )


def _info(path: Path, manifest: dict[str, Any]) -> BackupInfo:
    try:
        database = manifest["database"]
        trail = manifest["audit"]
        kind = str(database["kind"])
        if kind not in KINDS:
            raise ValueError(f"unknown database kind {kind!r}")
        return BackupInfo(
            path=path,
            created_at=datetime.fromisoformat(manifest["created_at"]),
            kind=kind,
            state=DatabaseState(
                revision=manifest.get("alembic_revision"),
                tables={str(k): int(v) for k, v in manifest["tables"].items()},
                audit_count=int(trail["count"]),
                audit_head=str(trail["head_hash"]),
                audit_ok=bool(trail["verified"]),
                audit_broken_seq=trail.get("broken_seq"),
            ),
            database_sha256=str(database["sha256"]),
            database_bytes=int(database["bytes"]),
            documents=int(manifest["documents"]["files"]),
            documents_bytes=int(manifest["documents"]["bytes"]),
            cardops_version=str(manifest.get("cardops_version", "")),
            manifest=manifest,
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise _not_a_backup(path, f"the manifest is incomplete: {exc}") from exc


@contextmanager
def _open_backup(path: Path) -> Iterator[tuple[tarfile.TarFile, BackupInfo]]:
    """The archive, positioned after its manifest, and what the manifest says."""
    if not path.is_file():
        raise ValidationFailed(
            "The file {path} does not exist.", code="not_found", field="path", path=str(path)
        )
    try:
        tar = tarfile.open(path, "r:gz")  # noqa: SIM115 (closed below, after the yield)
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise _not_a_backup(path, "not a gzip-compressed tar file") from exc
    try:
        try:
            first = tar.next()
            if first is None or first.name != MANIFEST or not first.isfile():
                raise _not_a_backup(path, "it does not start with manifest.json")
            handle = tar.extractfile(first)
            assert handle is not None
            manifest = json.loads(handle.read(1 << 22))
        except (tarfile.TarError, OSError, EOFError, UnicodeDecodeError, ValueError) as exc:
            raise _not_a_backup(path, f"unreadable manifest: {exc}") from exc
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise _not_a_backup(path, "the manifest is not a cardops manifest")
        version = manifest.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise _not_a_backup(path, f"unsupported format version {version!r}")
        yield tar, _info(path, manifest)
    finally:
        tar.close()


def _copy_member(tar: tarfile.TarFile, member: tarfile.TarInfo, out: Path) -> str:
    """Extract one file member to ``out``; its SHA-256."""
    source = tar.extractfile(member)
    if source is None:
        raise OSError(f"{member.name} is not a file")
    digest = hashlib.sha256()
    with out.open("wb") as handle:
        for chunk in iter(lambda: source.read(1 << 20), b""):
            digest.update(chunk)
            handle.write(chunk)
    return digest.hexdigest()


def verify_backup(path: str | Path, *, deep: bool = False) -> BackupInfo:
    """Read a backup's manifest (refusing files that are not cardops backups). With ``deep``,
    also read the whole archive and check the database checksum and the documents."""
    path = Path(path)
    with _open_backup(path) as (tar, info):
        if not deep:
            return info
        digest = None
        files = 0
        try:
            for member in tar:
                if member.name == MEMBERS[info.kind] and member.isfile():
                    source = tar.extractfile(member)
                    assert source is not None
                    hashing = hashlib.sha256()
                    for chunk in iter(lambda: source.read(1 << 20), b""):  # noqa: B023
                        hashing.update(chunk)
                    digest = hashing.hexdigest()
                elif member.name.startswith(f"{DOCUMENTS}/") and member.isfile():
                    files += 1
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise _damaged(path, f"the archive is truncated or corrupt: {exc}") from exc
        if digest != info.database_sha256:
            raise _damaged(path, "the database copy does not match its checksum")
        if files != info.documents:
            raise _damaged(path, f"{files} documents found, {info.documents} expected")
        return info


def _damaged(path: Path, detail: str) -> ValidationFailed:
    return ValidationFailed(
        "The backup {path} is damaged: {detail}.",
        code="backup_damaged",
        field="path",
        path=str(path),
        detail=detail,
    )


# --- restoring ----------------------------------------------------------------------------


def _schema_check(revision: str | None) -> bool:
    """Refuse a backup from a newer cardops; True when ``cardops db upgrade`` is needed."""
    from alembic.script import ScriptDirectory

    from cardops.core.migrate import alembic_config

    script = ScriptDirectory.from_config(alembic_config())
    if revision is None:
        return True
    try:
        known = script.get_revision(revision)
    except Exception:  # alembic raises several kinds for an unknown id
        known = None
    if known is None:
        raise CardopsError(
            "The backup has database schema {revision}, which this version of cardops does not know. Restore it with the cardops version that made it (or a newer one).",
            code="backup_too_new",
            revision=revision,
        )
    return revision != script.get_current_head()


def check_restorable(info: BackupInfo, url: str) -> bool:
    """Refuse a backup of another database kind or from a newer cardops; True when the
    restored database will need ``cardops db upgrade``."""
    kind = database_kind(url)
    if info.kind != kind:
        raise ValidationFailed(
            "The backup holds a {backup} database but the target is {target}; restore it into the same kind of database.",
            code="backup_kind_mismatch",
            field="path",
            backup=info.kind,
            target=kind,
        )
    return _schema_check(info.state.revision)


def _restore_sqlite(url: str, source: Path, progress: Progress, step_pages: int) -> None:
    target = _sqlite_path(url)
    target.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(source)
    try:
        check = src.execute("PRAGMA integrity_check").fetchone()
        if not check or check[0] != "ok":
            raise CardopsError(
                "The database in the backup fails SQLite's integrity check.",
                code="backup_damaged",
            )
        dst = sqlite3.connect(target, isolation_level=None)
        try:
            dst.execute("PRAGMA busy_timeout=10000")
            # The target is replaced in one write transaction: on any error it is unchanged.
            src.backup(
                dst,
                pages=step_pages,
                progress=lambda _status, remaining, total: progress(
                    "restore", total - remaining, total
                ),
            )
        finally:
            dst.close()
    finally:
        src.close()


def _restore_postgres(url: str, source: Path, progress: Progress) -> None:
    pg_restore = _tool("pg_restore")
    listing = subprocess.run(
        [pg_restore, "--list", str(source)],
        capture_output=True,
        text=True,
        errors="replace",
        check=False,
    )
    if listing.returncode != 0:
        raise CardopsError(
            "The database in the backup cannot be read by pg_restore: {detail}",
            code="backup_damaged",
            detail=listing.stderr.strip()[-500:],
        )
    tables = sum(1 for line in listing.stdout.splitlines() if " TABLE DATA " in line)
    dsn, env = _libpq(url)
    _run_tool(
        [
            pg_restore,
            "--clean",
            "--if-exists",
            "--no-owner",
            "--single-transaction",
            "--exit-on-error",
            "--verbose",
            f"--dbname={dsn}",
            str(source),
        ],
        env=env,
        progress=progress,
        phase="restore",
        total=max(tables, 1),
        step=re.compile(r"processing data for table"),
    )


def _safe_member(member: tarfile.TarInfo) -> bool:
    name = member.name
    return (
        (member.isfile() or member.isdir())
        and name.startswith(f"{DOCUMENTS}/")
        and not name.startswith("/")
        and ".." not in Path(name).parts
    )


def _replace_documents(staging: Path, documents_dir: Path) -> None:
    """Put the restored documents in place of the current ones (renames, same file system)."""
    documents_dir.parent.mkdir(parents=True, exist_ok=True)
    previous = documents_dir.with_name(
        f".{documents_dir.name}-before-restore-{utcnow().strftime('%Y%m%d%H%M%S%f')}"
    )
    if documents_dir.exists():
        documents_dir.rename(previous)
    staging.rename(documents_dir)
    shutil.rmtree(previous, ignore_errors=True)


def restore_backup(
    url: str,
    path: str | Path,
    progress: Progress | None = None,
    *,
    documents_dir: Path | None = None,
    step_pages: int = STEP_PAGES,
) -> RestoreInfo:
    """Replace the database at ``url`` and the documents with the backup's.

    Stop the web server, gateway and jobs first. The backup must be of the same database kind;
    its checksum is checked before anything is touched. Returns the target's row counts and
    audit chain afterwards, to compare with the manifest (``RestoreInfo.matches``).
    """
    progress = progress or _no_progress
    path = Path(path)
    kind = database_kind(url)
    documents_dir = documents_dir if documents_dir is not None else get_settings().documents_dir
    documents_dir.parent.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="cardops-restore-") as tmp,
        tempfile.TemporaryDirectory(prefix=".documents-restore-", dir=documents_dir.parent) as docs,
        _open_backup(path) as (tar, info),
    ):
        needs_upgrade = check_restorable(info, url)
        database = Path(tmp) / MEMBERS[kind]
        staging = Path(docs) / DOCUMENTS
        staging.mkdir()
        digest = None
        files = 0
        try:
            for member in tar:
                if member.name == MEMBERS[kind] and member.isfile():
                    digest = _copy_member(tar, member, database)
                elif _safe_member(member):
                    tar.extract(member, docs, filter="data")
                    files += member.isfile()
                    progress("documents", files, info.documents)
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise _damaged(path, f"the archive is truncated or corrupt: {exc}") from exc
        if digest != info.database_sha256:
            raise _damaged(path, "the database copy does not match its checksum")
        if files != info.documents:
            raise _damaged(path, f"{files} documents found, {info.documents} expected")
        if kind == "sqlite":
            _restore_sqlite(url, database, progress, step_pages)
        else:
            _restore_postgres(url, database, progress)
        _replace_documents(staging, documents_dir)
    return RestoreInfo(
        backup=info, state=database_state(url), documents=files, needs_upgrade=needs_upgrade
    )
