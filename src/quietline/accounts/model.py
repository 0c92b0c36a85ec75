"""Pure rules of accounts: unified social credit codes, one-time codes, session and API-key lifetimes.

Nothing here touches the database or reads the clock; times are passed in by the actions.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from quietline.platform.errors import InvalidInput
from quietline.vocabulary import Carrier, Category, Role, VocabularyError

# --- 统一社会信用代码 (GB 32100-2015) -----------------------------------------------------------

#: GB 32100-2015 §4.1: the code uses the digits and the upper-case Latin letters except I, O, S, V and Z
#: (31 characters); each character's value is its index in this string (表 3 of the standard).
USCC_CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_VALUE = {ch: i for i, ch in enumerate(USCC_CHARSET)}
#: GB 32100-2015 §5: weights W_i = 3^(i-1) mod 31 for positions 1..17 (1, 3, 9, 27, 19, 26, 16, 17, …).
USCC_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))
USCC_LENGTH = 18


def uscc_check_character(first17: str) -> str:
    """The 18th character: C18 = 31 − (Σ Ci·Wi mod 31), where 31 maps to 0 (GB 32100-2015 §5)."""
    total = sum(_USCC_VALUE[ch] * w for ch, w in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_CHARSET[(31 - total % 31) % 31]


def parse_uscc(text: str, field: str = "uscc") -> str:
    """Normalise and validate a unified social credit code; the message says what is wrong.

    Checked: length 18, the GB 32100 character set, positions 3–8 an administrative division code
    (six digits, GB/T 2260) and the mod-31 check character. Lower case and surrounding spaces are
    accepted and normalised, since people copy codes from documents.
    """
    code = str(text).strip().upper()
    if len(code) != USCC_LENGTH:
        raise InvalidInput(
            f"a unified social credit code has {USCC_LENGTH} characters, got {len(code)}", field=field
        )
    bad = sorted({ch for ch in code if ch not in _USCC_VALUE})
    if bad:
        raise InvalidInput(
            f"character(s) {', '.join(repr(b) for b in bad)} are not allowed in a unified social credit "
            "code (GB 32100-2015 uses 0-9 and A-Z except I, O, S, V, Z)",
            field=field,
        )
    if not code[2:8].isdigit():
        raise InvalidInput(
            f"positions 3-8 must be the six-digit administrative division code, got {code[2:8]!r}",
            field=field,
        )
    expected = uscc_check_character(code[:17])
    if code[17] != expected:
        raise InvalidInput(
            f"checksum mismatch: the check character (GB 32100-2015 mod-31) should be {expected!r}, "
            f"the code ends in {code[17]!r}",
            field=field,
        )
    return code


# --- Enterprises ---------------------------------------------------------------------------------


class EnterpriseStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


MAX_ENTERPRISE_NAME = 200


def clean_enterprise_name(name: str, field: str = "name") -> str:
    value = " ".join(str(name).split())
    if not value:
        raise InvalidInput("the enterprise name must not be empty", field=field)
    if len(value) > MAX_ENTERPRISE_NAME:
        raise InvalidInput(
            f"the enterprise name is longer than {MAX_ENTERPRISE_NAME} characters", field=field
        )
    return value


def parse_categories(values: list[str] | tuple[str, ...], field: str = "category") -> tuple[Category, ...]:
    """Codes or Chinese labels, de-duplicated, in vocabulary order (so equal sets compare equal)."""
    found: set[Category] = set()
    for value in values:
        try:
            found.add(Category.parse(value, field))
        except VocabularyError as exc:
            raise InvalidInput(str(exc), field=field) from None
    return tuple(c for c in Category if c in found)


@dataclass(frozen=True, slots=True)
class Enterprise:
    uscc: str
    name: str
    categories: tuple[Category, ...]
    status: EnterpriseStatus
    registered_at: datetime
    updated_at: datetime

    @property
    def is_active(self) -> bool:
        return self.status is EnterpriseStatus.ACTIVE

    def markets_in(self, category: Category) -> bool:
        return category in self.categories

    def as_dict(self) -> dict[str, Any]:
        return {
            "uscc": self.uscc,
            "name": self.name,
            "categories": [c.value for c in self.categories],
            "category_labels": [c.label for c in self.categories],
            "status": self.status.value,
            "registered_at": self.registered_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


# --- One-time codes ------------------------------------------------------------------------------

OTP_DIGITS = 6
_OTP_PATTERN = re.compile(r"^\d{6}$")


def new_otp_code() -> str:
    """Six digits from the OS CSPRNG (``secrets``), leading zeros kept."""
    return f"{secrets.randbelow(10**OTP_DIGITS):0{OTP_DIGITS}d}"


def clean_otp_code(text: str, field: str = "code") -> str:
    code = "".join(str(text).split())
    if not _OTP_PATTERN.match(code):
        raise InvalidInput("the verification code is six digits", field=field)
    return code


def otp_sms_text(code: str, ttl_seconds: int) -> str:
    """The SMS a subscriber receives. The template (signature 【…】, 验证码, ≤ 6 digits) is the one carriers
    treat as transactional, so marketing rules never block it (REFERENCE.md, SMS rules)."""
    minutes = max(1, ttl_seconds // 60)
    return f"【quietline】您的验证码是{code}，{minutes}分钟内有效。如非本人操作请忽略。"


@dataclass(frozen=True, slots=True)
class OtpState:
    """The live code of one number, as stored (digest only)."""

    digest: str
    expires_at: datetime
    attempts: int
    max_attempts: int

    def refusal(self, now: datetime) -> str | None:
        """Why this code can no longer be tried, or None when it can."""
        if now >= self.expires_at:
            return "the code has expired; request a new one"
        if self.attempts >= self.max_attempts:
            return "too many wrong tries; request a new code"
        return None

    @property
    def tries_left_after_failure(self) -> int:
        return max(0, self.max_attempts - self.attempts - 1)


# --- Subscriber sessions -------------------------------------------------------------------------

#: OWASP Session Management Cheat Sheet: idle timeouts of 15–30 minutes and an absolute timeout of a
#: few hours for applications handling personal data.
SESSION_IDLE = timedelta(minutes=30)
SESSION_ABSOLUTE = timedelta(hours=12)
#: ``last_seen_at`` is written at most once a minute, so reading pages does not write on every request.
SESSION_TOUCH_EVERY = timedelta(minutes=1)
SESSION_COOKIE = "ql_session"


@dataclass(frozen=True, slots=True)
class SessionState:
    id: str
    number: str
    created_at: datetime
    last_seen_at: datetime
    revoked_at: datetime | None

    def expires_at(self) -> datetime:
        return min(self.created_at + SESSION_ABSOLUTE, self.last_seen_at + SESSION_IDLE)

    def is_valid(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at()

    def needs_touch(self, now: datetime) -> bool:
        return now - self.last_seen_at >= SESSION_TOUCH_EVERY


# --- Staff sessions (portal sign-in with an API key) ------------------------------------------

#: Staff (carrier, enterprise, regulator, 12321 operator) sign in to the portal by pasting their API key;
#: the browser then holds a session token, never the key. OWASP Session Management Cheat Sheet: 15–30
#: minutes idle and an absolute limit; 8 hours covers a working day, after which the key is asked again.
STAFF_SESSION_IDLE = timedelta(minutes=30)
STAFF_SESSION_ABSOLUTE = timedelta(hours=8)
#: Distinct from the subscriber cookie, so the two identities never overwrite each other.
STAFF_SESSION_COOKIE = "ql_staff"


@dataclass(frozen=True, slots=True)
class StaffSessionState:
    """A staff session as stored: it lives only while its API key is active (``key_active``)."""

    id: str
    key_id: str
    created_at: datetime
    last_seen_at: datetime
    revoked_at: datetime | None
    key_active: bool

    def expires_at(self) -> datetime:
        return min(self.created_at + STAFF_SESSION_ABSOLUTE, self.last_seen_at + STAFF_SESSION_IDLE)

    def is_valid(self, now: datetime) -> bool:
        """Not logged out, its key not revoked (revoking the key ends every session opened with it),
        and neither the idle nor the absolute limit passed."""
        return self.revoked_at is None and self.key_active and now < self.expires_at()

    def needs_touch(self, now: datetime) -> bool:
        return now - self.last_seen_at >= SESSION_TOUCH_EVERY


def new_session_token() -> str:
    return secrets.token_urlsafe(32)


def new_id(nbytes: int = 8) -> str:
    return secrets.token_hex(nbytes)


# --- API keys ------------------------------------------------------------------------------------

API_KEY_PREFIX = "ql"
_API_KEY_PATTERN = re.compile(r"^ql_([0-9a-f]{16})_([A-Za-z0-9_-]{20,100})$")
_SCOPE_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(:[a-z][a-z0-9_]*)*$")
_NAME_PATTERN = re.compile(r"^[^\s:][^\n\r\t]{0,118}$")
#: Roles that authenticate with API keys; subscribers prove their number with a one-time code instead.
KEY_ROLES = (Role.ENTERPRISE, Role.CARRIER, Role.REGULATOR, Role.OPERATOR)
RESALE_PREFIX = "resale:"


def format_api_key(key_id: str, secret: str) -> str:
    return f"{API_KEY_PREFIX}_{key_id}_{secret}"


def split_api_key(text: str) -> tuple[str, str] | None:
    """``ql_<id>_<secret>`` → (id, secret); None for anything else (never an exception)."""
    match = _API_KEY_PATTERN.match(text.strip())
    return (match.group(1), match.group(2)) if match else None


def new_api_key_parts() -> tuple[str, str]:
    return new_id(8), secrets.token_urlsafe(32)


def parse_scopes(values: list[str] | tuple[str, ...], field: str = "scope") -> tuple[str, ...]:
    """Scope strings such as ``registry:read``, ``consent:write``, ``screen``; sorted, de-duplicated."""
    found: set[str] = set()
    for value in values:
        scope = str(value).strip().lower()
        if not _SCOPE_PATTERN.match(scope) or len(scope) > 60:
            raise InvalidInput(
                f"{value!r} is not a scope (lower-case words separated by ':', e.g. registry:read)",
                field=field,
            )
        found.add(scope)
    return tuple(sorted(found))


def parse_key_role(value: str | Role, field: str = "role") -> Role:
    try:
        role = Role.parse(value, field)
    except VocabularyError as exc:
        raise InvalidInput(str(exc), field=field) from None
    if role not in KEY_ROLES:
        raise InvalidInput(
            "subscribers sign in with a one-time SMS code, not an API key; API keys are for "
            + ", ".join(r.value for r in KEY_ROLES),
            field=field,
        )
    return role


def clean_key_subject(role: Role, subject: str, field: str = "subject") -> str:
    """The subject a key acts for: the enterprise's USCC, a carrier code (or ``resale:<operator>``),
    or the regulator's / operator's name."""
    text = str(subject).strip()
    if role is Role.ENTERPRISE:
        return parse_uscc(text, field)
    if role is Role.CARRIER:
        if text.lower().startswith(RESALE_PREFIX) and re.fullmatch(r"[a-z0-9_]{2,40}", text[7:].lower()):
            return text.lower()
        try:
            return Carrier.parse(text, field).value
        except VocabularyError:
            raise InvalidInput(
                f"{text!r} is not a carrier: use one of "
                + ", ".join(c.value for c in Carrier)
                + " or resale:<operator_code> for a resale operator",
                field=field,
            ) from None
    if not _NAME_PATTERN.match(text):
        raise InvalidInput("the subject is a name of 1 to 119 characters on one line", field=field)
    return text


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    role: Role
    subject: str
    scopes: tuple[str, ...]
    label: str
    created_at: datetime
    created_by: str
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "role": self.role.value,
            "subject": self.subject,
            "scopes": list(self.scopes),
            "label": self.label,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "active": self.active,
        }


#: A key's ``last_used_at`` is written at most once a minute (it is informational, not audited).
KEY_TOUCH_EVERY = timedelta(minutes=1)
