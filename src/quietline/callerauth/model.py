"""The caller-number ledger and the checks that need no token (pure: no I/O, no clock).

Rules (DESIGN.md "Caller numbers"; 工信部《关于推进综合整治骚扰电话专项行动的工作方案》2018, 《通信短信息和
语音呼叫服务管理规定》2024): no altered, hidden or spoofed caller ID (不得擅自变更、隐藏、冒用); numbers are
used only by those they are assigned to and are not rented or transferred; each enterprise line has a
ledger of the caller numbers it may present, with their purpose; a line is inbound-only unless the
enterprise has signed an undertaking (承诺书) for outbound calls; calls that fail caller
authentication are blocked, and international calls must not present domestic (+86) mobile numbers
(the 2016 rule against "改号" fraud from abroad).

The ledger decides SHAKEN attestation (ATIS-1000074 §5.2.3): A when the line may present the
number, B when the customer is known but the number is not vouched for, C when the call only entered
at a gateway. The screening engine consumes ``CallerCheck`` verdicts (reason ``caller_auth_failed``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from quietline.callerauth import passport as pp
from quietline.callerauth.passport import Attestation
from quietline.callerauth.tn import canonical_tn
from quietline.callerauth.verify import Reason, Verdict
from quietline.numbers import InvalidNumber, PhoneNumber, parse
from quietline.vocabulary import LabelledEnum, NumberType

#: The screening engine's system-block reason for a failed verification or a confirmed spoof.
SCREENING_REASON = "caller_auth_failed"


class LineKind(LabelledEnum):
    """Kinds of enterprise access the ledger covers."""

    SERVICE_NUMBER = ("service_number", "95/96 客服号码")
    TOLL_FREE = ("toll_free", "400/800 号码")
    VOICE_PRIVATE_LINE = ("voice_private_line", "语音专线")
    CALL_CENTRE = ("call_centre", "呼叫中心接入")
    SIP_TRUNK = ("sip_trunk", "SIP 中继")


class Purpose(LabelledEnum):
    """What a caller number is used for (the ledger records one per number)."""

    CUSTOMER_SERVICE = ("customer_service", "客户服务")
    NOTIFICATION = ("notification", "通知提醒")
    CONSENTED_FOLLOW_UP = ("consented_follow_up", "经同意的回访")


class Direction(LabelledEnum):
    INBOUND = ("inbound", "仅呼入")
    OUTBOUND = ("outbound", "可呼出")


class Origin(LabelledEnum):
    """Where the call entered the carrier's network."""

    ENTERPRISE_LINE = ("enterprise_line", "企业线路")
    DOMESTIC_INTERCONNECT = ("domestic_interconnect", "国内网间互联")
    INTERNATIONAL_GATEWAY = ("international_gateway", "国际关口局")
    #: The carrier's own subscriber calling home while roaming abroad (the carrier knows it from
    #: its location register), which legitimately shows a +86 number.
    ROAMING_SUBSCRIBER = ("roaming_subscriber", "本网用户国际漫游")


@dataclass(frozen=True, slots=True)
class Undertaking:
    """The outbound undertaking (承诺书): document reference, date signed, who signed."""

    reference: str
    signed_on: date
    signatory: str


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    line: str
    number: str  # canonical digits (country code, no "+")
    purpose: Purpose
    undertaking: Undertaking | None = None

    @property
    def direction(self) -> Direction:
        """Inbound-only by default; outbound only with a recorded undertaking."""
        return Direction.OUTBOUND if self.undertaking is not None else Direction.INBOUND


@dataclass(frozen=True, slots=True)
class Line:
    code: str
    enterprise: str
    name: str
    kind: LineKind
    carrier: str | None = None


