"""The compiled snapshot agrees with a plain reference implementation; deltas agree with a rebuild."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quietline.platform.settings import ConsentPolicy
from quietline.screening.model import NEVER_BLOCK_NATIONAL, REASON_ORDER, Decision, Reason, ScreenRequest
from quietline.screening.snapshot import DECISION_ORDER, ConsentEntry, RegistryState, Snapshot, SnapshotError
from quietline.vocabulary import Category, Channel

# --- a plain reference implementation of DESIGN.md's decision order: dicts and loops -----------
# It keeps the registry as the events left it (with the time of every expression) and walks the order
# literally, so the compiled snapshot can be checked against it.


@dataclass
class ReferenceRegistry:
    refusals: dict[tuple[int, str, str], datetime] = field(default_factory=dict)
    consents: dict[tuple[str, int, str, str], datetime] = field(default_factory=dict)
    personal: dict[int, set[tuple[str, str, str]]] = field(default_factory=dict)
    system_allow: set[int] = field(default_factory=set)
    system_block: set[int] = field(default_factory=set)
    labels: dict[int, set[str]] = field(default_factory=dict)
    risk: dict[int, str] = field(default_factory=dict)

    # --- events, as the registry emits them on the change feed ------------------------------------

    def apply(self, topic: str, payload: dict[str, Any], at: datetime) -> None:  # noqa: PLR0912
        if topic == "registry.refusal":
            key = (int(payload["number"][1:]), payload["category"], payload["channel"])
            if payload["active"]:
                self.refusals[key] = at
            else:
                self.refusals.pop(key, None)
        elif topic == "registry.consent":
            ckey = (
                payload["enterprise"],
                int(payload["number"][1:]),
                payload["category"],
                payload["channel"],
            )
            if payload["granted"]:
                self.consents[ckey] = at
            else:
                self.consents.pop(ckey, None)
        elif topic == "registry.personal_list":
            entries = self.personal.setdefault(int(payload["owner"][1:]), set())
            entry = (payload["list"], payload["kind"], payload["value"])
            if payload["active"]:
                entries.add(entry)
            else:
                entries.discard(entry)
        elif topic == "registry.system_list":
            target = self.system_allow if payload["list"] == "allow" else self.system_block
            number = int(payload["number"][1:])
            if payload["active"]:
                target.add(number)
            else:
                target.discard(number)
        elif topic == "marks.label":
            labels = self.labels.setdefault(int(payload["number"][1:]), set())
            if payload["displayed"]:
                labels.add(payload["label"])
            else:
                labels.discard(payload["label"])
        elif topic == "marks.high_risk":
            self.risk[int(payload["number"][1:])] = payload["state"]

    # --- the decision order, literally --------------------------------------------------------------

    def decide(self, req: ScreenRequest, policy: ConsentPolicy) -> Reason:  # noqa: PLR0911, PLR0912
        if req.caller_never_block or req.caller_national in NEVER_BLOCK_NATIONAL:
            return Reason.NEVER_BLOCK
        entries = self.personal.get(req.callee, set())
        for list_name, kind, value in sorted(entries):
            if list_name != "allow":
                continue
            if kind == "number" and int(value[1:]) == req.caller:
                return Reason.PERSONAL_ALLOW
            if kind == "prefix" and req.caller_national and req.caller_national.startswith(value):
                return Reason.PERSONAL_ALLOW
            if kind == "international" and req.caller_international:
                return Reason.PERSONAL_ALLOW
        for list_name, kind, value in entries:
            if list_name == "block" and kind == "number" and int(value[1:]) == req.caller:
                return Reason.PERSONAL_BLOCK
        for list_name, kind, value in entries:
            if list_name == "block" and kind == "prefix" and req.caller_national.startswith(value):
                return Reason.PERSONAL_PREFIX_BLOCK
        if ("block", "international", "") in entries and req.caller_international:
            return Reason.INTERNATIONAL_BLOCK
        if req.caller in self.system_allow:
            return Reason.SYSTEM_ALLOW
        if req.caller in self.system_block or self.risk.get(req.caller) in ("verified", "acted"):
            return Reason.SYSTEM_BLOCK
        if req.category is not None:
            k, ch = req.category.value, req.channel.value
            refusal_times = [
                since
                for (number, scope, channel), since in self.refusals.items()
                if number == req.callee and channel == ch and scope in (k, "all")
            ]
            granted_at = self.consents.get((req.enterprise or "", req.callee, k, ch))
            # The latest expression wins both ways: the consent counts unless a refusal came after it.
            effective = granted_at is not None and all(t <= granted_at for t in refusal_times)
            if not effective:
                if refusal_times:
                    return Reason.REFUSED_CATEGORY
                if policy is ConsentPolicy.STRICT:
                    return Reason.NO_CONSENT
        # Labels that warn are the unwanted family; 快递外卖 and "legitimate" never do.
        shown = self.labels.get(req.caller, set()) - {"delivery_ride_hailing", "legitimate"}
        if shown or self.risk.get(req.caller) == "suspected":
            return Reason.CROWD_WARNING
        return Reason.DEFAULT_ALLOW

    # --- the final state, as a full rebuild reads it ------------------------------------------------

    def state(self, feed_id: int = 0) -> RegistryState:
        refusals: dict[tuple[str, str], list[int]] = {}
        for number, scope, channel in self.refusals:
            refusals.setdefault((scope, channel), []).append(number)
        return RegistryState(
            refusals={k: np.array(v, dtype=np.int64) for k, v in refusals.items()},
            refusal_since=dict(self.refusals),
            consents=[ConsentEntry(e, n, k, ch, at) for (e, n, k, ch), at in self.consents.items()],
            personal=[(owner, *entry) for owner, entries in self.personal.items() for entry in entries],
            system_allow=sorted(self.system_allow),
            system_block=sorted(self.system_block),
            labels=[(n, label) for n, labels in self.labels.items() for label in labels],
            high_risk=list(self.risk.items()),
            feed_id=feed_id,
        )


# A small pool so that random events and calls collide: mobiles, a 400 number, a fixed line and
# foreign numbers (different NumberSet regions).
POOL = [8613800000001, 8613800000002, 8613900000003, 864001234567, 861055501234, 14155550100, 447700900123]
ENTERPRISES = ["91110000MA00000001", "91310000MA00000002"]
CATEGORIES = [Category.LOAN_FINANCE, Category.INSURANCE]
PREFIXES = ["138", "400", "1390", "010"]
T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def e164(n: int) -> str:
    return f"+{n}"


def national(n: int) -> tuple[str, bool]:
    text = str(n)
    if text.startswith("86"):
        rest = text[2:]
        return (rest if rest[0] in "14" else "0" + rest), False
    return "00" + text, True


numbers = st.sampled_from(POOL)
channels = st.sampled_from(["call", "sms"])

refusal = st.fixed_dictionaries(
    {
        "number": numbers.map(e164),
        "category": st.sampled_from(["all", *(c.value for c in CATEGORIES)]),
        "channel": channels,
        "active": st.booleans(),
    }
).map(lambda p: ("registry.refusal", p))
consent = st.fixed_dictionaries(
    {
        "enterprise": st.sampled_from(ENTERPRISES),
        "number": numbers.map(e164),
        "category": st.sampled_from([c.value for c in CATEGORIES]),
        "channel": channels,
        "granted": st.booleans(),
    }
).map(lambda p: ("registry.consent", p))
personal = st.one_of(
    st.fixed_dictionaries(
        {
            "owner": numbers.map(e164),
            "list": st.sampled_from(["allow", "block"]),
            "kind": st.just("number"),
            "value": numbers.map(e164),
            "active": st.booleans(),
        }
    ),
    st.fixed_dictionaries(
        {
            "owner": numbers.map(e164),
            "list": st.sampled_from(["allow", "block"]),
            "kind": st.just("prefix"),
            "value": st.sampled_from(PREFIXES),
            "active": st.booleans(),
        }
    ),
    st.fixed_dictionaries(
        {
            "owner": numbers.map(e164),
            "list": st.sampled_from(["allow", "block"]),
            "kind": st.just("international"),
            "value": st.just(""),
            "active": st.booleans(),
        }
    ),
).map(lambda p: ("registry.personal_list", p))
system = st.fixed_dictionaries(
    {
        "list": st.sampled_from(["allow", "block"]),
        "number": numbers.map(e164),
        "active": st.booleans(),
        "reason": st.just("test"),
    }
).map(lambda p: ("registry.system_list", p))
label = st.fixed_dictionaries(
    {
        "number": numbers.map(e164),
        "label": st.sampled_from(["harassment", "insurance", "delivery_ride_hailing", "legitimate"]),
        "displayed": st.booleans(),
    }
).map(lambda p: ("marks.label", p))
high_risk = st.fixed_dictionaries(
    {"number": numbers.map(e164), "state": st.sampled_from(["suspected", "verified", "acted", "cleared"])}
).map(lambda p: ("marks.high_risk", p))
# Each event comes 0 or 1 s after the previous one: equal times (ties) happen on purpose.
events = st.lists(
    st.tuples(
        st.one_of(refusal, refusal, consent, consent, personal, system, label, high_risk), st.integers(0, 1)
    ),
    max_size=60,
)


@st.composite
def requests(draw: st.DrawFn) -> ScreenRequest:
    caller = draw(numbers)
    nat, international = national(caller)
    if draw(st.integers(0, 9)) == 0:
        nat, international = draw(st.sampled_from(["110", "12321", "96110"])), False
    return ScreenRequest(
        caller=caller,
        callee=draw(numbers),
        channel=Channel(draw(channels)),
        category=draw(st.one_of(st.none(), st.sampled_from(CATEGORIES))),
        enterprise=draw(st.one_of(st.none(), st.sampled_from(ENTERPRISES))),
        caller_national=nat,
        caller_international=international,
    )


def replay(
    evs: list[tuple[tuple[str, dict[str, Any]], int]], policy: ConsentPolicy
) -> tuple[ReferenceRegistry, Snapshot]:
    ref = ReferenceRegistry()
    snap = Snapshot(policy=policy)
    at = T0
    for i, ((topic, payload), step) in enumerate(evs, start=1):
        at += timedelta(seconds=step)
        ref.apply(topic, payload, at)
        snap.apply(i, topic, payload, at)
    return ref, snap


policies = st.sampled_from(list(ConsentPolicy))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(evs=events, reqs=st.lists(requests(), min_size=1, max_size=30), policy=policies)
def test_snapshot_agrees_with_reference_and_deltas_agree_with_rebuild(
    evs: list[tuple[tuple[str, dict[str, Any]], int]], reqs: list[ScreenRequest], policy: ConsentPolicy
) -> None:
    ref, delta = replay(evs, policy)
    rebuilt = Snapshot.compile(ref.state(len(evs)), policy=policy)
    assert delta.canonical() == rebuilt.canonical()
    assert delta.feed_id == rebuilt.feed_id == len(evs)
    compacted = delta.compacted()
    for req in reqs:
        expected = ref.decide(req, policy)
        assert delta.decide(req).reason is expected, req
        assert rebuilt.decide(req).reason is expected, req
        assert compacted.decide(req).reason is expected, req
        # The general path alone (``decide`` answers the common case by a fast path).
        assert delta.decide_in_order(req).reason is expected, req
        assert rebuilt.decide_in_order(req).reason is expected, req


@settings(max_examples=150, deadline=None)
@given(
    evs=events,
    pairs=st.lists(st.tuples(numbers, numbers), min_size=1, max_size=20),
    channel=channels,
    category=st.one_of(st.none(), st.sampled_from(CATEGORIES)),
    enterprise=st.one_of(st.none(), st.sampled_from(ENTERPRISES)),
    policy=policies,
)
def test_batch_decisions_equal_single_decisions(
    evs: list[tuple[tuple[str, dict[str, Any]], int]],
    pairs: list[tuple[int, int]],
    channel: str,
    category: Category | None,
    enterprise: str | None,
    policy: ConsentPolicy,
) -> None:
    _, snap = replay(evs, policy)
    nats = [national(c) for c, _ in pairs]
    decisions, reasons = snap.decide_batch(
        np.array([c for c, _ in pairs]),
        np.array([c for _, c in pairs]),
        channel=Channel(channel),
        category=category,
        enterprise=enterprise,
        caller_national=[n for n, _ in nats],
        caller_international=[i for _, i in nats],
    )
    for (caller, callee), (nat, intl), d, r in zip(pairs, nats, decisions, reasons, strict=True):
        single = snap.decide(ScreenRequest(caller, callee, Channel(channel), category, enterprise, nat, intl))
        assert (DECISION_ORDER[d], REASON_ORDER[r]) == (single.decision, single.reason)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(evs=events, reqs=st.lists(requests(), min_size=1, max_size=20))
def test_save_and_load_keep_state_and_feed_id(
    tmp_path: Path, evs: list[tuple[tuple[str, dict[str, Any]], int]], reqs: list[ScreenRequest]
) -> None:
    ref, snap = replay(evs, ConsentPolicy.STRICT)
    loaded = Snapshot.load(snap.save(tmp_path / "snap.npz"))
    assert loaded.canonical() == snap.canonical()
    assert loaded.feed_id == snap.feed_id
    # The ledger survives too: further deltas on the loaded copy match the reference.
    at = T0 + timedelta(hours=1)
    for topic, payload in [
        ("registry.refusal", {"number": e164(POOL[0]), "category": "all", "channel": "call", "active": True}),
        (
            "registry.refusal",
            {"number": e164(POOL[0]), "category": "all", "channel": "call", "active": False},
        ),
    ]:
        ref.apply(topic, payload, at)
        loaded.apply(loaded.feed_id + 1, topic, payload, at)
    for req in reqs:
        assert loaded.decide(req).reason is ref.decide(req, ConsentPolicy.STRICT)


def test_the_common_case_is_decided_by_the_fast_path_and_lists_turn_it_off() -> None:
    snap = Snapshot()
    caller, callee = 8613900000003, 8613800000001

    def general(req: ScreenRequest) -> Any:
        raise AssertionError("the general path ran")

    snap.decide_in_order = general  # type: ignore[method-assign]
    marketing = ScreenRequest(caller, callee, Channel.CALL, Category.INSURANCE, ENTERPRISES[0], "13900000003")
    assert snap.decide(marketing).reason is Reason.NO_CONSENT
    assert (
        snap.decide(ScreenRequest(caller, callee, caller_national="13900000003")).reason
        is Reason.DEFAULT_ALLOW
    )
    # A caller put on a system list (a delta) leaves the fast path, and comes back when taken off.
    payload = {"list": "allow", "number": e164(caller), "active": True, "reason": "x"}
    snap.apply(1, "registry.system_list", payload, T0)
    with pytest.raises(AssertionError, match="general path"):
        snap.decide(marketing)
    snap.apply(2, "registry.system_list", {**payload, "active": False}, T0)
    assert snap.decide(marketing).reason is Reason.NO_CONSENT
    snap.apply(3, "marks.label", {"number": e164(caller), "label": "harassment", "displayed": True}, T0)
    with pytest.raises(AssertionError, match="general path"):
        snap.decide(marketing)


def test_never_block_numbers_are_never_blocked_whatever_any_list_says() -> None:
    snap = Snapshot()
    caller = 86110
    for topic, payload in [
        ("registry.system_list", {"list": "block", "number": "+86110", "active": True, "reason": "x"}),
        (
            "registry.personal_list",
            {"owner": "+8613800000001", "list": "block", "kind": "prefix", "value": "11", "active": True},
        ),
        (
            "registry.refusal",
            {"number": "+8613800000001", "category": "all", "channel": "call", "active": True},
        ),
    ]:
        snap.apply(1, topic, payload, T0)
    req = ScreenRequest(caller, 8613800000001, Channel.CALL, Category.INSURANCE, None, "110")
    out = snap.decide(req)
    assert (out.decision, out.reason) == (Decision.ALLOW, Reason.NEVER_BLOCK)
    flagged = ScreenRequest(caller, 8613800000001, caller_national="11", caller_never_block=True)
    assert snap.decide(flagged).reason is Reason.NEVER_BLOCK
    # Without the never-block status the same caller is blocked by the subscriber's prefix rule.
    plain = ScreenRequest(caller, 8613800000001, caller_national="1100")
    assert snap.decide(plain).reason is Reason.PERSONAL_PREFIX_BLOCK


def test_latest_expression_wins_both_ways() -> None:
    e, callee = ENTERPRISES[0], 8613800000001
    req = ScreenRequest(8613900000003, callee, Channel.CALL, Category.INSURANCE, e, "13900000003")
    snap = Snapshot(policy=ConsentPolicy.OPT_OUT)
    refuse = {"number": e164(callee), "category": "all", "channel": "call", "active": True}
    grant = {
        "enterprise": e,
        "number": e164(callee),
        "category": "insurance",
        "channel": "call",
        "granted": True,
    }
    snap.apply(1, "registry.refusal", refuse, T0)
    assert snap.decide(req).reason is Reason.REFUSED_CATEGORY
    snap.apply(
        2, "registry.consent", grant, T0 + timedelta(minutes=1)
    )  # consent after refusal: E gets through
    assert snap.decide(req).reason is Reason.DEFAULT_ALLOW
    snap.apply(3, "registry.refusal", refuse, T0 + timedelta(minutes=2))  # refusal after consent: blocked
    assert snap.decide(req).reason is Reason.REFUSED_CATEGORY
    other = ScreenRequest(
        8613900000003, callee, Channel.CALL, Category.INSURANCE, ENTERPRISES[1], "13900000003"
    )
    assert snap.decide(other).reason is Reason.REFUSED_CATEGORY


def test_strict_policy_blocks_marketing_without_consent_and_opt_out_does_not() -> None:
    req = ScreenRequest(
        8613900000003, 8613800000001, Channel.SMS, Category.EDUCATION, ENTERPRISES[0], "13900000003"
    )
    assert Snapshot(policy=ConsentPolicy.STRICT).decide(req).reason is Reason.NO_CONSENT
    assert Snapshot(policy=ConsentPolicy.OPT_OUT).decide(req).reason is Reason.DEFAULT_ALLOW
    # A call that is not marketing is never subject to consent.
    plain = ScreenRequest(8613900000003, 8613800000001, Channel.CALL)
    assert Snapshot(policy=ConsentPolicy.STRICT).decide(plain).reason is Reason.DEFAULT_ALLOW


def test_every_outcome_has_a_chinese_explanation_and_rule() -> None:
    snap = Snapshot()
    out = snap.decide(ScreenRequest(8613900000003, 8613800000001, Channel.CALL, Category.RETAIL))
    data = out.as_dict()
    assert data["decision"] == "block"
    assert data["reason"] == "no_consent"
    assert data["rule"].startswith("6.")
    assert "同意" in data["explanation"]


@pytest.mark.parametrize(
    ("topic", "payload"),
    [
        ("registry.refusal", {"number": "+86138", "category": "nonsense", "channel": "call", "active": True}),
        (
            "registry.refusal",
            {"number": "not-a-number", "category": "all", "channel": "call", "active": True},
        ),
        ("registry.consent", {"enterprise": "E", "number": "+8613800000001", "category": "insurance"}),
        (
            "registry.personal_list",
            {"owner": "+8613800000001", "list": "grey", "kind": "number", "value": "+1", "active": True},
        ),
        ("registry.system_list", {"list": "grey", "number": "+8613800000001", "active": True}),
    ],
)
def test_malformed_changes_are_refused_loudly(topic: str, payload: dict[str, Any]) -> None:
    snap = Snapshot()
    with pytest.raises(SnapshotError):
        snap.apply(7, topic, payload, T0)
    assert snap.feed_id == 0


def test_consent_given_in_the_same_instant_as_a_refusal_counts_as_later() -> None:
    """The registry's rule (``iter_effective_consents``): only a refusal strictly after a consent
    overtakes it; deltas and a rebuild apply the same rule."""
    e, callee = ENTERPRISES[0], 8613800000001
    req = ScreenRequest(8613900000003, callee, Channel.CALL, Category.INSURANCE, e, "13900000003")
    ref, snap = replay(
        [
            (
                (
                    "registry.refusal",
                    {"number": e164(callee), "category": "insurance", "channel": "call", "active": True},
                ),
                0,
            ),
            (
                (
                    "registry.consent",
                    {
                        "enterprise": e,
                        "number": e164(callee),
                        "category": "insurance",
                        "channel": "call",
                        "granted": True,
                    },
                ),
                0,
            ),
        ],
        ConsentPolicy.STRICT,
    )
    assert ref.decide(req, ConsentPolicy.STRICT) is Reason.DEFAULT_ALLOW
    assert snap.decide(req).reason is Reason.DEFAULT_ALLOW
    assert Snapshot.compile(ref.state()).decide(req).reason is Reason.DEFAULT_ALLOW


def test_feed_cursor_accepts_out_of_order_ids_and_never_applies_one_twice(tmp_path: Path) -> None:
    snap = Snapshot(feed_id=10)
    payload = {"list": "block", "number": "+8613900000003", "active": True, "reason": "x"}
    snap.apply(12, "registry.system_list", payload, T0)  # 11 is still in flight
    assert (snap.feed_low, snap.feed_id, snap.gaps()) == (10, 12, [11])
    assert snap.has_applied(12)
    assert not snap.has_applied(11)
    loaded = Snapshot.load(snap.save(tmp_path / "s.npz"))
    assert (loaded.feed_low, loaded.feed_id, loaded.gaps()) == (10, 12, [11])
    loaded.apply(11, "registry.system_list", {**payload, "active": False}, T0)
    assert (loaded.feed_low, loaded.gaps()) == (12, [])
    snap.mark_applied(14)
    snap.skip_to(13)  # 13 never committed (rolled back)
    assert (snap.feed_low, snap.gaps()) == (14, [])


@pytest.mark.parametrize("union_max", [0, 1 << 20])
def test_batch_caller_lists_follow_deltas_with_and_without_the_union_filter(
    monkeypatch: pytest.MonkeyPatch, union_max: int
) -> None:
    """The batch path tests callers against one union of the caller lists (or, when those are too
    large, each list on every row); both follow deltas and agree with single decisions."""
    monkeypatch.setattr("quietline.screening.snapshot.UNION_MAX", union_max)
    snap = Snapshot(policy=ConsentPolicy.OPT_OUT)
    callers = np.array(POOL * len(POOL), dtype=np.int64)
    callees = np.repeat(np.array(POOL, dtype=np.int64), len(POOL))

    def check() -> list[Reason]:
        _, reasons = snap.decide_batch(callers, callees, channel=Channel.CALL)
        for caller, callee, r in zip(callers.tolist(), callees.tolist(), reasons, strict=True):
            assert REASON_ORDER[r] is snap.decide(ScreenRequest(caller, callee)).reason
        return [REASON_ORDER[r] for r in reasons]

    assert set(check()) == {Reason.DEFAULT_ALLOW}
    events = [
        ("registry.system_list", {"list": "block", "number": e164(POOL[0]), "active": True, "reason": "x"}),
        ("marks.label", {"number": e164(POOL[1]), "label": "harassment", "displayed": True}),
        ("registry.system_list", {"list": "allow", "number": e164(POOL[2]), "active": True, "reason": "x"}),
        ("marks.high_risk", {"number": e164(POOL[3]), "state": "verified"}),
    ]
    for i, (topic, payload) in enumerate(events, start=1):
        snap.apply(i, topic, payload, T0)
        check()
    assert set(check()) == {
        Reason.SYSTEM_BLOCK,
        Reason.CROWD_WARNING,
        Reason.SYSTEM_ALLOW,
        Reason.DEFAULT_ALLOW,
    }
    snap.apply(9, "registry.system_list", {**events[0][1], "active": False}, T0)
    assert check().count(Reason.SYSTEM_BLOCK) == len(POOL)  # only the high-risk caller is left
