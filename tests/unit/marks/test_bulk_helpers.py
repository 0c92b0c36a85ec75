"""The small helpers of bulk ingestion: COPY text escaping and the paused garbage collector."""

from __future__ import annotations

import gc

import pytest

from quietline.marks.actions import _collector_paused
from quietline.marks.pgbulk import copy_text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "\\N"),
        ("", ""),
        ('{"label": "harassment"}', '{"label": "harassment"}'),
        ("a\tb", "a\\tb"),
        ("a\nb\rc", "a\\nb\\rc"),
        ("back\\slash", "back\\\\slash"),
        ('{"device": "x\\"\\ty"}', '{"device": "x\\\\"\\\\ty"}'),
    ],
)
def test_copy_text_escapes_only_what_copy_reads(value: str | None, expected: str) -> None:
    assert copy_text(value) == expected


@pytest.mark.parametrize("enabled", [True, False])
def test_collector_paused_restores_the_previous_state(enabled: bool) -> None:
    was = gc.isenabled()
    try:
        (gc.enable if enabled else gc.disable)()
        with _collector_paused():
            assert not gc.isenabled()
        assert gc.isenabled() is enabled
        with pytest.raises(RuntimeError), _collector_paused():
            raise RuntimeError("a failed batch")
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()
