"""Engine, sessions and the declarative base. SQLite (WAL) by default, PostgreSQL in production."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    DateTime,
    Engine,
    Integer,
    MetaData,
    create_engine,
    event,
    text,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.sql import ColumnElement, bindparam
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import JSON, Boolean, TypeDecorator

from cardops.core.clock import as_utc, utcnow
from cardops.core.config import get_settings

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as UTC; hands back aware UTC datetimes on every database."""

    impl = DateTime
    cache_ok = True

    def __init__(self, timezone: bool = True) -> None:
        super().__init__(timezone=True)

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return as_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else as_utc(value)


# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime()}


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin (savepoints work).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            from pathlib import Path

            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        # IMMEDIATE: a transaction takes the write lock up front, so two writers queue
        # (busy_timeout) instead of one failing when it upgrades a read lock.
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


class _Engines:
    """One engine per database URL; the default URL is read from the settings at each call."""

    def __init__(self) -> None:
        self._engines: dict[str, Engine] = {}

    def __call__(self, url: str | None = None) -> Engine:
        url = url or get_settings().effective_database_url
        engine = self._engines.get(url)
        if engine is None:
            engine = self._engines[url] = make_engine(url)
        return engine

    def cache_clear(self) -> None:
        for engine in self._engines.values():
            engine.dispose()
        self._engines.clear()


get_engine = _Engines()


class SessionFactory:
    """Where sessions come from. Tests swap in one bound to a rolled-back connection."""

    def __init__(self) -> None:
        self._maker: sessionmaker[Session] | None = None

    def configure(self, maker: sessionmaker[Session] | None) -> None:
        self._maker = maker

    def __call__(self) -> Session:
        if self._maker is None:
            return Session(get_engine(), expire_on_commit=False)
        return self._maker()


session_factory = SessionFactory()


@contextmanager
def unit_of_work() -> Iterator[Session]:
    """A session that commits once at the end, or rolls back on error (CLI, jobs)."""
    session = session_factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def ping(session: Session) -> bool:
    session.execute(text("SELECT 1"))
    return True


class BulkInsert:
    """``INSERT INTO table (columns) VALUES (…)`` run as the database driver's own
    ``executemany`` over tuples, for the gateway's group commit; on PostgreSQL, rows in
    bulk go as one ``COPY … FROM STDIN`` (measured: a 50-request on-us batch 26 → 20 ms).

    SQLAlchemy's Core insert processes every row's parameters (a dict per row, a type
    processor per value): for the journal that cost more CPU than SQLite's insert itself.
    Here the rows go to the driver as they are, so they must hold driver-ready values:
    plain ``str``/``int``/``bool``/``None``, and for columns whose type converts values
    (timestamps, dates, JSON) the result of :meth:`processor`, fetched once per batch.
    """

    def __init__(self, table: Any, columns: Sequence[str]) -> None:
        self.table = table
        self.columns = tuple(columns)
        for name in self.columns:
            table.c[name]  # a misspelt column fails at import, not in a batch
        self._sql: dict[str, str] = {}
        self._copy_sql: str | None = None

    def sql(self, dialect: Any) -> str:
        found = self._sql.get(dialect.name)
        if found is None:
            if dialect.paramstyle == "qmark":
                mark = "?"
            elif dialect.paramstyle in ("format", "pyformat"):
                mark = "%s"
            else:  # pragma: no cover - neither SQLite's nor psycopg's
                raise NotImplementedError(f"paramstyle {dialect.paramstyle}")
            quote = dialect.identifier_preparer
            found = self._sql[dialect.name] = (
                f"INSERT INTO {quote.format_table(self.table)}"
                f" ({', '.join(quote.quote(name) for name in self.columns)})"
                f" VALUES ({', '.join([mark] * len(self.columns))})"
            )
        return found

    def processor(self, connection: Connection, column: str) -> Callable[[Any], Any]:
        """The column type's conversion of a Python value into the driver's, for this
        connection's database (the identity where the type has none)."""
        process = self.table.c[column].type._cached_bind_processor(connection.dialect)
        return process if process is not None else _identity

    def run(self, connection: Connection, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        if connection.dialect.name == "postgresql" and len(rows) > 1:
            self._copy(connection, rows)
            return
        connection.exec_driver_sql(self.sql(connection.dialect), rows)

    def _copy(self, connection: Connection, rows: list[tuple[Any, ...]]) -> None:
        """PostgreSQL: ``COPY … FROM STDIN`` in the session's transaction, one stream for the
        batch instead of an INSERT per row. A constraint it breaks is raised as SQLAlchemy's
        ``IntegrityError``, like an INSERT's (the gateway retries a conflicting batch row by
        row on it)."""
        dialect = connection.dialect
        sql = self._copy_sql
        if sql is None:
            quote = dialect.identifier_preparer
            sql = self._copy_sql = (
                f"COPY {quote.format_table(self.table)}"
                f" ({', '.join(quote.quote(name) for name in self.columns)}) FROM STDIN"
            )
        raw = connection.connection.driver_connection
        assert raw is not None
        try:
            with raw.cursor() as cursor, cursor.copy(sql) as copy:
                for row in rows:
                    copy.write_row(row)
        except dialect.loaded_dbapi.IntegrityError as exc:
            raise IntegrityError(sql, None, exc) from exc


def _identity(value: Any) -> Any:
    return value


class _ValueList(TypeDecorator[list[Any]]):
    """A list bound as one parameter: an array of ``item`` on PostgreSQL, a JSON array
    elsewhere."""

    impl = JSON
    cache_ok = True

    def __init__(self, item: Any) -> None:
        super().__init__()
        self.item = item

    def load_dialect_impl(self, dialect: Any) -> Any:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import ARRAY

            return dialect.type_descriptor(ARRAY(self.item))
        return dialect.type_descriptor(JSON())

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        return list(value)


class _InValues(ColumnElement[bool]):
    """``column IN`` a list bound as a single parameter (see :func:`in_values`)."""

    inherit_cache = True
    type = Boolean()
    _traverse_internals = [
        ("column", InternalTraversal.dp_clauseelement),
        ("values", InternalTraversal.dp_clauseelement),
    ]

    def __init__(self, column: Any, values: Any) -> None:
        self.column, self.values = column, values

    def self_group(self, against: Any = None) -> Any:
        return self  # a comparison already: no "= 1" where booleans are not native


@compiles(_InValues)
def _in_json_array(element: _InValues, compiler: Any, **kw: Any) -> str:
    column, values = compiler.process(element.column, **kw), compiler.process(element.values, **kw)
    return f"{column} IN (SELECT value FROM json_each({values}))"


@compiles(_InValues, "postgresql")
def _in_array(element: _InValues, compiler: Any, **kw: Any) -> str:
    column, values = compiler.process(element.column, **kw), compiler.process(element.values, **kw)
    return f"{column} = ANY({values})"


def in_values(column: Any, name: str) -> ColumnElement[bool]:
    """``column IN (…)`` for a list passed as the one parameter ``name``.

    SQLAlchemy's expanding ``IN`` writes one placeholder per value, so every list length is
    a different SQL text: re-rendered per execution, and on SQLite prepared again whenever
    the driver's statement cache has lost that length. The gateway's batch statements vary
    in length with every batch; this form is one SQL text for all of them (PostgreSQL:
    ``= ANY(array)``; SQLite: ``IN (SELECT value FROM json_each(?))``).
    """
    return _InValues(column, bindparam(name, type_=_ValueList(column.type)))
