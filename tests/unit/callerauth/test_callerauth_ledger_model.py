"""Attestation from the ledger and the spoofing checks that need no token (pure functions)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quietline.callerauth.model import (
    SCREENING_REASON,
    LedgerEntry,
    LedgerSnapshot,
    Line,
    LineKind,
    Origin,
    Outcome,
    Purpose,
    Undertaking,
    check_presentation,
    decide,
    decide_attestation,
)
from quietline.callerauth.passport import Attestation
from quietline.callerauth.verify import Reason, Verdict, Verstat

UNDERTAKING = Undertaking("CN-2026-0001", date(2026, 11, 1), "张经理")
SNAPSHOT = LedgerSnapshot.build(
    [
        Line("L-95588", "91110000100000000A", "客服热线", LineKind.SERVICE_NUMBER),
        Line("L-PRIV", "91110000100000000A", "语音专线一号", LineKind.VOICE_PRIVATE_LINE),
    ],
    [
        LedgerEntry("L-95588", "8695588", Purpose.CUSTOMER_SERVICE, UNDERTAKING),
        LedgerEntry("L-PRIV", "861088886666", Purpose.NOTIFICATION, UNDERTAKING),
        LedgerEntry("L-PRIV", "861088886667", Purpose.CONSENTED_FOLLOW_UP, None),
    ],
)
CALLEE = "13912345678"


def test_attestation_levels() -> None:
    assert decide_attestation(SNAPSHOT, "L-PRIV", "861088886666").level is Attestation.A
    assert decide_attestation(SNAPSHOT, "L-PRIV", "861088886667").level is Attestation.B  # inbound-only
    assert decide_attestation(SNAPSHOT, "L-PRIV", "861088886668").level is Attestation.B  # not in ledger
    assert decide_attestation(SNAPSHOT, "L-UNKNOWN", "861088886666").level is Attestation.C
    assert decide_attestation(SNAPSHOT, None, "861088886666").level is Attestation.C


def test_inbound_only_by_default() -> None:
    assert LedgerEntry("L", "8695588", Purpose.NOTIFICATION).direction.value == "inbound"
    assert LedgerEntry("L", "8695588", Purpose.NOTIFICATION, UNDERTAKING).direction.value == "outbound"


@pytest.mark.parametrize(
    ("caller", "origin", "line", "code"),
    [
        (CALLEE, Origin.DOMESTIC_INTERCONNECT, None, "caller_equals_callee"),
        ("+86 139-1234-5678", Origin.DOMESTIC_INTERCONNECT, None, "caller_equals_callee"),
        ("12012345678", Origin.DOMESTIC_INTERCONNECT, None, "invalid_caller_id"),  # unallocated 120 mobile
        ("abc", Origin.DOMESTIC_INTERCONNECT, None, "invalid_caller_id"),
        ("+8613800138000", Origin.INTERNATIONAL_GATEWAY, None, "international_presents_domestic_mobile"),
        ("10086", Origin.DOMESTIC_INTERCONNECT, None, "caller_cannot_originate"),
        ("106900001", Origin.DOMESTIC_INTERCONNECT, None, "caller_cannot_originate"),
        ("110", Origin.INTERNATIONAL_GATEWAY, None, "international_presents_domestic_service"),
        ("95588", Origin.INTERNATIONAL_GATEWAY, None, "international_presents_domestic_service"),
        ("4008001234", Origin.ENTERPRISE_LINE, "L-PRIV", "toll_free_on_private_line"),
        ("01088886668", Origin.ENTERPRISE_LINE, "L-PRIV", "number_not_assigned_to_line"),
        ("01088886667", Origin.ENTERPRISE_LINE, "L-PRIV", "inbound_only_number"),
        ("01088886666", Origin.ENTERPRISE_LINE, "L-NOPE", "unknown_line"),
        ("anonymous", Origin.ENTERPRISE_LINE, "L-PRIV", "hidden_caller_id"),
    ],
)
def test_spoofs_are_blocked_with_a_reason(caller: str, origin: Origin, line: str | None, code: str) -> None:
    check = check_presentation(SNAPSHOT, caller=caller, callee=CALLEE, origin=origin, line=line)
    assert check.outcome is Outcome.BLOCK
    assert check.code == code
    assert check.screening_reason == SCREENING_REASON
    assert check.explanation  # a Chinese explanation for the subscriber's block record


@pytest.mark.parametrize(
    ("caller", "origin", "line"),
    [
        ("01088886666", Origin.ENTERPRISE_LINE, "L-PRIV"),
        ("95588", Origin.ENTERPRISE_LINE, "L-95588"),
        ("13800138000", Origin.DOMESTIC_INTERCONNECT, None),
        ("+12025550123", Origin.INTERNATIONAL_GATEWAY, None),
        ("96110", Origin.DOMESTIC_INTERCONNECT, None),  # the anti-fraud centre calls people
        ("+8613800138000", Origin.ROAMING_SUBSCRIBER, None),
        ("12345", Origin.DOMESTIC_INTERCONNECT, None),
    ],
)
def test_legitimate_presentations_pass(caller: str, origin: Origin, line: str | None) -> None:
    check = check_presentation(SNAPSHOT, caller=caller, callee=CALLEE, origin=origin, line=line)
    assert check.outcome is Outcome.ALLOW, check
    assert check.screening_reason is None


def test_international_presenting_domestic_fixed_line_is_a_warning() -> None:
    check = check_presentation(
        SNAPSHOT, caller="+861088886666", callee=CALLEE, origin=Origin.INTERNATIONAL_GATEWAY
    )
    assert check.outcome is Outcome.WARN


def _verdict(reason: Reason | None) -> Verdict:
    if reason is None:
        return Verdict(True, Verstat.PASSED, attest=Attestation.A)
    status = Verstat.NO_VALIDATION if reason is Reason.USE_IDENTITY_HEADER else Verstat.FAILED
    return Verdict(False, status, reason)


def test_decide_combines_verification_and_presentation() -> None:
    ok = check_presentation(
        SNAPSHOT, caller="13800138000", callee=CALLEE, origin=Origin.DOMESTIC_INTERCONNECT
    )
    failed = decide(_verdict(Reason.INVALID_IDENTITY_HEADER), ok, Origin.DOMESTIC_INTERCONNECT)
    assert failed.outcome is Outcome.BLOCK
    assert failed.code == "verification_failed_438"
    assert failed.screening_reason == "caller_auth_failed"
    assert decide(_verdict(Reason.STALE_DATE), ok, Origin.ENTERPRISE_LINE).outcome is Outcome.BLOCK
    unsigned = decide(_verdict(Reason.USE_IDENTITY_HEADER), ok, Origin.INTERNATIONAL_GATEWAY)
    assert unsigned.outcome is Outcome.WARN
    assert decide(None, ok, Origin.DOMESTIC_INTERCONNECT).outcome is Outcome.WARN
    assert decide(None, ok, Origin.ROAMING_SUBSCRIBER).outcome is Outcome.ALLOW
    assert decide(None, ok, Origin.ENTERPRISE_LINE).outcome is Outcome.ALLOW
    assert decide(_verdict(None), ok, Origin.DOMESTIC_INTERCONNECT).outcome is Outcome.ALLOW
    spoof = check_presentation(SNAPSHOT, caller=CALLEE, callee=CALLEE, origin=Origin.DOMESTIC_INTERCONNECT)
    assert decide(_verdict(None), spoof, Origin.DOMESTIC_INTERCONNECT).code == "caller_equals_callee"


def test_sign_call_takes_attestation_and_origid_from_the_ledger() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    from quietline.callerauth import passport as pp
    from quietline.callerauth.model import origid_for_line, sign_call

    key = ec.generate_private_key(ec.SECP256R1())
    args = {"dest": CALLEE, "key": key, "x5u": "https://cert.example.cn/sp.pem", "iat": 1_790_000_000}
    full = sign_call(SNAPSHOT, line="L-PRIV", orig="010 8888 6666", **args)  # type: ignore[arg-type]
    claims = pp.decode(full.token).claims
    assert (claims["attest"], claims["orig"]["tn"], claims["dest"]["tn"]) == (
        "A",
        "861088886666",
        ["8613912345678"],
    )
    assert claims["origid"] == origid_for_line("L-PRIV") == origid_for_line("L-PRIV")
    assert origid_for_line("L-95588") != origid_for_line("L-PRIV")
    assert full.identity_header.startswith(full.token + ";info=<https://cert.example.cn/sp.pem>")
    assert pp.decode(full.token).verify_signature(key.public_key())
    partial = sign_call(SNAPSHOT, line="L-PRIV", orig="01088886667", **args)  # type: ignore[arg-type]
    assert pp.decode(partial.token).claims["attest"] == "B"
    gateway = sign_call(SNAPSHOT, line=None, orig="13800138000", **args)  # type: ignore[arg-type]
    assert pp.decode(gateway.token).claims["attest"] == "C"


def test_a_short_code_assigned_by_the_ledger_may_be_presented_on_its_line() -> None:
    snapshot = LedgerSnapshot.build(
        [Line("L-CS", "91110000100000000A", "客服外呼", LineKind.CALL_CENTRE)],
        [LedgerEntry("L-CS", "8610086", Purpose.CONSENTED_FOLLOW_UP, UNDERTAKING)],
    )
    on_line = check_presentation(
        snapshot, caller="10086", callee=CALLEE, origin=Origin.ENTERPRISE_LINE, line="L-CS"
    )
    assert on_line.outcome is Outcome.ALLOW
    elsewhere = check_presentation(
        snapshot, caller="10086", callee=CALLEE, origin=Origin.DOMESTIC_INTERCONNECT
    )
    assert elsewhere.code == "caller_cannot_originate"


@given(
    caller=st.text(max_size=24),
    callee=st.text(max_size=24),
    origin=st.sampled_from(list(Origin)),
    line=st.sampled_from([None, "L-PRIV", "L-95588", "L-NOPE"]),
)
def test_checks_never_raise_on_any_input(caller: str, callee: str, origin: Origin, line: str | None) -> None:
    check = check_presentation(SNAPSHOT, caller=caller, callee=callee, origin=origin, line=line)
    assert check.outcome in set(Outcome)
    assert (check.screening_reason is not None) == (check.outcome is Outcome.BLOCK)


@given(digits=st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True))
def test_any_mobile_from_abroad_is_blocked_and_at_home_is_not(digits: str) -> None:
    from quietline.numbers import InvalidNumber, parse

    try:
        parse(digits)
    except InvalidNumber:
        return  # an unallocated prefix: covered by invalid_caller_id
    abroad = check_presentation(
        SNAPSHOT, caller="+86" + digits, callee=CALLEE, origin=Origin.INTERNATIONAL_GATEWAY
    )
    home = check_presentation(SNAPSHOT, caller=digits, callee=CALLEE, origin=Origin.DOMESTIC_INTERCONNECT)
    if digits == CALLEE:
        return
    assert abroad.outcome is Outcome.BLOCK
    assert home.outcome is Outcome.ALLOW, home


@pytest.mark.parametrize("caller", ["anonymous", "", "Unknown", "匿名"])
def test_a_hidden_caller_id_from_another_network_is_labelled(caller: str) -> None:
    check = check_presentation(SNAPSHOT, caller=caller, callee=CALLEE, origin=Origin.DOMESTIC_INTERCONNECT)
    assert (check.outcome, check.code) == (Outcome.WARN, "hidden_caller_id")
