"""A durable reader of the change feed for jobs that react to other contexts' events.

The screening engine follows the feed in memory (its snapshot records where it is). Jobs that turn one
context's events into another context's actions (a substantiated complaint credits the reporter's marks,
a traffic finding enters the high-risk list) need a position that survives restarts and is shared by
every worker process: a ``feed_cursors`` row per reader.

PostgreSQL assigns sequence ids at insert, not at commit, so a higher id can become visible before a
lower one. The cursor therefore keeps a *low-water mark* (every id at or below it is handled) plus the
ids above it already handled; a missing id is waited for ``gap_grace`` seconds before it is taken to be
a rolled-back transaction. The position is saved right after each handled change, so a crash repeats at
most the change being handled: handlers must be safe to repeat (at-least-once delivery).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, String
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from quietline.platform import changefeed
from quietline.platform.db import Base, UtcDateTime
from quietline.platform.runtime import Runtime

log = logging.getLogger(__name__)


class FeedCursorRow(Base):
    __tablename__ = "feed_cursors"

    name: Mapped[str] = mapped_column(String(60), primary_key=True)
    low_water: Mapped[int] = mapped_column(BigInteger)
    handled_above: Mapped[list[int]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


@dataclass(frozen=True, slots=True)
class PollReport:
    read: int
    handled: int
    gaps_given_up: int
    low_water: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "handled": self.handled,
            "gaps_given_up": self.gaps_given_up,
            "low_water": self.low_water,
        }


class DurableFeedReader:
    """Calls ``handle`` once (at least once across crashes) for every change on ``topics``, in id order.

    ``start_at_head``: a reader that has never run starts at the feed's current end instead of
    replaying history (used when a reaction is introduced on a database with old events).
    """

    def __init__(
        self,
        rt: Runtime,
        name: str,
        topics: frozenset[str],
        handle: Callable[[changefeed.Change], None],
        *,
        gap_grace: float = 30.0,
        start_at_head: bool = False,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rt = rt
        self.name = name
        self.topics = topics
        self.handle = handle
        self.gap_grace = gap_grace
        self.start_at_head = start_at_head
        self._monotonic = monotonic
        self._gap_seen: dict[int, float] = {}

    def _load(self) -> tuple[int, set[int]]:
        with self.rt.sessions() as session:
            row = session.get(FeedCursorRow, self.name)
            if row is not None:
                return row.low_water, set(row.handled_above)
            start = changefeed.head(session) if self.start_at_head else 0
        try:
            with self.rt.sessions.begin() as session:
                session.add(
                    FeedCursorRow(
                        name=self.name, low_water=start, handled_above=[], updated_at=self.rt.clock.now()
                    )
                )
        except IntegrityError:
            return self._load()
        return start, set()

    def _save(self, low: int, above: set[int]) -> None:
        with self.rt.sessions.begin() as session:
            row = session.get(FeedCursorRow, self.name)
            if row is None:  # created by _load before any save; gone only if an operator deleted it
                return
            # Never move backwards: another process may have got further with the same reader.
            if row.low_water > low:
                return
            row.low_water = low
            row.handled_above = sorted(above)
            row.updated_at = self.rt.clock.now()

    def _advance(self, low: int, above: set[int], newest: int) -> tuple[int, int]:
        """Move the low-water mark over handled ids, and over gaps older than the grace period."""
        given_up = 0
        now = self._monotonic()
        while True:
            nxt = low + 1
            if nxt in above:
                above.discard(nxt)
                low = nxt
                self._gap_seen.pop(nxt, None)
                continue
            if nxt > newest:
                break
            first = self._gap_seen.setdefault(nxt, now)
            if now - first < self.gap_grace:
                break
            log.warning("feed reader %s: id %s never committed; skipping it", self.name, nxt)
            self._gap_seen.pop(nxt, None)
            low = nxt
            given_up += 1
        return low, given_up

    def poll(self, limit: int = 2_000) -> PollReport:
        """Handle the next batch of changes; returns what was done."""
        low, above = self._load()
        with self.rt.sessions() as session:
            changes = changefeed.read_after(session, low, limit)
        handled = 0
        for change in changes:
            if change.id in above:
                continue
            if change.topic in self.topics:
                self.handle(change)
                handled += 1
                above.add(change.id)
                self._save(low, above)
            else:
                above.add(change.id)
        newest = changes[-1].id if changes else low
        low, given_up = self._advance(low, above, newest)
        if changes or given_up:
            self._save(low, above)
        return PollReport(len(changes), handled, given_up, low)

    def drain(self, limit: int = 2_000, max_rounds: int = 1_000) -> PollReport:
        """Poll until a batch comes back short (a backlog is worked off in one job run)."""
        read = handled = given_up = 0
        report = PollReport(0, 0, 0, 0)
        for _ in range(max_rounds):
            report = self.poll(limit)
            read, handled, given_up = (
                read + report.read,
                handled + report.handled,
                given_up + report.gaps_given_up,
            )
            if report.read < limit:
                break
        return PollReport(read, handled, given_up, report.low_water)
