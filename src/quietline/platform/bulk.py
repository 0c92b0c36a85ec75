"""The shared streaming import engine for CSV (and plain-text) files.

Every bulk import in quietline (refusals, consent records, portability records, registries) goes
through ``run_import``:

* the file is streamed line by line, never loaded whole, with its physical line numbers;
* the header is required and checked (a missing or unknown column is a clear error naming it);
  UTF-8, with or without a byte-order mark;
* each row is validated by the caller's ``validate`` callback, which returns a typed row or raises
  ``InvalidInput``; row-level errors are collected with line number, field and message (up to a cap);
* accepted rows are written in batches through the caller's ``write`` callback (executemany or COPY);
* the whole import runs in ONE transaction that commits at the end, so a crash (or a kill) half-way
  leaves nothing half-written, in both modes:
  - ``ALL_OR_NOTHING``: any bad row means nothing is written; every error is reported (up to the cap);
  - ``SKIP_BAD_ROWS``: good rows are written, bad rows are reported;
* progress is reported as (bytes read, total bytes) so the CLI can draw a progress bar;
* the result is an ``ImportSummary``.

The file hash (SHA-256) is part of the summary so the audit row of an import names exactly which file
was applied.
"""

from __future__ import annotations

import csv
import hashlib
import io
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Generic, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from quietline.platform.errors import InvalidInput

RowT = TypeVar("RowT")

DEFAULT_BATCH_SIZE = 10_000
DEFAULT_MAX_ERRORS = 1_000
_PROGRESS_EVERY_LINES = 20_000


class ImportMode(StrEnum):
    """What to do with a file that has bad rows."""

    ALL_OR_NOTHING = "all-or-nothing"
    SKIP_BAD_ROWS = "skip-bad-rows"

    @classmethod
    def parse(cls, value: str | ImportMode, field: str = "mode") -> ImportMode:
        try:
            return cls(str(value).strip().lower().replace("_", "-"))
        except ValueError:
            raise InvalidInput(
                f"{value!r} is not one of {', '.join(m.value for m in cls)}", field=field
            ) from None


class BulkFileError(InvalidInput):
    """The file itself is unusable (missing, not UTF-8 text, no header, a missing column)."""


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    field: str | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "field": self.field, "message": self.message}


@dataclass
class ImportSummary:
    """What an import did. ``written`` is True when the transaction committed."""

    source: str
    mode: ImportMode
    rows_read: int = 0
    accepted: int = 0
    rejected: int = 0
    errors: list[RowError] = field(default_factory=list)
    errors_truncated: bool = False
    seconds: float = 0.0
    sha256: str = ""
    bytes_read: int = 0
    written: bool = False
    #: Counts and references the writer adds (inserted/updated/unchanged, the audit id …).
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "mode": self.mode.value,
            "written": self.written,
            "rows_read": self.rows_read,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows_per_second, 1),
            "sha256": self.sha256,
            "details": self.details,
            "errors": [e.as_dict() for e in self.errors],
            "errors_truncated": self.errors_truncated,
        }


#: ``validate(row, line)``: ``row`` maps every header column to its (stripped) text.
Validate = Callable[[Mapping[str, str], int], RowT]
#: ``write(session, rows)``: add a batch of accepted rows to the open transaction.
Write = Callable[[Session, Sequence[RowT]], None]
#: ``prepare(session)``: runs first inside the transaction (e.g. create a staging table).
Prepare = Callable[[Session], None]
#: ``finish(session, summary)``: runs last inside the transaction (audit row, set-based merges);
#: returns details merged into ``summary.details``.
Finish = Callable[[Session, ImportSummary], Mapping[str, Any]]
#: ``progress(bytes_read, total_bytes)``.
Progress = Callable[[int, int], None]


