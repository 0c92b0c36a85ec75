"""What keeps the reputation look-up (``GET /v1/numbers/{number}/reputation``) off the database: a cache
of serialised answers that the change feed invalidates, and a per-client rate limit held in memory.

The look-up is on the path of every incoming call (caller-ID display), so a cached answer is served
without touching SQL. Three rules keep the cache honest (issue 6, "Lookup"; DESIGN.md: a change is
effective across the whole system within one second):

* **Invalidation by the change feed.** Every change of a displayed label (``marks.label``), of the
  high-risk list (``marks.high_risk``) and of a verified identity (``marks.identity``) is a change-feed
  row written in the action's own transaction. ``FeedWatch`` reads the rows after its position and drops
  those numbers' answers. The entry point polls it in the background every ``poll_interval`` and, when
  the last poll is older than ``max_staleness``, waits for one before answering — so no answer is ever
  served while a label change committed more than ``max_staleness`` ago is still unapplied.
* **No stale write-back.** An answer computed from the database is stored only if its number was not
  invalidated since the computation started (``AnswerCache.ticket``): a slow read that raced a change
  cannot put the old label back.
* **A time-to-live** for the rest of an answer (counts, confidences, "最近一次 2 天前"), which changes with
  every mark even when no displayed state does. An answer past it is still served once while it is
  recomputed in the background (stale-while-revalidate), so expiry never puts a database read on a
  caller's path; a label change is never served that way, since invalidation removes the answer.

The per-client limit is a token bucket per client in each serving process. Several worker processes
(``quietline serve --workers N``) share one configured limit: each admits ``limit / N`` per window
(``share_of``), so a client never gets more than the limit in total, whichever workers its connections
reach. Nothing on the hot path touches the database, which a shared counter would.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy import Engine, bindparam, text

log = logging.getLogger(__name__)

TOPIC_LABEL = "marks.label"
TOPIC_HIGH_RISK = "marks.high_risk"
TOPIC_IDENTITY = "marks.identity"
#: Change-feed topics after which a number's public answer must be recomputed.
ANSWER_TOPICS = (TOPIC_LABEL, TOPIC_HIGH_RISK, TOPIC_IDENTITY)


_HEAD = text("SELECT max(id) FROM change_feed")
#: Every feed row after the cursor (its id, to follow gaps), with the number of the answer topics' rows.
_AFTER = text(
    "SELECT id, CASE WHEN topic IN :topics THEN key END FROM change_feed"
    " WHERE id > :cursor ORDER BY id LIMIT :limit"
).bindparams(bindparam("topics", ANSWER_TOPICS, expanding=True))


class AnswerCache:
    """Serialised answers by number, each kept ``ttl`` seconds (monotonic time), at most ``max_entries``.

    ``drop`` invalidates a number; ``put`` with the ``ticket`` taken before the answer was computed
    refuses an answer whose number was dropped meanwhile (it may predate the change)."""

    def __init__(
        self,
        ttl: float,
        max_entries: int = 100_000,
        *,
        remembered_drops: int = 100_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._monotonic = monotonic
        self._items: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._lock = threading.Lock()
        self._seq = 0  # counts drops
        self._dropped: OrderedDict[str, int] = OrderedDict()  # number → seq of its last drop
        self._remembered = remembered_drops
        self._forgotten_upto = 0  # seq of the newest drop no longer remembered per number

    def get(self, key: str) -> bytes | None:
        """The answer while it is within its time to live."""
        found = self.lookup(key)
        return None if found is None or not found[1] else found[0]

    def lookup(self, key: str) -> tuple[bytes, bool] | None:
        """The answer and whether it is still within its time to live. An expired answer is kept until
        it is replaced, invalidated or evicted: only its counts can be old (label changes drop it), so
        the caller may serve it while it recomputes (``stale-while-revalidate``)."""
        item = self._items.get(key)  # a dict read is atomic under the GIL
        if item is None:
            return None
        return item[1], item[0] >= self._monotonic()

    def ticket(self) -> int:
        """Take before reading the database for an answer; hand to ``put``."""
        return self._seq

    def put(self, key: str, value: bytes, ticket: int) -> bool:
        """Store an answer unless ``key`` was dropped after ``ticket`` was taken; True when stored."""
        if self.ttl <= 0:
            return False
        with self._lock:
            last = self._dropped.get(key)
            if (self._forgotten_upto if last is None else last) > ticket:
                return False
            self._items[key] = (self._monotonic() + self.ttl, value)
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)
            return True

    def drop(self, keys: Iterable[str]) -> int:
        """Invalidate these numbers (cached or not: a computation in flight must not store them)."""
        dropped = 0
        with self._lock:
            for key in keys:
                self._seq += 1
                self._dropped[key] = self._seq
                self._dropped.move_to_end(key)
                if self._items.pop(key, None) is not None:
                    dropped += 1
            while len(self._dropped) > self._remembered:
                _, seq = self._dropped.popitem(last=False)
                self._forgotten_upto = max(self._forgotten_upto, seq)
        return dropped

    def __len__(self) -> int:
        return len(self._items)


def share_of(limit: int, processes: int) -> float:
    """One process's share of a limit that ``processes`` serving processes enforce together."""
    return limit / max(1, processes)


