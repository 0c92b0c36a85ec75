"""Reactions to other contexts' change-feed events (run by the ``reactions.relay`` job).

- ``complaints.responded`` with a substantiated result: the reporter's marks weigh more
  (``marks.record_verified_complaint``), and once enough distinct reporters' complaints against a number
  are substantiated — or one complaint of fraud (违法犯罪类) is — the number enters the high-risk list as
  suspected (issue 6: "Numbers flagged by strong evidence (many substantiated complaints …)").
- ``complaints.number_blocked``: the number is on the system block list (DESIGN.md decision order step 5).
  The complaints context sets it right after its own commit; repeating it here from the feed makes the
  block survive a crash between the two transactions.
- ``traffic.finding``: a detector's finding enters the high-risk list as suspected, for the responsible
  carrier to verify (issue 7: "Findings become high-risk candidates for review"); a call bombing in
  progress is also blocked at once, for ``bombing_block_hours``, then lifted by ``lift_expired_blocks``
  (issue 7: "automatic temporary blocks for bombing in progress"). Numbers on the system allow list
  (verified enterprise numbers: banks, delivery platforms) are never flagged or blocked automatically.

Delivery is at least once (``platform.feedcursor``): every handler checks the current state first (the
reporter credit is keyed by the complaint), so a repeated event changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from quietline.complaints import queries as complaints_queries
from quietline.complaints.actions import TOPIC_NUMBER_BLOCKED, TOPIC_RESPONDED
from quietline.complaints.model import Measure, Result
from quietline.marks import actions as marks_actions
from quietline.marks import queries as marks_queries
from quietline.marks.model import HighRiskSource, HighRiskState
from quietline.numbers import parse
from quietline.platform.actor import Actor
from quietline.platform.changefeed import Change
from quietline.platform.errors import Conflict, InvalidInput
from quietline.platform.feedcursor import DurableFeedReader, PollReport
from quietline.platform.runtime import Runtime
from quietline.platform.scheduler import CHINA_TZ
from quietline.reactions.orm import TemporaryBlockRow
from quietline.registry import actions as registry_actions
from quietline.registry import queries as registry_queries
from quietline.registry.model import ListName
from quietline.traffic.actions import TOPIC_FINDING
from quietline.vocabulary import CallNature

log = logging.getLogger(__name__)

#: The feed cursor's name.
READER = "reactions"
#: Announced by the traffic context for every stored high-risk candidate (``traffic.actions.FindingPayload``:
#: number, pattern, score, evidence, and ``in_progress`` for a bombing still going on).
TOPIC_TRAFFIC_FINDING = TOPIC_FINDING

PATTERN_LABELS = {
    "bombing": "呼死你轰炸",
    "one_ring": "响一声",
    "bulk_dialer": "超量外呼",
    "spoofed": "改号冒用",
    "fraud_risk": "涉诈风险",
}


def _actor() -> Actor:
    return Actor.system("reactions")


def _on_high_risk_list(rt: Runtime, number: str) -> bool:
    with rt.sessions() as session:
        entry = marks_queries.high_risk(session, number)
    return entry is not None and entry.state is not HighRiskState.CLEARED


def _system_list(rt: Runtime, list_name: ListName, number: str) -> tuple[bool, str] | None:
    with rt.sessions() as session:
        return registry_queries.system_list_entry(session, list_name.value, number)


def _allow_listed(rt: Runtime, number: str) -> bool:
    entry = _system_list(rt, ListName.ALLOW, number)
    return entry is not None and entry[0]


def _flag(rt: Runtime, number: str, source: HighRiskSource, reason: str) -> bool:
    if _on_high_risk_list(rt, number):
        return False
    try:
        marks_actions.flag_high_risk(rt, _actor(), number=number, source=source.value, reason=reason[:500])
    except Conflict:
        return False  # another process flagged it between our check and our write.
    return True


def on_complaint_responded(rt: Runtime, change: Change) -> None:
    p = change.payload
    if p.get("result") != Result.SUBSTANTIATED.value:
        return
    reporter, reported = str(p["reporter"]), str(p["reported"])
    # Keyed by the complaint: a redelivered event (or a second substantiation after an appeal) credits
    # the reporter once.
    marks_actions.record_verified_complaint(rt, _actor(), reporter, complaint=str(p["case_id"]))
    with rt.sessions() as session:
        substantiated = complaints_queries.substantiated_reporters(session, reported)
    fraud = p.get("nature") == CallNature.FRAUD.value
    if substantiated >= rt.settings.high_risk_min_substantiated_complaints or fraud:
        why = "违法犯罪类投诉核查属实" if fraud else f"{substantiated} 位用户的投诉核查属实"
        _flag(rt, reported, HighRiskSource.COMPLAINTS, f"12321 {why}（案件 {p.get('case_id')}）")


def on_number_blocked(rt: Runtime, change: Change) -> None:
    p = change.payload
    number = str(p["number"])
    entry = _system_list(rt, ListName.BLOCK, number)
    if entry is not None and entry[0]:
        return
    measure = Measure.parse(str(p["measure"]), "measure")
    registry_actions.set_system_list(
        rt,
        _actor(),
        ListName.BLOCK,
        parse(number, field="number"),
        active=True,
        reason=f"12321 投诉 {p.get('case_id')} 核查属实：{measure.label}",
    )


def _evidence_text(evidence: Any) -> str:
    if isinstance(evidence, dict):
        return "，".join(f"{k}={v}" for k, v in list(evidence.items())[:8])
    return str(evidence or "")


def on_traffic_finding(rt: Runtime, change: Change) -> None:
    p = change.payload
    number = str(p.get("number") or change.key)
    pattern = str(p.get("pattern") or "")
    if _allow_listed(rt, number):
        log.info("traffic finding for allow-listed %s (%s) left for the analyst", number, pattern)
        return
    label = PATTERN_LABELS.get(pattern, pattern)
    score = p.get("score")
    scored = f"，评分 {float(score):.2f}" if isinstance(score, int | float) else ""
    _flag(
        rt,
        number,
        HighRiskSource.TRAFFIC,
        f"异常话务监测：{label}{scored}；{_evidence_text(p.get('evidence'))}",
    )
    if pattern == "bombing" and p.get("in_progress"):
        _block_bombing(rt, number, change)


def _block_bombing(rt: Runtime, number: str, change: Change) -> None:
    now = rt.clock.now()
    with rt.sessions.begin() as session:
        row = session.scalar(select(TemporaryBlockRow).where(TemporaryBlockRow.change_id == change.id))
        if row is None:
            active = registry_queries.system_list_entry(session, ListName.BLOCK.value, number)
            if active is not None and active[0]:
                return  # already blocked for another reason: nothing to add, nothing to lift later.
            until = now + timedelta(hours=rt.settings.bombing_block_hours)
            reason = f"呼死你轰炸进行中，自动临时拦截至 {until.astimezone(CHINA_TZ):%m-%d %H:%M}"
            row = TemporaryBlockRow(
                number=number, reason=reason, created_at=now, until=until, change_id=change.id
            )
            session.add(row)
        if row.lifted_at is not None or row.until <= now:
            return
        reason = row.reason
    entry = _system_list(rt, ListName.BLOCK, number)
    if entry is None or not entry[0]:
        registry_actions.set_system_list(
            rt, _actor(), ListName.BLOCK, parse(number, field="number"), active=True, reason=reason
        )


def lift_expired_blocks(rt: Runtime) -> int:
    """Lift the automatic bombing blocks whose time is up, unless someone has re-set the block since."""
    now = rt.clock.now()
    with rt.sessions() as session:
        due = list(
            session.scalars(
                select(TemporaryBlockRow).where(
                    TemporaryBlockRow.until <= now, TemporaryBlockRow.lifted_at.is_(None)
                )
            )
        )
    lifted = 0
    for row in due:
        entry = _system_list(rt, ListName.BLOCK, row.number)
        if entry is not None and entry[0] and entry[1] == row.reason:
            registry_actions.set_system_list(
                rt,
                _actor(),
                ListName.BLOCK,
                parse(row.number, field="number"),
                active=False,
                reason=f"自动临时拦截到期解除（{row.reason}）"[:200],
            )
            lifted += 1
        with rt.sessions.begin() as session:
            current = session.get(TemporaryBlockRow, row.id)
            if current is not None and current.lifted_at is None:
                current.lifted_at = now
    return lifted


HANDLERS: dict[str, Callable[[Runtime, Change], None]] = {
    TOPIC_RESPONDED: on_complaint_responded,
    TOPIC_NUMBER_BLOCKED: on_number_blocked,
    TOPIC_TRAFFIC_FINDING: on_traffic_finding,
}


def reader(rt: Runtime, *, gap_grace: float = 30.0) -> DurableFeedReader:
    """The durable feed reader that dispatches to the handlers above."""

    def handle(change: Change) -> None:
        try:
            HANDLERS[change.topic](rt, change)
        except (InvalidInput, Conflict) as exc:
            # The event names something the target context refuses (say, a number it cannot mark):
            # retrying cannot help, so it is logged and passed over rather than blocking the feed.
            log.warning("reaction to change %s (%s) refused: %s", change.id, change.topic, exc)

    return DurableFeedReader(rt, READER, frozenset(HANDLERS), handle, gap_grace=gap_grace)


def run(rt: Runtime, feed: DurableFeedReader | None = None) -> PollReport:
    """One relay pass over the feed backlog. Keep one ``feed`` reader per process and pass it in: it
    remembers how long a missing id has been missing (``platform.feedcursor``)."""
    return (feed or reader(rt)).drain()
