"""Bulk imports of refusals and consent records: streaming, line-numbered errors, both modes, one
transaction, audited per number and per file, announced on the change feed."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from quietline.accounts import actions as accounts
from quietline.accounts.model import uscc_check_character
from quietline.numbers import parse
from quietline.platform import audit, changefeed
from quietline.platform.actor import Actor
from quietline.platform.bulk import BulkFileError, ImportMode
from quietline.platform.errors import PermissionDenied
from quietline.platform.runtime import Runtime
from quietline.registry import actions, imports, queries
from quietline.registry.orm import ConsentRow, RefusalRow
from quietline.vocabulary import Category, Channel, Role

OPERATOR = Actor.operator("import")
USCC = "91110000100000000" + uscc_check_character("91110000100000000")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "in.csv"
    path.write_text(text, encoding="utf-8")
    return path


def _count(rt: Runtime, model: type) -> int:
    with rt.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


GOOD = "number,category,channel\n13800138000,loan_finance,both\n+86 139 0013 9000,全部营销,call\n"


def test_refusal_import_writes_audits_and_announces(any_runtime: Runtime, tmp_path: Path) -> None:
    rt = any_runtime
    summary = imports.import_refusals(rt, OPERATOR, _write(tmp_path, GOOD))
    assert summary.written and (summary.rows_read, summary.accepted, summary.rejected) == (2, 2, 0)
    assert summary.details["refusals"] == 3 and summary.details["changed"] == 3
    with rt.sessions() as session:
        assert {(r.category, r.channel.value) for r in queries.refusals(session, "+8613800138000")} == {
            ("loan_finance", "call"),
            ("loan_finance", "sms"),
        }
        [per_number] = queries.history(session, "+8613900139000")
        feed = changefeed.read_after(session, 0)
        entries = audit.tail(session, 10)
    assert per_number.action == "registry.refuse" and per_number.before is None
    assert per_number.after is not None and per_number.after["active"] is True
    assert per_number.after["category"] == "all"
    assert {(c.topic, c.payload["number"], c.payload["active"]) for c in feed} >= {
        (actions.TOPIC_REFUSAL, "+8613900139000", True)
    }
    assert [e.action for e in entries].count("registry.import_refusals") == 1


def test_reimporting_the_same_file_changes_nothing(any_runtime: Runtime, tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD)
    imports.import_refusals(any_runtime, OPERATOR, path)
    with any_runtime.sessions() as session:
        head = changefeed.head(session)
    again = imports.import_refusals(any_runtime, OPERATOR, path)
    assert again.details["changed"] == 0
    with any_runtime.sessions() as session:
        assert changefeed.head(session) == head


def test_import_reactivates_a_withdrawn_refusal(runtime: Runtime, tmp_path: Path) -> None:
    number = parse("13800138000")
    actions.refuse(runtime, OPERATOR, number, [Category.LOAN_FINANCE], (Channel.CALL,))
    actions.withdraw(runtime, OPERATOR, number, [Category.LOAN_FINANCE], (Channel.CALL,))
    summary = imports.import_refusals(
        runtime, OPERATOR, _write(tmp_path, "number,category,channel\n13800138000,loan_finance,call\n")
    )
    assert summary.details["changed"] == 1
    with runtime.sessions() as session:
        [latest, *_] = queries.history(session, number.e164)
    assert latest.before is not None and latest.before["active"] is False


BAD = (
    "number,category,channel\n"
    "13800138000,loan_finance,call\n"
    "95588,all,call\n"  # line 3: a service number is not a subscriber
    "13800138001,lottery,call\n"  # line 4: unknown category
    "13800138002,insurance,fax\n"  # line 5: unknown channel
    "1380013800x,all,both\n"  # line 6: not a number
)


def test_all_or_nothing_writes_nothing_and_names_every_bad_line(any_runtime: Runtime, tmp_path: Path) -> None:
    summary = imports.import_refusals(any_runtime, OPERATOR, _write(tmp_path, BAD))
    assert not summary.written
    assert [(e.line, e.field) for e in summary.errors] == [
        (3, "number"),
        (4, "category"),
        (5, "channel"),
        (6, "number"),
    ]
    assert _count(any_runtime, RefusalRow) == 0


def test_skip_bad_rows_keeps_the_good_ones(runtime: Runtime, tmp_path: Path) -> None:
    summary = imports.import_refusals(runtime, OPERATOR, _write(tmp_path, BAD), ImportMode.SKIP_BAD_ROWS)
    assert summary.written and summary.accepted == 1 and summary.rejected == 4
    assert _count(runtime, RefusalRow) == 1


def test_missing_column_is_a_file_error(runtime: Runtime, tmp_path: Path) -> None:
    with pytest.raises(BulkFileError, match="missing column 'channel'"):
        imports.import_refusals(runtime, OPERATOR, _write(tmp_path, "number,category\n13800138000,all\n"))


def test_only_operators_import_refusals(runtime: Runtime, tmp_path: Path) -> None:
    with pytest.raises(PermissionDenied):
        imports.import_refusals(runtime, Actor(Role.CARRIER, "china_mobile"), _write(tmp_path, GOOD))


def test_consent_import_latest_expression_wins(any_runtime: Runtime, tmp_path: Path) -> None:
    rt = any_runtime
    accounts.register_enterprise(rt, OPERATOR, uscc=USCC, name="示例银行", categories=["loan_finance"])
    old = actions.grant_consent(
        rt,
        OPERATOR,
        enterprise=USCC,
        number=parse("13800138000"),
        category=Category.LOAN_FINANCE,
        channels=(Channel.CALL,),
        evidence_ref="old",
        granted_at=rt.clock.now().replace(year=2025),
    )
    text = (
        "number,category,evidence,channel,granted_at\n"
        "13800138000,贷款理财,App 勾选 v4,call,2026-01-01T08:00:00+08:00\n"
        "13700137000,loan_finance,录音 R-9,both,\n"
    )
    summary = imports.import_consents(rt, Actor(Role.ENTERPRISE, USCC), _write(tmp_path, text))
    assert summary.written, summary.errors
    assert summary.details == {"consents": 3, "superseded": 1, "audit_id": summary.details["audit_id"]}
    with rt.sessions() as session:
        rows = session.scalars(select(ConsentRow).order_by(ConsentRow.id)).all()
        effective = set(queries.iter_effective_consents(session))
    assert rows[0].id == old[0].id and rows[0].withdrawn_at is not None and rows[0].retain_until is not None
    assert len(effective) == 3
    assert (USCC, "+8613800138000", "loan_finance", "call") in effective


def test_enterprise_cannot_import_for_another(runtime: Runtime, tmp_path: Path) -> None:
    accounts.register_enterprise(runtime, OPERATOR, uscc=USCC, name="示例银行", categories=[])
    text = f"number,category,evidence,enterprise\n13800138000,insurance,x,{USCC}\n"
    other = "91310000100000000" + uscc_check_character("91310000100000000")
    accounts.register_enterprise(runtime, OPERATOR, uscc=other, name="其他", categories=[])
    summary = imports.import_consents(runtime, Actor(Role.ENTERPRISE, other), _write(tmp_path, text))
    assert not summary.written and summary.errors[0].field == "enterprise"
    assert _count(runtime, ConsentRow) == 0


def test_consent_feed_rows_carry_the_time_of_consent(runtime: Runtime, tmp_path: Path) -> None:
    """Screening compares it with refusal times (latest expression wins), so imports must send it."""
    from datetime import datetime

    accounts.register_enterprise(runtime, OPERATOR, uscc=USCC, name="示例银行", categories=[])
    text = (
        "number,category,evidence,channel,granted_at\n"
        "13800138000,insurance,同意,sms,2025-12-01T08:00:00+08:00\n"
    )
    imports.import_consents(runtime, Actor(Role.ENTERPRISE, USCC), _write(tmp_path, text))
    with runtime.sessions() as session:
        [change] = [c for c in changefeed.read_after(session, 0) if c.topic == actions.TOPIC_CONSENT]
    assert datetime.fromisoformat(change.payload["granted_at"]) == datetime.fromisoformat(
        "2025-12-01T00:00:00+00:00"
    )
