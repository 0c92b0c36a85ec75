"""The PostgreSQL path of bulk mark ingestion (``actions.ingest``): set-based, around one staging table.

Why (profiled with py-spy on ``benchmarks/bench_marks_ingest.py``): per batch, most of the time went to
Python, not to PostgreSQL — binding tens of thousands of ``IN``/``ANY`` parameters to load the touched
numbers' marks, recycling dates and reporter rows, building a dict and a JSON document per audit row,
and formatting every COPY row through the driver's per-value dumpers. Here the batch is written once,
as preformatted COPY text, into ``marks_stage``; every read and write that needs it is then a single
statement joined with it, and the audit rows are built by PostgreSQL itself (``INSERT … SELECT``),
exactly as ``quietline.platform.sqlbulk`` does for the other bulk imports.

The guarantees are those of the SQLite path, statement for statement: the reporters' rate-limit rows are
locked (``FOR UPDATE``, in reporter order, so concurrent batches cannot deadlock) before they are
counted; one live mark per (number, reporter) (``ON CONFLICT DO UPDATE``); one audit row per mark, in
the same transaction, carrying the replaced mark as ``before``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Protocol

from sqlalchemy import Integer, String, bindparam, column, func, select, table, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from quietline.marks.model import Label, Mark, label_of
from quietline.marks.orm import MarkRow, RecycleRow, ReporterRow
from quietline.platform.actor import Actor
from quietline.platform.db import UtcDateTime

STAGE = "marks_stage"
_stage = table(
    STAGE,
    column("idx", Integer),
    column("number", String),
    column("reporter", String),
    column("label", String),
    column("at", UtcDateTime),
    column("device", String),
)

#: COPY's text format gives these characters a meaning (PostgreSQL manual, "COPY", "File Formats").
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_NULL = "\\N"


def copy_text(value: str | None) -> str:
    """A value as a field of COPY's text format (``\\N`` is NULL)."""
    return _NULL if value is None else value.translate(_COPY_ESCAPES)


#: One ``marks.add`` audit row per staged mark; ``before`` is the replaced mark with its time written as
#: ``datetime.isoformat()`` writes a UTC time (no fraction when the microseconds are zero), so the rows
#: are exactly those of the SQLite path.
_AUDIT_SQL = """
INSERT INTO audit_log (at, actor_role, actor, action, subject_type, subject, before, after)
SELECT :now, :role, :actor, 'marks.add', 'number', s.number,
  CASE WHEN m.label IS NULL THEN NULL ELSE json_build_object('label', m.label, 'at',
    to_char(m.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
    || CASE WHEN to_char(m.at AT TIME ZONE 'UTC', 'US') = '000000' THEN ''
       ELSE '.' || to_char(m.at AT TIME ZONE 'UTC', 'US') END
    || '+00:00') END,
  json_build_object('label', s.label, 'reporter', s.reporter, 'at', s.at_text, 'device', s.device)
FROM marks_stage AS s LEFT JOIN marks_marks AS m ON m.number = s.number AND m.reporter = s.reporter
ORDER BY s.idx
"""


#: A reporter's row as the rate limit and the reputation model read it, in ``REPORTER_COLUMNS`` order.
ReporterState = tuple[str, datetime, bool, datetime, int, int, int, int]
REPORTER_COLUMNS = (
    ReporterRow.reporter,
    ReporterRow.first_seen,
    ReporterRow.vouched,
    ReporterRow.window_start,
    ReporterRow.window_count,
    ReporterRow.agreed,
    ReporterRow.disagreed,
    ReporterRow.verified_complaints,
)


class StagedMark(Protocol):
    """What the stage needs of a parsed mark (``actions._Parsed``)."""

    @property
    def index(self) -> int: ...
    @property
    def number(self) -> str: ...
    @property
    def reporter(self) -> str: ...
    @property
    def label(self) -> Label: ...
    @property
    def at(self) -> datetime: ...
    @property
    def device(self) -> str | None: ...


def _copy_lines(session: Session, statement: str, lines: Iterable[str]) -> None:
    """``COPY … FROM STDIN`` of preformatted text lines on the session's connection (in its transaction),
    written in large blocks rather than row by row through the driver's dumpers."""
    raw = session.connection().connection.driver_connection
    if raw is None:  # pragma: no cover - a live session always holds a driver connection
        raise RuntimeError("no database connection")
    block: list[str] = []
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        for line in lines:
            block.append(line)
            if len(block) >= 5_000:
                copy.write("".join(block))
                block.clear()
        if block:
            copy.write("".join(block))