def serving_processes(configured: int = 0) -> int:
    """Worker processes serving the API: the setting when given, else ``WEB_CONCURRENCY`` (the worker
    count uvicorn and gunicorn read, which ``quietline serve --workers`` sets), else one."""
    if configured > 0:
        return configured
    try:
        return max(1, int(os.environ.get("WEB_CONCURRENCY", "1")))
    except ValueError:
        return 1


class TokenBucketLimiter:
    """At most ``rate`` requests per ``window`` seconds per client, in bursts of at most ``rate``.

    A bucket holds up to ``rate`` tokens and refills continuously at ``rate / window`` per second; a
    request takes one. Clients idle long enough to be full again are forgotten first when more than
    ``max_clients`` are tracked (least recently seen)."""

    def __init__(
        self,
        rate: float,
        window: float = 60.0,
        *,
        max_clients: int = 100_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.capacity = max(1.0, rate)
        self.refill = rate / window if window > 0 else float("inf")
        self.max_clients = max_clients
        self._monotonic = monotonic
        self._buckets: OrderedDict[str, list[float]] = OrderedDict()  # client → [tokens, updated]
        self._lock = threading.Lock()

    def hit(self, client: str) -> float | None:
        """Take a token for ``client``: None when admitted, else the seconds until one is back."""
        now = self._monotonic()
        with self._lock:
            bucket = self._buckets.get(client)
            if bucket is None:
                bucket = [self.capacity, now]
                self._buckets[client] = bucket
                while len(self._buckets) > self.max_clients:
                    self._buckets.popitem(last=False)
            else:
                self._buckets.move_to_end(client)
                bucket[0] = min(self.capacity, bucket[0] + (now - bucket[1]) * self.refill)
                bucket[1] = now
            if bucket[0] >= 1.0:
                bucket[0] -= 1.0
                return None
            return (1.0 - bucket[0]) / self.refill if self.refill > 0 else float("inf")


@dataclass(frozen=True, slots=True)
class WatchReport:
    read: int
    invalidated: int
    gaps_skipped: int


class FeedWatch:
    """Follows the change feed and hands the numbers of ``ANSWER_TOPICS`` rows to ``invalidate``.

    PostgreSQL assigns feed ids at insert, not at commit, so a lower id can become visible after a
    higher one. The watch keeps a low-water mark (every id at or below it was seen) and the ids seen
    above it; a missing id is waited for ``gap_grace`` seconds before it is taken for a rolled-back
    transaction (as ``quietline.screening.feed`` and ``quietline.platform.feedcursor`` do). It starts
    ``lookback`` ids behind the feed's end, so a transaction that was in flight when it started is seen
    too (invalidating a number twice costs nothing)."""

    def __init__(
        self,
        engine: Engine,
        invalidate: Callable[[list[str]], object],
        *,
        gap_grace: float = 30.0,
        lookback: int = 1_000,
        batch: int = 5_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._invalidate = invalidate
        self._gap_grace = gap_grace
        self._lookback = lookback
        self._batch = batch
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._low: int | None = None
        self._above: set[int] = set()
        self._gap_seen: dict[int, float] = {}
        #: Monotonic time at which the last completed poll started: every change committed before it
        #: has been applied.
        self.fresh_as_of = float("-inf")

    def poll(self, *, wait: bool = True) -> WatchReport | None:
        """Apply every change committed before this call; None when ``wait`` is false and another
        poll is running (it will do)."""
        if not self._lock.acquire(blocking=wait):
            return None
        try:
            started = self._monotonic()
            report = self._poll()
            self.fresh_as_of = started
            return report
        finally:
            self._lock.release()

    def poll_quietly(self) -> None:
        """A background poll: skipped when one is running; a database error is logged, not raised (the
        next request's poll tries again, and ``fresh_as_of`` still says how old the cache may be)."""
        try:
            self.poll(wait=False)
        except Exception:
            log.exception("reputation cache: polling the change feed failed")

    def _poll(self) -> WatchReport:
        numbers: list[str] = []
        read = 0
        # A Core connection and one cached statement: the poll runs beside the request handlers, so
        # it is kept short (every millisecond it holds the GIL is one a look-up may wait).
        with self._engine.connect() as connection:
            if self._low is None:
                head = connection.execute(_HEAD).scalar() or 0
                self._low = max(0, int(head) - self._lookback)
            cursor = self._low
            while True:
                rows = connection.execute(_AFTER, {"cursor": cursor, "limit": self._batch}).all()
                read += len(rows)
                for change_id, number in rows:
                    if change_id in self._above:
                        continue
                    self._above.add(change_id)
                    if number is not None:
                        numbers.append(number)
                if rows:
                    cursor = rows[-1][0]
                if len(rows) < self._batch:
                    break
            skipped = self._advance(cursor)
        if numbers:
            self._invalidate(numbers)
        return WatchReport(read, len(numbers), skipped)

    def _advance(self, newest: int) -> int:
        assert self._low is not None  # noqa: S101 - set by the first poll
        low = self._low
        skipped = 0
        now = self._monotonic()
        while True:
            nxt = low + 1
            if nxt in self._above:
                self._above.discard(nxt)
                self._gap_seen.pop(nxt, None)
                low = nxt
                continue
            if nxt > newest:
                break
            first = self._gap_seen.setdefault(nxt, now)
            if now - first < self._gap_grace:
                break
            self._gap_seen.pop(nxt, None)
            low = nxt
            skipped += 1
        self._low = low
        return skipped
