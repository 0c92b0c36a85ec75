"""Telephone numbers as PASSporT carries them: digits with the country code and no ``+``.

RFC 8225 §8.3 canonicalises a telephone number to its E.164 digits (no visual separators, no
leading ``+``); RFC 8588 keeps that form for ``orig.tn`` and ``dest.tn``. Input spellings are
accepted here so that the CLI and API take whatever quietline.numbers accepts.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import Any

from quietline.platform.errors import InvalidInput

_SEPARATORS = re.compile(r"[\s\-.()/]")
_DIGITS = re.compile(r"[0-9]{1,15}")


def _numbers_parse() -> Callable[[str], Any] | None:
    """``quietline.numbers.parse`` when that package provides it (it knows the Chinese national
    spellings such as ``138 1234 5678`` or ``010-8888 6666``); looked up at call time."""
    module = importlib.import_module("quietline.numbers")
    parse = getattr(module, "parse", None)
    return parse if callable(parse) else None


def canonical_tn(text: str, field: str = "tn") -> str:
    """The PASSporT form of a number: E.164 digits without ``+`` (RFC 8225 §8.3).

    ``+`` or ``00`` international forms and ``tel:`` URIs are reduced to their digits here; other
    spellings go through quietline.numbers when it is installed, and plain digits are otherwise
    taken as already canonical.
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
        parse = _numbers_parse()
        if parse is not None:
            return str(parse(text).digits)
        digits = compact
    if not _DIGITS.fullmatch(digits):
        raise InvalidInput(
            f"{text!r} is not a telephone number (digits with country code, at most 15; RFC 8225 §8.3)",
            field=field,
        )
    return digits
