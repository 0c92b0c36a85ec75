"""Set-based building blocks for bulk imports on both databases.

Imports stage their validated rows in a temporary table (COPY on PostgreSQL, executemany on SQLite)
and then merge them with single ``INSERT … SELECT`` statements, writing the per-row audit and
change-feed rows in the same statements, so a million-row import is a handful of SQL statements and
never a Python loop of upserts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Table, case, func, insert, literal, literal_column, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from quietline.platform import audit
from quietline.platform.actor import Actor
from quietline.platform.audit import AuditEntry
from quietline.platform.bulk import ImportSummary
from quietline.platform.changefeed import ChangeRow
from quietline.platform.db import UtcDateTime


def upsert_insert(dialect: str, target: Any) -> postgresql.Insert | sqlite.Insert:
    """An ``INSERT`` that can take ``.on_conflict_do_update``/``_do_nothing``: both databases speak
    ``ON CONFLICT``, each through its own SQLAlchemy dialect construct."""
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(target)


def stage_rows(session: Session, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Append rows (tuples in ``columns`` order) to a staging table inside the open transaction."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        # COPY is PostgreSQL's bulk path: an order of magnitude faster than executemany.
        driver = connection.connection.driver_connection
        if driver is None:
            raise RuntimeError("the PostgreSQL connection is closed")
        with (
            driver.cursor() as cursor,
            cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
        return
    # SQLite: the driver's executemany with the times already in SQLAlchemy's storage format (the
    # column type's own bind processor, memoised: most rows share a handful of times). SQLAlchemy's
    # per-row parameter processing would cost more than SQLite's own insert.
    to_db = UtcDateTime().dialect_impl(connection.dialect).bind_processor(connection.dialect)
    stored: dict[datetime, Any] = {}

    def db_value(value: Any) -> Any:
        if not isinstance(value, datetime):
            return value
        converted = stored.get(value)
        if converted is None:
            converted = stored[value] = to_db(value) if to_db is not None else value
        return converted

    placeholders = ", ".join("?" for _ in columns)
    # Table and column names come from the caller's code, never from input.
    statement = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({placeholders})"  # noqa: S608
    connection.exec_driver_sql(statement, [tuple(db_value(v) for v in row) for row in rows])


def prepare_merge(session: Session, stage: Table) -> None:
    """Before merging a staged import on PostgreSQL: memory to hash-join and sort a million rows, and
    statistics for the temporary table (autovacuum never analyses temporary tables)."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SET LOCAL work_mem = '64MB'")
        connection.exec_driver_sql(f"ANALYZE {stage.name}")


def json_object(dialect: str, *pairs: tuple[str, ColumnElement[Any]]) -> ColumnElement[Any]:
    """A JSON object built in SQL (``json_build_object`` / ``json_object``)."""
    flat: list[Any] = []
    for key, value in pairs:
        # Keys are constants of the caller; as SQL literals they need no parameter type inference
        # (PostgreSQL cannot infer the type of a bound parameter passed to json_build_object).
        flat.extend((literal_column(f"'{key}'"), value))
    return func.json_build_object(*flat) if dialect == "postgresql" else func.json_object(*flat)


def iso_time(dialect: str, column: ColumnElement[Any]) -> ColumnElement[Any]:
    """A stored UTC time as ISO 8601 text inside JSON (SQLite keeps ``YYYY-MM-DD HH:MM:SS.ffffff``)."""
    if dialect == "postgresql":
        return column
    return func.strftime("%Y-%m-%dT%H:%M:%f+00:00", column)


def json_bool(dialect: str, value: ColumnElement[Any]) -> ColumnElement[Any]:
    """A boolean (column or literal) as a JSON boolean inside ``json_object`` (SQLite stores 0/1)."""
    if dialect == "postgresql":
        return value
    return func.json(case((value, "true"), else_="false"))


def audit_rows_from(
    session: Session,
    *,
    actor: Actor,
    at: ColumnElement[Any],
    action: str,
    subject_type: str,
    subject: ColumnElement[Any],
    before: ColumnElement[Any],
    after: ColumnElement[Any],
    where: ColumnElement[bool] | None = None,
) -> None:
    """One audit row per staged row, in the import's transaction: ``subject``, ``before`` and ``after``
    are expressions over the staging table(s), so a million rows cost one ``INSERT … SELECT``."""
    query = select(
        at,
        literal(actor.role.value),
        literal(str(actor)),
        literal(action),
        literal(subject_type),
        subject,
        before,
        after,
    )
    if where is not None:
        query = query.where(where)
    columns = ["at", "actor_role", "actor", "action", "subject_type", "subject", "before", "after"]
    session.execute(insert(AuditEntry).from_select(columns, query))


def feed_rows_from(
    session: Session,
    *,
    at: ColumnElement[Any],
    topic: str,
    key: ColumnElement[Any],
    payload: ColumnElement[Any],
    where: ColumnElement[bool] | None = None,
    order_by: Sequence[ColumnElement[Any]] = (),
) -> None:
    """One change-feed row per staged row (in ``order_by`` order), in the import's transaction."""
    query = select(at, literal(topic), key, payload)
    if where is not None:
        query = query.where(where)
    if order_by:
        query = query.order_by(*order_by)
    session.execute(insert(ChangeRow).from_select(["at", "topic", "key", "payload"], query))


def audit_import(
    session: Session,
    *,
    actor: Actor,
    action: str,
    subject_type: str,
    summary: ImportSummary,
    at: datetime,
    counts: Mapping[str, Any],
) -> int:
    """The one audit row that names an imported file (its SHA-256), the mode and what it changed; the
    per-row audit rows point at its id."""
    entry = audit.record(
        session,
        actor=actor,
        action=action,
        subject_type=subject_type,
        subject=f"sha256:{summary.sha256}",
        at=at,
        after={
            "source": str(Path(summary.source).resolve()),
            "sha256": summary.sha256,
            "mode": summary.mode.value,
            "rows_read": summary.rows_read,
            "accepted": summary.accepted,
            "rejected": summary.rejected,
            **counts,
        },
    )
    session.flush()
    return entry.id
