"""Bulk wash: every spelling the parser accepts, honest counts, no enumeration under the strict policy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from quietline.numbers import InvalidNumber, parse
from quietline.platform.settings import ConsentPolicy
from quietline.screening.snapshot import Snapshot
from quietline.screening.wash import e164_lines, parse_list, wash
from quietline.vocabulary import Category, Channel

E = "91110000100000000X"
T0 = datetime(2026, 11, 23, tzinfo=UTC)


def test_spellings_header_invalid_and_duplicates() -> None:
    data = (
        "\ufeffnumber\n13800138000\n+8613800138000\r\n 8613900139000 \n138 0013 8001\nabc\n10086\n\n"
        "1400000000\n12345678901\n+1 415 555 0100\n"
    ).encode()
    parsed = parse_list(data)
    assert parsed.numbers.tolist() == sorted(
        [8613800138000, 8613900139000, 8613800138001, 8610086, 14155550100]
    )
    assert (parsed.lines, parsed.invalid, parsed.duplicates) == (9, 3, 1)  # the header is not a line


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet="0123456789+ -abc", min_size=0, max_size=16), max_size=40))
def test_the_fast_path_agrees_with_the_parser(lines: list[str]) -> None:
    lines = [x for x in lines if x.strip()]  # blank lines are not counted at all
    expected: list[int] = []
    invalid = 0
    for line in lines:
        try:
            expected.append(parse(line.strip()).as_int)
        except InvalidNumber:
            invalid += 1
    parsed = parse_list(("\n".join(lines) + "\n").encode())
    header = 1 if lines and invalid and not any(ch.isdigit() for ch in lines[0]) else 0
    assert parsed.numbers.tolist() == sorted(set(expected))
    assert parsed.invalid == invalid - header
    assert parsed.duplicates == len(expected) - len(set(expected))


def test_e164_lines() -> None:
    assert (
        e164_lines(np.array([8613800138000, 86110, 14155550100])) == b"+8613800138000\n+86110\n+14155550100\n"
    )


def _snapshot(policy: ConsentPolicy) -> Snapshot:
    snap = Snapshot(policy=policy)
    refuse = {"number": "+8613900139001", "category": "insurance", "channel": "call", "active": True}
    snap.apply(1, "registry.refusal", refuse, T0)
    grant = {
        "enterprise": E,
        "number": "+8613900139003",
        "category": "insurance",
        "channel": "call",
        "granted": True,
    }
    snap.apply(2, "registry.consent", grant, T0)
    overtaken = {**grant, "number": "+8613900139004"}
    snap.apply(3, "registry.consent", overtaken, T0)
    snap.apply(4, "registry.refusal", {**refuse, "number": "+8613900139004"}, T0 + timedelta(minutes=1))
    return snap


UPLOAD = b"13900139001\n13900139002\n13900139003\n13900139004\n"


def test_strict_wash_never_tells_a_registered_number_from_an_unregistered_one() -> None:
    result = wash(
        _snapshot(ConsentPolicy.STRICT),
        UPLOAD,
        enterprise=E,
        category=Category.INSURANCE,
        channel=Channel.CALL,
    )
    # 001 registered, 002 not: both are simply "no consent"; 004's consent was overtaken by a later refusal.
    assert result.summary() == {
        "lines": 4,
        "callable": 1,
        "refused": 1,
        "no_consent": 2,
        "invalid": 0,
        "duplicates": 0,
    }
    assert result.callable_numbers.tolist() == [8613900139003]
    alone = wash(
        _snapshot(ConsentPolicy.STRICT),
        b"13900139001\n",
        enterprise=E,
        category=Category.INSURANCE,
        channel=Channel.CALL,
    )
    other = wash(
        _snapshot(ConsentPolicy.STRICT),
        b"13900139002\n",
        enterprise=E,
        category=Category.INSURANCE,
        channel=Channel.CALL,
    )
    assert alone.summary() == other.summary()


def test_opt_out_wash_blocks_refusals_only() -> None:
    result = wash(
        _snapshot(ConsentPolicy.OPT_OUT),
        UPLOAD,
        enterprise=E,
        category=Category.INSURANCE,
        channel=Channel.CALL,
    )
    assert result.summary()["refused"] == 2
    assert result.callable_numbers.tolist() == [8613900139002, 8613900139003]
    # Another channel: nothing refused there.
    sms = wash(
        _snapshot(ConsentPolicy.OPT_OUT),
        UPLOAD,
        enterprise=E,
        category=Category.INSURANCE,
        channel=Channel.SMS,
    )
    assert sms.summary()["callable"] == 4
