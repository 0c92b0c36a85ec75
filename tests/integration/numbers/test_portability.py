"""Portability (携号转网) records on SQLite and PostgreSQL: import, current carrier, traceability."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from quietline.numbers import actions, parse, queries
from quietline.numbers.orm import PortedNumber
from quietline.platform import audit, changefeed
from quietline.platform.actor import Actor
from quietline.platform.bulk import BulkFileError, ImportMode
from quietline.platform.clock import FakeClock
from quietline.platform.runtime import Runtime

OPERATOR = Actor.operator("porting-desk")


def csv_file(tmp_path: Path, body: str, name: str = "ports.csv") -> Path:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


def current(rt: Runtime, number: str) -> str | None:
    with rt.sessions() as session:
        return queries.current_carrier(session, parse(number))


def ported_rows(rt: Runtime) -> int:
    with rt.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(PortedNumber)) or 0)


def test_import_sets_the_current_carrier_and_the_prefix_no_longer_decides(
    any_runtime: Runtime, tmp_path: Path
) -> None:
    rt = any_runtime
    assert current(rt, "13800138000") == "china_mobile"  # not ported: the original carrier
    path = csv_file(
        tmp_path,
        "number,carrier\n+86 138 0013 8000,china_unicom\n13012345678,中国电信\n19212345678,china_mobile\n",
    )
    summary = actions.import_portability(rt, OPERATOR, path, ImportMode.ALL_OR_NOTHING)
    assert summary.written
    assert summary.details["inserted"] == 3
    assert current(rt, "13800138000") == "china_unicom"
    assert current(rt, "8613012345678") == "china_telecom"
    assert current(rt, "19212345678") == "china_mobile"
    assert current(rt, "13900138000") == "china_mobile"  # untouched neighbour
    with rt.sessions() as session:
        view = queries.info(session, parse("13800138000"))
    assert view["original_carrier"] == "china_mobile"
    assert view["current_carrier"] == "china_unicom"
    assert view["current_carrier_label"] == "中国联通"
    assert view["ported"] is True
    assert view["ported_at"] is not None


def test_every_change_is_audited_and_announced(
    any_runtime: Runtime, tmp_path: Path, clock: FakeClock
) -> None:
    rt = any_runtime
    first = csv_file(
        tmp_path, "number,carrier\n13800138000,china_unicom\n13900139000,china_telecom\n", "a.csv"
    )
    actions.import_portability(rt, OPERATOR, first)
    clock.advance(days=130)
    second = csv_file(
        tmp_path, "number,carrier\n13800138000,china_telecom\n13900139000,china_telecom\n", "b.csv"
    )
    summary = actions.import_portability(rt, OPERATOR, second)
    assert {k: summary.details[k] for k in ("inserted", "updated", "unchanged")} == {
        "inserted": 0,
        "updated": 1,
        "unchanged": 1,
    }
    with rt.sessions() as session:
        history = audit.for_subject(session, "number", "+8613800138000")
        imports = [e for e in audit.tail(session, 50) if e.action == actions.ACTION_IMPORT]
        feed = changefeed.read_after(session, 0, topics=(actions.TOPIC,))
    assert [(e.before and e.before["carrier"], e.after and e.after["carrier"]) for e in history] == [
        ("china_unicom", "china_telecom"),
        (None, "china_unicom"),
    ]
    assert history[0].actor == "operator:porting-desk"
    assert history[0].after is not None
    assert history[0].after["import_audit_id"] == summary.details["audit_id"]
    assert len(imports) == 2
    assert imports[0].after is not None
    assert imports[0].after["sha256"] == summary.sha256
    assert imports[0].after["updated"] == 1
    # Three changes in all: two numbers inserted, then one moved; the unchanged row announced nothing.
    assert [(c.key, c.payload["carrier"], c.payload["previous_carrier"]) for c in feed] == [
        ("+8613800138000", "china_unicom", None),
        ("+8613900139000", "china_telecom", None),
        ("+8613800138000", "china_telecom", "china_unicom"),
    ]


def test_numbers_that_cannot_port_are_refused_with_their_line(any_runtime: Runtime, tmp_path: Path) -> None:
    rt = any_runtime
    path = csv_file(
        tmp_path,
        "number,carrier,ported_at\n"
        "13800138000,china_unicom,\n"  # 2 ok
        "17012345678,china_mobile,\n"  # 3 resale
        "13491234567,china_mobile,\n"  # 4 satellite
        "14812345678,china_unicom,\n"  # 5 IoT
        "010-12345678,china_unicom,\n"  # 6 fixed line
        "95588,china_unicom,\n"  # 7 service number
        "13900139000,virgin,\n"  # 8 unknown carrier
        "nonsense,china_unicom,\n"  # 9 not a number
        "8613800138000,china_telecom,\n"  # 10 repeats line 2
        "13700137000,china_telecom,2030-01-01T00:00:00+08:00\n"  # 11 in the future
        "13600136000,china_telecom,2025-01-01 10:00\n",  # 12 no offset
    )
    summary = actions.import_portability(rt, OPERATOR, path, ImportMode.ALL_OR_NOTHING)
    assert not summary.written
    assert ported_rows(rt) == 0
    problems = {e.line: (e.field, e.message) for e in summary.errors}
    assert sorted(problems) == list(range(3, 13))
    assert "resale" in problems[3][1]
    assert "satellite" in problems[4][1]
    assert "cannot port" in problems[5][1]
    assert "fixed_line" in problems[6][1]
    assert "service_95_96" in problems[7][1]
    assert problems[8][0] == "carrier"
    assert problems[9][0] == "number"
    assert "earlier line" in problems[10][1]
    assert problems[11] == ("ported_at", "'2030-01-01T00:00:00+08:00' is in the future")
    assert "UTC offset" in problems[12][1]

    skipped = actions.import_portability(rt, OPERATOR, path, ImportMode.SKIP_BAD_ROWS)
    assert skipped.written
    assert (skipped.accepted, skipped.rejected) == (1, 10)
    assert current(rt, "13800138000") == "china_unicom"
    assert ported_rows(rt) == 1


def test_ported_at_from_the_file_is_kept(any_runtime: Runtime, tmp_path: Path) -> None:
    path = csv_file(
        tmp_path, "carrier,ported_at,number\nchina_telecom,2025-12-01T10:00:00+08:00,13800138000\n"
    )
    actions.import_portability(any_runtime, OPERATOR, path)
    with any_runtime.sessions() as session:
        record = session.get(PortedNumber, "+8613800138000")
        assert record is not None
        assert record.ported_at.isoformat() == "2025-12-01T02:00:00+00:00"


def test_a_number_ported_back_is_no_longer_ported(any_runtime: Runtime, tmp_path: Path) -> None:
    rt = any_runtime
    actions.import_portability(
        rt, OPERATOR, csv_file(tmp_path, "number,carrier\n13800138000,china_unicom\n", "a.csv")
    )
    actions.import_portability(
        rt, OPERATOR, csv_file(tmp_path, "number,carrier\n13800138000,china_mobile\n", "b.csv")
    )
    with rt.sessions() as session:
        view = queries.info(session, parse("13800138000"))
    assert (view["current_carrier"], view["ported"]) == ("china_mobile", False)


def test_a_crash_during_the_merge_leaves_nothing(
    any_runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = any_runtime
    path = csv_file(tmp_path, "number,carrier\n" + "".join(f"138{i:08d},china_unicom\n" for i in range(300)))

    def exploding_merge(*_args: object, **_kwargs: object) -> dict[str, object]:
        raise RuntimeError("power cut")

    monkeypatch.setattr(actions, "_merge", exploding_merge)
    with pytest.raises(RuntimeError, match="power cut"):
        actions.import_portability(rt, OPERATOR, path, ImportMode.SKIP_BAD_ROWS, batch_size=100)
    monkeypatch.undo()
    assert ported_rows(rt) == 0
    with rt.sessions() as session:
        assert audit.tail(session) == []
    # The staging table went with the rolled-back transaction: the next import works.
    assert actions.import_portability(rt, OPERATOR, path, batch_size=100).details["inserted"] == 300
    assert ported_rows(rt) == 300


def test_larger_import_in_batches_and_streamed_back(any_runtime: Runtime, tmp_path: Path) -> None:
    rt = any_runtime
    carriers = ("china_unicom", "china_telecom", "china_broadnet")
    body = "".join(f"139{i:08d},{carriers[i % 3]}\n" for i in range(5_000))
    summary = actions.import_portability(
        rt, OPERATOR, csv_file(tmp_path, "number,carrier\n" + body), batch_size=1_000
    )
    assert summary.details["inserted"] == 5_000
    with rt.sessions() as session:
        streamed = list(queries.iter_ported(session, batch_size=700))
        counts = queries.ported_counts(session)
    assert len(streamed) == 5_000
    assert streamed[0] == ("+8613900000000", "china_unicom")
    assert counts == {"china_unicom": 1667, "china_telecom": 1667, "china_broadnet": 1666}


def test_unusable_files_raise(any_runtime: Runtime, tmp_path: Path) -> None:
    with pytest.raises(BulkFileError, match="missing column 'carrier'"):
        actions.import_portability(any_runtime, OPERATOR, csv_file(tmp_path, "number\n13800138000\n"))
    with pytest.raises(BulkFileError, match="no such file"):
        actions.import_portability(any_runtime, OPERATOR, tmp_path / "missing.csv")


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("17012345678", "china_telecom"),  # resale: the host network, never a portability record
        ("010-12345678", None),
        ("+12025550123", None),
        ("10086", "china_mobile"),
    ],
)
def test_current_carrier_of_numbers_that_cannot_port(
    runtime: Runtime, number: str, expected: str | None
) -> None:
    assert current(runtime, number) == expected


def test_times_are_stored_in_the_same_format_as_the_orm_writes_them(runtime: Runtime, tmp_path: Path) -> None:
    # The SQLite fast path formats times itself; they must compare and sort like ORM-written ones.
    actions.import_portability(
        runtime, OPERATOR, csv_file(tmp_path, "number,carrier\n13800138000,china_unicom\n")
    )
    with runtime.engine.connect() as conn:
        raw = conn.exec_driver_sql("SELECT ported_at, updated_at FROM ported_number").one()
    assert raw[0] == raw[1] == "2026-01-05 09:00:00.000000"
