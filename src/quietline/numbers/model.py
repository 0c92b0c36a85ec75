"""Phone numbers: parse any way a Chinese number is written into one canonical value.

One canonical form for everything: ``+86`` followed by the national significant number, including
short codes and service numbers (``+86110``, ``+8695588``), so every table can key numbers the same way
(``PhoneNumber.e164`` as text, ``PhoneNumber.as_int`` in bitmaps and arrays).

``parse`` is on the hot path of bulk imports and list washing (millions of rows), so plain 11-digit
mobiles take a fast path through quietline's own prefix table; ``phonenumbers`` (libphonenumber) is
used only where it is right: fixed lines with their area codes, 400/800 numbers and international
numbers. Short codes, 95/96 numbers, 106 SMS ports, resale and satellite ranges come from
``quietline.numbers.plan``, because libphonenumber rejects or misclassifies them (REFERENCE.md).

One ambiguity is inherent in the number plan: a ten-digit ``106…`` string is both a possible SMS port
and, after ``+86``, a Beijing fixed line (010-6xxxxxxx). Written without a country code it is read as
the SMS port (how ports appear in SMS headers); written with ``+86`` or a trunk ``0`` it is the Beijing
line. Every other number round-trips: ``parse(n.e164) == n``.
"""

from __future__ import annotations

import re
from typing import Any, Final

import phonenumbers

from quietline.numbers import plan
from quietline.platform.errors import InvalidInput
from quietline.vocabulary import NumberType

COUNTRY_CODE: Final = "86"
_PLUS_CC: Final = "+86"


class InvalidNumber(InvalidInput):
    """A text that is not a phone number quietline can use; the message says why."""

    def __init__(self, message: str, *, field: str | None = "number") -> None:
        super().__init__(message, field=field)


class PhoneNumber:
    """A parsed, canonical phone number (read-only; equal when the canonical forms are equal).

    Attributes are read-only properties over private slots: creating one costs a third of a frozen
    dataclass, which matters when ten million lines are washed.
    """

    __slots__ = (
        "_area_code",
        "_e164",
        "_national",
        "_never_block",
        "_original_carrier",
        "_portable",
        "_type",
    )

    def __init__(  # positional on purpose: the parser's hot path builds millions of these
        self,
        e164: str,
        national: str,
        type: NumberType,
        original_carrier: str | None = None,
        area_code: str | None = None,
        never_block: bool = False,
        portable: bool = False,
    ) -> None:
        self._e164 = e164
        self._national = national
        self._type = type
        self._original_carrier = original_carrier
        self._area_code = area_code
        self._never_block = never_block
        self._portable = portable

    @property
    def e164(self) -> str:
        """Canonical form: ``+86`` and the national significant number (``+8613800138000``,
        ``+861012345678``, ``+8695588``, ``+86110``), or the E.164 form of an international number."""
        return self._e164

    @property
    def national(self) -> str:
        """How the number is dialled inside mainland China (``13800138000``, ``01012345678``,
        ``95588``, ``0012025550123``)."""
        return self._national

    @property
    def type(self) -> NumberType:
        return self._type

    @property
    def original_carrier(self) -> str | None:
        """The carrier the range was first allocated to (number plan); never the current carrier of
        a ported number (see ``queries.current_carrier``)."""
        return self._original_carrier

    @property
    def area_code(self) -> str | None:
        """``010``, ``0755`` … for fixed lines, else ``None``."""
        return self._area_code

    @property
    def never_block(self) -> bool:
        """Emergency and public-service numbers (DESIGN.md decision order, step 1)."""
        return self._never_block

    @property
    def portable(self) -> bool:
        """May port to another carrier (携号转网: basic carriers' cellular numbers only)."""
        return self._portable

    @property
    def digits(self) -> str:
        """The canonical form without ``+`` (country code and national significant number)."""
        return self.e164[1:]

    @property
    def as_int(self) -> int:
        """``int(digits)``: unique per number because no country code starts with 0."""
        return int(self.e164[1:])

    @property
    def is_domestic(self) -> bool:
        return self.e164.startswith(_PLUS_CC) and self.type is not NumberType.INTERNATIONAL

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PhoneNumber):
            return NotImplemented
        return self.e164 == other.e164 and self.type is other.type

    def __hash__(self) -> int:
        return hash(self.e164)

    def __repr__(self) -> str:
        return f"PhoneNumber({self.e164!r}, type={self.type.value})"

    def __str__(self) -> str:
        return self.e164

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            PhoneNumber,
            (
                self.e164,
                self.national,
                self.type,
                self.original_carrier,
                self.area_code,
                self.never_block,
                self.portable,
            ),
        )


