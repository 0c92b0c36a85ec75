"""The shared streaming import engine (platform.bulk) on a real database, with a tiny writer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select
from sqlalchemy.orm import Session

from quietline.platform.bulk import BulkFileError, ImportMode, ImportSpec, ImportSummary, run_import
from quietline.platform.errors import InvalidInput
from quietline.platform.runtime import Runtime

_meta = MetaData()
_things = Table(
    "bulk_test_things",
    _meta,
    Column("name", String(40), primary_key=True),
    Column("size", Integer, nullable=False),
)


@pytest.fixture
def rt(any_runtime: Runtime) -> Runtime:
    """Both databases: for what depends on the transaction (batches, rollback, crash)."""
    _meta.create_all(any_runtime.engine)
    return any_runtime


@pytest.fixture
def srt(runtime: Runtime) -> Runtime:
    """SQLite only: for reading and checking the file, which does not depend on the database."""
    _meta.create_all(runtime.engine)
    return runtime


def _validate(row: Mapping[str, str], _line: int) -> tuple[str, int]:
    if not row["name"]:
        raise InvalidInput("is empty", field="name")
    if not row["size"].isdigit():
        raise InvalidInput(f"{row['size']!r} is not a whole number", field="size")
    return row["name"], int(row["size"])


def _write(session: Session, rows: Sequence[tuple[str, int]]) -> None:
    session.execute(insert(_things), [{"name": n, "size": s} for n, s in rows])


def spec(**overrides: object) -> ImportSpec[tuple[str, int]]:
    values: dict[str, object] = {"columns": ("name", "size"), "validate": _validate, "write": _write}
    values.update(overrides)
    return ImportSpec(**values)  # type: ignore[arg-type]


def stored(rt: Runtime) -> dict[str, int]:
    with rt.engine.connect() as conn:
        return {str(n): int(s) for n, s in conn.execute(select(_things.c.name, _things.c.size))}


def write(tmp_path: Path, text: str | bytes, name: str = "in.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_good_file_is_written_in_batches_with_progress(rt: Runtime, tmp_path: Path) -> None:
    lines = "".join(f"n{i},{i}\n" for i in range(2_500))
    path = write(tmp_path, "name,size\n" + lines)
    batches: list[int] = []

    def counting_write(session: Session, rows: Sequence[tuple[str, int]]) -> None:
        batches.append(len(rows))
        _write(session, rows)

    seen: list[tuple[int, int]] = []
    summary = run_import(
        rt.sessions,
        path,
        spec(write=counting_write, batch_size=1_000),
        mode=ImportMode.ALL_OR_NOTHING,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert summary.written
    assert (summary.rows_read, summary.accepted, summary.rejected) == (2_500, 2_500, 0)
    assert batches == [1_000, 1_000, 500]
    assert len(stored(rt)) == 2_500
    assert seen[-1] == (path.stat().st_size, path.stat().st_size)
    assert len(summary.sha256) == 64


def test_all_or_nothing_writes_nothing_and_reports_every_bad_line(rt: Runtime, tmp_path: Path) -> None:
    path = write(tmp_path, "name,size\na,1\nb,x\n\nc,3\n,4\nd,5,6\n")
    summary = run_import(rt.sessions, path, spec(batch_size=1), mode=ImportMode.ALL_OR_NOTHING)
    assert not summary.written
    assert stored(rt) == {}
    assert [(e.line, e.field) for e in summary.errors] == [(3, "size"), (6, "name"), (7, None)]
    assert "expected 2 fields" in summary.errors[2].message
    assert (summary.rows_read, summary.accepted, summary.rejected) == (5, 2, 3)


def test_skip_bad_rows_writes_the_good_ones(rt: Runtime, tmp_path: Path) -> None:
    path = write(tmp_path, "name,size\na,1\nb,x\nc,3\n")
    summary = run_import(rt.sessions, path, spec(), mode=ImportMode.SKIP_BAD_ROWS)
    assert summary.written
    assert stored(rt) == {"a": 1, "c": 3}
    assert [e.as_dict() for e in summary.errors] == [
        {"line": 3, "field": "size", "message": "'x' is not a whole number"}
    ]


def test_a_crash_half_way_leaves_nothing_behind(rt: Runtime, tmp_path: Path) -> None:
    path = write(tmp_path, "name,size\n" + "".join(f"n{i},{i}\n" for i in range(50)))
    calls = 0

    def crashing_write(session: Session, rows: Sequence[tuple[str, int]]) -> None:
        nonlocal calls
        calls += 1
        _write(session, rows)
        if calls == 3:
            raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        run_import(
            rt.sessions, path, spec(write=crashing_write, batch_size=10), mode=ImportMode.SKIP_BAD_ROWS
        )
    assert stored(rt) == {}


def test_finish_runs_in_the_transaction_and_adds_details(srt: Runtime, tmp_path: Path) -> None:
    path = write(tmp_path, "name,size\na,1\n")

    def finish(session: Session, summary: ImportSummary) -> dict[str, int]:
        count = len(session.execute(select(_things.c.name)).all())
        return {"rows_in_table": count, "accepted": summary.accepted}

    summary = run_import(srt.sessions, path, spec(finish=finish), mode=ImportMode.ALL_OR_NOTHING)
    assert summary.details == {"rows_in_table": 1, "accepted": 1}


def test_bom_crlf_quotes_and_header_case_are_handled(srt: Runtime, tmp_path: Path) -> None:
    data = '\ufeffName , SIZE\r\n"x, with comma",1\r\n"multi\nline",2\r\nlast,3\r\n'.encode()
    summary = run_import(srt.sessions, write(tmp_path, data), spec(), mode=ImportMode.ALL_OR_NOTHING)
    assert summary.written
    assert stored(srt) == {"x, with comma": 1, "multi\nline": 2, "last": 3}


def test_line_numbers_count_physical_lines(srt: Runtime, tmp_path: Path) -> None:
    data = 'name,size\n"multi\nline",x\nok,1\nbad,y\n'
    summary = run_import(srt.sessions, write(tmp_path, data), spec(), mode=ImportMode.SKIP_BAD_ROWS)
    assert [e.line for e in summary.errors] == [2, 5]


def test_invalid_utf8_is_a_row_error_with_its_line(srt: Runtime, tmp_path: Path) -> None:
    data = b"name,size\na,1\n\xff\xfe,2\nc,3\n"
    summary = run_import(srt.sessions, write(tmp_path, data), spec(), mode=ImportMode.SKIP_BAD_ROWS)
    assert stored(srt) == {"a": 1, "c": 3}
    assert [(e.line, "UTF-8" in e.message) for e in summary.errors] == [(3, True)]


def test_error_list_is_capped_but_every_rejection_is_counted(srt: Runtime, tmp_path: Path) -> None:
    path = write(tmp_path, "name,size\n" + "x,bad\n" * 30)
    summary = run_import(srt.sessions, path, spec(max_errors=10), mode=ImportMode.SKIP_BAD_ROWS)
    assert summary.rejected == 30
    assert len(summary.errors) == 10
    assert summary.errors_truncated


def test_plain_text_has_no_header(srt: Runtime, tmp_path: Path) -> None:
    path = write(tmp_path, "alpha\n\n beta \ngamma, with comma\n", name="in.txt")

    def one(row: Mapping[str, str], line: int) -> tuple[str, int]:
        return row["name"], line

    summary = run_import(
        srt.sessions,
        path,
        spec(columns=("name",), validate=one, plain_text=True),
        mode=ImportMode.ALL_OR_NOTHING,
    )
    assert summary.written
    assert stored(srt) == {"alpha": 1, "beta": 3, "gamma, with comma": 4}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "empty"),
        ("\n\n", "empty"),
        ("name\na\n", "missing column 'size'"),
        ("name,size,colour\n", "unknown column 'colour'"),
        ("name,size,name\n", "appears twice"),
        (b"\xff\xfename,size\n", "not valid UTF-8"),
    ],
)
def test_unusable_headers_are_refused(
    srt: Runtime, tmp_path: Path, content: str | bytes, message: str
) -> None:
    with pytest.raises(BulkFileError, match=message) as caught:
        run_import(srt.sessions, write(tmp_path, content), spec(), mode=ImportMode.ALL_OR_NOTHING)
    assert caught.value.field == "header"


def test_missing_file_and_directory_are_refused(srt: Runtime, tmp_path: Path) -> None:
    with pytest.raises(BulkFileError, match="no such file") as caught:
        run_import(srt.sessions, tmp_path / "nope.csv", spec(), mode=ImportMode.ALL_OR_NOTHING)
    assert caught.value.field == "file"
    with pytest.raises(BulkFileError, match="not a regular file"):
        run_import(srt.sessions, tmp_path, spec(), mode=ImportMode.ALL_OR_NOTHING)


def test_optional_columns(srt: Runtime, tmp_path: Path) -> None:
    def with_note(row: Mapping[str, str], line: int) -> tuple[str, int]:
        return row["name"] + row.get("note", ""), int(row["size"])

    both = spec(validate=with_note, optional_columns=("note",))
    run_import(
        srt.sessions, write(tmp_path, "name,size\na,1\n", "a.csv"), both, mode=ImportMode.ALL_OR_NOTHING
    )
    run_import(
        srt.sessions,
        write(tmp_path, "note,size,name\n!,2,b\n", "b.csv"),
        both,
        mode=ImportMode.ALL_OR_NOTHING,
    )
    assert stored(srt) == {"a": 1, "b!": 2}


@pytest.mark.parametrize(
    ("text", "mode"),
    [("all-or-nothing", ImportMode.ALL_OR_NOTHING), ("SKIP_BAD_ROWS", ImportMode.SKIP_BAD_ROWS)],
)
def test_mode_parsing(text: str, mode: ImportMode) -> None:
    assert ImportMode.parse(text) is mode


def test_unknown_mode_names_the_choices() -> None:
    with pytest.raises(InvalidInput, match="all-or-nothing, skip-bad-rows"):
        ImportMode.parse("sometimes")
