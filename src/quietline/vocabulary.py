"""The shared vocabulary of quietline, defined once (DESIGN.md, "Shared vocabulary").

Every place that accepts a category, channel, call nature, call form, number type, carrier or role
goes through this module, so the codes and their Chinese labels cannot drift apart. Anywhere a
category is accepted, both the code and the Chinese label work (``Category.parse``).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Self


class VocabularyError(ValueError):
    """A value that is not in the vocabulary; the message names the field and the accepted values."""

    def __init__(self, field: str, value: str, accepted: list[str]) -> None:
        self.field = field
        self.value = value
        self.accepted = accepted
        super().__init__(f"{field}: {value!r} is not one of {', '.join(accepted)}")


_LOOKUPS: dict[type, dict[str, Any]] = {}


class LabelledEnum(StrEnum):
    """A string enum whose members carry a Chinese label, parsed from either the code or the label."""

    label: str

    def __new__(cls, code: str, label: str = "") -> Self:
        obj = str.__new__(cls, code)
        obj._value_ = code
        obj.label = label
        return obj

    @classmethod
    def field_name(cls) -> str:
        return cls.__name__.lower()

    @classmethod
    def parse(cls, value: str | Self, field: str | None = None) -> Self:
        """Accept the code (any case, surrounding spaces ignored) or the Chinese label.

        A dictionary lookup: bulk imports parse a category on every one of millions of rows.
        """
        if isinstance(value, cls):
            return value
        lookup = _LOOKUPS.get(cls)
        if lookup is None:
            lookup = {m.value: m for m in cls} | {m.label: m for m in cls}
            _LOOKUPS[cls] = lookup
        text = str(value).strip()
        member: Self | None = lookup.get(text) or lookup.get(text.lower())
        if member is None:
            raise VocabularyError(field or cls.field_name(), text, [m.value for m in cls])
        return member

    @classmethod
    def choices(cls) -> list[tuple[str, str]]:
        """(code, label) pairs for forms and documentation."""
        return [(m.value, m.label) for m in cls]


class Category(LabelledEnum):
    """Industry categories a subscriber can refuse (谢绝来电 by industry)."""

    LOAN_FINANCE = ("loan_finance", "贷款理财")
    INSURANCE = ("insurance", "保险推销")
    SECURITIES = ("securities", "证券股票")
    REAL_ESTATE = ("real_estate", "房产中介")
    EDUCATION = ("education", "教育培训")
    RECRUITMENT = ("recruitment", "人才招聘")
    HOUSEKEEPING = ("housekeeping", "家政服务")
    MATERNAL_CHILD = ("maternal_child", "妇幼保健")
    TRAVEL_VISA = ("travel_visa", "旅游签证")
    DEBT_COLLECTION = ("debt_collection", "违规催收")
    RETAIL = ("retail", "零售业推销")
    TELECOM_PROMO = ("telecom_promo", "电信服务宣传")
    ONLINE_GAMES = ("online_games", "网络游戏")
    FOOD_DRUG = ("food_drug", "食药推销")
    FAKE_DOCUMENTS = ("fake_documents", "发票办证")
    OTHER_MARKETING = ("other_marketing", "其他营销")


#: The code that stands for "all marketing" wherever a refusal names a category.
ALL_CATEGORIES = "all"
ALL_CATEGORIES_LABEL = "全部营销"


def parse_category_or_all(value: str, field: str = "category") -> Category | None:
    """Parse a category, or ``all``/``全部营销`` (returned as ``None``, meaning every category)."""
    text = value.strip()
    if text.lower() == ALL_CATEGORIES or text in (ALL_CATEGORIES_LABEL, "全部"):
        return None
    try:
        return Category.parse(text, field)
    except VocabularyError as exc:
        raise VocabularyError(field, text, [ALL_CATEGORIES, *exc.accepted]) from None


class Channel(LabelledEnum):
    """How the commercial message reaches the subscriber."""

    CALL = ("call", "电话")
    SMS = ("sms", "短信")


def parse_channels(value: str, field: str = "channel") -> tuple[Channel, ...]:
    """``call``, ``sms`` or ``both`` (both channels), as the CLI and the import files spell them."""
    text = value.strip().lower()
    if text in ("both", "全部", "all"):
        return (Channel.CALL, Channel.SMS)
    try:
        return (Channel.parse(text, field),)
    except VocabularyError:
        raise VocabularyError(field, value, ["call", "sms", "both"]) from None


class CallNature(LabelledEnum):
    """The nature of an unwanted call or SMS as 12321 classifies it."""

    MARKETING = ("marketing", "商业营销类")
    HARASSMENT = ("harassment", "恶意骚扰类")
    FRAUD = ("fraud", "违法犯罪类")


class CallForm(LabelledEnum):
    """How a call was made."""

    LIVE = ("live", "人工")
    RECORDED = ("recorded", "录音")
    BOMBING = ("bombing", "轰炸/呼死你")
    ONE_RING = ("one_ring", "响一声")


class NumberType(LabelledEnum):
    """Kinds of numbers in the Chinese number plan (REFERENCE.md, "Number plan")."""

    MOBILE = ("mobile", "手机号码")
    FIXED_LINE = ("fixed_line", "固定电话")
    SERVICE_95_96 = ("service_95_96", "95/96 服务号码")
    TOLL_FREE_400_800 = ("toll_free_400_800", "400/800 号码")
    RESALE = ("resale", "转售号码")
    SATELLITE = ("satellite", "卫星号码")
    SMS_PORT = ("sms_port", "106 短信端口")
    SHORT_CODE = ("short_code", "短号码")
    INTERNATIONAL = ("international", "国际号码")


class Carrier(LabelledEnum):
    """Basic telecom carriers; resale operators are named by their own code in the resale table."""

    CHINA_MOBILE = ("china_mobile", "中国移动")
    CHINA_UNICOM = ("china_unicom", "中国联通")
    CHINA_TELECOM = ("china_telecom", "中国电信")
    CHINA_BROADNET = ("china_broadnet", "中国广电")


class Role(LabelledEnum):
    """The parties of the system (DESIGN.md, the party table); every endpoint states which may call it."""

    SUBSCRIBER = ("subscriber", "手机用户")
    ENTERPRISE = ("enterprise", "企业")
    CARRIER = ("carrier", "电信企业")
    REGULATOR = ("regulator", "监管部门")
    OPERATOR = ("operator", "平台运营")