@dataclass
class LedgerSnapshot:
    """The ledger in memory for the per-call path (nothing there touches SQL). It is built from
    the database once and then patched from the change feed (``apply``), like the screening
    snapshot, so a ledger change reaches the checks without a reload."""

    lines: dict[str, Line] = field(default_factory=dict)
    entries: dict[tuple[str, str], LedgerEntry] = field(default_factory=dict)

    @classmethod
    def build(cls, lines: Iterable[Line], entries: Iterable[LedgerEntry]) -> LedgerSnapshot:
        return cls({line.code: line for line in lines}, {(e.line, e.number): e for e in entries})

    def entry(self, line: str, number: str) -> LedgerEntry | None:
        return self.entries.get((line, number))

    def apply(self, payload: Mapping[str, Any]) -> None:
        """Apply one ``callerauth.ledger`` change-feed payload (see ``change_payload``)."""
        code = str(payload["line"])
        if payload["entity"] == "line":
            carrier = payload.get("carrier")
            self.lines[code] = Line(
                code,
                str(payload["enterprise"]),
                str(payload["name"]),
                LineKind.parse(str(payload["kind"])),
                None if carrier is None else str(carrier),
            )
            return
        key = (code, str(payload["number"]))
        if payload.get("removed"):
            self.entries.pop(key, None)
            return
        undertaking = None
        if payload.get("undertaking_ref"):
            undertaking = Undertaking(
                str(payload["undertaking_ref"]),
                date.fromisoformat(str(payload["undertaking_signed_on"])),
                str(payload["undertaking_signatory"]),
            )
        self.entries[key] = LedgerEntry(code, key[1], Purpose.parse(str(payload["purpose"])), undertaking)


def line_payload(line: Line) -> dict[str, str | None]:
    """The change-feed payload announcing a line (``LedgerSnapshot.apply`` reads it)."""
    return {
        "entity": "line",
        "line": line.code,
        "enterprise": line.enterprise,
        "name": line.name,
        "kind": line.kind.value,
        "carrier": line.carrier,
    }


def entry_payload(entry: LedgerEntry | None, *, line: str, number: str) -> dict[str, Any]:
    """The change-feed payload for a number put on (``entry``) or taken off (None) a line."""
    if entry is None:
        return {"entity": "number", "line": line, "number": number, "removed": True}
    u = entry.undertaking
    return {
        "entity": "number",
        "line": line,
        "number": number,
        "purpose": entry.purpose.value,
        "direction": entry.direction.value,
        "undertaking_ref": u.reference if u else None,
        "undertaking_signed_on": u.signed_on.isoformat() if u else None,
        "undertaking_signatory": u.signatory if u else None,
    }


@dataclass(frozen=True, slots=True)
class AttestationDecision:
    level: Attestation
    reason: str


def decide_attestation(snapshot: LedgerSnapshot, line: str | None, caller: str) -> AttestationDecision:
    """Attestation for an outbound call from ``line`` presenting ``caller`` (canonical digits).

    ATIS-1000074 §5.2.3: A = the signer knows the customer and that it may use the number;
    B = the customer is known but not its right to this number; C = entered at a gateway.
    """
    known = snapshot.lines.get(line) if line is not None else None
    if known is None:
        return AttestationDecision(Attestation.C, "the call entered from a line the ledger does not know")
    entry = snapshot.entry(known.code, caller)
    if entry is None:
        return AttestationDecision(Attestation.B, "the line is known but the number is not in its ledger")
    if entry.direction is not Direction.OUTBOUND:
        return AttestationDecision(Attestation.B, "the number is inbound-only (no outbound undertaking)")
    return AttestationDecision(Attestation.A, "the ledger assigns the number to this line for outbound calls")


class Outcome(StrEnum):
    ALLOW = "allow"
    WARN = "warn"
    BLOCK = "block"


@dataclass(frozen=True, slots=True)
class CallerCheck:
    """A verdict for screening: ``code`` is machine-readable, ``explanation`` is for people (Chinese)."""

    outcome: Outcome
    code: str
    explanation: str

    @property
    def screening_reason(self) -> str | None:
        return SCREENING_REASON if self.outcome is Outcome.BLOCK else None

    def as_dict(self) -> dict[str, str | None]:
        return {
            "outcome": self.outcome.value,
            "code": self.code,
            "explanation": self.explanation,
            "screening_reason": self.screening_reason,
        }


PASSED = CallerCheck(Outcome.ALLOW, "ok", "主叫号码检查通过")

#: How a withheld caller ID arrives (SIP "anonymous" From, RFC 3323; blank; common labels).
_ANONYMOUS = frozenset({"", "anonymous", "unknown", "private", "restricted", "unavailable", "匿名", "未知"})

#: Where an unsigned call deserves a warning label: other networks. Enterprise lines and the
#: carrier's own roaming subscribers are identified by the network itself.
_RISKY_ORIGINS = frozenset({Origin.INTERNATIONAL_GATEWAY, Origin.DOMESTIC_INTERCONNECT})