# ---------------------------------------------------------------------------------------------------
# Parsing

_MOBILE_PREFIXES = plan.MOBILE_PREFIXES
_MAX_INPUT = 64

#: Full-width digits and punctuation typed with a Chinese input method, mapped to ASCII.
_FULLWIDTH = str.maketrans(
    {
        **{chr(0xFF10 + i): str(i) for i in range(10)},
        "＋": "+",
        "－": "-",
        "（": "(",
        "）": ")",
        "　": " ",
        "．": ".",
    }
)
#: Separators people put between digit groups; removed before reading the digits.
_SEPARATORS = re.compile(r"[\s\-().\u00a0/]+")
_DIGITS = re.compile(r"\+?[0-9]+")


def _mobile(national: str, info: plan.MobileRange) -> PhoneNumber:
    return PhoneNumber(
        _PLUS_CC + national,
        national,
        info.type,
        info.carrier,
        None,
        False,
        info.portable,
    )


def parse(text: object, field: str = "number") -> PhoneNumber:
    """Parse any usual spelling of a number into its canonical ``PhoneNumber``.

    Accepted: ``13800138000``, ``+86 138 0013 8000``, ``8613800138000``, ``0086 138…``,
    ``010-12345678``, ``+86 10 1234 5678``, ``4008-123-456``, ``95588``, ``10086``, ``12321``, ``110``,
    106 SMS ports and international numbers (``+1 …``, ``00852 …``). Anything else raises
    ``InvalidNumber`` whose message says why (too short, letters, unallocated range, …); no other
    exception escapes, whatever the input.
    """
    # Fast path: a plain 11-digit mobile, the overwhelmingly common case in imports and washes.
    if type(text) is str and len(text) == 11 and text.isdigit() and text.isascii():
        info = _MOBILE_PREFIXES.get(text[:4])
        if info is not None:
            return _mobile(text, info)
    return _parse_slow(text, field)


def _parse_slow(text: object, field: str) -> PhoneNumber:
    if not isinstance(text, str):
        raise InvalidNumber(f"expected the number as text, got {type(text).__name__}", field=field)
    if len(text) > _MAX_INPUT:
        raise InvalidNumber(f"too long to be a phone number ({len(text)} characters)", field=field)
    shown = text.strip()
    compact = _SEPARATORS.sub("", text.translate(_FULLWIDTH))
    if not compact:
        raise InvalidNumber("is empty", field=field)
    if not _DIGITS.fullmatch(compact):
        if any(ch.isalpha() for ch in compact):
            raise InvalidNumber(f"{shown!r} contains letters; a phone number has only digits", field=field)
        body = compact[1:] if compact.startswith("+") else compact
        bad = next((ch for ch in body if not ("0" <= ch <= "9")), None)
        if bad is None:
            raise InvalidNumber(f"{shown!r} has no digits", field=field)
        if bad == "+":
            raise InvalidNumber(f"{shown!r}: '+' may only stand before the country code", field=field)
        raise InvalidNumber(f"{shown!r} contains {bad!r}, which is not a digit or separator", field=field)
    if compact.startswith("+"):
        return _after_country_code(compact[1:], shown, field)
    if compact.startswith("00"):  # the international prefix as dialled from mainland China
        return _after_country_code(compact[2:], shown, field)
    if compact.startswith(COUNTRY_CODE) and len(compact) > 2:
        # No national number starts with 86 (only 800 starts with 8), so a leading 86 is always the
        # country code written without + or 00.
        return _national(compact[2:], shown, field, with_country_code=True)
    return _national(compact, shown, field, with_country_code=False)


def _after_country_code(digits: str, shown: str, field: str) -> PhoneNumber:
    if not digits:
        raise InvalidNumber(f"{shown!r} has no digits after the international prefix", field=field)
    if digits.startswith(COUNTRY_CODE):
        return _national(digits[2:], shown, field, with_country_code=True)
    return _international(digits, shown, field)


