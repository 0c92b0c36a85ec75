"""The running screening engine of one process: the current snapshot, its follower, its block writer.

- Cold start: load the latest saved snapshot (it records the change-feed position it contains), or
  rebuild from the database when there is none, then catch up from the feed.
- A follower thread polls the change feed (``screening.feed``) and applies deltas; a change committed
  anywhere reaches this process within ``poll_interval`` plus the time to read it.
- Periodically (``rebuild_interval``) a full rebuild from the database is compared with the delta-fed
  snapshot (they must agree; a disagreement is logged and counted, and the rebuild wins because the
  database is the source of truth), then replaces it (folding the overlays) and is saved to disk.
- Blocks are queued and written by a writer thread in batches (拦截记录), off the decision path.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from quietline.callerauth.certs import HttpsCertificateFetcher, TrustStore
from quietline.callerauth.model import Outcome as CallerAuthOutcome
from quietline.callerauth.service import Call as CallerAuthCall
from quietline.callerauth.service import CallerAuthentication
from quietline.callerauth.verify import Verifier
from quietline.numbers import PhoneNumber
from quietline.platform import changefeed
from quietline.platform.runtime import Runtime
from quietline.screening import actions, source
from quietline.screening.feed import FeedFollower
from quietline.screening.model import CallerAuth, Decision, Outcome, ScreenRequest
from quietline.screening.snapshot import TOPICS, LiveSet, Snapshot, SnapshotError

log = logging.getLogger(__name__)


def database_id(rt: Runtime) -> str:
    """A short stable name of the database (a snapshot is only ever used with the one it came from)."""
    url = rt.engine.url.render_as_string(hide_password=True)
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def default_snapshot_path(rt: Runtime) -> Path:
    return rt.settings.data_dir / "screening" / f"snapshot-{database_id(rt)}.npz"


def request_for(
    caller: PhoneNumber,
    callee: PhoneNumber,
    channel: Any,
    category: Any,
    enterprise: str | None,
    caller_auth: CallerAuth = CallerAuth.NOT_CHECKED,
) -> ScreenRequest:
    """A ``ScreenRequest`` from parsed numbers (the entry points' one way to build one)."""
    return ScreenRequest(
        caller_auth=caller_auth,
        caller=caller.as_int,
        callee=callee.as_int,
        channel=channel,
        category=category,
        enterprise=enterprise,
        caller_national=caller.national,
        caller_international=not caller.is_domestic,
        caller_never_block=caller.never_block,
    )


#: How long the block writer lets records gather before it writes them (one transaction per batch).
BLOCK_GATHER_SECONDS = 0.2


@dataclass(frozen=True, slots=True)
class BlockEvent:
    at: datetime
    caller: str
    callee: str
    channel: str
    category: str | None
    reason: str
    rule: str


class ScreeningEngine:
    """One process's screening state; ``decide`` is safe to call from many threads."""

    def __init__(
        self,
        rt: Runtime,
        *,
        snapshot_path: Path | None = None,
        poll_interval: float = 0.1,
        gap_grace: float = 30.0,
        rebuild_interval: float = 3600.0,
    ) -> None:
        self.rt = rt
        self.snapshot_path = snapshot_path or default_snapshot_path(rt)
        self.poll_interval = poll_interval
        self.rebuild_interval = rebuild_interval
        self.follower = FeedFollower(rt.sessions, gap_grace=gap_grace)
        self._lock = threading.RLock()
        self._snapshot = Snapshot(policy=rt.settings.consent_policy)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._blocks: queue.SimpleQueue[BlockEvent | None] = queue.SimpleQueue()
        self.blocks_written = 0
        self.rebuilds = 0
        self.disagreements = 0
        self._callerauth: CallerAuthentication | None = None

    # --- life cycle --------------------------------------------------------------------------------

    @classmethod
    def open(cls, rt: Runtime, **kwargs: Any) -> ScreeningEngine:
        """Load (or rebuild) and catch up, without background threads (CLI commands, tests)."""
        engine = cls(rt, **kwargs)
        engine.load_or_rebuild()
        return engine

    def load_or_rebuild(self) -> str:
        """Cold start; returns ``loaded`` or ``rebuilt``."""
        how = "rebuilt"
        snap: Snapshot | None = None
        if self.snapshot_path.exists():
            try:
                snap = Snapshot.load(self.snapshot_path, policy=self.rt.settings.consent_policy)
                how = "loaded"
                if not self._matches_database(snap):
                    log.warning(
                        "screening snapshot %s is from another database state; rebuilding", self.snapshot_path
                    )
                    snap, how = None, "rebuilt"
            except (SnapshotError, OSError, ValueError, KeyError) as exc:
                log.warning("screening snapshot %s unusable (%s); rebuilding", self.snapshot_path, exc)
        if snap is None:
            snap = self._rebuild()
        self.follower.catch_up(snap)
        with self._lock:
            self._snapshot = snap
        return how

    def _origin(self, feed_low: int) -> dict[str, str]:
        """The database and the time of the change at the snapshot's low-water mark: a recreated
        database (whose ids start again) cannot be mistaken for the one the snapshot came from."""
        at = ""
        if feed_low > 0:
            with self.rt.sessions() as session:
                rows = changefeed.read_after(session, feed_low - 1, limit=1)
            at = rows[0].at.isoformat() if rows and rows[0].id == feed_low else "missing"
        return {"database": database_id(self.rt), "feed_low_at": at}

    def _matches_database(self, snap: Snapshot) -> bool:
        return snap.origin == self._origin(snap.feed_low)

    def start(self) -> ScreeningEngine:
        """Cold start, then the follower and block-writer threads."""
        self.load_or_rebuild()
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._follow, name="screening-follower", daemon=True),
            threading.Thread(target=self._write_blocks, name="screening-blocks", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Stop the threads; queued block records are written before this returns."""
        self._stop.set()
        self._blocks.put(None)
        for thread in self._threads:
            thread.join(timeout=30)
        self._threads = []
        self._drain_blocks()

    # --- deciding ---------------------------------------------------------------------------------

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    # --- caller authentication ----------------------------------------------------------------------

    def _caller_authentication(self) -> CallerAuthentication:
        """Loaded on first use: the caller-number ledger in memory and a verifier with a warm cache.

        The lock is taken only the first time: the follower holds it while it reads the database, and
        the per-call path must never wait for that."""
        loaded = self._callerauth
        if loaded is not None:
            return loaded
        with self._lock:
            if self._callerauth is None:
                roots = self.rt.settings.callerauth_trust_roots
                trust = TrustStore.from_files([roots]) if roots else None
                verifier = Verifier(HttpsCertificateFetcher(), trust, require_tn_auth_list=trust is not None)
                with self.rt.sessions() as session:
                    self._callerauth = CallerAuthentication.load(session, verifier)
            return self._callerauth

    def authenticate(self, call: CallerAuthCall) -> tuple[CallerAuth, dict[str, Any]]:
        """Run caller authentication (ledger spoofing checks, then the PASSporT when one came) and say
        what it means for the decision, with callerauth's own findings for the explanation."""
        screened = self._caller_authentication().screen(call, now=self.rt.clock.now())
        outcome = screened.check.outcome
        if outcome is CallerAuthOutcome.BLOCK:
            result = CallerAuth.FAILED
        elif outcome is CallerAuthOutcome.WARN:
            result = CallerAuth.UNVERIFIED
        else:
            result = CallerAuth.PASSED
        return result, screened.as_dict()

    def decide(
        self, req: ScreenRequest, *, record: bool = True, caller: str = "", callee: str = ""
    ) -> Outcome:
        """Decide one call or SMS; a block is queued for the 拦截记录 writer (never written inline)."""
        out = self._snapshot.decide(req)
        if record and out.decision is Decision.BLOCK:
            self._blocks.put(
                BlockEvent(
                    self.rt.clock.now(),
                    caller or f"+{req.caller}",
                    callee or f"+{req.callee}",
                    req.channel.value,
                    req.category.value if req.category else None,
                    out.reason.value,
                    out.rule.value,
                )
            )
        return out

    # --- following and rebuilding -----------------------------------------------------------------

    def poll(self) -> int:
        """Apply new changes now (the follower thread calls this every ``poll_interval``)."""
        with self._lock:
            applied = self.follower.poll(self._snapshot).applied
            if self._callerauth is not None:
                with self.rt.sessions() as session:
                    self._callerauth.refresh(session)
            return applied

    def _follow(self) -> None:
        since_rebuild = 0.0
        while not self._stop.wait(self.poll_interval):
            try:
                self.poll()
                since_rebuild += self.poll_interval
                if since_rebuild >= self.rebuild_interval:
                    since_rebuild = 0.0
                    self.rebuild_and_verify(save=True)
            except Exception:  # the follower must survive a database hiccup; it retries next tick
                log.exception("screening follower: poll failed; retrying")

    def _rebuild(self) -> Snapshot:
        with self.rt.sessions() as session:
            state = source.read_state(session, self.rt.clock.now())
        return Snapshot.compile(state, policy=self.rt.settings.consent_policy)

    def rebuild_and_verify(self, *, save: bool = False) -> dict[str, Any]:
        """Rebuild from the database, check that the delta-fed snapshot agrees, and swap it in."""
        with self._lock:
            rebuilt = self._rebuild()
            live = self._snapshot
            # Bring both to the same position: apply to each what the other has seen and it has not.
            rows = self.follower.fetch(min(live.feed_low, rebuilt.feed_low), limit=1_000_000)
            for row in rows:
                for snap in (live, rebuilt):
                    if snap.has_applied(row.id):
                        continue
                    if row.topic in TOPICS:
                        snap.apply(row.id, row.topic, row.payload, row.at)
                    else:
                        snap.mark_applied(row.id)
            differences = differing_parts(live, rebuilt)
            self.rebuilds += 1
            if differences:
                self.disagreements += 1
                log.error("screening: delta-fed snapshot disagrees with a rebuild in %s", differences)
            self._snapshot = rebuilt
        if save:
            self.save()
        return {"agree": not differences, "differences": differences, "feed_id": rebuilt.feed_id}

    def save(self) -> Path:
        with self._lock:
            snap = self._snapshot.compacted()
        snap.origin = self._origin(snap.feed_low)
        return snap.save(self.snapshot_path)

    # --- block records ----------------------------------------------------------------------------

    def _write_blocks(self) -> None:
        while True:
            first = self._blocks.get()
            batch = [first] if first is not None else []
            while len(batch) < 5_000:
                try:
                    item = self._blocks.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    first = None
                    break
                batch.append(item)
            if batch:
                self._insert(batch)
            if first is None:
                return
            # A lone block is written at once; under load, the blocks of the next moment gather
            # meanwhile and go out in one transaction, not one each (measured on SQLite with two
            # workers: a commit per block cost a third of the screening endpoint's throughput).
            self._stop.wait(BLOCK_GATHER_SECONDS)

    def _drain_blocks(self) -> None:
        batch: list[BlockEvent] = []
        while True:
            try:
                item = self._blocks.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                batch.append(item)
        if batch:
            self._insert(batch)

    def _insert(self, batch: list[BlockEvent]) -> None:
        try:
            actions.record_blocks(self.rt, batch)
            self.blocks_written += len(batch)
        except Exception:  # keep them: put back for the next round, never drop silently
            log.exception("screening: writing %d block records failed; will retry", len(batch))
            for item in batch:
                self._blocks.put(item)
            self._stop.wait(1.0)

    def flush_blocks(self) -> None:
        """Write every queued block record now (tests and shutdown)."""
        self._drain_blocks()


def differing_parts(a: Snapshot, b: Snapshot) -> list[str]:
    """Names of the parts where two snapshots hold different content (empty: they agree)."""

    def same(x: LiveSet, y: LiveSet) -> bool:
        return len(x) == len(y) and np.array_equal(x.to_array(), y.to_array())

    out: list[str] = []
    for key in sorted(set(a.refusals) | set(b.refusals)):
        if not same(a.refusals.get(key, LiveSet()), b.refusals.get(key, LiveSet())):
            out.append(f"refusals[{key[0]},{key[1]}]")
    for ckey in sorted(set(a.consents) | set(b.consents)):
        if not same(a.consents.get(ckey, LiveSet()), b.consents.get(ckey, LiveSet())):
            out.append(f"consents[{','.join(ckey)}]")
    for name in ("system_allow", "system_block", "warnings", "high_risk"):
        if not same(getattr(a, name), getattr(b, name)):
            out.append(name)
    if {k: v for k, v in a.personal.items() if not v.empty} != {
        k: v for k, v in b.personal.items() if not v.empty
    }:
        out.append("personal")
    return out
