"""The 谢绝来电 registry and the consent ledger as pure values and rules.

Rules implemented here (cite them where they bite):
- 2020-08-31 draft 《通信短信息和语音呼叫服务管理规定》 and the consumer-rights implementing
  regulations art. 24: a commercial call or SMS needs explicit consent; no explicit consent counts
  as refusal; consent can be withdrawn at any time and the latest expression wins.
- The same draft: proof of consent is kept at least five months (``Settings.consent_retention_days``).
- China Mobile 来电免打扰 (REFERENCE.md): each personal list holds at most 1,000 entries; prefix blocks
  (400/950/951/952/957 and custom prefixes of at least three digits) and "block international".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from quietline.numbers import PhoneNumber
from quietline.platform.errors import InvalidInput
from quietline.vocabulary import ALL_CATEGORIES, Category, Channel, NumberType

#: Prefixes China Mobile offers as one-tap presets; any other prefix of ≥ 3 digits is allowed too.
PRESET_PREFIXES: tuple[str, ...] = ("400", "950", "951", "952", "957")


#: Numbers that belong to a subscriber and can receive marketing: the registry keeps preferences only
#: for these (a short code, a 95/96 service line or a 400 number is never a subscriber).
SUBSCRIBER_TYPES = frozenset(
    {NumberType.MOBILE, NumberType.FIXED_LINE, NumberType.RESALE, NumberType.SATELLITE}
)


def require_subscriber_number(number: PhoneNumber, field: str = "number") -> PhoneNumber:
    if number.type not in SUBSCRIBER_TYPES:
        raise InvalidInput(
            f"{number.e164} is a {number.type.label}, not a subscriber's number (mobile or fixed line)",
            field=field,
        )
    return number


class ListName(StrEnum):
    BLOCK = "block"
    ALLOW = "allow"


class EntryKind(StrEnum):
    NUMBER = "number"
    PREFIX = "prefix"
    INTERNATIONAL = "international"


def category_code(category: Category | None) -> str:
    """The stored code of a refusal's category; ``None`` means all marketing."""
    return ALL_CATEGORIES if category is None else category.value


def category_label(code: str) -> str:
    return "全部营销" if code == ALL_CATEGORIES else Category(code).label


@dataclass(frozen=True, slots=True)
class RefusalState:
    """One (number, category, channel) refusal as the subscriber last expressed it."""

    number: str
    category: str
    channel: Channel
    active: bool
    since: datetime
    valid_until: datetime | None

    def effective(self, now: datetime) -> bool:
        return self.active and (self.valid_until is None or self.valid_until > now)

    def describe(self) -> str:
        what = f"{category_label(self.category)}类营销{self.channel.label}"
        return f"谢绝{what}" if self.active else f"已恢复接收{what}"


def validate_valid_until(valid_until: datetime | None, now: datetime) -> None:
    if valid_until is not None and valid_until <= now:
        raise InvalidInput("the validity period must end in the future", field="valid_until")


def check_list_capacity(current_size: int, adding: int, limit: int, list_name: ListName) -> None:
    """REFERENCE.md: China Mobile allows at most 1,000 numbers per personal list."""
    if current_size + adding > limit:
        raise InvalidInput(
            f"the personal {list_name.value} list holds at most {limit} entries ({current_size} already)",
            field="value",
        )


def consent_retain_until(withdrawn_at: datetime, retention_days: int) -> datetime:
    """Proof of consent is kept at least five months after withdrawal (2020 draft: proof ≥ 5 months)."""
    return withdrawn_at + timedelta(days=retention_days)


@dataclass(frozen=True, slots=True)
class ConsentState:
    """A consent record: enterprise E may call/SMS ``number`` about ``category`` on ``channel``."""

    id: int
    enterprise: str
    number: str
    category: str
    channel: Channel
    granted_at: datetime
    evidence_ref: str | None
    evidence_sha256: str | None
    consent_text_version: str | None
    withdrawn_at: datetime | None
    withdrawn_by: str | None
    retain_until: datetime | None

    @property
    def active(self) -> bool:
        return self.withdrawn_at is None

    def as_dict(self) -> dict[str, str | int | bool | None]:
        return {
            "id": self.id,
            "enterprise": self.enterprise,
            "number": self.number,
            "category": self.category,
            "channel": self.channel.value,
            "granted_at": self.granted_at.isoformat(),
            "evidence_ref": self.evidence_ref,
            "evidence_sha256": self.evidence_sha256,
            "consent_text_version": self.consent_text_version,
            "active": self.active,
            "withdrawn_at": self.withdrawn_at.isoformat() if self.withdrawn_at else None,
            "withdrawn_by": self.withdrawn_by,
            "retain_until": self.retain_until.isoformat() if self.retain_until else None,
        }


def confirmation_text(changes: list[str]) -> str:
    """The SMS that confirms a subscriber's change (each change is confirmed, as carriers do)."""
    body = "；".join(changes[:5]) + ("等" if len(changes) > 5 else "")
    return f"【quietline】您的设置已更新：{body}。即时生效。如非本人操作，请登录门户查看记录。"
