"""The only write path of the traffic context: storing detection runs and their findings.

A carrier (or the platform operator on its behalf, from the CLI) stores what a batch detection or
the streaming bombing detector found. Each store is one transaction holding the run, its findings,
their audit rows and their change-feed rows, so a finding is announced if and only if it is kept.

Findings become high-risk candidates through the change feed (issue 7 "Action": "Findings become
high-risk candidates for review (or automatic temporary blocks for bombing in progress)"): the
reactions relay turns every :data:`TOPIC_FINDING` row into a suspected entry on the marks context's
high-risk list and blocks a bombing in progress for a while. Findings about legitimate callers on an
allow list — the carrier's own (``--allow-list``) or the system allow list of verified enterprise
numbers — are stored for the analyst but never announced: "legitimate high-volume callers on an
allow list (delivery platforms, banks) are never blocked automatically" (issue 7).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict

from sqlalchemy import select
from sqlalchemy.orm import Session

from quietline.numbers import parse
from quietline.platform import audit, changefeed
from quietline.platform.actor import Actor
from quietline.platform.errors import InvalidInput, NotFound, PermissionDenied
from quietline.platform.runtime import Runtime
from quietline.registry import queries as registry_queries
from quietline.registry.model import ListName
from quietline.traffic import queries
from quietline.traffic.orm import FindingRow, RunRow
from quietline.traffic.rules import PRECEDENCE, Finding, Thresholds
from quietline.traffic.streaming import BombingAlert
from quietline.vocabulary import Carrier, Role, VocabularyError

#: The change-feed topic of a stored finding that is a high-risk candidate (one row per finding,
#: key = the number in E.164 with its ``+``; payload: :class:`FindingPayload`).
TOPIC_FINDING = "traffic.finding"

#: Run kinds.
BATCH = "batch"
STREAM = "stream"

#: At most this many evidence entries travel on the feed (the full evidence stays in the table).
FEED_EVIDENCE_KEYS = 12


class FindingPayload(TypedDict):
    """The payload of a :data:`TOPIC_FINDING` change-feed row (the contract the reactions relay reads).

    ``number``: E.164 with ``+`` (also the row's key). ``pattern``: ``bombing``, ``one_ring``,
    ``bulk_dialer``, ``spoofed`` or ``fraud_risk``. ``score``: in [0, 1], 0.5 at a rule's threshold.
    ``action``: the detector's advice, ``review`` or ``temporary_block``. ``in_progress``: a call
    bombing still going on (the streaming detector's alerts, and batch bombings whose data ends
    within ``Thresholds.bombing_in_progress_minutes`` of the time they are stored); only these may
    be blocked automatically. ``evidence``: up to :data:`FEED_EVIDENCE_KEYS` scalar entries of the
    finding's evidence (counts, windows, victim), which an analyst can check against the records.
    ``run_id`` and ``finding_id`` name the stored run and finding; ``carrier`` whose records they are.
    """

    number: str
    pattern: str
    score: float
    action: str
    in_progress: bool
    evidence: dict[str, Any]
    run_id: str
    finding_id: int
    carrier: str


@dataclass(frozen=True, slots=True)
class StoredRun:
    run: queries.RunView
    findings: int
    candidates: int
    allow_listed: int

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.run.as_dict(),
            "findings_stored": self.findings,
            "candidates": self.candidates,
            "allow_listed": self.allow_listed,
        }


def _now(rt: Runtime) -> datetime:
    return rt.clock.now()


def resolve_carrier(actor: Actor, carrier: str | None) -> str:
    """Whose records these are: a carrier stores its own; the operator names the carrier."""
    if actor.role is Role.CARRIER:
        if carrier and _carrier_code(carrier) != _carrier_code(actor.subject):
            raise PermissionDenied("a carrier stores only its own call records", field="carrier")
        return _carrier_code(actor.subject)
    if actor.role is not Role.OPERATOR:
        raise PermissionDenied(
            f"storing traffic findings is for carrier, operator, not {actor.role.value}", field="role"
        )
    if not carrier or not carrier.strip():
        raise InvalidInput("name the carrier whose call records these are (--carrier)", field="carrier")
    return _carrier_code(carrier)


def _carrier_code(text: str) -> str:
    """A carrier's code (``china_mobile`` or 中国移动 both work); resale operators by name."""
    value = text.strip()
    try:
        return Carrier.parse(value, "carrier").value
    except VocabularyError:
        if not 1 <= len(value) <= 40:
            raise InvalidInput("a carrier name is 1 to 40 characters", field="carrier") from None
        return value


def evidence_summary(evidence: dict[str, Any]) -> dict[str, Any]:
    """The scalar entries of a finding's evidence, the first :data:`FEED_EVIDENCE_KEYS` of them."""
    out: dict[str, Any] = {}
    for key, value in evidence.items():
        if isinstance(value, str | int | float | bool) or value is None:
            out[key] = value
        if len(out) == FEED_EVIDENCE_KEYS:
            break
    return out


def check_finding(finding: Finding) -> None:
    """A finding names an E.164 number, a known pattern and a score in [0, 1]."""
    if not (
        finding.number.startswith("+") and finding.number[1:].isdigit() and 6 <= len(finding.number) <= 16
    ):
        raise InvalidInput(f"{finding.number!r} is not an E.164 number", field="number")
    if finding.pattern not in PRECEDENCE:
        raise InvalidInput(
            f"unknown pattern {finding.pattern!r}; one of {', '.join(PRECEDENCE)}", field="pattern"
        )
    if not 0.0 <= finding.score <= 1.0:
        raise InvalidInput(f"score {finding.score} is outside [0, 1]", field="score")


def _system_allow_listed(session: Session, numbers: Sequence[str]) -> set[str]:
    """Numbers on the system allow list (verified enterprise numbers, DESIGN.md decision step 4)."""
    allowed: set[str] = set()
    for number in numbers:
        entry = registry_queries.system_list_entry(session, ListName.ALLOW.value, number)
        if entry is not None and entry[0]:
            allowed.add(number)
    return allowed


def _new_run_id() -> str:
    return "tr-" + secrets.token_hex(8)


def _store_findings(
    session: Session,
    actor: Actor,
    run: RunRow,
    items: Sequence[tuple[Finding, bool]],
    now: datetime,
) -> tuple[int, int]:
    """Insert findings (each with whether it is in progress); audit and announce them. Returns
    (candidates, allow_listed)."""
    if not items:
        return 0, 0
    for finding, _ in items:
        check_finding(finding)
    system_allowed = _system_allow_listed(session, sorted({f.number for f, _ in items}))
    rows: list[FindingRow] = []
    for finding, in_progress in items:
        allowed = finding.allow_listed or finding.number in system_allowed
        rows.append(
            FindingRow(
                run_pk=run.id,
                number=finding.number,
                pattern=finding.pattern,
                score=float(finding.score),
                # Never an automatic block for an allow-listed caller (issue 7 "Action").
                action="review" if allowed else finding.action,
                allow_listed=allowed,
                candidate=not allowed,
                in_progress=in_progress and not allowed,
                evidence=finding.evidence,
                also_matched=list(finding.also_matched),
                created_at=now,
            )
        )
    session.add_all(rows)
    session.flush()
    feed: list[dict[str, Any]] = []
    for row in rows:
        audit.record(
            session,
            actor=actor,
            action="traffic.finding.stored",
            subject_type="number",
            subject=row.number,
            at=now,
            after={
                "run_id": run.run_id,
                "finding_id": row.id,
                "pattern": row.pattern,
                "score": row.score,
                "action": row.action,
                "candidate": row.candidate,
                "allow_listed": row.allow_listed,
                "in_progress": row.in_progress,
            },
        )
        if row.candidate:
            payload: FindingPayload = {
                "number": row.number,
                "pattern": row.pattern,
                "score": row.score,
                "action": row.action,
                "in_progress": row.in_progress,
                "evidence": evidence_summary(row.evidence),
                "run_id": run.run_id,
                "finding_id": row.id,
                "carrier": run.carrier,
            }
            feed.append({"topic": TOPIC_FINDING, "key": row.number, "payload": dict(payload), "at": now})
    changefeed.emit_many(session, feed)
    candidates = len(feed)
    return candidates, len(rows) - candidates


def store_run(
    rt: Runtime,
    actor: Actor,
    *,
    carrier: str | None,
    findings: Sequence[Finding],
    rows: int,
    rejected: dict[str, int],
    backend: str,
    source: str,
    summary: dict[str, Any],
    data_end: float | None,
    thresholds: Thresholds | None = None,
) -> StoredRun:
    """Store one batch detection run and its findings (one transaction, audited, announced).

    A bombing counts as in progress when the detector advised a temporary block (its last window
    ends near the end of the data) *and* the data itself ends within
    ``bombing_in_progress_minutes`` of now: last week's records describe no bombing in progress.
    """
    th = thresholds or Thresholds()
    owner = resolve_carrier(actor, carrier)
    now = _now(rt)
    fresh = data_end is not None and now.timestamp() - data_end <= th.bombing_in_progress_minutes * 60
    items = [(f, fresh and f.pattern == "bombing" and f.action == "temporary_block") for f in findings]
    with rt.sessions.begin() as session:
        run = RunRow(
            run_id=_new_run_id(),
            kind=BATCH,
            carrier=owner,
            source=source[-300:],
            backend=backend,
            rows=rows,
            rejected=dict(rejected),
            summary=summary,
            created_at=now,
        )
        session.add(run)
        session.flush()
        candidates, allowed = _store_findings(session, actor, run, items, now)
        audit.record(
            session,
            actor=actor,
            action="traffic.run.stored",
            subject_type="traffic_run",
            subject=run.run_id,
            at=now,
            after={
                "kind": BATCH,
                "carrier": owner,
                "source": run.source,
                "rows": rows,
                "findings": len(items),
                "candidates": candidates,
                "allow_listed": allowed,
            },
        )
        view = queries.run_view(run, findings=len(items))
    return StoredRun(view, len(items), candidates, allowed)


def alert_finding(alert: BombingAlert, min_calls: int) -> Finding:
    """A streaming bombing alert as a finding (pattern ``bombing``; the victim and the window are
    its evidence). The score is the rules' strength: 0.5 at the alert threshold, towards 1 above."""
    calls = alert.calls_in_window
    score = round(1.0 - 0.5 * min(1.0, max(min_calls, 1) / max(calls, 1)), 4)
    return Finding(
        number=parse(alert.caller, field="caller").e164,
        pattern="bombing",
        score=score,
        evidence={
            "victim": parse(alert.callee, field="callee").e164,
            "calls_in_window": calls,
            "window_seconds": alert.window_seconds,
            "onset": alert.onset,
            "detected_at": alert.detected_at,
            "latency_seconds": alert.latency_seconds,
            "threshold": min_calls,
            "source": "streaming",
        },
        action="temporary_block",
    )


def store_alerts(
    rt: Runtime,
    actor: Actor,
    *,
    carrier: str | None,
    alerts: Sequence[BombingAlert],
    min_calls: int,
    run_id: str | None = None,
    source: str = "stream",
    events: int = 0,
) -> tuple[str, list[queries.FindingView]]:
    """Store streaming bombing alerts as in-progress findings of a stream run (created on first use,
    then reused by passing its ``run_id``). Returns the run id and the stored findings."""
    owner = resolve_carrier(actor, carrier)
    now = _now(rt)
    with rt.sessions.begin() as session:
        run = None
        if run_id is not None:
            run = session.scalar(select(RunRow).where(RunRow.run_id == run_id))
            if run is None or run.carrier != owner or run.kind != STREAM:
                raise NotFound(f"no stream run {run_id} of {owner}", field="run_id")
        if run is None:
            run = new_stream_run(session, actor, carrier=owner, source=source, now=now)
        run.rows = run.rows + events
        return run.run_id, add_alerts(session, actor, run, alerts, min_calls=min_calls, now=now)


def new_stream_run(session: Session, actor: Actor, *, carrier: str, source: str, now: datetime) -> RunRow:
    """A new, empty stream run of ``carrier`` (audited), inside the caller's transaction."""
    run = RunRow(
        run_id=_new_run_id(),
        kind=STREAM,
        carrier=carrier,
        source=source[-300:],
        backend="stream",
        rows=0,
        rejected={},
        summary={"alerts": 0},
        created_at=now,
    )
    session.add(run)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="traffic.run.stored",
        subject_type="traffic_run",
        subject=run.run_id,
        at=now,
        after={"kind": STREAM, "carrier": carrier, "source": run.source},
    )
    return run


