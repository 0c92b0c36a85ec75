"""Random sequences of actions on real cases: the database follows the model's state machine exactly,
every accepted transition writes one audit row, and a refused one changes nothing."""

from __future__ import annotations

import itertools
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quietline.complaints import actions, queries
from quietline.complaints.actions import Filing
from quietline.complaints.model import TRANSITIONS, CaseState, Event
from quietline.platform.actor import Actor
from quietline.platform.errors import Conflict
from quietline.platform.runtime import Runtime
from quietline.vocabulary import Role

OP = Actor.operator("machine")
REPORTER = Actor(Role.SUBSCRIBER, "")
_reporters = itertools.count(1)

STEPS = {
    Event.REJECT: lambda rt, cid, _r: actions.reject(rt, OP, cid, "不在受理范围"),
    Event.FORWARD: lambda rt, cid, _r: actions.forward(rt, OP, cid, carrier="china_unicom"),
    Event.RESPOND_SUBSTANTIATED: lambda rt, cid, _r: actions.respond(
        rt, OP, cid, result="substantiated", action="warned"
    ),
    Event.RESPOND_UNSUBSTANTIATED: lambda rt, cid, _r: actions.respond(
        rt, OP, cid, result="unsubstantiated", action="正常业务来电"
    ),
    Event.ANSWER: lambda rt, cid, _r: actions.answer(rt, OP, cid),
    Event.CLOSE: lambda rt, cid, _r: actions.close(rt, OP, cid),
    Event.APPEAL: lambda rt, cid, reporter: actions.appeal(
        rt, Actor(Role.SUBSCRIBER, reporter), cid, "不满意"
    ),
}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(list(STEPS)), min_size=1, max_size=12))
def test_actions_follow_the_state_machine(runtime: Runtime, events: list[Event]) -> None:
    reporter = f"+86135{next(_reporters):08d}"
    filing = Filing(
        reporter=reporter,
        reported="4009999999",  # unrouted: the case waits in "accepted", so forward is a real step
        channel="call",
        at=runtime.clock.now() - timedelta(hours=1),
    )
    case_id = actions.file_report(runtime, OP, filing).id
    state = CaseState.ACCEPTED
    routed = False  # a carrier was named (by a forward); only then does an appeal forward again
    for event in events:
        with runtime.sessions() as session:
            before = len(queries.history(session, case_id))
        expected = TRANSITIONS.get((state, event))
        try:
            STEPS[event](runtime, case_id, reporter)
        except Conflict:
            accepted = False
        else:
            accepted = True
        with runtime.sessions() as session:
            stored = queries.show(session, case_id).state
            after = [e.action for e in queries.history(session, case_id)][before:]
        if expected is None:
            assert not accepted, (state, event)
            assert (stored, after) == (state, [])
            continue
        assert accepted, (state, event)
        state = expected
        routed = routed or event is Event.FORWARD
        if event is Event.APPEAL and routed:
            state = CaseState.FORWARDED  # a reopened case with a carrier is forwarded again at once
            assert after == ["complaint.appeal", "complaint.forward"]
        elif event is Event.FORWARD:  # a manual forward records the routing, then the transition
            assert after == ["complaint.route", "complaint.forward"]
        else:
            assert after == [f"complaint.{event.value}"]
        assert stored is state
