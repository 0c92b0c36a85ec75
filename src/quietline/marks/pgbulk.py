"""The PostgreSQL path of bulk mark ingestion (``actions.ingest``): set-based, around one staging table.

Why (profiled with py-spy on ``benchmarks/bench_marks_ingest.py``): per batch, most of the time went to
Python, not to PostgreSQL — binding tens of thousands of ``IN``/``ANY`` parameters to load the touched
numbers' marks, recycling dates and reporter rows, building a dict and a JSON document per audit row,
and formatting every COPY row through the driver's per-value dumpers. Here the batch is written once,
as preformatted COPY text, into ``marks_stage``; every read and write that needs it is then a single
statement joined with it, and the audit rows are built by PostgreSQL itself (``INSERT … SELECT``),
exactly as ``quietline.platform.sqlbulk`` does for the other bulk imports.

Every read of a big table for the staged rows is a ``LATERAL`` subquery per distinct staged value,
fenced (``OFFSET 0``, or a row lock) so the planner cannot flatten it into a join: one probe of the
table's index per value, whatever the planner believes about the sizes. The temporary table has no
statistics, and both a plain join and ``= ANY(ARRAY(…))`` measured sequential scans of marks_marks per
batch (the latter comparing every row with every staged number) once the table outgrew its last
ANALYZE.

The guarantees are those of the SQLite path, statement for statement: the reporters' rate-limit rows are
locked (``FOR UPDATE``, in reporter order, so concurrent batches cannot deadlock) before they are
counted; one live mark per (number, reporter) (``ON CONFLICT DO UPDATE``); one audit row per mark, in
the same transaction, carrying the replaced mark as ``before``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Integer, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from quietline.marks.model import Label, Mark
from quietline.marks.orm import ReporterRow
from quietline.platform.actor import Actor
from quietline.platform.clock import as_utc

STAGE = "marks_stage"

#: COPY's text format gives these characters a meaning (PostgreSQL manual, "COPY", "File Formats").
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_NULL = "\\N"


def copy_text(value: str | None) -> str:
    """A value as a field of COPY's text format (``\\N`` is NULL).

    ``str.translate`` with a mapping looks every character up in it (measured: 7 % of a batch's
    client time, on the audit rows' JSON); four substring tests in C find the usual value clean first."""
    if value is None:
        return _NULL
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.translate(_COPY_ESCAPES)
    return value


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
        # These statements are short and run once per batch: JIT compilation (on by default past a cost
        # estimate that a 20,000-row batch exceeds) only adds its own time.
        session.execute(text("SET LOCAL jit = off"))
        session.execute(
            text(
                "CREATE TEMPORARY TABLE IF NOT EXISTS marks_stage (idx integer, number varchar(32),"
                " reporter varchar(32), label varchar(40), at timestamptz,"
                " device varchar(64)) ON COMMIT DELETE ROWS"
            )
        )
        iso: dict[datetime, str] = {}

        def line(item: StagedMark) -> str:
            at = iso.get(item.at)
            if at is None:
                at = iso[item.at] = item.at.isoformat()
            device = _NULL if item.device is None else item.device.translate(_COPY_ESCAPES)
            return f"{item.index}\t{item.number}\t{item.reporter}\t{item.label.value}\t{at}\t{device}\n"

        _copy_lines(
            session,
            "COPY marks_stage (idx, number, reporter, label, at, device) FROM STDIN",
            (line(item) for item in items),
        )

    def recycled(self) -> dict[str, datetime]:
        """The last recycling (二次放号) of each staged number that was ever recycled."""
        rows = self._rows(
            "SELECT s.number, r.at FROM (SELECT DISTINCT number FROM marks_stage) AS s"
            " CROSS JOIN LATERAL (SELECT max(at) AS at FROM marks_recycles AS r"
            " WHERE r.number = s.number OFFSET 0) AS r WHERE r.at IS NOT NULL"
        )
        return {number: as_utc(at) for number, at in rows}

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of a query on the session's own connection, straight from the driver: psycopg's C loaders
        build the tuples, without SQLAlchemy's per-row processing (these queries return tens of
        thousands of rows per batch). Its ``timestamptz`` values are aware datetimes in the session's
        time zone, which the reputation model only subtracts and compares."""
        raw = self.session.connection().connection.driver_connection
        if raw is None:  # pragma: no cover - a live session always holds a driver connection
            raise RuntimeError("no database connection")
        with raw.cursor() as cursor:
            cursor.execute(sql, params or None)
            rows: list[tuple[Any, ...]] = cursor.fetchall()
        return rows

    def existing(self, numbers: Collection[str]) -> dict[str, list[Mark]]:
        """Every live mark of ``numbers`` (what their reputations are recomputed from: bulk ingestion
        reads them, after its write, only for the numbers it judges now)."""
        found: dict[str, list[Mark]] = defaultdict(list)
        if not numbers:
            return found
        rows = self._rows(
            "SELECT m.number, m.reporter, m.label, m.at, m.device"
            " FROM unnest(%s::varchar[]) AS s(number) CROSS JOIN LATERAL"
            " (SELECT * FROM marks_marks AS m WHERE m.number = s.number OFFSET 0) AS m",
            (sorted(numbers),),
        )
        labels = {label.value: label for label in Label}
        for number, reporter, label, at, device in rows:
            found[number].append(Mark(number, reporter, labels[label], at, device))
        return found

    def live_counts(self, cap: int) -> dict[str, int]:
        """How many live marks each staged number holds, counted up to ``cap``: ``min(count, cap)``.

        Why capped (profiled on ``benchmarks/bench_marks_ingest.py``, 1 M marks): the batch only compares
        these counts with thresholds no greater than ``cap`` (``actions._to_judge``), but a full count
        visits every mark of a busy number, and busy numbers collect marks all run long — this statement
        grew from 0.08 to 0.23 s per 20,000-mark batch, most of the run's slow-down. With the cap, a busy
        number costs ``cap`` index entries however many marks it holds (EXPLAIN ANALYZE at 1 M marks, a
        20,000-mark batch: 227 → 107 ms, 128,000 → 85,000 buffer hits; the generic plan psycopg's
        prepared statement gets is the same short index scan under ``Limit``)."""
        rows = self._rows(
            "SELECT s.number, c.n FROM (SELECT DISTINCT number FROM marks_stage) AS s CROSS JOIN LATERAL"
            " (SELECT count(*) AS n FROM (SELECT FROM marks_marks AS m WHERE m.number = s.number"
            " LIMIT %s) AS m) AS c WHERE c.n > 0",
            (cap,),
        )
        return {number: int(n) for number, n in rows}

    def prior(self) -> dict[tuple[str, str], Mark]:
        """The live mark each staged (number, reporter) pair already has: the one a new mark replaces.

        One probe of the unique index per staged pair, fenced like the other reads (``LIMIT 1``: the pair
        is unique, so it drops nothing, and it makes the probe a plain index scan): as a plain join, the
        plan depended on the table's size when the connection first prepared the statement (psycopg
        prepares a statement on its fifth run and PostgreSQL keeps its plan), and a hash join over a
        sequential scan of marks_marks, chosen while the table was small, stayed for the whole run."""
        rows = self._rows(
            "SELECT m.number, m.reporter, m.label, m.at, m.device"
            " FROM (SELECT DISTINCT number, reporter FROM marks_stage) AS s CROSS JOIN LATERAL"
            " (SELECT * FROM marks_marks AS m WHERE m.number = s.number AND m.reporter = s.reporter"
            " LIMIT 1) AS m"
        )
        labels = {label.value: label for label in Label}
        return {(n, r): Mark(n, r, labels[label], at, device) for n, r, label, at, device in rows}

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
        rows = self._rows(
            "SELECT r.reporter, r.first_seen, r.vouched, r.window_start, r.window_count, r.agreed,"
            " r.disagreed, r.verified_complaints"
            " FROM (SELECT DISTINCT reporter FROM marks_stage ORDER BY reporter) AS s CROSS JOIN LATERAL"
            " (SELECT * FROM marks_reporters AS r WHERE r.reporter = s.reporter FOR UPDATE) AS r"
        )
        states: list[ReporterState] = []
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

    def audit(self, actor: Actor, now: datetime, marks: Iterable[tuple[StagedMark, Mark | None]]) -> None:
        """One ``marks.add`` audit row per accepted mark, with the mark it replaces as ``before``: the
        row ``audit.record`` would write, its JSON formatted here and COPYed (the replaced marks are
        known already, from ``existing``)."""
        head = (
            f"{now.isoformat()}\t{copy_text(actor.role.value)}\t{copy_text(str(actor))}\tmarks.add\tnumber\t"
        )

        def line(item: StagedMark, old: Mark | None) -> str:
            before = _NULL
            if old is not None:  # the driver's times are in the session's zone: written in UTC as on SQLite
                before = f'{{"label": "{old.label.value}", "at": "{as_utc(old.at).isoformat()}"}}'
            device = "null" if item.device is None else json.dumps(item.device)
            after = (
                f'{{"label": "{item.label.value}", "reporter": "{item.reporter}",'
                f' "at": "{item.at.isoformat()}", "device": {device}}}'
            )
            return f"{head}{item.number}\t{before}\t{copy_text(after)}\n"

        _copy_lines(
            self.session,
            "COPY audit_log (at, actor_role, actor, action, subject_type, subject, before, after) FROM STDIN",
            (line(item, old) for item, old in marks),
        )

    def upsert(self) -> None:
        """The staged marks become the reporters' live marks (one per reporter per number).

        In the unique index's order: consecutive rows then land on the same or neighbouring leaf pages
        instead of random ones (measured on the benchmark's 20,000-mark batches into 200,000 marks:
        the statement about 15 % faster, for a sort of the staged rows)."""
        self.session.execute(
            text(
                "INSERT INTO marks_marks (number, reporter, label, at, device)"
                " SELECT number, reporter, label, at, device FROM marks_stage ORDER BY number, reporter"
                " ON CONFLICT (number, reporter) DO UPDATE"
                " SET label = excluded.label, at = excluded.at, device = excluded.device"
            )
        )