def _national(digits: str, shown: str, field: str, *, with_country_code: bool) -> PhoneNumber:
    """Classify a mainland number from its national digits (with or without the trunk prefix 0)."""
    trunk = digits.startswith("0")
    nsn = digits[1:] if trunk else digits
    if not nsn:
        raise InvalidNumber(f"{shown!r} is too short to be a phone number", field=field)
    if nsn.startswith("0"):
        raise InvalidNumber(f"{shown!r} has too many leading zeros", field=field)
    if len(nsn) < 3:
        raise InvalidNumber(f"{shown!r} is too short to be a phone number", field=field)
    if nsn[0] == "1":
        return _starting_with_one(nsn, shown, field, trunk=trunk, with_country_code=with_country_code)
    if nsn.startswith(("400", "800")) and not trunk:
        return _toll_free(nsn, shown, field)
    if nsn[0] == "9" and not trunk and len(nsn) <= plan.SERVICE_MAX_DIGITS:
        return _service(nsn, shown, field)
    if trunk or with_country_code:
        return _fixed_line(nsn, shown, field)
    if len(nsn) <= plan.SERVICE_MAX_DIGITS:
        raise InvalidNumber(
            f"{shown!r} looks like a local fixed-line number: write it with its area code, e.g. 010-12345678",
            field=field,
        )
    raise InvalidNumber(
        f"{shown!r} is not a mainland number: fixed lines start with their area code (0…), mobiles with 1",
        field=field,
    )


def _starting_with_one(
    nsn: str, shown: str, field: str, *, trunk: bool, with_country_code: bool
) -> PhoneNumber:
    """Mobiles, Beijing fixed lines (010), 106 SMS ports and the 1xx/1xxxx short codes."""
    length = len(nsn)
    if length == 11:
        info = _MOBILE_PREFIXES.get(nsn[:4])
        if info is not None:
            return _mobile(nsn, info)
    if trunk or (with_country_code and nsn.startswith("10") and length == 10):
        return _fixed_line(nsn, shown, field)  # Beijing: 010 + 8 digits (or a bad area code)
    if not trunk:
        if nsn.startswith("106"):
            return _sms_port(nsn, shown, field)
        code = plan.SHORT_CODES.get(nsn)
        if code is not None:
            return _short(code)
    if length == 11:
        raise InvalidNumber(
            f"{shown!r}: mobile prefix {nsn[:3]} is not allocated in the number plan", field=field
        )
    if length <= plan.SERVICE_MAX_DIGITS and not trunk:
        raise InvalidNumber(f"{shown!r} is not a known short code", field=field)
    shorter_or_longer = "short" if length < 11 else "long"
    raise InvalidNumber(
        f"{shown!r} is too {shorter_or_longer}: a mobile number has 11 digits (got {length})",
        field=field,
    )


def _short(code: plan.ShortCode) -> PhoneNumber:
    return PhoneNumber(
        _PLUS_CC + code.code, code.code, code.type, code.carrier, None, code.never_block, False
    )


def _sms_port(nsn: str, shown: str, field: str) -> PhoneNumber:
    # 106 SMS ports: 1062/1065/1066/1069 (REFERENCE.md), extension digits appended, ≤ 21 digits (CMPP).
    if nsn[:4] not in plan.SMS_PORT_PREFIXES:
        raise InvalidNumber(f"{shown!r}: SMS port range {nsn[:4]} is not allocated", field=field)
    if len(nsn) < plan.SMS_PORT_MIN_DIGITS:
        raise InvalidNumber(
            f"{shown!r} is too short for a 106 SMS port (at least {plan.SMS_PORT_MIN_DIGITS} digits)",
            field=field,
        )
    if len(nsn) > plan.SMS_PORT_MAX_DIGITS:
        raise InvalidNumber(
            f"{shown!r} is too long for a 106 SMS port (at most {plan.SMS_PORT_MAX_DIGITS} digits)",
            field=field,
        )
    return PhoneNumber(_PLUS_CC + nsn, nsn, NumberType.SMS_PORT)


def _service(nsn: str, shown: str, field: str) -> PhoneNumber:
    known = plan.SHORT_CODES.get(nsn)
    if known is not None:
        return _short(known)
    if not nsn.startswith(("95", "96")):
        raise InvalidNumber(f"{shown!r} is not a known service number (95…/96…)", field=field)
    if len(nsn) < plan.SERVICE_MIN_DIGITS:
        raise InvalidNumber(
            f"{shown!r} is too short for a 95/96 service number (at least {plan.SERVICE_MIN_DIGITS} digits)",
            field=field,
        )
    return PhoneNumber(_PLUS_CC + nsn, nsn, NumberType.SERVICE_95_96)


