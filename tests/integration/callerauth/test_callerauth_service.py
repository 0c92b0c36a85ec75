"""The screening step end to end: ledger from the database, change feed, verification, verdicts."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from quietline.accounts.model import uscc_check_character
from quietline.callerauth import actions
from quietline.callerauth import passport as pp
from quietline.callerauth.ca import CertificateAuthority
from quietline.callerauth.certs import LocalCertificateStore, TrustStore
from quietline.callerauth.model import Origin, Outcome, Undertaking
from quietline.callerauth.service import Call, CallerAuthentication
from quietline.callerauth.verify import Verifier
from quietline.platform.actor import Actor
from quietline.platform.runtime import Runtime
from quietline.vocabulary import Role

CARRIER = Actor(Role.CARRIER, "china_unicom")
USCC = "91110000100000000" + uscc_check_character("91110000100000000")
UNDERTAKING = Undertaking("CN-2026-0002", date(2026, 11, 2), "李经理")
X5U = "https://cert.example.cn/sp.pem"
CALLEE = "13912345678"


def test_screening_step(any_runtime: Runtime, tmp_path: Path) -> None:
    now = any_runtime.clock.now()
    ca = CertificateAuthority.init(tmp_path / "ca", now=now - timedelta(days=1))
    key, cert = ca.issue(now=now - timedelta(days=1), spc="1234")
    verifier = Verifier(LocalCertificateStore({X5U: [cert, ca.cert]}), TrustStore([ca.cert]))
    actions.register_line(
        any_runtime, CARRIER, code="L1", enterprise=USCC, name="专线", kind="voice_private_line"
    )
    actions.assign_number(
        any_runtime, CARRIER, line="L1", number="01088886666", purpose="notification", undertaking=UNDERTAKING
    )
    with any_runtime.sessions() as session:
        service = CallerAuthentication.load(session, verifier)

    def signed(orig: str) -> str:
        passport = pp.build(orig=orig, dest=CALLEE, attest="A", x5u=X5U, iat=int(now.timestamp()))
        return pp.identity_header(pp.sign(passport, key), X5U)

    good = service.screen(
        Call("13800138000", CALLEE, Origin.DOMESTIC_INTERCONNECT, identity_headers=[signed("8613800138000")]),
        now=now,
    )
    assert good.check.outcome is Outcome.ALLOW
    assert good.verdict is not None
    assert good.verdict.valid
    assert good.as_dict()["verification"]["verstat"] == "TN-Validation-Passed"  # type: ignore[index]

    replayed_for_other_caller = service.screen(
        Call("13800138001", CALLEE, Origin.DOMESTIC_INTERCONNECT, identity_headers=[signed("8613800138000")]),
        now=now,
    )
    assert replayed_for_other_caller.check.outcome is Outcome.BLOCK
    assert replayed_for_other_caller.check.screening_reason == "caller_auth_failed"

    unsigned = service.screen(Call("13800138000", CALLEE, Origin.INTERNATIONAL_GATEWAY), now=now)
    assert unsigned.check.outcome is Outcome.BLOCK  # a +86 mobile from abroad is a spoof outright
    unsigned_fixed = service.screen(Call("13800138000", CALLEE, Origin.DOMESTIC_INTERCONNECT), now=now)
    assert unsigned_fixed.check.code == "unsigned_from_risky_origin"

    from_line = Call("01088886667", CALLEE, Origin.ENTERPRISE_LINE, line="L1")
    assert service.screen(from_line, now=now).check.code == "number_not_assigned_to_line"
    actions.assign_number(
        any_runtime, CARRIER, line="L1", number="01088886667", purpose="notification", undertaking=UNDERTAKING
    )
    assert service.screen(from_line, now=now).check.code == "number_not_assigned_to_line"  # not yet seen
    with any_runtime.sessions() as session:
        service.refresh(session)
    assert service.screen(from_line, now=now).check.outcome is Outcome.ALLOW
