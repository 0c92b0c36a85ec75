"""The database: SQLAlchemy 2 engine, sessions and the declarative base every context's tables share.

SQLite is the embedded default (WAL, foreign keys on, a busy timeout so a second process waits instead
of failing); PostgreSQL (psycopg 3) is the production target. Both run the same Alembic migrations.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from quietline.platform.clock import as_utc

#: Constraint names are deterministic so Alembic migrations are identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; pass an aware datetime")
        return as_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else as_utc(value)


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` and use psycopg 3 for them."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's implicit transaction handling is bypassed (see _sqlite_pragmas) so SQLAlchemy's
        # BEGIN/COMMIT are the real ones and a failed unit of work rolls back completely.
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


#: Execution option set on the connections of write transactions (``Sessions.begin``).
WRITE_OPTION = "quietline_write"


def _sqlite_begin(conn: Connection) -> None:
    """Write transactions take SQLite's write lock at BEGIN (``BEGIN IMMEDIATE``).

    A deferred transaction that reads and then writes cannot wait for a concurrent writer: in WAL mode
    its snapshot is stale once the other commits, so the upgrade fails at once with "database is
    locked" instead of honouring busy_timeout (https://sqlite.org/wal.html, "Sometimes Queries Return
    SQLITE_BUSY In WAL Mode"). Taking the lock first makes concurrent writers queue. Read-only
    sessions stay deferred, so readers never wait for a long import.
    """
    immediate = conn.get_execution_options().get(WRITE_OPTION, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # let SQLAlchemy's "begin" listener issue BEGIN
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class Sessions(sessionmaker[Session]):
    """``sessions()`` opens a session for reading (or for code that commits itself);
    ``sessions.begin()`` is one write transaction, which on SQLite takes the write lock at BEGIN."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(bind=engine, expire_on_commit=False)
        self._write_bind = engine.execution_options(**{WRITE_OPTION: True})

    @contextmanager
    def begin(self) -> Iterator[Session]:
        with self(bind=self._write_bind) as session, session.begin():
            yield session


def make_session_factory(engine: Engine) -> Sessions:
    return Sessions(engine)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error (so nothing half-written remains)."""
    session = factory()
    try:
        with session.begin():
            yield session
    finally:
        session.close()
