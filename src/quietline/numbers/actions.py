"""Writes of the numbers context: the bulk import of portability (携号转网) records.

An import is one transaction (``platform.bulk``): rows are validated, staged in a temporary table in
batches (executemany on SQLite, ``COPY`` on PostgreSQL) and merged set-based at the end. Traceability:
one audit row per import (who, when, file hash, mode, counts) and, for every number whose carrier
changed, one audit row with the carrier before and after plus one change-feed row
(topic ``numbers.portability``) for the processes that route or screen by carrier. Unchanged rows
write nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Executable,
    MetaData,
    Select,
    String,
    Table,
    case,
    func,
    insert,
    literal,
    or_,
    select,
    true,
)
from sqlalchemy.orm import Session

from quietline.numbers import portability
from quietline.numbers.model import parse
from quietline.numbers.orm import PortedNumber
from quietline.platform.actor import Actor
from quietline.platform.bulk import (
    DEFAULT_BATCH_SIZE,
    ImportMode,
    ImportSpec,
    ImportSummary,
    Progress,
    run_import,
)
from quietline.platform.db import UtcDateTime
from quietline.platform.errors import InvalidInput
from quietline.platform.runtime import Runtime
from quietline.platform.sqlbulk import (
    audit_import,
    audit_rows_from,
    feed_rows_from,
    iso_time,
    json_object,
    prepare_merge,
    stage_rows,
    upsert_insert,
)

TOPIC = "numbers.portability"
ACTION_IMPORT = "numbers.import_portability"
ACTION_PORT = "numbers.port"

PORTABILITY_COLUMNS = ("number", "carrier")
PORTABILITY_OPTIONAL_COLUMNS = ("ported_at",)

#: The staging table lives only inside the import's transaction (not part of the schema, so it is
#: declared on its own MetaData and never seen by Alembic).
_stage_metadata = MetaData()
_stage = Table(
    "ql_portability_stage",
    _stage_metadata,
    # No key: the validator already refuses repeated numbers, and the merge scans the stage once
    # while probing ported_number's primary key, so an index here would only slow the load.
    Column("number", String(24), nullable=False),
    Column("carrier", String(40), nullable=False),
    Column("ported_at", UtcDateTime, nullable=False),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)

#: The staged rows that change something, with the record they replace (none for a new number),
#: computed once by a single join and sorted by number so the inserts that follow walk the indexes
#: in order.
_changes = Table(
    "ql_portability_changes",
    _stage_metadata,
    Column("number", String(24), nullable=False),
    Column("carrier", String(40), nullable=False),
    Column("ported_at", UtcDateTime, nullable=False),
    Column("previous_carrier", String(40), nullable=True),
    Column("previous_ported_at", UtcDateTime, nullable=True),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)

StageRow = tuple[str, str, datetime]


def _validator(now: datetime) -> Callable[[Mapping[str, str], int], StageRow]:
    seen: set[str] = set()
    targets: dict[str, str] = {}  # millions of rows, a handful of carrier spellings

    def validate(row: Mapping[str, str], _line: int) -> StageRow:
        number = parse(row["number"], field="number")
        if not number.portable:
            portability.check_portable(number)  # raises, saying why
        raw_carrier = row["carrier"]
        carrier = targets.get(raw_carrier)
        if carrier is None:
            carrier = targets[raw_carrier] = portability.parse_port_target(raw_carrier)
        when_text = row.get("ported_at", "")
        ported_at = portability.parse_ported_at(when_text, now) if when_text else now
        e164 = number.e164
        if e164 in seen:
            raise InvalidInput(f"{e164} already appears on an earlier line", field="number")
        seen.add(e164)
        return (e164, carrier, ported_at)

    return validate


def _prepare(session: Session) -> None:
    _stage.create(session.connection())


def _write(session: Session, rows: Sequence[StageRow]) -> None:
    stage_rows(session, _stage, ("number", "carrier", "ported_at"), rows)


def _upsert(dialect: str, source: Select[Any]) -> Executable:
    """INSERT … SELECT … ON CONFLICT DO UPDATE, one set-based statement (both dialects speak it)."""
    columns = ["number", "carrier", "ported_at", "updated_at"]
    stmt = upsert_insert(dialect, PortedNumber).from_select(columns, source)
    return stmt.on_conflict_do_update(
        index_elements=[PortedNumber.number],
        set_={
            "carrier": stmt.excluded.carrier,
            "ported_at": stmt.excluded.ported_at,
            "updated_at": stmt.excluded.updated_at,
        },
        where=PortedNumber.carrier != stmt.excluded.carrier,
    )


def _merge(session: Session, actor: Actor, now: datetime, summary: ImportSummary) -> dict[str, Any]:
    """Set-based merge of the staged rows: the changes (one join), the audit rows and change-feed rows
    for them, then the upsert of the changed numbers only."""
    connection = session.connection()
    dialect = connection.dialect.name
    prepare_merge(session, _stage)
    p = PortedNumber.__table__.c
    s = _stage.c
    c = _changes.c
    _changes.create(connection)
    session.execute(
        insert(_changes).from_select(
            ["number", "carrier", "ported_at", "previous_carrier", "previous_ported_at"],
            select(s.number, s.carrier, s.ported_at, p.carrier, p.ported_at)
            .select_from(_stage.outerjoin(PortedNumber.__table__, p.number == s.number))
            .where(or_(p.number.is_(None), p.carrier != s.carrier))
            .order_by(s.number),
        )
    )
    total = int(session.scalar(select(func.count()).select_from(_stage)) or 0)
    changed, inserted = session.execute(
        select(func.count(), func.count().filter(c.previous_carrier.is_(None))).select_from(_changes)
    ).one()
    counts = {
        "inserted": int(inserted),
        "updated": int(changed - inserted),
        "unchanged": int(total - changed),
    }
    audit_id = audit_import(
        session,
        actor=actor,
        action=ACTION_IMPORT,
        subject_type="portability_import",
        summary=summary,
        at=now,
        counts=counts,
    )
    at = literal(now, UtcDateTime())
    import_id = literal(audit_id)
    before = case(
        (c.previous_carrier.is_(None), None),
        else_=json_object(
            dialect,
            ("carrier", c.previous_carrier),
            ("ported_at", iso_time(dialect, c.previous_ported_at)),
        ),
    )
    after = json_object(
        dialect,
        ("carrier", c.carrier),
        ("ported_at", iso_time(dialect, c.ported_at)),
        ("import_audit_id", import_id),
    )
    audit_rows_from(
        session,
        actor=actor,
        at=at,
        action=ACTION_PORT,
        subject_type="number",
        subject=c.number,
        before=before,
        after=after,
    )
    payload = json_object(
        dialect,
        ("number", c.number),
        ("carrier", c.carrier),
        ("previous_carrier", c.previous_carrier),
        ("import_audit_id", import_id),
    )
    feed_rows_from(session, at=at, topic=TOPIC, key=c.number, payload=payload)
    # ``WHERE true`` keeps SQLite's parser from reading ON CONFLICT as a join constraint.
    session.execute(_upsert(dialect, select(c.number, c.carrier, c.ported_at, at).where(true())))
    if dialect != "postgresql":  # PostgreSQL drops them on commit (ON COMMIT DROP)
        _changes.drop(connection)
        _stage.drop(connection)
    return {**counts, "audit_id": audit_id}


def import_portability(
    rt: Runtime,
    actor: Actor,
    path: Path | str,
    mode: ImportMode | str = ImportMode.ALL_OR_NOTHING,
    *,
    progress: Progress | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> ImportSummary:
    """Import portability records from a CSV file with columns ``number,carrier`` (optionally
    ``ported_at``, ISO 8601 with offset; the import time otherwise).

    Refused rows (with their line number): numbers that cannot port (resale, satellite, IoT, fixed,
    service — 242号文), unknown carriers, numbers repeated in the file. ``ALL_OR_NOTHING`` writes
    nothing when any row is bad; ``SKIP_BAD_ROWS`` writes the good rows. Either way the import is a
    single transaction. Raises ``BulkFileError`` when the file or its header is unusable.
    """
    mode = ImportMode.parse(mode)
    now = rt.clock.now()
    spec: ImportSpec[StageRow] = ImportSpec(
        columns=PORTABILITY_COLUMNS,
        optional_columns=PORTABILITY_OPTIONAL_COLUMNS,
        validate=_validator(now),
        write=_write,
        prepare=_prepare,
        finish=lambda session, summary: _merge(session, actor, now, summary),
        batch_size=batch_size,
    )
    return run_import(rt.sessions, path, spec, mode=mode, progress=progress)
