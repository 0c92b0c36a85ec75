"""Follow the change feed into a running snapshot (an adapter: SQL lives here, not in the snapshot).

Every committed change to preferences, lists, consent and marks is a ``change_feed`` row written in the
same transaction (``quietline.platform.changefeed``). The follower polls it with a cursor every
``interval`` seconds (100 ms by default, well inside the one-second propagation target of the issue)
on SQLite and PostgreSQL alike.

PostgreSQL hands out sequence ids when a row is inserted, not when its transaction commits, so id 11
can become visible before id 10. The follower therefore reads everything after the snapshot's
*low-water mark* (all ids at or below it are applied), skips ids it has already applied (the snapshot
remembers them), and waits ``gap_grace`` seconds for a missing id before deciding that its
transaction rolled back. No change is missed and none is applied twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from quietline.platform import changefeed
from quietline.screening.snapshot import TOPICS, Snapshot

log = logging.getLogger(__name__)

#: Rows read per poll; a backlog is drained by polling again at once.
BATCH = 5_000


@dataclass
class PollResult:
    applied: int
    read: int
    skipped_gaps: int


class FeedFollower:
    """Applies change-feed rows to a snapshot; the caller holds whatever lock guards the snapshot."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        gap_grace: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._gap_grace = gap_grace
        self._monotonic = monotonic
        self._gap_first_seen: dict[int, float] = {}

    def fetch(self, after: int, limit: int = BATCH) -> list[changefeed.Change]:
        with self._sessions() as session:
            return changefeed.read_after(session, after, limit)

    def poll(self, snapshot: Snapshot) -> PollResult:
        """Apply every new change once; give up on gaps older than the grace period."""
        rows = self.fetch(snapshot.feed_low)
        applied = 0
        for row in rows:
            if snapshot.has_applied(row.id):
                continue
            if row.topic in TOPICS:
                snapshot.apply(row.id, row.topic, row.payload, row.at)
                applied += 1
            else:
                snapshot.mark_applied(row.id)
        return PollResult(applied, len(rows), self._expire_gaps(snapshot))

    def catch_up(self, snapshot: Snapshot) -> int:
        """Poll until the feed has nothing new (a cold start, or a CLI command)."""
        total = 0
        while True:
            result = self.poll(snapshot)
            total += result.applied
            if result.read < BATCH or result.applied == 0:
                return total

    def _expire_gaps(self, snapshot: Snapshot) -> int:
        gaps = snapshot.gaps()
        if not gaps:
            self._gap_first_seen.clear()
            return 0
        now = self._monotonic()
        live = set(gaps)
        self._gap_first_seen = {i: t for i, t in self._gap_first_seen.items() if i in live}
        for gap in gaps:
            self._gap_first_seen.setdefault(gap, now)
        expired = [i for i in gaps if now - self._gap_first_seen[i] >= self._gap_grace]
        if not expired:
            return 0
        # Everything up to the newest expired gap is done: ids below it are applied or expired too.
        upto = max(expired)
        log.warning(
            "change feed: ids %s never committed within %.0f s; skipping them", expired, self._gap_grace
        )
        snapshot.skip_to(upto)
        for i in expired:
            self._gap_first_seen.pop(i, None)
        return len(expired)