@dataclass
class ImportSpec(Generic[RowT]):
    """How one kind of file is read and written."""

    columns: Sequence[str]
    validate: Validate[RowT]
    write: Write[RowT]
    optional_columns: Sequence[str] = ()
    prepare: Prepare | None = None
    finish: Finish | None = None
    #: Plain text: no header, one value per line for the single column in ``columns``.
    plain_text: bool = False
    batch_size: int = DEFAULT_BATCH_SIZE
    max_errors: int = DEFAULT_MAX_ERRORS


class _Abort(Exception):
    """Raised inside the transaction to roll it back (all-or-nothing with bad rows)."""


class _Meter(io.RawIOBase):
    """Reads the file in large chunks, counting bytes (for progress) and hashing them (for audit)."""

    def __init__(self, handle: io.FileIO) -> None:
        self._handle = handle
        self.bytes_read = 0
        self.hash = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = self._handle.readinto(buffer)
        if count:
            self.bytes_read += count
            self.hash.update(memoryview(buffer)[:count])
        return count or 0


def _text(meter: _Meter) -> io.TextIOWrapper:
    # UTF-8 with an optional BOM. Undecodable bytes become lone surrogates (``surrogateescape``) so
    # that the row holding them is reported with its line number instead of aborting the file.
    return io.TextIOWrapper(
        io.BufferedReader(meter, buffer_size=1 << 16),
        encoding="utf-8-sig",
        errors="surrogateescape",
        newline="",
    )


def _undecodable(fields: Sequence[str]) -> bool:
    """True when a field holds bytes that were not valid UTF-8 (decoded as lone surrogates)."""
    for value in fields:
        if not value.isascii():
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return True
    return False


def _open(path: Path) -> io.FileIO:
    try:
        if not path.exists():
            raise BulkFileError(f"{path}: no such file", field="file")
        if not path.is_file():
            raise BulkFileError(f"{path}: not a regular file", field="file")
        return io.FileIO(path, "r")
    except OSError as exc:
        raise BulkFileError(f"{path}: cannot be read ({exc.strerror})", field="file") from None


def _check_header(
    header: list[str], columns: Sequence[str], optional: Sequence[str], path: Path
) -> list[str]:
    names = [h.strip().lower() for h in header]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise BulkFileError(f"{path}: column {name!r} appears twice in the header", field="header")
        seen.add(name)
    missing = [c for c in columns if c not in seen]
    if missing:
        raise BulkFileError(
            f"{path}: missing column {', '.join(repr(c) for c in missing)} in the header "
            f"(found: {', '.join(names) or 'nothing'}; expected: {', '.join([*columns, *optional])})",
            field="header",
        )
    unknown = [n for n in names if n not in columns and n not in optional]
    if unknown:
        raise BulkFileError(
            f"{path}: unknown column {', '.join(repr(n) for n in unknown)} in the header "
            f"(expected: {', '.join([*columns, *optional])})",
            field="header",
        )
    return names


def run_import(
    sessions: sessionmaker[Session],
    path: Path | str,
    spec: ImportSpec[RowT],
    *,
    mode: ImportMode,
    progress: Progress | None = None,
) -> ImportSummary:
    """Stream ``path`` through ``spec`` in one transaction and return what happened.

    Raises ``BulkFileError`` (an ``InvalidInput``) when the file or its header is unusable; row
    problems never raise, they are reported in the summary.
    """
    path = Path(path)
    started = time.perf_counter()
    summary = ImportSummary(source=str(path), mode=mode)
    handle = _open(path)
    total = path.stat().st_size

    def note_error(line: int, fld: str | None, message: str) -> None:
        summary.rejected += 1
        if len(summary.errors) < spec.max_errors:
            summary.errors.append(RowError(line, fld, message))
        else:
            summary.errors_truncated = True

    source = _Meter(handle)
    try:
        with sessions.begin() as session:
            if spec.prepare is not None:
                spec.prepare(session)
            _stream(
                session,
                source=source,
                spec=spec,
                mode=mode,
                summary=summary,
                note_error=note_error,
                progress=progress,
                total=total,
                path=path,
            )
            summary.sha256 = source.hash.hexdigest()
            summary.bytes_read = source.bytes_read
            if mode is ImportMode.ALL_OR_NOTHING and summary.rejected:
                raise _Abort
            if spec.finish is not None:
                summary.details.update(spec.finish(session, summary))
        summary.written = True
    except _Abort:
        summary.written = False
    finally:
        handle.close()
    summary.seconds = time.perf_counter() - started
    if progress is not None:
        progress(source.bytes_read, total)
    return summary