#: Domestic numbers held by mobile subscribers (resale and satellite numbers included): from an
#: international gateway they are spoofs — a subscriber roaming abroad arrives as ROAMING_SUBSCRIBER.
_SUBSCRIBER_MOBILE = frozenset({NumberType.MOBILE, NumberType.RESALE, NumberType.SATELLITE})

#: Domestic numbers a call from abroad can never legitimately present.
_SPECIAL_SERVICE = frozenset({NumberType.SHORT_CODE, NumberType.SERVICE_95_96, NumberType.SMS_PORT})

#: Number types that do not originate voice calls, so as a caller ID they are spoofed: 106 ports
#: only send SMS; short codes are dialled, not presented — except public-service numbers that call
#: back (110, 12345 …) and a short code the ledger assigns to the presenting line.
_CANNOT_ORIGINATE = {
    NumberType.SHORT_CODE: "该短号码只能被叫，不能作为主叫号码",
    NumberType.SMS_PORT: "106 短信端口不能发起语音呼叫",
}


def check_presentation(
    snapshot: LedgerSnapshot,
    *,
    caller: str,
    callee: str,
    origin: Origin,
    line: str | None = None,
) -> CallerCheck:
    """Spoofing checks without a token, in order; the first that fails decides.

    0. a hidden caller ID (blocked from an enterprise line, labelled from elsewhere);
    1. caller equal to callee (a classic spoof to get a call answered);
    2. a caller ID that is not a number, or lies in an unallocated range of the number plan;
    3. an international gateway presenting a +86 mobile number, or a domestic short or service
       number (改号 from abroad, often impersonating police or banks);
    4. a caller type that cannot originate calls: 106 SMS ports; short codes other than the
       public-service numbers that do call out (110, 12345, 12321 …); 400/800 numbers presented on
       a private line, call-centre access or trunk;
    5. on an enterprise line the ledger knows: a number the ledger does not assign to that line,
       or an inbound-only number presented outbound (no 承诺书).
    """
    if caller.strip().lower() in _ANONYMOUS:
        # 不得隐藏主叫号码: an enterprise line may not hide its number; from another network a hidden
        # number cannot be checked, so the call is labelled (its token, if any, still names orig).
        if origin is Origin.ENTERPRISE_LINE:
            return CallerCheck(Outcome.BLOCK, "hidden_caller_id", "企业线路不得隐藏主叫号码")
        return CallerCheck(Outcome.WARN, "hidden_caller_id", "来电隐藏了主叫号码，请谨慎接听")
    try:
        presented = parse(caller, "caller")
    except InvalidNumber as exc:
        return CallerCheck(Outcome.BLOCK, "invalid_caller_id", f"主叫号码无效或属未分配号段：{exc.message}")
    try:
        called: PhoneNumber | None = parse(callee, "callee")
    except InvalidNumber:
        called = None
    if called is not None and called.e164 == presented.e164:
        return CallerCheck(Outcome.BLOCK, "caller_equals_callee", "主叫号码与被叫号码相同，疑似改号")
    known = snapshot.lines.get(line) if line is not None else None
    return (
        _from_abroad(presented, origin)
        or _by_number_type(snapshot, presented, known)
        or _by_ledger(snapshot, presented, known, origin, line)
        or PASSED
    )


def _from_abroad(presented: PhoneNumber, origin: Origin) -> CallerCheck | None:
    """Rule 3: what an international gateway may not present."""
    if origin is not Origin.INTERNATIONAL_GATEWAY or not presented.is_domestic:
        return None
    if presented.type in _SUBSCRIBER_MOBILE:
        return CallerCheck(
            Outcome.BLOCK, "international_presents_domestic_mobile", "境外来电显示国内手机号码，疑似改号诈骗"
        )
    if presented.type in _SPECIAL_SERVICE:
        return CallerCheck(
            Outcome.BLOCK,
            "international_presents_domestic_service",
            "境外来电显示国内特服或客服号码，疑似冒充公检法或金融机构",
        )
    return CallerCheck(Outcome.WARN, "international_presents_domestic", "境外来电显示国内号码，请谨慎接听")