_PN = phonenumbers.PhoneNumberType


def _libphonenumber(country_code: int, nsn: str) -> phonenumbers.PhoneNumber | None:
    number = phonenumbers.PhoneNumber(country_code=country_code, national_number=int(nsn))
    return number if phonenumbers.is_valid_number(number) else None


def _toll_free(nsn: str, shown: str, field: str) -> PhoneNumber:
    if len(nsn) != 10:
        raise InvalidNumber(f"{shown!r}: 400/800 numbers have 10 digits (got {len(nsn)})", field=field)
    number = _libphonenumber(86, nsn)
    if number is None or phonenumbers.number_type(number) not in (_PN.SHARED_COST, _PN.TOLL_FREE):
        raise InvalidNumber(f"{shown!r} is not in an allocated 400/800 range", field=field)
    return PhoneNumber(_PLUS_CC + nsn, nsn, NumberType.TOLL_FREE_400_800)


def _fixed_line(nsn: str, shown: str, field: str) -> PhoneNumber:
    if len(nsn) < 9:
        raise InvalidNumber(
            f"{shown!r} is too short for a fixed line (area code and 7–8 digit number)", field=field
        )
    if len(nsn) > 11:
        raise InvalidNumber(
            f"{shown!r} is too long for a fixed line (area code and 7–8 digit number)", field=field
        )
    number = _libphonenumber(86, nsn)
    if number is None or phonenumbers.number_type(number) not in (
        _PN.FIXED_LINE,
        _PN.FIXED_LINE_OR_MOBILE,
    ):
        raise InvalidNumber(
            f"{shown!r} is not a valid fixed-line number (unknown area code or wrong length)",
            field=field,
        )
    area_length = phonenumbers.length_of_geographical_area_code(number)
    area_code = "0" + nsn[:area_length] if area_length else None
    return PhoneNumber(_PLUS_CC + nsn, "0" + nsn, NumberType.FIXED_LINE, None, area_code)


def _international(digits: str, shown: str, field: str) -> PhoneNumber:
    if len(digits) > 17:  # E.164 allows at most 15 digits
        raise InvalidNumber(f"{shown!r} is too long for an international number", field=field)
    try:
        number = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        raise InvalidNumber(f"{shown!r}: {'+' + digits[:3]}… is not a country code", field=field) from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidNumber(
            f"{shown!r} is not a valid number for country code +{number.country_code}", field=field
        )
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    # Dialled from mainland China with the international prefix 00.
    return PhoneNumber(e164, "00" + e164[1:], NumberType.INTERNATIONAL)


# ---------------------------------------------------------------------------------------------------
# Prefixes

#: China Mobile's 来电免打扰 lets users add custom prefixes of at least 3 digits; a whole 11-digit
#: mobile is the longest national "prefix" (a single number).
PREFIX_MIN_DIGITS = 3
PREFIX_MAX_DIGITS = 11


def parse_prefix(text: object, field: str = "prefix") -> str:
    """A dialling prefix for personal prefix blocks (``400``, ``950``, ``1700``), matched against
    ``PhoneNumber.national``. Digits only, 3 to 11 of them (China Mobile: custom prefixes ≥ 3 digits);
    anything else raises ``InvalidNumber``."""
    if not isinstance(text, str):
        raise InvalidNumber(f"expected the prefix as text, got {type(text).__name__}", field=field)
    value = text.translate(_FULLWIDTH).strip()
    if not value:
        raise InvalidNumber("is empty", field=field)
    if not (value.isascii() and value.isdigit()):
        raise InvalidNumber(f"{value[:_MAX_INPUT]!r}: a prefix has only digits", field=field)
    if len(value) < PREFIX_MIN_DIGITS:
        raise InvalidNumber(
            f"{value!r} is too short: a prefix has at least {PREFIX_MIN_DIGITS} digits", field=field
        )
    if len(value) > PREFIX_MAX_DIGITS:
        raise InvalidNumber(
            f"{value[:_MAX_INPUT]!r} is too long: a prefix has at most {PREFIX_MAX_DIGITS} digits",
            field=field,
        )
    return value
