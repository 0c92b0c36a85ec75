"""Bulk list washing: which numbers of an uploaded list an enterprise may call for one category.

The core is vectorised: the file is read as bytes, plain 11-digit mobiles (optionally ``86``/``+86``
prefixed — nearly every line of real lists) are decoded with numpy, validated per 4-digit prefix by the
real parser, de-duplicated and checked against the snapshot's compact sets in bulk. Every other
spelling goes through ``quietline.numbers.parse`` line by line, so every spelling the parser accepts
is accepted here too.

What a wash reveals (the issue: never say which rule refused a number, never return numbers that were
not uploaded): under the strict policy a number without the enterprise's effective consent counts as
``no_consent`` whether or not it is registered, so a wash cannot be used to probe the registry; only a
consent overtaken by a later refusal (something the enterprise must know, to stop calling) counts as
``refused``. Under opt-out, ``refused`` is inherent in washing; the daily quota and the audit log bound it.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from quietline.numbers import InvalidNumber, parse
from quietline.screening.numberset import sorted_unique
from quietline.screening.snapshot import Snapshot
from quietline.vocabulary import ALL_CATEGORIES, Category, Channel, NumberType

#: Lines per vectorised chunk (bounds the temporary digit matrix to a few tens of MB).
CHUNK = 1 << 20
_POW10 = 10 ** np.arange(10, -1, -1, dtype=np.int64)
_CC86 = 86 * 10**11

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class ParsedList:
    """The uploaded list as unique E.164 integers (sorted), with the counts the summary needs."""

    numbers: npt.NDArray[np.int64]
    lines: int
    invalid: int
    duplicates: int


@dataclass(frozen=True, slots=True)
class WashResult:
    lines: int
    callable: int
    refused: int
    no_consent: int
    invalid: int
    duplicates: int
    callable_numbers: npt.NDArray[np.int64]

    def summary(self) -> dict[str, Any]:
        return {
            "lines": self.lines,
            "callable": self.callable,
            "refused": self.refused,
            "no_consent": self.no_consent,
            "invalid": self.invalid,
            "duplicates": self.duplicates,
        }


def count_lines(data: bytes) -> int:
    """Non-blank lines, for the quota check before any work is done."""
    arr = np.frombuffer(data, dtype=np.uint8)
    starts, ends = _line_bounds(arr)
    return int(np.count_nonzero(ends > starts)) if len(starts) else 0


def _line_bounds(arr: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    newlines = np.flatnonzero(arr == 10).astype(np.int64)
    starts = np.concatenate([[0], newlines + 1]).astype(np.int64)
    ends = np.concatenate([newlines, [len(arr)]]).astype(np.int64)
    # Strip a trailing CR (Windows line ends), then spaces and tabs at either end.
    for _ in range(2):
        trailing = (ends > starts) & np.isin(arr[np.maximum(ends - 1, 0)], (13, 32, 9))
        ends = ends - trailing
    for _ in range(2):
        leading = (ends > starts) & np.isin(arr[np.minimum(starts, max(len(arr) - 1, 0))], (32, 9))
        starts = starts + leading
    return starts, ends


def parse_list(data: bytes, progress: Progress | None = None) -> ParsedList:
    """Parse an uploaded list (plain text or CSV whose first column holds the number)."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    arr = np.frombuffer(data, dtype=np.uint8)
    if not len(arr):
        return ParsedList(np.zeros(0, dtype=np.int64), 0, 0, 0)
    starts, ends = _line_bounds(arr)
    keep = ends > starts
    starts, ends = starts[keep], ends[keep]
    lines = len(starts)
    values = np.full(lines, -1, dtype=np.int64)  # -1: invalid
    # Lines without a single digit are invalid without asking the parser (except a header line).
    digit_count = np.concatenate([[0], np.cumsum((arr >= 48) & (arr <= 57), dtype=np.int64)])
    has_digits = (digit_count[ends] - digit_count[starts]) > 0
    prefix_table = np.zeros(10_000, dtype=np.int8)  # per 4-digit mobile prefix: 0 unknown, 1 ok, -1 not
    slow: list[int] = []
    for begin in range(0, lines, CHUNK):
        s = starts[begin : begin + CHUNK].copy()
        e = ends[begin : begin + CHUNK]
        length = e - s
        # "+86" and "86" in front of an 11-digit mobile.
        plus86 = (length == 14) & (arr[s] == 43) & (arr[np.minimum(s + 1, len(arr) - 1)] == 56)
        plus86 &= arr[np.minimum(s + 2, len(arr) - 1)] == 54
        s[plus86] += 3
        cc86 = (length == 13) & (arr[s] == 56) & (arr[np.minimum(s + 1, len(arr) - 1)] == 54)
        s[cc86] += 2
        fast = np.flatnonzero((e - s) == 11)
        raw = arr[s[fast, None] + np.arange(11)] - np.uint8(48)  # uint8: non-digits wrap above 9
        plain = (raw <= 9).all(axis=1) & (raw[:, 0] == 1)
        ints = raw[plain].astype(np.int64) @ _POW10
        good = fast[plain]
        prefixes = ints // 10**7
        for prefix in np.flatnonzero(np.bincount(prefixes, minlength=10_000)).tolist():
            if prefix_table[prefix] == 0:
                prefix_table[prefix] = 1 if _prefix_ok(prefix) else -1
        ok = prefix_table[prefixes] == 1
        values[begin + good[ok]] = _CC86 + ints[ok]
        slow_mask = has_digits[begin : begin + len(s)].copy()
        slow_mask[good[ok]] = False
        if begin == 0:
            slow_mask[0] = True  # a possible header
        slow.extend((begin + np.flatnonzero(slow_mask)).tolist())
        if progress is not None:
            progress(min(begin + CHUNK, lines), lines)
    header_skipped = 0
    for position, i in enumerate(slow):
        text = data[starts[i] : ends[i]].decode("utf-8", errors="replace")
        cell = text.split(",", 1)[0].strip().strip('"').strip()
        try:
            values[i] = parse(cell).as_int
        except InvalidNumber:
            # A CSV header ("number", "号码") on the first line is not a bad number.
            if position == 0 and i == 0 and not any(ch.isdigit() for ch in cell):
                header_skipped = 1
    valid = values[values >= 0]
    # Sorted, not in upload order: the output reveals nothing about the order of the upload either.
    unique = sorted_unique(valid)
    invalid = int(np.count_nonzero(values < 0)) - header_skipped
    return ParsedList(unique, lines - header_skipped, invalid, len(valid) - len(unique))