def _by_number_type(
    snapshot: LedgerSnapshot, presented: PhoneNumber, known: Line | None
) -> CallerCheck | None:
    """Rule 4: number types that cannot be a caller ID (here)."""
    assigned = known is not None and snapshot.entry(known.code, presented.digits) is not None
    if presented.type in _CANNOT_ORIGINATE and not (
        presented.type is NumberType.SHORT_CODE and (presented.never_block or assigned)
    ):
        return CallerCheck(Outcome.BLOCK, "caller_cannot_originate", _CANNOT_ORIGINATE[presented.type])
    if (
        presented.type is NumberType.TOLL_FREE_400_800
        and known is not None
        and known.kind in (LineKind.VOICE_PRIVATE_LINE, LineKind.CALL_CENTRE, LineKind.SIP_TRUNK)
    ):
        return CallerCheck(Outcome.BLOCK, "toll_free_on_private_line", "400/800 号码不能作为专线的主叫号码")
    return None


def _by_ledger(
    snapshot: LedgerSnapshot, presented: PhoneNumber, known: Line | None, origin: Origin, line: str | None
) -> CallerCheck | None:
    """Rule 5: an enterprise line presents only what its ledger assigns it, outbound."""
    if known is None:
        if origin is Origin.ENTERPRISE_LINE and line is not None:
            return CallerCheck(Outcome.BLOCK, "unknown_line", "企业线路未在主叫号码台账中登记")
        return None
    entry = snapshot.entry(known.code, presented.digits)
    if entry is None:
        return CallerCheck(
            Outcome.BLOCK, "number_not_assigned_to_line", "该线路未登记此主叫号码，号码不得冒用或转租"
        )
    if entry.direction is not Direction.OUTBOUND:
        return CallerCheck(Outcome.BLOCK, "inbound_only_number", "该号码仅登记为呼入，未签署外呼承诺书")
    return None


def decide(verdict: Verdict | None, presentation: CallerCheck, origin: Origin) -> CallerCheck:
    """Combine token verification and the presentation checks into one screening input.

    A failed verification or a confirmed spoof blocks (system block, ``caller_auth_failed``:
    the 2018 campaign required blocking calls that fail caller authentication); an unsigned call
    from a risky origin (an international gateway or another network) is connected with a warning
    label; a call that passes both is connected.
    """
    if presentation.outcome is Outcome.BLOCK:
        return presentation
    if (
        verdict is not None
        and verdict.reason_code is not None
        and verdict.reason_code is not Reason.USE_IDENTITY_HEADER
    ):
        return CallerCheck(
            Outcome.BLOCK,
            f"verification_failed_{int(verdict.reason_code)}",
            f"主叫号码认证失败（{int(verdict.reason_code)} {verdict.reason_code.phrase}）",
        )
    if presentation.outcome is Outcome.WARN:  # the more specific label (hidden, from abroad)
        return presentation
    signed = verdict is not None and verdict.valid
    if not signed and origin in _RISKY_ORIGINS:
        return CallerCheck(Outcome.WARN, "unsigned_from_risky_origin", "来电未经主叫号码认证，请注意核实")
    return PASSED


#: Namespace for line origination identifiers (a UUID derived from "quietline.callerauth.origid").
ORIGID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:quietline:callerauth:origid")


def origid_for_line(line: str | None) -> str:
    """A stable ``origid`` per enterprise line (RFC 8588 §4: an opaque UUID naming where the call
    originated), so a traceback can find the line from any token it signed; a call without a
    known line gets a fresh one."""
    return str(uuid.uuid5(ORIGID_NAMESPACE, line)) if line else pp.new_origid()


@dataclass(frozen=True, slots=True)
class SignedCall:
    token: str
    identity_header: str
    attestation: AttestationDecision


def sign_call(
    snapshot: LedgerSnapshot,
    *,
    line: str | None,
    orig: str,
    dest: str,
    key: ec.EllipticCurvePrivateKey,
    x5u: str,
    iat: int,
) -> SignedCall:
    """The authentication service of the originating carrier (RFC 8224 §5, ATIS-1000074 §5.2):
    attestation from the ledger, ``origid`` from the line, the PASSporT and its Identity header."""
    orig_tn = canonical_tn(orig, "orig")
    decision = decide_attestation(snapshot, line, orig_tn)
    passport = pp.build(
        orig=orig_tn, dest=dest, attest=decision.level, x5u=x5u, iat=iat, origid=origid_for_line(line)
    )
    token = pp.sign(passport, key)
    return SignedCall(token, pp.identity_header(token, passport.x5u), decision)
