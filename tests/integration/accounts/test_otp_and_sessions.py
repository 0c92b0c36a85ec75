"""One-time codes and subscriber sessions on SQLite and PostgreSQL, with the fake clock."""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from quietline.accounts import actions
from quietline.accounts.orm import OtpChallengeRow, SubscriberSessionRow
from quietline.numbers import InvalidNumber
from quietline.platform import audit
from quietline.platform.clock import FakeClock
from quietline.platform.errors import InvalidInput, RateLimited
from quietline.platform.runtime import Runtime
from quietline.platform.settings import Settings
from quietline.platform.sms import RecordingSmsSender
from quietline.vocabulary import Role

NUMBER = "+8613800138000"


def _code(sms: RecordingSmsSender, number: str = NUMBER) -> str:
    match = re.search(r"验证码是(\d{6})", sms.last_to(number).text)
    assert match
    return match.group(1)


def test_code_is_sent_stored_hashed_and_audited_without_the_code(
    any_runtime: Runtime, sms: RecordingSmsSender
) -> None:
    sent = actions.request_code(any_runtime, "138 0013 8000", client="ip:1.2.3.4")
    assert sent.number == NUMBER
    message = sms.last_to(NUMBER)
    code = _code(sms)
    assert message.text == f"【quietline】您的验证码是{code}，5分钟内有效。如非本人操作请忽略。"
    assert message.purpose == "otp"
    with any_runtime.sessions() as session:
        row = session.get(OtpChallengeRow, NUMBER)
        assert row is not None
        assert code not in row.digest
        assert len(row.digest) == 64
        [entry] = audit.tail(session, 5)
    assert (entry.action, entry.subject) == ("accounts.otp.request", NUMBER)
    assert code not in str(entry.as_dict())
    assert entry.after is not None
    assert entry.after["client"] == "ip:1.2.3.4"


def test_right_code_opens_a_session_and_is_used_up(any_runtime: Runtime, sms: RecordingSmsSender) -> None:
    actions.request_code(any_runtime, NUMBER, client="ip:x")
    code = _code(sms)
    issued = actions.verify_code(any_runtime, "+86 138 0013 8000", code, client="ip:x")
    assert issued.number == NUMBER
    actor = actions.authenticate_session(any_runtime, issued.token)
    assert actor is not None
    assert (actor.role, actor.subject, actor.key_id) == (Role.SUBSCRIBER, NUMBER, issued.session_id)
    with any_runtime.sessions() as session:
        stored = session.scalar(select(SubscriberSessionRow.token_digest))
        assert stored is not None
        assert issued.token not in stored
        assert audit.tail(session, 1)[0].action == "accounts.otp.verified"
    with pytest.raises(InvalidInput, match="no code was requested"):
        actions.verify_code(any_runtime, NUMBER, code, client="ip:x")


def test_five_wrong_tries_kill_the_code_and_each_try_is_kept(
    any_runtime: Runtime, sms: RecordingSmsSender
) -> None:
    actions.request_code(any_runtime, NUMBER, client="ip:x")
    code = _code(sms)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for left in (4, 3, 2, 1):
        with pytest.raises(InvalidInput, match=f"wrong code; {left} tries left") as err:
            actions.verify_code(any_runtime, NUMBER, wrong, client="ip:x")
        assert err.value.field == "code"
    with pytest.raises(InvalidInput, match="wrong code; request a new code"):
        actions.verify_code(any_runtime, NUMBER, wrong, client="ip:x")
    with pytest.raises(InvalidInput, match="too many wrong tries"):
        actions.verify_code(any_runtime, NUMBER, code, client="ip:x")
    with any_runtime.sessions() as session:
        failed = [e for e in audit.tail(session, 20) if e.action == "accounts.otp.failed"]
    assert len(failed) == 6


def test_code_expires_after_the_ttl(any_runtime: Runtime, sms: RecordingSmsSender, clock: FakeClock) -> None:
    actions.request_code(any_runtime, NUMBER, client="ip:x")
    code = _code(sms)
    clock.advance(seconds=any_runtime.settings.otp_ttl_seconds)
    with pytest.raises(InvalidInput, match="expired"):
        actions.verify_code(any_runtime, NUMBER, code, client="ip:x")


def test_a_new_code_replaces_the_old_one(any_runtime: Runtime, sms: RecordingSmsSender) -> None:
    actions.request_code(any_runtime, NUMBER, client="ip:x")
    first = _code(sms)
    actions.request_code(any_runtime, NUMBER, client="ip:x")
    second = _code(sms)
    if first != second:  # one chance in a million that they coincide
        with pytest.raises(InvalidInput, match="wrong code"):
            actions.verify_code(any_runtime, NUMBER, first, client="ip:x")
    assert actions.verify_code(any_runtime, NUMBER, second, client="ip:x").number == NUMBER