def _prefix_ok(prefix: int) -> bool:
    """Whether every 11-digit number under this 4-digit prefix is a valid mobile (the parser decides)."""
    for tail in ("0000000", "9999999"):
        try:
            number = parse(f"{prefix}{tail}")
        except InvalidNumber:
            return False
        if number.e164 != f"+86{prefix}{tail}" or number.type is NumberType.INTERNATIONAL:
            return False
    return True


def wash_numbers(
    snapshot: Snapshot,
    numbers: npt.NDArray[np.int64],
    *,
    enterprise: str,
    category: Category,
    channel: Channel,
) -> tuple[npt.NDArray[np.bool_], int, int]:
    """(callable mask, refused count, no-consent count) for unique numbers, by decision step 6."""
    ch = channel.value
    refused = snapshot.refusals[(category.value, ch)].contains_many(numbers)
    refused |= snapshot.refusals[(ALL_CATEGORIES, ch)].contains_many(numbers)
    granted = snapshot.consents.get((enterprise, category.value, ch))
    consented = granted.contains_many(numbers) if granted is not None else np.zeros(len(numbers), np.bool_)
    if snapshot.strict:
        # Strict: callable only with effective consent; "refused" only where a later refusal overtook a
        # consent this enterprise holds (it must learn that); everything else is "no consent".
        overtaken = np.isin(numbers, snapshot.overtaken_consents(enterprise, category.value, ch))
        callable_mask = consented
        refused_count = int(np.count_nonzero(overtaken & ~consented))
        no_consent = int(np.count_nonzero(~consented)) - refused_count
        return callable_mask, refused_count, no_consent
    callable_mask = consented | ~refused
    return callable_mask, int(np.count_nonzero(~callable_mask)), 0


def wash(
    snapshot: Snapshot,
    data: bytes,
    *,
    enterprise: str,
    category: Category,
    channel: Channel,
    progress: Progress | None = None,
) -> WashResult:
    parsed = parse_list(data, progress)
    mask, refused, no_consent = wash_numbers(
        snapshot, parsed.numbers, enterprise=enterprise, category=category, channel=channel
    )
    callable_numbers = parsed.numbers[mask]
    return WashResult(
        lines=parsed.lines,
        callable=len(callable_numbers),
        refused=refused,
        no_consent=no_consent,
        invalid=parsed.invalid,
        duplicates=parsed.duplicates,
        callable_numbers=callable_numbers,
    )


def e164_lines(numbers: npt.NDArray[np.int64]) -> bytes:
    """``+<digits>\\n`` per number, formatted with numpy in chunks (10 million lines in about a second)."""
    parts: list[bytes] = []
    powers = 10 ** np.arange(14, -1, -1, dtype=np.int64)
    limits = 10 ** np.arange(1, 16, dtype=np.int64)
    for begin in range(0, len(numbers), CHUNK):
        chunk = numbers[begin : begin + CHUNK]
        digits = (chunk[:, None] // powers) % 10
        width = np.searchsorted(limits, chunk, side="right") + 1
        matrix = np.empty((len(chunk), 17), dtype=np.uint8)
        matrix[:, 0] = ord("+")
        matrix[:, 1:16] = digits.astype(np.uint8) + 48
        matrix[:, 16] = ord("\n")
        keep = np.ones((len(chunk), 17), dtype=np.bool_)
        keep[:, 1:16] = np.arange(15) >= (15 - width)[:, None]
        parts.append(matrix[keep].tobytes())
    return b"".join(parts)


def encode_numbers(numbers: npt.NDArray[np.int64]) -> bytes:
    """Sorted E.164 integers as zlib-compressed deltas (about 2 bytes per number of a real list): how a
    wash job's result is stored."""
    deltas = np.diff(np.asarray(numbers, dtype=np.int64), prepend=np.int64(0))
    return zlib.compress(deltas.astype("<i8").tobytes(), 6)


def decode_numbers(blob: bytes) -> npt.NDArray[np.int64]:
    numbers: npt.NDArray[np.int64] = np.cumsum(np.frombuffer(zlib.decompress(blob), dtype="<i8"))
    return numbers
