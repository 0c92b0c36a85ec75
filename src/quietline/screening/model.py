"""Screening as pure values: the request, the decision, the reason codes and their Chinese explanations.

The decision order is DESIGN.md "Decision order" (China Mobile's published 来电免打扰 order, extended):
never-block → personal allow → personal block (numbers, prefixes, international) → system allow → system
block → category refusal and consent → crowd warning → allow. Nothing here touches a database or a
clock; the compiled snapshot (``quietline.screening.snapshot``) evaluates this order.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from quietline.platform.settings import ConsentPolicy
from quietline.vocabulary import Category, Channel

__all__ = [
    "EXPLANATIONS",
    "NEVER_BLOCK_NATIONAL",
    "ConsentPolicy",
    "Decision",
    "Outcome",
    "Reason",
    "Rule",
    "ScreenRequest",
    "WashJobState",
    "may_see_wash_job",
    "outcome",
]


class Decision(StrEnum):
    """What the carrier does with the call or SMS."""

    ALLOW = "allow"
    BLOCK = "block"
    WARN = "warn"  # connect, with a warning label (标注提醒)


class Reason(StrEnum):
    """Machine reason codes; each maps to one step of the decision order and one explanation."""

    NEVER_BLOCK = "never_block"
    PERSONAL_ALLOW = "personal_allow"
    PERSONAL_BLOCK = "personal_block"
    PERSONAL_PREFIX_BLOCK = "personal_prefix_block"
    INTERNATIONAL_BLOCK = "international_block"
    SYSTEM_ALLOW = "system_allow"
    SYSTEM_BLOCK = "system_block"
    REFUSED_CATEGORY = "refused_category"
    NO_CONSENT = "no_consent"
    CROWD_WARNING = "crowd_warning"
    DEFAULT_ALLOW = "default_allow"
    CALLER_AUTH_FAILED = "caller_auth_failed"
    CALLER_UNVERIFIED = "caller_unverified"


class CallerAuth(StrEnum):
    """What caller authentication (``quietline.callerauth``: STIR/SHAKEN verification and the
    caller-number ledger's spoofing checks) said about the presented caller ID, computed before the
    decision. A failure is a system block (decision order step 5; the 2018 campaign requires blocking
    every call that fails caller authentication); an unsigned call from a risky origin is connected
    with a warning label (step 7)."""

    NOT_CHECKED = "not_checked"
    PASSED = "passed"
    FAILED = "failed"
    UNVERIFIED = "unverified"


class Rule(StrEnum):
    """The step of DESIGN.md's decision order that fired (numbered as there)."""

    NEVER_BLOCK = "1.never_block"
    PERSONAL_ALLOW = "2.personal_allow_list"
    PERSONAL_BLOCK = "3.personal_block_list"
    SYSTEM_ALLOW = "4.system_allow_list"
    SYSTEM_BLOCK = "5.system_block_list"
    MARKETING = "6.marketing_refusal_and_consent"
    CROWD = "7.crowd_marks"
    UNVERIFIED = "7.unverified_caller"
    DEFAULT = "8.default"


#: Reason → (decision, rule, Chinese explanation shown to the subscriber in 拦截记录 and to carriers).
EXPLANATIONS: dict[Reason, tuple[Decision, Rule, str]] = {
    Reason.NEVER_BLOCK: (Decision.ALLOW, Rule.NEVER_BLOCK, "紧急或公共服务号码，始终放行"),
    Reason.PERSONAL_ALLOW: (Decision.ALLOW, Rule.PERSONAL_ALLOW, "主叫号码在您的白名单中，已放行"),
    Reason.PERSONAL_BLOCK: (Decision.BLOCK, Rule.PERSONAL_BLOCK, "主叫号码在您的黑名单中，已拦截"),
    Reason.PERSONAL_PREFIX_BLOCK: (
        Decision.BLOCK,
        Rule.PERSONAL_BLOCK,
        "主叫号码以您设置拦截的号段开头，已拦截",
    ),
    Reason.INTERNATIONAL_BLOCK: (Decision.BLOCK, Rule.PERSONAL_BLOCK, "您已设置拦截国际及境外来电，已拦截"),
    Reason.SYSTEM_ALLOW: (Decision.ALLOW, Rule.SYSTEM_ALLOW, "主叫号码为经核验的企业号码，已放行"),
    Reason.SYSTEM_BLOCK: (Decision.BLOCK, Rule.SYSTEM_BLOCK, "主叫号码被认定为高风险号码，已拦截"),
    Reason.REFUSED_CATEGORY: (
        Decision.BLOCK,
        Rule.MARKETING,
        "您已谢绝此类营销，且未同意该企业联系您，已拦截",
    ),
    Reason.NO_CONSENT: (Decision.BLOCK, Rule.MARKETING, "该企业未取得您的明确同意，商业营销视为拒绝，已拦截"),
    Reason.CROWD_WARNING: (Decision.WARN, Rule.CROWD, "该号码被多名用户标注，请谨慎接听"),
    Reason.DEFAULT_ALLOW: (Decision.ALLOW, Rule.DEFAULT, "未命中任何拦截规则，已放行"),
    Reason.CALLER_AUTH_FAILED: (
        Decision.BLOCK,
        Rule.SYSTEM_BLOCK,
        "主叫号码未通过来电身份认证（疑似改号或冒用），已拦截",
    ),
    Reason.CALLER_UNVERIFIED: (
        Decision.WARN,
        Rule.UNVERIFIED,
        "主叫号码来自其他网络且未经认证，请谨慎接听",
    ),
}

#: Emergency and public-service numbers that are never blocked, as domestic dial strings (DESIGN.md decision
#: order step 1; REFERENCE.md "Number plan": 110, 119, 120, 122, 12110, 12345, 12321 and 96110, the
#: police anti-fraud warning line). ``quietline.numbers`` flags them too (``PhoneNumber.never_block``).
NEVER_BLOCK_NATIONAL: frozenset[str] = frozenset(
    {"110", "119", "120", "122", "12110", "12345", "12321", "96110"}
)

#: Reason codes in a fixed order, so batch results can carry them as small integers.
REASON_ORDER: tuple[Reason, ...] = tuple(Reason)
REASON_INDEX: dict[Reason, int] = {r: i for i, r in enumerate(REASON_ORDER)}


@dataclass(frozen=True, slots=True)
class ScreenRequest:
    """One call or SMS to decide.

    ``caller``/``callee`` are the integers of the E.164 digits (``PhoneNumber.as_int``); ``caller_national``
    is the domestic dial string prefix rules match on (e.g. ``4001234567``); ``category`` is ``None`` for
    a call that is not commercial marketing; ``enterprise`` is the caller's USCC when known.
    """

    caller: int
    callee: int
    channel: Channel = Channel.CALL
    category: Category | None = None
    enterprise: str | None = None
    caller_national: str = ""
    caller_international: bool = False
    caller_never_block: bool = False
    caller_auth: CallerAuth = CallerAuth.NOT_CHECKED


@dataclass(frozen=True, slots=True)
class Outcome:
    """A decision with the reason code, the rule that fired and the Chinese explanation."""

    decision: Decision
    reason: Reason
    rule: Rule
    explanation: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision.value,
            "reason": self.reason.value,
            "rule": self.rule.value,
            "explanation": self.explanation,
        }


def _build_outcomes() -> dict[Reason, Outcome]:
    return {reason: Outcome(d, reason, rule, text) for reason, (d, rule, text) in EXPLANATIONS.items()}


#: One shared immutable Outcome per reason: the per-call path allocates nothing.
OUTCOMES: dict[Reason, Outcome] = _build_outcomes()


def outcome(reason: Reason) -> Outcome:
    return OUTCOMES[reason]


class WashJobState(StrEnum):
    """The life of an API wash job: queued → running → done | failed.

    A running job whose worker died goes back to being claimable when its lease runs out; a job that
    failed that way too often (``MAX_WASH_ATTEMPTS``) ends as failed rather than crash workers forever.
    """

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


def may_see_wash_job(owner: str, actor_name: str) -> bool:
    """Only the party that submitted a wash may read its status and download its result: the result
    lists numbers the enterprise may call, which nobody else (not even an operator) needs to see."""
    return owner == actor_name
