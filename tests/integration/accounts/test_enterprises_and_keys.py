"""Enterprises and API keys on SQLite and PostgreSQL: audited, fed to the change feed, hashed."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from quietline.accounts import actions, queries
from quietline.accounts.model import EnterpriseStatus
from quietline.accounts.orm import ApiKeyRow
from quietline.platform import audit, changefeed
from quietline.platform.actor import Actor
from quietline.platform.clock import FakeClock
from quietline.platform.errors import Conflict, InvalidInput, NotFound
from quietline.platform.runtime import Runtime
from quietline.vocabulary import Category, Role

OPERATOR = Actor.operator("tester")
USCC = "91350100M000100Y43"
OTHER = "91440300708461136T"


def _register(rt: Runtime, uscc: str = USCC) -> None:
    actions.register_enterprise(
        rt, OPERATOR, uscc=uscc, name="测试公司", categories=["保险推销", "loan_finance"]
    )


def test_register_show_and_list(any_runtime: Runtime) -> None:
    enterprise = actions.register_enterprise(
        any_runtime, OPERATOR, uscc=USCC.lower(), name=" 测试 公司 ", categories=["保险推销", "loan_finance"]
    )
    assert enterprise.uscc == USCC
    assert enterprise.name == "测试 公司"
    assert enterprise.categories == (Category.LOAN_FINANCE, Category.INSURANCE)
    assert enterprise.is_active
    _register(any_runtime, OTHER)
    actions.update_enterprise_categories(any_runtime, OPERATOR, OTHER, ["education"])
    with any_runtime.sessions() as session:
        assert queries.get_enterprise(session, USCC) == enterprise
        assert [e.uscc for e in queries.list_enterprises(session)] == [USCC, OTHER]
        assert [e.uscc for e in queries.list_enterprises(session, category=Category.EDUCATION)] == [OTHER]
        entries = audit.for_subject(session, "enterprise", USCC)
        changes = changefeed.read_after(session, 0, topics=(actions.ENTERPRISE_TOPIC,))
    assert [e.action for e in entries] == ["accounts.enterprise.register"]
    assert entries[0].after is not None
    assert entries[0].after["categories"] == ["loan_finance", "insurance"]
    assert [(c.key, c.payload["categories"]) for c in changes][-1] == (OTHER, ["education"])


def test_register_refuses_bad_and_duplicate_codes(any_runtime: Runtime) -> None:
    _register(any_runtime)
    with pytest.raises(Conflict, match="already registered"):
        _register(any_runtime)
    with pytest.raises(InvalidInput, match="checksum") as err:
        _register(any_runtime, USCC[:-1] + "4")
    assert err.value.field == "uscc"
    with pytest.raises(InvalidInput) as err:
        actions.register_enterprise(any_runtime, OPERATOR, uscc=OTHER, name="x", categories=["gambling"])
    assert err.value.field == "category"
    with any_runtime.sessions() as session:
        assert queries.find_enterprise(session, OTHER) is None
        with pytest.raises(NotFound):
            queries.get_enterprise(session, OTHER)


def test_suspension_stops_the_enterprise_keys(any_runtime: Runtime) -> None:
    _register(any_runtime)
    created = actions.create_api_key(
        any_runtime, OPERATOR, role="enterprise", subject=USCC, scopes=["consent:write"]
    )
    assert actions.authenticate_api_key(any_runtime, created.plaintext) is not None
    with pytest.raises(InvalidInput, match="reason"):
        actions.suspend_enterprise(any_runtime, OPERATOR, USCC, reason=" ")
    suspended = actions.suspend_enterprise(any_runtime, OPERATOR, USCC, reason="行政处罚")
    assert suspended.status is EnterpriseStatus.SUSPENDED
    assert actions.authenticate_api_key(any_runtime, created.plaintext) is None
    actions.reinstate_enterprise(any_runtime, OPERATOR, USCC)
    assert actions.authenticate_api_key(any_runtime, created.plaintext) is not None
    with any_runtime.sessions() as session:
        actions_seen = [e.action for e in audit.for_subject(session, "enterprise", USCC)]
    assert actions_seen == [
        "accounts.enterprise.reinstate",
        "accounts.enterprise.suspend",
        "accounts.enterprise.register",
    ]


def test_keys_are_hashed_scoped_touched_and_revocable(any_runtime: Runtime, clock: FakeClock) -> None:
    created = actions.create_api_key(
        any_runtime,
        OPERATOR,
        role="carrier",
        subject="中国移动",
        scopes=["screen", "registry:read"],
        label="SBC",
    )
    key = created.key
    assert created.plaintext.startswith(f"ql_{key.id}_")
    assert (key.role, key.subject, key.scopes) == (Role.CARRIER, "china_mobile", ("registry:read", "screen"))
    with any_runtime.sessions() as session:
        digest = session.scalar(select(ApiKeyRow.digest).where(ApiKeyRow.id == key.id))
        entry = audit.tail(session, 1)[0]
    assert digest is not None
    assert created.plaintext.split("_", 2)[2] not in digest
    assert created.plaintext not in str(entry.as_dict())
    clock.advance(minutes=5)
    identity = actions.authenticate_api_key(any_runtime, created.plaintext)
    assert identity is not None
    assert identity.actor == Actor(Role.CARRIER, "china_mobile", key_id=key.id)
    assert identity.scopes == {"screen", "registry:read"}
    with any_runtime.sessions() as session:
        assert queries.get_api_key(session, key.id).last_used_at == clock.now()
    forged = created.plaintext[:-1] + ("A" if created.plaintext[-1] != "A" else "B")
    assert actions.authenticate_api_key(any_runtime, forged) is None
    assert actions.authenticate_api_key(any_runtime, "ql_0000000000000000_" + "x" * 43) is None
    revoked = actions.revoke_api_key(any_runtime, OPERATOR, key.id)
    assert revoked.revoked_at == clock.now()
    assert actions.authenticate_api_key(any_runtime, created.plaintext) is None
    with pytest.raises(Conflict, match="already revoked"):
        actions.revoke_api_key(any_runtime, OPERATOR, key.id)
    with pytest.raises(NotFound):
        actions.revoke_api_key(any_runtime, OPERATOR, "ffffffffffffffff")
    with any_runtime.sessions() as session:
        assert queries.list_api_keys(session) == []
        assert [k.id for k in queries.list_api_keys(session, include_revoked=True)] == [key.id]


def test_enterprise_keys_need_a_registered_enterprise(any_runtime: Runtime) -> None:
    with pytest.raises(NotFound, match="register it first") as err:
        actions.create_api_key(any_runtime, OPERATOR, role="enterprise", subject=USCC)
    assert err.value.field == "subject"
    with pytest.raises(InvalidInput, match="checksum"):
        actions.create_api_key(any_runtime, OPERATOR, role="enterprise", subject=USCC[:-1] + "4")
    with pytest.raises(InvalidInput, match="one-time SMS code"):
        actions.create_api_key(any_runtime, OPERATOR, role="subscriber", subject="+8613800138000")


def test_active_enterprise_codes(any_runtime: Runtime) -> None:
    _register(any_runtime)
    _register(any_runtime, OTHER)
    actions.suspend_enterprise(any_runtime, OPERATOR, OTHER, reason="处罚")
    with any_runtime.sessions() as session:
        assert queries.active_enterprise_codes(session) == {USCC}