def test_sending_is_limited_per_number_per_hour(any_runtime: Runtime, clock: FakeClock) -> None:
    limit = any_runtime.settings.otp_send_per_number_per_hour
    for i in range(limit):
        actions.request_code(any_runtime, NUMBER, client=f"ip:{i}")
        clock.advance(minutes=1)
    with pytest.raises(RateLimited, match="per number per hour") as err:
        actions.request_code(any_runtime, NUMBER, client="ip:other")
    assert err.value.field == "otp_send_per_number_per_hour"
    with any_runtime.sessions() as session:
        assert audit.tail(session, 1)[0].action == "accounts.otp.refused"
    clock.advance(minutes=56)  # the first send leaves the sliding hour
    actions.request_code(any_runtime, NUMBER, client="ip:other")


def test_sending_is_limited_per_client(any_runtime: Runtime) -> None:
    limit = any_runtime.settings.otp_send_per_client_per_hour
    for i in range(limit):
        actions.request_code(any_runtime, f"+86139{i:08d}", client="key:abc")
    with pytest.raises(RateLimited) as err:
        actions.request_code(any_runtime, "+8613700000000", client="key:abc")
    assert err.value.field == "otp_send_per_client_per_hour"
    actions.request_code(any_runtime, "+8613700000000", client="key:other")


def test_limits_hold_across_processes_sending_at_once(db_url: str, tmp_path: Path, clock: FakeClock) -> None:
    """Ten runtimes (separate engines, as separate processes would have) race on one number."""
    settings = Settings(env="test", database_url=db_url, secret_key="s", otp_send_per_number_per_hour=3)  # type: ignore[arg-type]
    runtimes = [Runtime.build(settings, clock=clock, sms=RecordingSmsSender()) for _ in range(10)]
    outcomes: list[str] = []
    lock = threading.Lock()

    def send(rt: Runtime, i: int) -> None:
        try:
            actions.request_code(rt, NUMBER, client=f"ip:{i}")
            result = "sent"
        except RateLimited:
            result = "limited"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=send, args=(rt, i)) for i, rt in enumerate(runtimes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for rt in runtimes:
        rt.close()
    assert sorted(outcomes) == ["limited"] * 7 + ["sent"] * 3


def test_only_mobile_numbers_receive_codes(runtime: Runtime, sms: RecordingSmsSender) -> None:
    with pytest.raises(InvalidInput, match="only a mobile number") as err:
        actions.request_code(runtime, "010-12345678", client="ip:x")
    assert err.value.field == "number"
    with pytest.raises(InvalidNumber):
        actions.request_code(runtime, "not a number", client="ip:x")
    with pytest.raises(InvalidInput, match="six digits"):
        actions.verify_code(runtime, NUMBER, "12ab56", client="ip:x")
    assert sms.sent == []


def test_a_failing_gateway_is_a_clear_error(runtime: Runtime) -> None:
    from quietline.platform.sms import DisabledSmsSender

    runtime.sms = DisabledSmsSender()
    with pytest.raises(actions.SmsUnavailable, match="could not be sent") as err:
        actions.request_code(runtime, NUMBER, client="ip:x")
    assert err.value.status == 503


def _signed_in(rt: Runtime, sms: RecordingSmsSender) -> actions.IssuedSession:
    actions.request_code(rt, NUMBER, client="ip:x")
    return actions.verify_code(rt, NUMBER, _code(sms), client="ip:x")


def test_session_idles_out_after_thirty_minutes(
    any_runtime: Runtime, sms: RecordingSmsSender, clock: FakeClock
) -> None:
    issued = _signed_in(any_runtime, sms)
    clock.advance(minutes=29)
    assert actions.authenticate_session(any_runtime, issued.token) is not None  # moves the idle deadline
    clock.advance(minutes=29)
    assert actions.authenticate_session(any_runtime, issued.token) is not None
    clock.advance(minutes=30)
    assert actions.authenticate_session(any_runtime, issued.token) is None


def test_session_ends_after_twelve_hours_however_busy(
    runtime: Runtime, sms: RecordingSmsSender, clock: FakeClock
) -> None:
    issued = _signed_in(runtime, sms)
    for _ in range(11 * 4 + 3):  # every 15 minutes for 11h45m
        clock.advance(minutes=15)
        assert actions.authenticate_session(runtime, issued.token) is not None
    clock.advance(minutes=15)
    assert actions.authenticate_session(runtime, issued.token) is None


def test_logout_revokes_the_session(any_runtime: Runtime, sms: RecordingSmsSender) -> None:
    issued = _signed_in(any_runtime, sms)
    actions.end_session(any_runtime, issued.actor)
    assert actions.authenticate_session(any_runtime, issued.token) is None
    with any_runtime.sessions() as session:
        assert audit.tail(session, 1)[0].action == "accounts.session.logout"
    assert actions.authenticate_session(any_runtime, "forged-token") is None
    assert actions.authenticate_session(any_runtime, "") is None
