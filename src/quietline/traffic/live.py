"""The API's streaming source: per-carrier call-bombing detectors held by one server process.

``POST /v1/traffic/records`` hands each batch of a carrier's call records to that carrier's
:class:`~quietline.traffic.streaming.BombingDetector` (event time, bounded memory per active caller
and in total, as for a file tail or a NATS subject); every alert is stored at once as an in-progress
bombing finding of the carrier's stream run (``actions.AlertRecorder``), which makes it a high-risk
candidate and lets the reactions relay block the number while the bombing lasts.

The detector's state lives in the process: a deployment that runs several API workers should send
one carrier's records to one worker (or use the NATS source, ``watch-nats``), since a bombing split
across workers is seen by none of them in full.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from quietline.platform.actor import Actor
from quietline.platform.runtime import Runtime
from quietline.traffic import queries
from quietline.traffic.actions import AlertRecorder, resolve_carrier
from quietline.traffic.streaming import BombingDetector, CallEvent, StreamConfig

#: Issue 7: "raises a call-bombing alert within 60 seconds of onset".
ALERT_WITHIN_SECONDS = 60


@dataclass
class _Live:
    detector: BombingDetector
    recorder: AlertRecorder
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass(frozen=True, slots=True)
class FeedResult:
    accepted: int
    alerts: list[queries.FindingView]
    run_id: str | None
    active_callers: int


class LiveDetectors:
    """One detector per carrier, created on its first batch; safe to call from several threads."""

    def __init__(self, rt: Runtime, config: StreamConfig | None = None) -> None:
        self.rt = rt
        self.config = config or StreamConfig()
        if self.config.window_seconds > ALERT_WITHIN_SECONDS:
            raise ValueError(f"a bombing window over {ALERT_WITHIN_SECONDS} s could alert too late")
        self._lock = threading.Lock()
        self._by_carrier: dict[str, _Live] = {}

    def _live(self, actor: Actor) -> _Live:
        carrier = resolve_carrier(actor, None)
        with self._lock:
            live = self._by_carrier.get(carrier)
            if live is None:
                recorder = AlertRecorder(
                    self.rt, actor, carrier=None, min_calls=self.config.min_calls, source="api"
                )
                live = _Live(BombingDetector(self.config), recorder)
                self._by_carrier[carrier] = live
            return live

    def feed(self, actor: Actor, events: Sequence[CallEvent]) -> FeedResult:
        """Observe a batch (in event-time order) and store the alerts it raises."""
        live = self._live(actor)
        with live.lock:
            alerts = []
            for event in sorted(events, key=lambda e: e.ts):
                alert = live.detector.observe(event)
                if alert is not None:
                    alerts.append(alert)
            stored = live.recorder.record(alerts, events=len(events), actor=actor)
            return FeedResult(len(events), stored, live.recorder.run_id, live.detector.active_callers)
