"""Streaming call-bombing detection: an alert within 60 seconds of onset, bounded memory.

呼死你 software dials one callee every 2–3 s (REFERENCE.md "Abnormal traffic"), so ten calls from
one caller to one callee within 60 s is already far outside normal behaviour (the batch rule's
redialling subscribers reach five in ten minutes) and is reached about 25 s after onset.

Time is event time (the calls' ``start_time``), never the wall clock, so replaying a file gives
the same alerts as watching it live. Memory is bounded: each active caller keeps a ring buffer of
its last ``max_calls_per_caller`` calls; callers silent for ``idle_seconds`` are evicted, and the
least recently active caller is evicted when ``max_callers`` are tracked.

Sources: :func:`read_csv_records` (a file, followed like ``tail -f`` when asked) and any iterable
of :class:`CallEvent` (the API or a message-bus consumer feed the same detector).
"""

from __future__ import annotations

import csv
import io
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from quietline.numbers import InvalidNumber, parse
from quietline.platform.errors import InvalidInput
from quietline.traffic.features import REQUIRED


@dataclass(frozen=True)
class StreamConfig:
    window_seconds: int = 60
    min_calls: int = 10
    max_calls_per_caller: int = 64
    max_callers: int = 200_000
    idle_seconds: int = 900


@dataclass(frozen=True)
class CallEvent:
    caller: str
    callee: str
    ts: float
    ring_seconds: float = 0.0
    duration_seconds: float = 0.0


@dataclass(frozen=True)
class BombingAlert:
    caller: str
    callee: str
    onset: str
    detected_at: str
    latency_seconds: float
    calls_in_window: int
    window_seconds: int
    pattern: str = "bombing"
    action: str = "temporary_block"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _CallerState:
    calls: deque[tuple[float, str]]
    last_ts: float
    alerted: dict[str, float] = field(default_factory=dict)  # callee -> last call seen in the episode


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


class BombingDetector:
    """Feed events in (roughly) time order; :meth:`observe` returns an alert when one is raised."""

    def __init__(self, config: StreamConfig | None = None) -> None:
        self.config = config or StreamConfig()
        self._callers: OrderedDict[str, _CallerState] = OrderedDict()
        self.watermark = float("-inf")
        self.events = 0
        self.evicted = 0

    @property
    def active_callers(self) -> int:
        return len(self._callers)

    def _evict(self) -> None:
        cfg = self.config
        horizon = self.watermark - cfg.idle_seconds
        while self._callers:
            caller, state = next(iter(self._callers.items()))
            if len(self._callers) > cfg.max_callers or state.last_ts < horizon:
                del self._callers[caller]
                self.evicted += 1
            else:
                break

    def observe(self, event: CallEvent) -> BombingAlert | None:
        cfg = self.config
        self.events += 1
        self.watermark = max(self.watermark, event.ts)
        state = self._callers.get(event.caller)
        if state is None:
            state = _CallerState(deque(maxlen=cfg.max_calls_per_caller), event.ts)
            self._callers[event.caller] = state
        else:
            self._callers.move_to_end(event.caller)
        state.last_ts = max(state.last_ts, event.ts)
        state.calls.append((event.ts, event.callee))
        self._evict()
        # An episode ends when the caller has left this callee alone for a full idle period.
        last = state.alerted.get(event.callee)
        if last is not None:
            if event.ts - last <= cfg.idle_seconds:
                state.alerted[event.callee] = event.ts
                return None
            del state.alerted[event.callee]
        start = event.ts - cfg.window_seconds
        times = [t for t, callee in state.calls if callee == event.callee and t >= start]
        if len(times) < cfg.min_calls:
            return None
        state.alerted[event.callee] = event.ts
        onset = min(times)
        return BombingAlert(
            caller=event.caller,
            callee=event.callee,
            onset=_iso(onset),
            detected_at=_iso(event.ts),
            latency_seconds=round(event.ts - onset, 3),
            calls_in_window=len(times),
            window_seconds=cfg.window_seconds,
        )

    def run(self, events: Iterable[CallEvent]) -> Iterator[BombingAlert]:
        for event in events:
            alert = self.observe(event)
            if alert is not None:
                yield alert


