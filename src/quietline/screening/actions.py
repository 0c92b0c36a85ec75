"""The only write path of the screening context: block records, washes, daily digests.

Every action is one transaction; washes and digests write their audit row in it. Block records are
written in batches by the engine's writer thread (they record what the engine did, the audit log
records who changed what).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, insert, select

from quietline.accounts.model import parse_uscc
from quietline.platform import audit
from quietline.platform.actor import Actor
from quietline.platform.errors import InvalidInput, PermissionDenied, RateLimited
from quietline.platform.runtime import Runtime
from quietline.platform.sms import SmsMessage
from quietline.platform.workdays import CHINA_TZ, china_date
from quietline.screening import wash as washing
from quietline.screening.model import Reason
from quietline.screening.orm import BlockRecordRow, WashRunRow
from quietline.screening.snapshot import Snapshot
from quietline.vocabulary import Category, Channel, Role

if TYPE_CHECKING:
    from quietline.screening.engine import BlockEvent

#: The issue: a wash takes up to 10 million lines.
MAX_WASH_LINES = 10_000_000
#: Reasons the daily digest counts as "营销来电" (marketing the subscriber refused or never agreed to).
MARKETING_REASONS = (Reason.REFUSED_CATEGORY.value, Reason.NO_CONSENT.value)


def record_blocks(rt: Runtime, events: Sequence[BlockEvent]) -> None:
    """Insert queued block records in one transaction (called by the engine's writer thread)."""
    if not events:
        return
    with rt.sessions.begin() as session:
        session.execute(
            insert(BlockRecordRow),
            [
                {
                    "at": e.at,
                    "callee": e.callee,
                    "caller": e.caller,
                    "channel": e.channel,
                    "category": e.category,
                    "reason": e.reason,
                    "rule": e.rule,
                }
                for e in events
            ],
        )


def _check_wash_actor(actor: Actor, enterprise: str) -> None:
    if actor.role is Role.OPERATOR:
        return
    if actor.role is Role.ENTERPRISE and actor.subject == enterprise:
        return
    raise PermissionDenied("an enterprise washes lists only in its own name", field="enterprise")


def used_today(rt: Runtime, enterprise: str, day: date) -> int:
    with rt.sessions() as session:
        return int(
            session.scalar(
                select(func.coalesce(func.sum(WashRunRow.lines), 0)).where(
                    WashRunRow.enterprise == enterprise, WashRunRow.day == day.isoformat()
                )
            )
            or 0
        )


def wash_file(
    rt: Runtime,
    actor: Actor,
    snapshot: Snapshot,
    *,
    source: Path,
    enterprise: str,
    category: Category,
    channel: Channel,
    out: Path,
    progress: washing.Progress | None = None,
) -> dict[str, Any]:
    """Wash an uploaded list into ``out`` (callable numbers, E.164, one per line) and return the summary.

    Counted against the enterprise's daily quota (``settings.wash_daily_quota`` lines per China day)
    and audited with the counts only, never the numbers.
    """
    uscc = parse_uscc(enterprise, field="enterprise")
    _check_wash_actor(actor, uscc)
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"{source}: cannot be read ({exc.strerror})", field="file") from None
    lines = washing.count_lines(data)
    if lines > MAX_WASH_LINES:
        raise InvalidInput(f"{lines} lines; a wash takes at most {MAX_WASH_LINES}", field="file")
    now = rt.clock.now()
    day = china_date(now)
    used = used_today(rt, uscc, day)
    quota = rt.settings.wash_daily_quota
    if used + lines > quota:
        raise RateLimited(
            f"daily wash quota exceeded: {used} of {quota} lines used today ({day}), this list has {lines}",
            field="quota",
        )
    result = washing.wash(
        snapshot, data, enterprise=uscc, category=category, channel=channel, progress=progress
    )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".part")
        tmp.write_bytes(washing.e164_lines(result.callable_numbers))
        tmp.replace(out)
    except OSError as exc:
        raise InvalidInput(f"{out}: cannot be written ({exc.strerror})", field="out") from None
    summary = {**result.summary(), "enterprise": uscc, "category": category.value, "channel": channel.value}
    with rt.sessions.begin() as session:
        session.add(
            WashRunRow(
                at=now,
                day=day.isoformat(),
                enterprise=uscc,
                actor=str(actor),
                category=category.value,
                channel=channel.value,
                lines=lines,  # what the quota counts: every non-blank line uploaded
                callable=result.callable,
                refused=result.refused,
                no_consent=result.no_consent,
                invalid=result.invalid,
                duplicates=result.duplicates,
            )
        )
        audit.record(
            session,
            actor=actor,
            action="screening.wash",
            subject_type="enterprise",
            subject=uscc,
            at=now,
            after={**summary, "quota_used": used + lines, "quota": quota},
        )
    return {**summary, "quota_used": used + lines, "quota": quota, "out": str(out)}


def send_daily_digests(rt: Runtime, actor: Actor, day: date) -> int:
    """Send each subscriber with marketing blocks on ``day`` one SMS: "今日为您拦截 N 个营销来电"."""
    start = datetime(day.year, day.month, day.day, tzinfo=CHINA_TZ)
    end = datetime.fromordinal(day.toordinal() + 1).replace(tzinfo=CHINA_TZ)
    with rt.sessions() as session:
        rows = session.execute(
            select(BlockRecordRow.callee, BlockRecordRow.channel, func.count())
            .where(
                BlockRecordRow.at >= start,
                BlockRecordRow.at < end,
                BlockRecordRow.reason.in_(MARKETING_REASONS),
            )
            .group_by(BlockRecordRow.callee, BlockRecordRow.channel)
        ).all()
    counts: dict[str, dict[str, int]] = {}
    for callee, channel, n in rows:
        counts.setdefault(callee, {})[channel] = int(n)
    now = rt.clock.now()
    for callee, by_channel in sorted(counts.items()):
        parts = []
        if by_channel.get("call"):
            parts.append(f"{by_channel['call']} 个营销来电")
        if by_channel.get("sms"):
            parts.append(f"{by_channel['sms']} 条营销短信")
        text = f"【quietline】{day.month}月{day.day}日为您拦截 {'、'.join(parts)}，详情可在拦截记录中查看。"
        rt.sms.send(SmsMessage(to=callee, text=text, at=now, purpose="screening.digest"))
    with rt.sessions.begin() as session:
        audit.record(
            session,
            actor=actor,
            action="screening.daily_digest",
            subject_type="day",
            subject=day.isoformat(),
            at=now,
            after={"subscribers": len(counts)},
        )
    return len(counts)
