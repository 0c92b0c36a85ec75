"""Bulk ingestion's parsing shortcut: ``+86`` and 11 digits is read on the parser's fast path, and must
mean exactly what the full parser makes of it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from quietline.marks.actions import _plain_mobile
from quietline.numbers import parse
from quietline.platform.errors import InvalidInput

ELEVEN_DIGITS = st.text(alphabet="0123456789", min_size=11, max_size=11)


def outcome(text: str) -> tuple[str, str] | str:
    try:
        number = parse(text)
    except InvalidInput as exc:
        return type(exc).__name__
    return (number.e164, number.type.value)


@given(ELEVEN_DIGITS)
def test_the_shortcut_reads_plus_86_numbers_as_the_full_parser_does(digits: str) -> None:
    full = "+86" + digits
    assert outcome(_plain_mobile(full)) == outcome(full)


@given(st.text(max_size=20))
def test_anything_else_is_left_for_the_full_parser(text: str) -> None:
    shortened = _plain_mobile(text)
    assert shortened == text or (text.startswith("+861") and shortened == text[3:] and len(text) == 14)


def test_examples() -> None:
    assert _plain_mobile("+8613912345678") == "13912345678"
    assert _plain_mobile("+86 139 1234 5678") == "+86 139 1234 5678"
    assert _plain_mobile("+8651012345678") == "+8651012345678"  # a fixed line: 0510 1234 5678