class PgStage:
    """One ingest batch staged in PostgreSQL for the life of its transaction (``ON COMMIT DELETE ROWS``)."""

    def __init__(self, session: Session, items: Sequence[StagedMark]) -> None:
        self.session = session
        self.size = len(items)
        session.execute(
            text(
                "CREATE TEMPORARY TABLE IF NOT EXISTS marks_stage (idx integer, number varchar(32),"
                " reporter varchar(32), label varchar(40), at timestamptz, at_text varchar(40),"
                " device varchar(64)) ON COMMIT DELETE ROWS"
            )
        )
        iso: dict[datetime, str] = {}

        def line(item: StagedMark) -> str:
            at = iso.get(item.at)
            if at is None:
                at = iso[item.at] = item.at.isoformat()
            device = _NULL if item.device is None else item.device.translate(_COPY_ESCAPES)
            return f"{item.index}\t{item.number}\t{item.reporter}\t{item.label.value}\t{at}\t{at}\t{device}\n"

        _copy_lines(
            session,
            "COPY marks_stage (idx, number, reporter, label, at, at_text, device) FROM STDIN",
            (line(item) for item in items),
        )
        # Statistics for the planner (autovacuum never analyses temporary tables): without them it
        # may scan all of marks_marks instead of probing its (number, reporter) index per number.
        session.execute(text("ANALYZE marks_stage"))

    def recycled(self) -> dict[str, datetime]:
        """The last recycling (二次放号) of each staged number that was ever recycled."""
        numbers = select(_stage.c.number)
        query = (
            select(RecycleRow.number, func.max(RecycleRow.at))
            .where(RecycleRow.number.in_(numbers))
            .group_by(RecycleRow.number)
        )
        found: dict[str, datetime] = {}
        for number, at in self.session.connection().execute(query):
            found[number] = at
        return found

    def existing(self) -> dict[str, list[Mark]]:
        """Every live mark of the staged numbers (what the reputations are recomputed from)."""
        found: dict[str, list[Mark]] = defaultdict(list)
        query = select(MarkRow.number, MarkRow.reporter, MarkRow.label, MarkRow.at, MarkRow.device).where(
            MarkRow.number.in_(select(_stage.c.number))
        )
        for number, reporter, label, at, device in self.session.connection().execute(query):
            found[number].append(Mark(number, reporter, label_of(label), at, device))
        return found

    def lock_reporters(self, now: datetime) -> list[ReporterState]:
        """The staged reporters' rows, locked until the transaction ends, new reporters created first.

        New rows go in with ``ON CONFLICT DO NOTHING`` (a concurrent batch that creates the same reporter
        wins; this statement then waits for it), in reporter order; then every row is locked in reporter
        order. Inserts only ever wait for inserts and locks for locks, each in one global order, so two
        batches can never wait for each other in a cycle."""
        self.session.execute(
            text(
                "INSERT INTO marks_reporters (reporter, first_seen, agreed, disagreed, verified_complaints,"
                " vouched, window_start, window_count)"
                " SELECT reporter, :now, 0, 0, 0, false, :now, 0"
                " FROM (SELECT DISTINCT reporter FROM marks_stage) AS fresh"
                " ORDER BY reporter ON CONFLICT (reporter) DO NOTHING"
            ),
            {"now": now},
        )
        query = (
            select(*REPORTER_COLUMNS)
            .where(ReporterRow.reporter.in_(select(_stage.c.reporter)))
            .order_by(ReporterRow.reporter)
            .with_for_update()
        )
        states: list[ReporterState] = []
        rows = self.session.connection().execute(query)  # Core: no ORM work per row
        for reporter, first, vouched, start, count, agreed, against, extra in rows:
            states.append((reporter, first, vouched, start, count, agreed, against, extra))
        return states

    def write_reporters(self, rows: Sequence[tuple[str, datetime, bool, datetime, int]]) -> None:
        """Write back the counted rate-limit windows (the rows are locked, see ``lock_reporters``)."""
        if not rows:
            return
        self.session.execute(
            text(
                "CREATE TEMPORARY TABLE IF NOT EXISTS marks_stage_reporters (reporter varchar(32),"
                " first_seen timestamptz, vouched boolean, window_start timestamptz, window_count integer)"
                " ON COMMIT DELETE ROWS"
            )
        )
        iso: dict[datetime, str] = {}

        def at(value: datetime) -> str:
            text = iso.get(value)
            if text is None:
                text = iso[value] = value.isoformat()
            return text

        _copy_lines(
            self.session,
            "COPY marks_stage_reporters (reporter, first_seen, vouched, window_start, window_count)"
            " FROM STDIN",
            (
                f"{r}\t{at(first)}\t{'t' if vouched else 'f'}\t{at(start)}\t{count}\n"
                for r, first, vouched, start, count in rows
            ),
        )
        self.session.execute(
            text(
                "UPDATE marks_reporters AS r SET first_seen = i.first_seen, vouched = i.vouched,"
                " window_start = i.window_start, window_count = i.window_count"
                " FROM marks_stage_reporters AS i WHERE r.reporter = i.reporter"
            )
        )

    def keep(self, indexes: Iterable[int]) -> int:
        """Drop the staged marks that were not accepted (rejected, or replaced by a later mark of the same
        reporter on the same number in this batch); returns how many stay."""
        kept = set(indexes)
        if len(kept) < self.size:
            dropped = self.session.execute(
                text("DELETE FROM marks_stage WHERE NOT (idx = ANY(:kept))").bindparams(
                    bindparam("kept", sorted(kept), type_=ARRAY(Integer))
                )
            )
            self.size -= int(dropped.rowcount or 0)  # type: ignore[attr-defined]
        return self.size

    def audit(self, actor: Actor, now: datetime) -> None:
        """One ``marks.add`` audit row per staged mark, with the mark it replaces as ``before`` (run
        before ``upsert``), built by PostgreSQL: the same row ``audit.record`` would write."""
        self.session.execute(
            text(_AUDIT_SQL).bindparams(
                bindparam("now", now, type_=UtcDateTime),
                bindparam("role", actor.role.value),
                bindparam("actor", str(actor)),
            )
        )

    def upsert(self) -> None:
        """The staged marks become the reporters' live marks (one per reporter per number)."""
        self.session.execute(
            text(
                "INSERT INTO marks_marks (number, reporter, label, at, device)"
                " SELECT number, reporter, label, at, device FROM marks_stage"
                " ON CONFLICT (number, reporter) DO UPDATE"
                " SET label = excluded.label, at = excluded.at, device = excluded.device"
            )
        )
