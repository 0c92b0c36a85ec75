"""Registry and consent ledger on real databases (SQLite and PostgreSQL): every change audited with
before/after, announced on the change feed, and scoped to who may make it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from quietline.accounts import actions as accounts
from quietline.accounts.model import uscc_check_character
from quietline.numbers import parse
from quietline.platform import audit, changefeed
from quietline.platform.actor import Actor
from quietline.platform.clock import FakeClock
from quietline.platform.errors import InvalidInput, NotFound, PermissionDenied
from quietline.platform.runtime import Runtime
from quietline.platform.sms import RecordingSmsSender
from quietline.registry import actions, queries
from quietline.registry.model import EntryKind, ListName
from quietline.registry.orm import RefusalRow
from quietline.vocabulary import Category, Channel, Role

OPERATOR = Actor.operator("test")
NUMBER = parse("13800138000")
OTHER = parse("13900139000")
USCC = "91110000100000000" + uscc_check_character("91110000100000000")
BOTH = (Channel.CALL, Channel.SMS)


@pytest.fixture
def rt(any_runtime: Runtime) -> Runtime:
    accounts.register_enterprise(
        any_runtime, OPERATOR, uscc=USCC, name="示例银行", categories=["loan_finance"]
    )
    return any_runtime


def _feed(rt: Runtime, topic: str) -> list[changefeed.Change]:
    with rt.sessions() as session:
        return [c for c in changefeed.read_after(session, 0) if c.topic == topic]


def test_refuse_is_audited_announced_and_confirmed(rt: Runtime, sms: RecordingSmsSender) -> None:
    changes = actions.refuse(rt, OPERATOR, NUMBER, [Category.LOAN_FINANCE, Category.INSURANCE], BOTH)
    assert len(changes) == 4
    with rt.sessions() as session:
        shown = queries.show(session, NUMBER.e164, rt.clock.now())
        history = queries.history(session, NUMBER.e164)
    assert {(r["category"], r["channel"]) for r in shown["refusals"]} == {
        ("loan_finance", "call"),
        ("loan_finance", "sms"),
        ("insurance", "call"),
        ("insurance", "sms"),
    }
    assert len(history) == 4
    assert all(h.action == "registry.refuse" and h.before is None and h.after["active"] for h in history)
    assert history[0].actor == "operator:test"
    feed = _feed(rt, actions.TOPIC_REFUSAL)
    assert {(c.payload["category"], c.payload["channel"], c.payload["active"]) for c in feed} == {
        ("loan_finance", "call", True),
        ("loan_finance", "sms", True),
        ("insurance", "call", True),
        ("insurance", "sms", True),
    }
    assert "贷款理财" in sms.last_to(NUMBER.e164).text


def test_repeating_a_refusal_changes_nothing(rt: Runtime) -> None:
    actions.refuse(rt, OPERATOR, NUMBER, [None], BOTH)
    assert actions.refuse(rt, OPERATOR, NUMBER, [None], BOTH) == []
    assert len(_feed(rt, actions.TOPIC_REFUSAL)) == 2


def test_withdraw_records_before_and_after(rt: Runtime) -> None:
    actions.refuse(rt, OPERATOR, NUMBER, [Category.REAL_ESTATE], (Channel.CALL,))
    actions.withdraw(rt, OPERATOR, NUMBER, [Category.REAL_ESTATE], (Channel.CALL,))
    with rt.sessions() as session:
        [latest, _first] = queries.history(session, NUMBER.e164)
        assert queries.refusals(session, NUMBER.e164) == []
    assert latest.action == "registry.withdraw_refusal"
    assert latest.before is not None and latest.before["active"] is True
    assert latest.after is not None and latest.after["active"] is False


def test_set_refusals_applies_the_difference(rt: Runtime) -> None:
    actions.refuse(rt, OPERATOR, NUMBER, [Category.EDUCATION], BOTH)
    changes = actions.set_refusals(
        rt, OPERATOR, NUMBER, [(Category.EDUCATION, Channel.CALL), (None, Channel.SMS)]
    )
    assert len(changes) == 2  # education/sms withdrawn, all/sms refused
    with rt.sessions() as session:
        now = {(r.category, r.channel.value) for r in queries.refusals(session, NUMBER.e164)}
    assert now == {("education", "call"), ("all", "sms")}


def test_subscriber_changes_only_its_own_number(rt: Runtime) -> None:
    me = Actor(Role.SUBSCRIBER, NUMBER.e164)
    actions.refuse(rt, me, NUMBER, [None], BOTH)
    with pytest.raises(PermissionDenied):
        actions.refuse(rt, me, OTHER, [None], BOTH)
    with pytest.raises(PermissionDenied):
        actions.refuse(rt, Actor(Role.ENTERPRISE, USCC), NUMBER, [None], BOTH)


def test_validity_period_expires_through_the_scheduled_action(rt: Runtime, clock: FakeClock) -> None:
    actions.refuse(rt, OPERATOR, NUMBER, [None], (Channel.CALL,), valid_until=clock.now() + timedelta(days=7))
    assert actions.expire_refusals(rt, OPERATOR) == 0
    clock.advance(days=8)
    with rt.sessions() as session:
        assert queries.refusals(session, NUMBER.e164, clock.now()) == []
    assert actions.expire_refusals(rt, OPERATOR) == 1
    assert _feed(rt, actions.TOPIC_REFUSAL)[-1].payload["active"] is False


def test_personal_lists_numbers_prefixes_and_international(rt: Runtime) -> None:
    actions.add_list_entry(rt, OPERATOR, NUMBER, ListName.BLOCK, EntryKind.PREFIX, "400")
    actions.add_list_entry(rt, OPERATOR, NUMBER, ListName.BLOCK, EntryKind.INTERNATIONAL)
    stored = actions.add_list_entry(
        rt, OPERATOR, NUMBER, ListName.ALLOW, EntryKind.NUMBER, "+86 139 0013 9000"
    )
    assert stored == "+8613900139000"
    with rt.sessions() as session:
        entries = {(e.list_name, e.kind, e.value) for e in queries.list_entries(session, NUMBER.e164)}
    assert entries == {
        ("block", "prefix", "400"),
        ("block", "international", ""),
        ("allow", "number", "+8613900139000"),
    }
    actions.remove_list_entry(rt, OPERATOR, NUMBER, ListName.BLOCK, EntryKind.PREFIX, "400")
    with pytest.raises(NotFound):
        actions.remove_list_entry(rt, OPERATOR, NUMBER, ListName.BLOCK, EntryKind.PREFIX, "400")
    payloads = [c.payload for c in _feed(rt, actions.TOPIC_PERSONAL_LIST)]
    assert payloads[-1] == {
        "owner": NUMBER.e164,
        "list": "block",
        "kind": "prefix",
        "value": "400",
        "active": False,
    }


def test_personal_list_is_capped(any_runtime: Runtime, tmp_path: object) -> None:
    any_runtime.settings.personal_list_limit = 3
    for i in range(3):
        actions.add_list_entry(
            any_runtime, OPERATOR, NUMBER, ListName.BLOCK, EntryKind.NUMBER, f"1390013900{i}"
        )
    with pytest.raises(InvalidInput, match="at most 3"):
        actions.add_list_entry(any_runtime, OPERATOR, NUMBER, ListName.BLOCK, EntryKind.NUMBER, "13900139009")


def test_bad_prefix_is_refused_with_the_field_named(rt: Runtime) -> None:
    with pytest.raises(InvalidInput) as err:
        actions.add_list_entry(rt, OPERATOR, NUMBER, ListName.BLOCK, EntryKind.PREFIX, "4x")
    assert err.value.field == "value"


def test_consent_requires_proof_and_a_registered_enterprise(rt: Runtime) -> None:
    with pytest.raises(InvalidInput, match="proof"):
        actions.grant_consent(
            rt, OPERATOR, enterprise=USCC, number=NUMBER, category=Category.LOAN_FINANCE, channels=BOTH
        )
    other = "91310000100000000" + uscc_check_character("91310000100000000")
    with pytest.raises(NotFound, match="not registered"):
        actions.grant_consent(
            rt,
            OPERATOR,
            enterprise=other,
            number=NUMBER,
            category=Category.LOAN_FINANCE,
            channels=BOTH,
            evidence_text="录音",
        )


def test_enterprise_records_consent_only_in_its_own_name(rt: Runtime) -> None:
    other = "91310000100000000" + uscc_check_character("91310000100000000")
    with pytest.raises(PermissionDenied):
        actions.grant_consent(
            rt,
            Actor(Role.ENTERPRISE, other),
            enterprise=USCC,
            number=NUMBER,
            category=Category.LOAN_FINANCE,
            channels=BOTH,
            evidence_text="x",
        )


def test_latest_expression_wins_both_ways(rt: Runtime, clock: FakeClock) -> None:
    enterprise = Actor(Role.ENTERPRISE, USCC)

    def effective() -> set[tuple[str, str, str, str]]:
        with rt.sessions() as session:
            return set(queries.iter_effective_consents(session))

    actions.refuse(rt, OPERATOR, NUMBER, [Category.LOAN_FINANCE], (Channel.CALL,))
    clock.advance(minutes=1)
    actions.grant_consent(
        rt,
        enterprise,
        enterprise=USCC,
        number=NUMBER,
        category=Category.LOAN_FINANCE,
        channels=(Channel.CALL,),
        evidence_ref="app-consent-2026-001",
    )
    assert effective() == {(USCC, NUMBER.e164, "loan_finance", "call")}  # consent after refusal wins
    clock.advance(minutes=1)
    actions.refuse(rt, OPERATOR, NUMBER, [None], (Channel.CALL,))
    assert effective() == set()  # a later refusal of all marketing wins over the consent


def test_withdrawn_consent_keeps_its_proof_for_the_retention_period(rt: Runtime, clock: FakeClock) -> None:
    enterprise = Actor(Role.ENTERPRISE, USCC)
    actions.grant_consent(
        rt,
        enterprise,
        enterprise=USCC,
        number=NUMBER,
        category=Category.LOAN_FINANCE,
        channels=(Channel.SMS,),
        evidence_text="用户在 App 勾选同意营销短信（版本 3）",
    )
    me = Actor(Role.SUBSCRIBER, NUMBER.e164)
    assert actions.revoke_consent(rt, me, enterprise=USCC, number=NUMBER, category=Category.LOAN_FINANCE) == 1
    clock.advance(days=152)
    assert actions.purge_expired_proofs(rt, OPERATOR) == 0
    clock.advance(days=2)
    assert actions.purge_expired_proofs(rt, OPERATOR) == 1
    with rt.sessions() as session:
        [record] = queries.consents_of_number(session, NUMBER.e164)
        actions_seen = [e.action for e in audit.tail(session, 10)]
    assert not record.active and record.evidence_sha256
    assert "consent.proof_purged" in actions_seen


def test_export_is_scoped_to_the_enterprise(rt: Runtime) -> None:
    import io

    other = "91310000100000000" + uscc_check_character("91310000100000000")
    accounts.register_enterprise(rt, OPERATOR, uscc=other, name="其他公司", categories=["insurance"])
    for uscc in (USCC, other):
        actions.grant_consent(
            rt,
            OPERATOR,
            enterprise=uscc,
            number=NUMBER,
            category=Category.INSURANCE,
            channels=BOTH,
            evidence_ref="r",
        )
    buffer = io.StringIO()
    with rt.sessions() as session:
        assert queries.export_consents(session, buffer, USCC) == 2
        assert queries.export_consents(session, io.StringIO(), None) == 4
    assert other not in buffer.getvalue() and buffer.getvalue().startswith("id,enterprise,number")


def test_a_failed_action_leaves_nothing(rt: Runtime) -> None:
    with rt.sessions() as session:
        head_before, audit_before = changefeed.head(session), len(audit.tail(session, 1000))
    with pytest.raises(InvalidInput):
        actions.refuse(rt, OPERATOR, NUMBER, [None], (), notify=False)
    with pytest.raises(InvalidInput):  # a validity period that has already ended
        actions.refuse(rt, OPERATOR, NUMBER, [None], (Channel.CALL,), valid_until=rt.clock.now())
    with rt.sessions() as session:
        assert session.scalar(select(func.count()).select_from(RefusalRow)) == 0
        assert changefeed.head(session) == head_before
        assert len(audit.tail(session, 1000)) == audit_before