def _records(
    text: io.TextIOWrapper, note_error: Callable[[int, str | None, str], None], plain_text: bool
) -> Iterator[tuple[int, list[str]]]:
    """(first physical line, fields) for every record; blank lines are skipped."""
    if plain_text:
        for number, content in enumerate(text, start=1):
            value = content.strip()
            if value:
                yield number, [value]
        return
    reader = csv.reader(text)
    previous_end = 0
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            note_error(reader.line_num, None, f"not valid CSV ({exc})")
            previous_end = reader.line_num
            continue
        line = previous_end + 1  # the record's first physical line (quoted fields may span lines)
        previous_end = reader.line_num
        if fields and (len(fields) > 1 or fields[0].strip()):
            yield line, fields


def _header(records: Iterator[tuple[int, list[str]]], spec: ImportSpec[RowT], path: Path) -> list[str]:
    """The column names: the checked header line, or the single column of a plain-text file."""
    if spec.plain_text:
        if len(spec.columns) != 1:
            raise ValueError("a plain-text import has exactly one column")
        return list(spec.columns)
    header = next(records, (0, None))[1]
    if header is None:
        raise BulkFileError(f"{path}: the file is empty (a header line is required)", field="header")
    if _undecodable(header):
        raise BulkFileError(
            f"{path}: the header is not valid UTF-8 text (save the file as CSV UTF-8)", field="header"
        )
    return _check_header(header, spec.columns, spec.optional_columns, path)


def _stream(
    session: Session,
    *,
    source: _Meter,
    spec: ImportSpec[RowT],
    mode: ImportMode,
    summary: ImportSummary,
    note_error: Callable[[int, str | None, str], None],
    progress: Progress | None,
    total: int,
    path: Path,
) -> None:
    records = _records(_text(source), note_error, spec.plain_text)
    names = _header(records, spec, path)
    width = len(names)
    validate = spec.validate
    write = spec.write
    batch_size = spec.batch_size
    all_or_nothing = mode is ImportMode.ALL_OR_NOTHING
    batch: list[RowT] = []
    rows_read = accepted = 0
    next_progress = _PROGRESS_EVERY_LINES
    # The hot loop of every import: counters are locals and the common case (ASCII fields of the
    # right count) costs one C call per check.
    for line, fields in records:
        rows_read += 1
        if len(fields) != width:
            note_error(line, None, f"expected {width} fields ({', '.join(names)}), got {len(fields)}")
            continue
        if not "".join(fields).isascii() and _undecodable(fields):
            note_error(line, None, "not valid UTF-8 text (save the file as CSV UTF-8)")
            continue
        try:
            value = validate(dict(zip(names, [f.strip() for f in fields], strict=True)), line)
        except InvalidInput as exc:
            note_error(line, exc.field, exc.message)
            continue
        accepted += 1
        # All-or-nothing: after the first bad row the transaction will roll back, so stop writing
        # and keep validating to report every error.
        if not (all_or_nothing and summary.rejected):
            batch.append(value)
            if len(batch) >= batch_size:
                write(session, batch)
                batch = []
        if rows_read >= next_progress:
            next_progress += _PROGRESS_EVERY_LINES
            if progress is not None:
                progress(source.bytes_read, total)
    summary.rows_read = rows_read
    summary.accepted = accepted
    if batch and not (all_or_nothing and summary.rejected):
        write(session, batch)
