"""Telephone numbers as PASSporT carries them: digits with the country code and no ``+``.

RFC 8225 §8.3 canonicalises a telephone number to its E.164 digits (no visual separators, no
leading ``+``); RFC 8588 keeps that form for ``orig.tn`` and ``dest.tn``. Input spellings are
accepted here so that the CLI and API take whatever quietline.numbers accepts.
"""

from __future__ import annotations

import re

from quietline.numbers import InvalidNumber, parse
from quietline.platform.errors import InvalidInput

_SEPARATORS = re.compile(r"[\s\-.()/]")
_DIGITS = re.compile(r"[0-9]{1,15}")
#: Shorter digit strings are local numbers or short codes, never a full E.164 number.
_MIN_E164_DIGITS = 8


def canonical_tn(text: str, field: str = "tn") -> str:
    """The PASSporT form of a number: E.164 digits without ``+`` (RFC 8225 §8.3).

    ``+`` or ``00`` international forms and ``tel:`` URIs are reduced to their digits here (any
    country); every other spelling (``138 0013 8000``, ``010-8888 6666``, ``8613800138000``) goes
    through quietline.numbers, which knows the Chinese number plan. Plain digits that are no
    Chinese number are taken as the PASSporT form they already are (``12155551212``); a number
    whose country is ambiguous should be written with ``+``.
    """
    raw = text.strip()
    if raw.lower().startswith("tel:"):
        raw = raw[4:].split(";", 1)[0]
    compact = _SEPARATORS.sub("", raw)
    if compact.startswith("+"):
        digits = compact[1:]
    elif compact.startswith("00") and len(compact) > 4:
        digits = compact[2:]
    else:
        try:
            return parse(text, field).digits
        except InvalidNumber:
            if not compact.isdigit() or len(compact) < _MIN_E164_DIGITS:
                raise
            digits = compact
    if not _DIGITS.fullmatch(digits):
        raise InvalidInput(
            f"{text!r} is not a telephone number (digits with country code, at most 15; RFC 8225 §8.3)",
            field=field,
        )
    return digits
