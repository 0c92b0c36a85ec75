"""The job table: every periodic job of the platform, with its period.

Periods follow the rules the jobs serve: the relay runs every second so a finding or a substantiated
complaint reaches screening within seconds; webhooks are posted from their outbox within a second and
retried with backoff (issue 5: "A new case reaches the responsible company the moment it is
forwarded"); deadline scans run every five minutes, well inside the two-working-day warning (issue 5);
the 拦截 digest goes out once a day in the evening, China time (issue 4); consent proofs past retention
are purged nightly (DESIGN.md: proof kept at least 5 months, configurable, never shorter); wash jobs
left by a restart are resumed within seconds, in their own lane so a long wash delays nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time, timedelta
from typing import Any

from quietline.complaints import actions as complaints_actions
from quietline.complaints import webhooks
from quietline.marks import actions as marks_actions
from quietline.platform.actor import Actor
from quietline.platform.feedcursor import DurableFeedReader
from quietline.platform.runtime import Runtime
from quietline.platform.scheduler import CHINA_TZ, Job, JobResult, Scheduler
from quietline.platform.settings import Settings
from quietline.reactions import relay
from quietline.registry import actions as registry_actions
from quietline.screening import actions as screening_actions
from quietline.traffic import live as traffic_live

WebhookTransportFactory = Callable[[], webhooks.Transport]


def _actor(job: str) -> Actor:
    return Actor.system(job)


def _clock_time(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def build_jobs(settings: Settings, *, webhook_transport: WebhookTransportFactory | None = None) -> list[Job]:
    """Every job, with periods taken from ``settings``. Tests pass a fake webhook transport."""
    readers: dict[int, DurableFeedReader] = {}
    make_transport: WebhookTransportFactory = webhook_transport or (
        lambda: webhooks.HttpxTransport(timeout=5.0)
    )

    def reactions_relay(rt: Runtime, _due: datetime) -> JobResult:
        # One reader per runtime, kept across runs: it times how long a missing feed id has been missing.
        feed = readers.setdefault(id(rt), relay.reader(rt))
        return relay.run(rt, feed).as_dict()

    def lift_blocks(rt: Runtime, _due: datetime) -> JobResult:
        return {"lifted": relay.lift_expired_blocks(rt)}

    def complaints_scan(rt: Runtime, _due: datetime) -> JobResult:
        flagged = complaints_actions.scan(rt)
        closed = complaints_actions.close_expired(rt)
        return {"flagged": len(flagged), "closed": len(closed)}

    def complaints_webhooks(rt: Runtime, _due: datetime) -> JobResult:
        transport = make_transport()
        try:
            report: dict[str, Any] = complaints_actions.deliver_webhooks(rt, transport, limit=500).as_dict()
        finally:
            close = getattr(transport, "close", None)
            if close is not None:
                close()
        return report

    def expire_refusals(rt: Runtime, _due: datetime) -> JobResult:
        return {"expired": registry_actions.expire_refusals(rt, _actor("registry.expire_refusals"))}

    def purge_proofs(rt: Runtime, _due: datetime) -> JobResult:
        return {"purged": registry_actions.purge_expired_proofs(rt, _actor("registry.purge_consent_proofs"))}

    def marks_refresh(rt: Runtime, _due: datetime) -> JobResult:
        return {"label_changes": marks_actions.refresh(rt, _actor("marks.refresh"))}

    def marks_pending(rt: Runtime, _due: datetime) -> JobResult:
        return {"label_changes": marks_actions.judge_pending(rt, _actor("marks.judge_pending"))}

    def forget_idle_streams(rt: Runtime, _due: datetime) -> JobResult:
        return {
            "records_deleted": traffic_live.forget_idle_streams(rt, _actor("traffic.forget_idle_streams"))
        }

    def wash_jobs(rt: Runtime, _due: datetime) -> JobResult:
        # The API starts a job's wash when it is submitted; this picks up whatever a restart or a
        # crashed server left queued or half-done (its lease expired), and deletes expired results.
        return {"finished": screening_actions.run_wash_jobs(rt, limit=10)}

    def daily_digest(rt: Runtime, due: datetime) -> JobResult:
        # The digest covers the China-time day the run was due on, even when it runs late.
        day = due.astimezone(CHINA_TZ).date()
        sent = screening_actions.send_daily_digests(rt, _actor("screening.daily_digest"), day)
        return {"day": day.isoformat(), "subscribers": sent}

    return [
        Job(
            "reactions.relay",
            reactions_relay,
            "跨域联动：投诉核查、话务发现 → 高危号码与系统黑名单",
            every=timedelta(seconds=1),
        ),
        Job("reactions.lift_blocks", lift_blocks, "解除到期的呼死你临时拦截", every=timedelta(minutes=1)),
        Job(
            "complaints.scan",
            complaints_scan,
            "12321 时限预警、超时标记、逾期结案",
            every=timedelta(minutes=5),
        ),
        Job(
            "complaints.webhooks",
            complaints_webhooks,
            "向企业推送投诉（签名 webhook，失败重试）",
            every=timedelta(seconds=1),
        ),
        Job("registry.expire_refusals", expire_refusals, "谢绝来电到期失效", every=timedelta(minutes=1)),
        Job(
            "registry.purge_consent_proofs",
            purge_proofs,
            "清除超过保存期的授权凭证",
            daily_at=time(3, 0),
        ),
        Job(
            "marks.refresh",
            marks_refresh,
            "号码标记随时间衰减后重新评定",
            every=timedelta(hours=settings.marks_refresh_hours),
            lease=timedelta(hours=1),
        ),
        Job(
            "marks.judge_pending",
            marks_pending,
            "评定批量导入时暂缓的高频号码标记",
            every=timedelta(seconds=1),
        ),
        Job(
            "traffic.forget_idle_streams",
            forget_idle_streams,
            "删除停止推送的话单流中残留的通话记录",
            every=timedelta(minutes=10),
        ),
        Job(
            "screening.wash_jobs",
            wash_jobs,
            "企业名单清洗任务（重启或中断后继续）",
            every=timedelta(seconds=5),
            lease=timedelta(hours=1),
            lane="wash",
        ),
        Job(
            "screening.daily_digest",
            daily_digest,
            "每日拦截汇总短信",
            daily_at=_clock_time(settings.digest_time),
            lease=timedelta(hours=1),
        ),
    ]


def scheduler(
    rt: Runtime, *, owner: str, webhook_transport: WebhookTransportFactory | None = None
) -> Scheduler:
    """The platform scheduler over every job, for one process (``owner`` names it in the lease)."""
    return Scheduler(rt, build_jobs(rt.settings, webhook_transport=webhook_transport), owner=owner)