@dataclass
class StreamStats:
    """Lines that could not be used, by reason: counted and reported, never silently dropped."""

    rows: int = 0
    rejected: dict[str, int] = field(default_factory=dict)

    def reject(self, reason: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1


def _parse_time(text: str) -> float:
    """ISO 8601 with an offset (a naive time is read as UTC) or epoch seconds."""
    try:
        return float(text)
    except ValueError:
        pass
    value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def event_from_row(row: dict[str, str | None], stats: StreamStats) -> CallEvent | None:
    """One CSV row as an event, or None (counted in ``stats``) when a required field is unusable."""
    stats.rows += 1
    if any(not (row.get(c) or "").strip() for c in REQUIRED):
        stats.reject("missing_field")
        return None
    try:
        caller = parse(row["caller"], field="caller").e164
        callee = parse(row["callee"], field="callee").e164
    except InvalidNumber:
        stats.reject("invalid_number")
        return None
    try:
        ts = _parse_time(str(row["start_time"]))
        ring = float(str(row["ring_seconds"]))
        duration = float(str(row["duration_seconds"]))
    except ValueError:
        stats.reject("invalid_value")
        return None
    return CallEvent(caller, callee, ts, ring, duration)


#: Optional text fields a record may carry (issue 7 schema), at most this long.
OPTIONAL_TEXT = ("caller_imei", "callee_carrier", "trunk", "caller_cell")
OPTIONAL_MAX_LENGTH = 64


def _record_time(value: object, field: str) -> float:
    if isinstance(value, bool):
        raise InvalidInput("expected ISO 8601 with an offset or epoch seconds", field=field)
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str):
        raise InvalidInput("expected ISO 8601 with an offset or epoch seconds", field=field)
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{value[:40]!r} is not an ISO 8601 time", field=field) from None
    if parsed.tzinfo is None:
        raise InvalidInput("the time needs its UTC offset, e.g. 2026-11-02T10:00:00+08:00", field=field)
    return parsed.timestamp()


def _record_seconds(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput("expected a number of seconds", field=field)
    if not 0 <= value < 86_400:
        raise InvalidInput("expected seconds from 0 to less than a day", field=field)
    return float(value)


def event_from_record(record: object, row: int, *, prefix: str = "records") -> CallEvent:
    """One call record of an API batch (a JSON object with the schema's columns) as an event.

    Unlike a CSV line, which is counted and set aside, a bad record is the caller's error: it raises
    ``InvalidInput`` naming the row and the field (``records[3].callee``) so it can be corrected.
    """
    where = f"{prefix}[{row}]"
    if not isinstance(record, dict):
        raise InvalidInput("each record is a JSON object with the call-record columns", field=where)
    for name in REQUIRED:
        value = record.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            raise InvalidInput(f"{name} is required", field=f"{where}.{name}")
    caller = parse(record["caller"], field=f"{where}.caller").e164
    callee = parse(record["callee"], field=f"{where}.callee").e164
    ts = _record_time(record["start_time"], f"{where}.start_time")
    ring = _record_seconds(record["ring_seconds"], f"{where}.ring_seconds")
    duration = _record_seconds(record["duration_seconds"], f"{where}.duration_seconds")
    for name in OPTIONAL_TEXT:
        value = record.get(name)
        if value is not None and (not isinstance(value, str) or len(value) > OPTIONAL_MAX_LENGTH):
            raise InvalidInput(
                f"expected text of at most {OPTIONAL_MAX_LENGTH} characters", field=f"{where}.{name}"
            )
    unknown = sorted(set(record) - set(REQUIRED) - set(OPTIONAL_TEXT))
    if unknown:
        raise InvalidInput(f"unknown column {unknown[0]!r}", field=f"{where}.{unknown[0]}")
    return CallEvent(caller, callee, ts, ring, duration)


def read_csv_records(
    source: TextIO,
    stats: StreamStats,
    *,
    follow: bool = False,
    wait: Callable[[], bool] | None = None,
) -> Iterator[CallEvent]:
    """Events from CSV text with a header line. With ``follow``, at end of input ``wait()`` is
    called (it sleeps, and returns False to stop) and reading resumes: ``tail -f`` semantics."""
    header_line = source.readline()
    if not header_line:
        return
    header = next(csv.reader([header_line]))
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise InvalidInput(f"call records lack required column(s) {', '.join(missing)}", field="input")
    pending = ""
    while True:
        line = source.readline()
        if not line:
            if not follow or wait is None or not wait():
                break
            continue
        pending += line
        if not pending.endswith("\n") and follow:
            continue  # a line still being written
        text, pending = pending, ""
        for values in csv.reader(io.StringIO(text)):
            event = event_from_row(dict(zip(header, values, strict=False)), stats)
            if event is not None:
                yield event


def watch_file(
    path: Path,
    detector: BombingDetector,
    stats: StreamStats,
    *,
    follow: bool = False,
    wait: Callable[[], bool] | None = None,
) -> Iterator[BombingAlert]:
    if not path.is_file():
        raise InvalidInput(f"{path} is not a file", field="input")
    with path.open(encoding="utf-8", newline="") as fh:
        yield from detector.run(read_csv_records(fh, stats, follow=follow, wait=wait))
