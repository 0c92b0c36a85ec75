"""A compact, exact, immutable set of phone numbers (integers of their E.164 digits).

Why not a Python ``set`` or a sorted ``uint64`` array: at 100 million numbers those cost about 60 and 8
bytes per number, and the issue allows at most 3 bytes per registered number per category. Why not a
roaring bitmap: pyroaring has no vectorised membership test, and batch screening needs one.

The layout is a *quotient table*. A number ``n < 2**50`` (E.164 has at most 15 digits, RFC/ITU-T E.164
§6) is split into a region ``n >> 34`` (all of +86 1xx xxxx xxxx falls into one region) and a 34-bit
offset ``u``. ``h = u * ODD mod 2**34`` is a bijection that spreads clustered number ranges evenly; its
top ``b`` bits choose one of ``2**b`` buckets (``b`` chosen so a bucket holds 4–8 numbers on average)
and only the remaining ``34 - b`` bits (the quotient remainder) are stored, as ``uint16`` once the set
holds more than about 2**18 numbers. A bucket's remainders are contiguous, located by a ``uint32``
offset table. Memory: 2 bytes per number plus 4 bytes per bucket ≈ 2.5–3 bytes per number; a lookup is
two offset reads and a scan of a handful of adjacent remainders.

Lookups run in the compiled module ``_qtable`` (C, built at install): one method call per number and
one prefetching pass per batch. The NumPy code below is the reference implementation of the same
layout; property tests check that both give the same answers (``tests/unit/screening``).
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from quietline.screening import _qtable

OFFSET_BITS = 34
OFFSET_MASK = (1 << OFFSET_BITS) - 1
#: An odd multiplier (from splitmix64, truncated) and its inverse modulo 2**34: a bijection of offsets.
MULTIPLIER = 0x2545F4914F6CDD1D & OFFSET_MASK | 1
INVERSE = pow(MULTIPLIER, -1, 1 << OFFSET_BITS)
#: Largest number accepted: E.164 allows 15 digits, so every valid number is below 10**15 < 2**50.
MAX_NUMBER = (1 << 50) - 1
#: Target average bucket load (between this and twice this).
TARGET_LOAD = 4
#: Entries at the start of a bucket compared by the vectorised lookup before the (rare) overflow loop:
#: the average load is 4–8, so nearly every bucket fits.
WINDOW = 8
#: Padding after the last remainder (older snapshots were saved with 4).
PADDING = 4
#: Queries handled per vectorised chunk (keeps temporaries in cache).
CHUNK = 1 << 15
#: Regions of at most this many numbers get a byte filter in front of the exact lookup.
FILTER_MAX = 1 << 20
#: Filter slots per member, rounded up to a power of two (8–16: at most ~12 % false candidates).
FILTER_SLOTS_PER_ENTRY = 8
_LANES_ONE = np.uint64(0x0001_0001_0001_0001)
_LANES_LOW = np.uint64(0x7FFF_7FFF_7FFF_7FFF)
_LANES_TOP = np.uint64(0x8000_8000_8000_8000)
#: Fibonacci hashing (Knuth, TAOCP 6.4) of the low 34 bits: the top bits of ``n * FIB * 2**30 mod 2**64``
#: depend only on ``n mod 2**34`` and spread any range of numbers evenly.
FIB34 = np.uint64((0x9E3779B97F4A7C15 << 30) & ((1 << 64) - 1))

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def sorted_unique(values: IntArray) -> IntArray:
    """``np.unique`` by sorting (numpy 2's hash-based unique is several times slower on big arrays)."""
    arr = np.sort(values)
    if len(arr) < 2:
        return arr
    keep = np.empty(len(arr), dtype=np.bool_)
    keep[0] = True
    np.not_equal(arr[1:], arr[:-1], out=keep[1:])
    return arr[keep]


def _bucket_bits(count: int) -> int:
    """Buckets for an average load of 4–8, or the 2**18 buckets that allow 16-bit remainders when that
    costs fewer bytes (sets of about 0.4–1 million numbers)."""
    if count < TARGET_LOAD * 2:
        return 0
    bits = min(OFFSET_BITS - 1, int(np.floor(np.log2(count / TARGET_LOAD))))
    wide = OFFSET_BITS - 16
    if bits < wide:
        narrow_cost = count * np.dtype(_rem_dtype(OFFSET_BITS - bits)).itemsize + 4 * (1 << bits)
        if count * 2 + 4 * (1 << wide) < narrow_cost:
            return wide
    return bits


def _rem_dtype(rem_bits: int) -> type[np.unsignedinteger[Any]]:
    if rem_bits <= 16:
        return np.uint16
    if rem_bits <= 32:
        return np.uint32
    return np.uint64


@dataclass(frozen=True, slots=True)
class _Region:
    """The numbers of one 2**34-wide region as a quotient table."""

    rem_bits: int
    offsets: npt.NDArray[np.uint32]
    rems: npt.NDArray[np.unsignedinteger[Any]]
    #: The compiled lookup over the same two arrays (``None``: the NumPy reference path).
    table: _qtable.QTable | None = field(default=None, compare=False, repr=False)
    #: The byte filter of a small region, built on first batch use.
    filter_cache: list[tuple[np.uint64, npt.NDArray[np.bool_]]] = field(
        default_factory=list, compare=False, repr=False
    )

    @classmethod
    def build(cls, offsets_u: npt.NDArray[np.uint64]) -> _Region:
        h = (offsets_u * np.uint64(MULTIPLIER)) & np.uint64(OFFSET_MASK)
        h.sort()
        bbits = _bucket_bits(len(h))
        rem_bits = OFFSET_BITS - bbits
        buckets = (h >> np.uint64(rem_bits)).astype(np.int64)
        offsets = np.zeros((1 << bbits) + 1, dtype=np.uint32)
        np.cumsum(np.bincount(buckets, minlength=1 << bbits), out=offsets[1:])
        rems = np.zeros(len(h) + PADDING, dtype=_rem_dtype(rem_bits))  # padded: scalar scans stay inside
        rems[: len(h)] = h & np.uint64((1 << rem_bits) - 1)
        return cls(rem_bits, offsets, rems)

    @property
    def count(self) -> int:
        return int(self.offsets[-1])

    def offsets_of_members(self) -> npt.NDArray[np.uint64]:
        counts: IntArray = np.diff(self.offsets.astype(np.int64)).astype(np.int64)
        buckets = np.repeat(np.arange(len(counts), dtype=np.uint64), counts)
        h = (buckets << np.uint64(self.rem_bits)) | self.rems[: self.count].astype(np.uint64)
        return (h * np.uint64(INVERSE)) & np.uint64(OFFSET_MASK)

    def contains_many(self, numbers_u: npt.NDArray[np.uint64]) -> BoolArray:
        """Membership of numbers (as ``uint64``) whose region is this one, in NumPy (the reference the
        compiled ``table`` is checked against); only their low 34 bits are read (``n * M mod 2**34``
        equals ``(n mod 2**34) * M mod 2**34``), so callers pass whole numbers and check the region
        themselves."""
        count = self.count
        if count == 0:
            return np.zeros(len(numbers_u), dtype=np.bool_)
        if count <= FILTER_MAX:
            # Small set (system lists, consents, marks): a byte table in cache rules out nearly every
            # query with one multiply, one shift and one read; only candidates are looked up exactly.
            shift, table = self._filter()
            maybe = table.take((numbers_u * FIB34) >> shift)
            candidates = np.flatnonzero(maybe)
            out = np.zeros(len(numbers_u), dtype=np.bool_)
            if len(candidates):
                out[candidates] = self._exact(numbers_u[candidates])
            return out
        if len(numbers_u) <= CHUNK:
            return self._exact(numbers_u)
        out = np.empty(len(numbers_u), dtype=np.bool_)
        for start in range(0, len(numbers_u), CHUNK):
            out[start : start + CHUNK] = self._exact(numbers_u[start : start + CHUNK])
        return out

    def _filter(self) -> tuple[np.uint64, npt.NDArray[np.bool_]]:
        if self.filter_cache:
            return self.filter_cache[0]
        bits = max(10, int(np.ceil(np.log2(max(self.count, 1) * FILTER_SLOTS_PER_ENTRY))))
        shift = np.uint64(64 - bits)
        table = np.zeros(1 << bits, dtype=np.bool_)
        table[(self.offsets_of_members() * FIB34) >> shift] = True
        self.filter_cache.append((shift, table))
        return shift, table

    def _exact(self, chunk: npt.NDArray[np.uint64]) -> BoolArray:
        if self.rems.dtype == np.uint16 and len(self.rems) >= 4:
            return self._exact16(chunk)
        return self._exact_any(chunk)

    def _exact16(self, chunk: npt.NDArray[np.uint64]) -> BoolArray:
        """Exact membership for 16-bit remainders (every large set), four remainders per 64-bit word.

        The bucket's first entries lie in three aligned words from ``start // 4``: one read each, all
        four lanes compared at once (SWAR: a lane of ``x = word ^ r`` is zero where it matches, and
        ``((x & 0x7FFF) + 0x7FFF) | x`` has its top bit clear exactly there, with no carry between
        lanes), lanes outside ``[start, start + n)`` masked off. Buckets longer than the nine or more
        entries this covers (rare: the average is 4–8) are finished entry by entry."""
        rems = self.rems
        words = rems[: len(rems) // 4 * 4].view(np.uint64)
        h = (chunk * np.uint64(MULTIPLIER)) & np.uint64(OFFSET_MASK)
        b = (h >> np.uint64(self.rem_bits)).astype(np.intp)
        s = self.offsets.take(b).astype(np.intp)
        n = self.offsets[1:].take(b) - s
        r = h & np.uint64((1 << self.rem_bits) - 1)
        rr = r * _LANES_ONE
        base = s >> 2
        a = (s & 3).astype(np.uint64)
        end = a + n.astype(np.uint64)  # lanes [a, end) of the three words, counted from base's lane 0
        hit = np.zeros(len(chunk), dtype=np.bool_)
        for k in range(3):
            x = words.take(base + k, mode="clip") ^ rr
            x = ~(((x & _LANES_LOW) + _LANES_LOW) | x) & _LANES_TOP  # top bit set where the lane matches
            lanes_end = np.minimum(end, np.uint64(4 * k + 4)) - np.minimum(end, np.uint64(4 * k))
            x &= _LANES_TOP >> (np.uint64(16) * (np.uint64(4) - lanes_end))  # lanes below the bucket's end
            if k == 0:
                x &= ~(_LANES_TOP >> (np.uint64(16) * (np.uint64(4) - a)))  # lanes from the bucket's start
            hit |= x != 0
        covered = 12 - (s & 3)
        pending = np.flatnonzero(n > covered)
        if len(pending):
            pending = pending[~hit[pending]]
        r16 = r.astype(np.uint16)
        j = covered
        while len(pending):
            pending = pending[n[pending] > j[pending]]
            found = rems[s[pending] + j[pending]] == r16[pending]
            hit[pending[found]] = True
            pending = pending[~found]
            j = j + 1
        return hit

    def _exact_any(self, chunk: npt.NDArray[np.uint64]) -> BoolArray:
        """Exact membership: bucket bounds from the offset table, then the first ``WINDOW`` entries of
        each bucket compared at once, then the few longer buckets entry by entry.

        A remainder may equal the query's in a *later* bucket that the window runs into, so only the
        first matching position counts, and only when it lies inside the bucket (``first < n``)."""
        rems = self.rems
        h = (chunk * np.uint64(MULTIPLIER)) & np.uint64(OFFSET_MASK)
        b = (h >> np.uint64(self.rem_bits)).astype(np.intp)
        s = self.offsets.take(b).astype(np.intp)
        n = self.offsets[1:].take(b) - s
        r = (h & np.uint64((1 << self.rem_bits) - 1)).astype(rems.dtype)
        first = np.full(len(chunk), np.iinfo(np.intp).max, dtype=np.intp)  # no match: never < n
        for j in range(min(WINDOW, len(rems)) - 1, -1, -1):
            np.copyto(first, j, where=rems[j:].take(s, mode="clip") == r)
        hit: BoolArray = first < n
        pending = np.flatnonzero(n > WINDOW)
        if len(pending):
            pending = pending[~hit[pending]]
        j = WINDOW
        while len(pending):
            pending = pending[n[pending] > j]
            found = rems[s[pending] + j] == r[pending]
            hit[pending[found]] = True
            pending = pending[~found]
            j += 1
        return hit


#: Remainder tables at least this large are kept on transparent huge pages. Measured here: a
#: 100-million-number set decides ~3 % faster one by one and ~14 % faster in batches on huge pages; at
#: 10 million the ``bytes`` object's cheaper ``find`` wins (~7 %), so only the largest tables move.
HUGE_PAGE_MIN = 64 << 20


def _searchable(rems: npt.NDArray[Any]) -> bytes | mmap.mmap:
    """The remainders in a buffer with a C ``find``: ``bytes`` when small; when large, a private
    anonymous mapping advised to use transparent huge pages (Linux ``MADV_HUGEPAGE``).

    Why: a lookup in a 100-million-number set makes two random reads in 260 MB; with 4 KiB pages each
    also misses the TLB, and in a virtual machine a page walk costs more than the read itself. NumPy
    already asks for huge pages for its own large arrays (the offset tables); a ``bytes`` object
    never gets them. Where huge pages are not available the mapping simply uses normal pages.
    """
    if rems.nbytes < HUGE_PAGE_MIN:
        return rems.tobytes()
    flags = getattr(mmap, "MAP_PRIVATE", 0) | getattr(mmap, "MAP_ANONYMOUS", 0)
    buffer = mmap.mmap(-1, rems.nbytes, flags=flags) if flags else mmap.mmap(-1, rems.nbytes)
    if hasattr(mmap, "MADV_HUGEPAGE"):
        buffer.madvise(mmap.MADV_HUGEPAGE)  # before the first write, so the pages fault in huge
    np.frombuffer(buffer, dtype=rems.dtype, count=len(rems))[:] = rems
    return buffer


@lru_cache(maxsize=1)
def _patterns16() -> list[bytes]:
    """``struct.pack("<H", r)`` for every ``r`` (about 2 MB, once per process)."""
    pack = struct.Struct("<H").pack
    return [pack(r) for r in range(1 << 16)]


def _in_bucket(data: bytes | mmap.mmap, width: int, pattern: bytes, start: int, end: int) -> bool:
    """Whether ``pattern`` occurs at an entry boundary among entries ``start:end`` of ``data``."""
    i = data.find(pattern, start * width, end * width)
    while i >= 0:
        if not i % width:
            return True
        i = data.find(pattern, i + 1, end * width)
    return False


class NumberSet:
    """An immutable exact set of non-negative integers below 2**50 (E.164 numbers as integers)."""

    __slots__ = ("_count", "_lookup", "_regions", "compiled")

    def __init__(self, regions: Mapping[int, _Region], *, compiled: bool = True) -> None:
        # The remainders live in one buffer with a numpy view over it, shared by the compiled lookup
        # (``_qtable``), the NumPy reference and the pure-Python scalar path; no second copy is kept.
        # Large ones sit on huge pages (``_searchable``). ``compiled=False`` keeps the reference
        # paths only (the property tests compare the two).
        self._regions: dict[int, _Region] = {}
        self._lookup: dict[int, tuple[int, int, memoryview, bytes | mmap.mmap, int]] = {}
        for key, region in regions.items():
            data = _searchable(region.rems)
            view = np.frombuffer(data, dtype=region.rems.dtype, count=len(region.rems))
            offsets = np.ascontiguousarray(region.offsets, dtype=np.uint32)
            table = _qtable.QTable(offsets, view, region.rem_bits, key, MULTIPLIER) if compiled else None
            self._regions[key] = _Region(region.rem_bits, offsets, view, table)
            width = view.dtype.itemsize
            self._lookup[key] = (region.rem_bits, (1 << region.rem_bits) - 1, offsets.data, data, width)
        self._count = sum(r.count for r in self._regions.values())
        self.compiled = compiled

    def reference(self) -> NumberSet:
        """The same set without the compiled lookups (the NumPy and pure-Python reference paths)."""
        return NumberSet(self._regions, compiled=False)

    @classmethod
    def empty(cls) -> NumberSet:
        return cls({})

    @classmethod
    def from_iterable(cls, numbers: Iterable[int]) -> NumberSet:
        return cls.from_array(np.fromiter(numbers, dtype=np.int64))

    @classmethod
    def from_array(cls, numbers: npt.ArrayLike) -> NumberSet:
        arr = sorted_unique(np.asarray(numbers, dtype=np.int64))
        if len(arr) and (arr[0] < 0 or arr[-1] > MAX_NUMBER):
            raise ValueError("numbers must be E.164 integers between 0 and 2**50")
        regions: dict[int, _Region] = {}
        if len(arr):
            region_ids = arr >> OFFSET_BITS
            cuts = np.flatnonzero(np.diff(region_ids)) + 1
            for part in np.split(arr, cuts):
                key = int(part[0] >> OFFSET_BITS)
                regions[key] = _Region.build((part & OFFSET_MASK).astype(np.uint64))
        return cls(regions)

    def __len__(self) -> int:
        return self._count

    def __contains__(self, number: object) -> bool:
        if not isinstance(number, int):
            return False
        region = self._regions.get(number >> OFFSET_BITS)
        if region is None:
            return False
        if region.table is not None:
            return region.table.has(number)
        entry = self._lookup[number >> OFFSET_BITS]
        rem_bits, mask, offsets, data, width = entry
        h = ((number & OFFSET_MASK) * MULTIPLIER) & OFFSET_MASK
        b = h >> rem_bits
        return _in_bucket(data, width, (h & mask).to_bytes(width, "little"), offsets[b], offsets[b + 1])

    def scalar_test(self, added: set[int], removed: set[int]) -> Callable[[int], bool]:
        """One closure testing membership of (this set ∪ added) − removed, for the per-call path.

        ``added``/``removed`` are read at call time (the caller mutates them in place). A single-region
        set (all +86 mobiles) gets the table inlined: one Python frame per lookup.
        """
        if len(self._lookup) != 1:

            def general(number: int) -> bool:
                if number in added:
                    return True
                if number in removed:
                    return False
                return number in self

            return general
        ((key, (rem_bits, mask, offsets, data, width)),) = self._lookup.items()
        region = self._regions[key]
        if region.table is not None:
            # One C method call per lookup; the table reads ``added``/``removed`` at call time too.
            return region.table.with_overlay(added, removed).has
        find = data.find
        # The byte patterns of every 16-bit remainder, built once and shared: no ``pack`` call per lookup.
        patterns = _patterns16() if width == 2 else None
        pack = struct.Struct({2: "<H", 4: "<I", 8: "<Q"}[width]).pack
        multiplier, offset_mask, offset_bits = MULTIPLIER, OFFSET_MASK, OFFSET_BITS

        def single_region(number: int) -> bool:
            if added or removed:
                if number in added:
                    return True
                if number in removed:
                    return False
            if number >> offset_bits != key:
                return False
            # (n * M) mod 2**34 == ((n mod 2**34) * M) mod 2**34: no separate masking of the offset.
            h = (number * multiplier) & offset_mask
            b = h >> rem_bits
            end = offsets[b + 1] * width
            pattern = patterns[h & mask] if patterns is not None else pack(h & mask)
            i = find(pattern, offsets[b] * width, end)
            while i >= 0:
                if not i % width:
                    return True
                i = find(pattern, i + 1, end)
            return False

        return single_region

    def contains_many(self, numbers: npt.ArrayLike) -> BoolArray:
        """Vectorised membership of an int64 array (the batch and wash path)."""
        arr = np.asarray(numbers, dtype=np.int64)
        if not self._regions or not len(arr):
            return np.zeros(len(arr), dtype=np.bool_)
        if self.compiled:
            # Each compiled table answers False for numbers outside its region: no selection needed.
            arr = np.ascontiguousarray(arr)
            tables = [r.table for r in self._regions.values() if r.table is not None and r.count]
            out = np.zeros(len(arr), dtype=np.bool_)
            part = np.empty(len(arr), dtype=np.bool_) if len(tables) > 1 else out
            for table in tables:
                table.contains_many(arr, part)
                if part is not out:
                    out |= part
            return out
        region_ids = arr >> OFFSET_BITS
        if len(self._regions) == 1:
            ((key, region),) = self._regions.items()
            hits = region.contains_many(arr.view(np.uint64))
            hits &= region_ids == key
            return hits
        out = np.zeros(len(arr), dtype=np.bool_)
        for key, region in self._regions.items():
            sel = np.flatnonzero(region_ids == key)
            out[sel] = region.contains_many(arr[sel].view(np.uint64))
        return out

    def to_array(self) -> IntArray:
        """Every member, sorted (used to fold deltas into a new set and to compare snapshots)."""
        parts = [
            (np.int64(key) << np.int64(OFFSET_BITS)) | region.offsets_of_members().astype(np.int64)
            for key, region in sorted(self._regions.items())
        ]
        if not parts:
            return np.zeros(0, dtype=np.int64)
        return np.sort(np.concatenate(parts))

    @property
    def nbytes(self) -> int:
        return sum(r.offsets.nbytes + r.rems.nbytes for r in self._regions.values())

    def to_arrays(self, prefix: str) -> dict[str, npt.NDArray[Any]]:
        """Arrays for ``numpy.savez``, named under ``prefix``."""
        out: dict[str, npt.NDArray[Any]] = {}
        for key, region in self._regions.items():
            out[f"{prefix}.{key}.{region.rem_bits}.offsets"] = region.offsets
            out[f"{prefix}.{key}.{region.rem_bits}.rems"] = region.rems
        return out

    @classmethod
    def from_arrays(cls, prefix: str, arrays: Mapping[str, npt.NDArray[Any]]) -> NumberSet:
        regions: dict[int, _Region] = {}
        for name, offsets in arrays.items():
            head, _, tail = name.rpartition(".")
            if tail != "offsets" or not head.startswith(prefix + "."):
                continue
            key_text, _, bits_text = head.removeprefix(prefix + ".").partition(".")
            if "." in bits_text:
                continue
            rems = arrays[f"{head}.rems"]
            regions[int(key_text)] = _Region(int(bits_text), offsets.astype(np.uint32, copy=False), rems)
        return cls(regions)
