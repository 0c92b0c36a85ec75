"""Types of the compiled lookup module (source: ``_qtable.c``)."""

import mmap
from typing import Any, TypeAlias

import numpy as np

#: What the buffer protocol accepts here (NumPy's stubs do not declare ``__buffer__`` on Python 3.11).
Buffer: TypeAlias = np.ndarray[Any, Any] | bytes | bytearray | memoryview | mmap.mmap

class QTable:
    def __init__(
        self,
        offsets: Buffer,
        rems: Buffer,
        rem_bits: int,
        key: int,
        multiplier: int,
        added: set[int] | None = ...,
        removed: set[int] | None = ...,
    ) -> None: ...
    def with_overlay(self, added: set[int] | None, removed: set[int] | None, /) -> QTable: ...
    def has(self, number: object, /) -> bool: ...
    def contains(self, number: object, /) -> bool: ...
    def contains_many(self, numbers: Buffer, out: Buffer, /) -> int: ...
    def __contains__(self, number: object, /) -> bool: ...
