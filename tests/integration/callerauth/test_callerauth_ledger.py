"""The caller-number ledger on SQLite and PostgreSQL: actions, audit, change feed, CSV round trip."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from quietline.accounts.model import uscc_check_character
from quietline.callerauth import actions, queries
from quietline.callerauth.model import (
    Direction,
    Origin,
    Outcome,
    Undertaking,
    check_presentation,
    decide_attestation,
)
from quietline.callerauth.passport import Attestation
from quietline.platform import changefeed
from quietline.platform.actor import Actor
from quietline.platform.audit import AuditEntry
from quietline.platform.errors import InvalidInput, NotFound, PermissionDenied
from quietline.platform.runtime import Runtime
from quietline.vocabulary import Role

USCC = "91110000100000000" + uscc_check_character("91110000100000000")
CARRIER = Actor(Role.CARRIER, "china_mobile")
UNDERTAKING = Undertaking("CN-2026-0001", date(2026, 11, 1), "张经理")


def _seed(rt: Runtime) -> None:
    actions.register_line(rt, CARRIER, code="L-PRIV", enterprise=USCC, name="语音专线一号", kind="语音专线")
    actions.assign_number(
        rt, CARRIER, line="L-PRIV", number="010-8888 6666", purpose="通知提醒", undertaking=UNDERTAKING
    )
    actions.assign_number(rt, CARRIER, line="L-PRIV", number="01088886667", purpose="customer_service")


def test_ledger_actions_are_audited_and_announced(any_runtime: Runtime) -> None:
    _seed(any_runtime)
    with any_runtime.sessions() as session:
        rows = queries.ledger(session, line="L-PRIV")
        assert [(r.entry.number, r.entry.direction) for r in rows] == [
            ("861088886666", Direction.OUTBOUND),
            ("861088886667", Direction.INBOUND),
        ]
        actions_logged = [a.action for a in session.scalars(select(AuditEntry).order_by(AuditEntry.id))]
        assert actions_logged == [
            "callerauth.line.register",
            "callerauth.number.assign",
            "callerauth.number.assign",
        ]
        feed = changefeed.read_after(session, 0, topics=(actions.TOPIC,))
        assert [c.key for c in feed] == ["L-PRIV", "861088886666", "861088886667"]
        snapshot = queries.snapshot(session)
    assert decide_attestation(snapshot, "L-PRIV", "861088886666").level is Attestation.A
    assert decide_attestation(snapshot, "L-PRIV", "861088886667").level is Attestation.B
    check = check_presentation(
        snapshot, caller="01088886667", callee="13912345678", origin=Origin.ENTERPRISE_LINE, line="L-PRIV"
    )
    assert check.outcome is Outcome.BLOCK

    # Unchanged re-assignment writes nothing; recording the undertaking opens outbound.
    assert not actions.assign_number(
        any_runtime, CARRIER, line="L-PRIV", number="01088886667", purpose="客户服务"
    )
    assert actions.assign_number(
        any_runtime, CARRIER, line="L-PRIV", number="01088886667", purpose="客户服务", undertaking=UNDERTAKING
    )
    actions.remove_number(any_runtime, CARRIER, line="L-PRIV", number="01088886666")
    with any_runtime.sessions() as session:
        rows = queries.ledger(session)
        assert [(r.entry.number, r.entry.direction) for r in rows] == [("861088886667", Direction.OUTBOUND)]
        assert (
            session.scalar(select(AuditEntry.action).order_by(AuditEntry.id.desc()).limit(1))
            == "callerauth.number.remove"
        )


def test_only_carriers_and_operators_keep_the_ledger(any_runtime: Runtime) -> None:
    for role in (Role.SUBSCRIBER, Role.ENTERPRISE, Role.REGULATOR):
        with pytest.raises(PermissionDenied):
            actions.register_line(
                any_runtime, Actor(role, "x"), code="L", enterprise=USCC, name="n", kind="sip_trunk"
            )


def test_bad_input_names_the_field(any_runtime: Runtime) -> None:
    with pytest.raises(InvalidInput) as bad_uscc:
        actions.register_line(any_runtime, CARRIER, code="L", enterprise="123", name="n", kind="sip_trunk")
    assert bad_uscc.value.field == "enterprise"
    with pytest.raises(NotFound):
        actions.assign_number(any_runtime, CARRIER, line="nope", number="01088886666", purpose="notification")
    _seed(any_runtime)
    other = "91310000MA1FL0000" + uscc_check_character("91310000MA1FL0000")
    with pytest.raises(InvalidInput, match="not transferred"):
        actions.register_line(
            any_runtime, CARRIER, code="L-PRIV", enterprise=other, name="x", kind="sip_trunk"
        )


def test_csv_round_trip_and_all_or_nothing_import(any_runtime: Runtime) -> None:
    _seed(any_runtime)
    with any_runtime.sessions() as session:
        exported = queries.export_csv(session)
    assert exported.splitlines()[0] == ",".join(queries.CSV_COLUMNS)
    assert "CN-2026-0001" in exported

    fresh_csv = exported.replace("L-PRIV", "L-NEW")
    result = actions.import_csv(any_runtime, CARRIER, fresh_csv)
    assert result.as_dict() == {"rows": 2, "lines_changed": 1, "numbers_changed": 2}
    with any_runtime.sessions() as session:
        assert len(queries.ledger(session, line="L-NEW")) == 2
        assert queries.export_csv(session).count("L-NEW") == 2
    again = actions.import_csv(any_runtime, CARRIER, fresh_csv)
    assert again.numbers_changed == 0

    header = ",".join(queries.CSV_COLUMNS)
    bad = (
        f"{header}\n"
        f"L-3,{USCC},三号线,sip_trunk,13800138000,notification,inbound,,,\n"
        f"L-3,{USCC},三号线,sip_trunk,13800138001,notification,outbound,,,\n"
    )
    with pytest.raises(InvalidInput, match="row 3") as err:
        actions.import_csv(any_runtime, CARRIER, bad)
    assert err.value.field == "direction"
    with any_runtime.sessions() as session:
        assert queries.ledger(session, line="L-3") == []  # nothing of the bad file was written
    with pytest.raises(InvalidInput, match="missing columns"):
        actions.import_csv(any_runtime, CARRIER, "line,number\nL,1\n")


def test_snapshot_follows_the_change_feed(any_runtime: Runtime) -> None:
    """A snapshot built once and patched from the feed equals one rebuilt from the tables."""
    with any_runtime.sessions() as session:
        cursor = changefeed.head(session)
        live = queries.snapshot(session)
    _seed(any_runtime)
    actions.assign_number(
        any_runtime, CARRIER, line="L-PRIV", number="01088886667", purpose="客户服务", undertaking=UNDERTAKING
    )
    actions.remove_number(any_runtime, CARRIER, line="L-PRIV", number="01088886666")
    actions.register_line(any_runtime, CARRIER, code="L-PRIV", enterprise=USCC, name="改名", kind="sip_trunk")
    with any_runtime.sessions() as session:
        cursor = queries.follow(session, live, cursor)
        assert cursor == changefeed.head(session)
        assert live == queries.snapshot(session)
    assert live.lines["L-PRIV"].name == "改名"
    assert decide_attestation(live, "L-PRIV", "861088886667").level is Attestation.A
    assert decide_attestation(live, "L-PRIV", "861088886666").level is Attestation.B


def test_a_carrier_keeps_only_the_lines_it_provides(any_runtime: Runtime) -> None:
    other = Actor(Role.CARRIER, "china_telecom")
    operator = Actor.operator("ops")
    _seed(any_runtime)  # registered by CARRIER (china_mobile)
    with pytest.raises(PermissionDenied) as err:
        actions.assign_number(any_runtime, other, line="L-PRIV", number="01088886668", purpose="notification")
    assert err.value.field == "line"
    with pytest.raises(PermissionDenied):
        actions.remove_number(any_runtime, other, line="L-PRIV", number="01088886666")
    with pytest.raises(PermissionDenied):
        actions.register_line(any_runtime, other, code="L-PRIV", enterprise=USCC, name="x", kind="sip_trunk")
    with pytest.raises(PermissionDenied, match="only its own"):
        actions.register_line(
            any_runtime,
            other,
            code="L-T",
            enterprise=USCC,
            name="x",
            kind="sip_trunk",
            carrier="china_mobile",
        )
    assert actions.assign_number(
        any_runtime, operator, line="L-PRIV", number="01088886668", purpose="notification"
    )
    actions.register_line(
        any_runtime,
        operator,
        code="L-OPS",
        enterprise=USCC,
        name="y",
        kind="sip_trunk",
        carrier="china_telecom",
    )
    actions.assign_number(any_runtime, other, line="L-OPS", number="01088886669", purpose="notification")
    with any_runtime.sessions() as session:
        carriers = {r.line.code: r.line.carrier for r in queries.ledger(session)}
        exported = queries.export_csv(session)
    assert carriers == {"L-PRIV": "china_mobile", "L-OPS": "china_telecom"}
    assert exported.splitlines()[0].endswith(",carrier")
    with pytest.raises(PermissionDenied):  # another carrier's file cannot take over its lines
        actions.import_csv(any_runtime, other, exported)