def add_alerts(
    session: Session,
    actor: Actor,
    run: RunRow,
    alerts: Sequence[BombingAlert],
    *,
    min_calls: int,
    now: datetime,
) -> list[queries.FindingView]:
    """Store alerts as in-progress bombing findings of the stream ``run`` (audited, announced as
    high-risk candidates) inside the caller's transaction; returns the stored findings."""
    if not alerts:
        return []
    before = session.scalar(select(FindingRow.id).order_by(FindingRow.id.desc()).limit(1)) or 0
    items = [(alert_finding(a, min_calls), True) for a in alerts]
    _store_findings(session, actor, run, items, now)
    run.summary = {**run.summary, "alerts": int(run.summary.get("alerts", 0)) + len(items)}
    stored = session.scalars(
        select(FindingRow).where(FindingRow.run_pk == run.id, FindingRow.id > before).order_by(FindingRow.id)
    )
    return [queries.finding_view(row, run.run_id) for row in stored]


class AlertRecorder:
    """Keeps a streaming detector's alerts as in-progress bombing findings of one stream run.

    The run is created with the first alert and reused for the later ones (a file tail, a NATS
    consumer each hold one recorder for their life; the API's detector, shared by every server
    worker, keeps its run in the database: ``live.LiveDetectors``). Nothing is written until
    there is an alert: the records seen in between are counted and added to the run with it.
    """

    def __init__(
        self, rt: Runtime, actor: Actor, *, carrier: str | None, min_calls: int, source: str = "stream"
    ) -> None:
        self.rt = rt
        self.actor = actor
        self.carrier = resolve_carrier(actor, carrier)
        self.min_calls = min_calls
        self.source = source
        self.run_id: str | None = None
        self._pending_events = 0

    def record(
        self, alerts: Sequence[BombingAlert], events: int = 0, *, actor: Actor | None = None
    ) -> list[queries.FindingView]:
        """Store ``alerts`` (as ``actor``, by default the recorder's); ``events`` records were read."""
        self._pending_events += events
        if not alerts:
            return []
        self.run_id, stored = store_alerts(
            self.rt,
            actor or self.actor,
            carrier=self.carrier,
            alerts=alerts,
            min_calls=self.min_calls,
            run_id=self.run_id,
            source=self.source,
            events=self._pending_events,
        )
        self._pending_events = 0
        return stored
