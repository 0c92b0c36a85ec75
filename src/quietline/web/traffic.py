"""The carrier's abnormal-traffic report page (异常话务报告) in the staff portal.

Issue 7 ("Report"): "a report page with charts (volume over time, top callers, per-pattern
confusion) in the portal for the carrier role". A carrier sees the runs stored over its own call
records (``quietline traffic detect … --store``) and the alerts of its streaming detector, never
another carrier's. The charts are inline SVG drawn on the server from the run's stored summary: no
script, no CDN, nothing fetched from the network, and they scale to a phone's width (``viewBox``).
This module only turns stored numbers into coordinates and Chinese labels; it holds no rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from quietline.traffic import queries
from quietline.traffic.actions import resolve_carrier
from quietline.vocabulary import Role
from quietline.web import staff
from quietline.web.requests import runtime_of

PATH = "/staff/traffic"
router = APIRouter(include_in_schema=False)
staff.add_nav(PATH, "异常话务", Role.CARRIER)

CHINA_TIME = timezone(timedelta(hours=8), "CST")
PATTERN_LABELS = {
    "bombing": "呼死你轰炸",
    "one_ring": "响一声",
    "bulk_dialer": "超量外呼",
    "spoofed": "改号冒用",
    "fraud_risk": "涉诈风险",
}
ACTION_LABELS = {"review": "人工核查", "temporary_block": "临时拦截"}
PATTERN_COLOURS = {
    "bombing": "#b42318",
    "one_ring": "#b54708",
    "bulk_dialer": "#6941c6",
    "spoofed": "#c11574",
    "fraud_risk": "#9e165f",
}
CALLS_COLOUR, FLAGGED_COLOUR, ALLOWED_COLOUR = "#0b6bcb", "#b42318", "#667085"
TP_COLOUR, FP_COLOUR, FN_COLOUR = "#067647", "#b54708", "#98a2b3"

#: Drawing size of the charts (SVG user units; the page scales them to its width).
WIDTH = 720
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 16, 44


@dataclass(frozen=True, slots=True)
class Tick:
    pos: float
    label: str


def nice_max(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 × 10^k at or above ``value`` (a readable top of the axis)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return float(step * power)
    return float(10 * power)


def _count(value: float) -> str:
    if value >= 10_000:
        return f"{value / 10_000:g} 万"
    return f"{value:g}"


def _china(ts: float, fmt: str) -> str:
    return datetime.fromtimestamp(ts, UTC).astimezone(CHINA_TIME).strftime(fmt)


def volume_chart(volume: list[dict[str, int]], height: int = 260) -> dict[str, Any] | None:
    """A line chart of calls per time step and, in red, the calls of numbers with a finding."""
    if not volume:
        return None
    plot_w, plot_h = WIDTH - LEFT - RIGHT, height - TOP - BOTTOM
    top = nice_max(max(p["calls"] for p in volume))
    n = len(volume)

    def x(i: int) -> float:
        return LEFT + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: float) -> float:
        return TOP + plot_h * (1 - v / top)

    def path(key: str) -> str:
        return " ".join(f"{'M' if i == 0 else 'L'}{x(i):.1f},{y(p[key]):.1f}" for i, p in enumerate(volume))

    y_ticks = [Tick(y(top * k / 4), _count(top * k / 4)) for k in range(5)]
    every = max(1, math.ceil(n / 6))
    span_days = (volume[-1]["start"] - volume[0]["start"]) / 86_400
    fmt = "%H:%M" if span_days < 1 else "%m-%d %H时"
    x_ticks = [Tick(x(i), _china(volume[i]["start"], fmt)) for i in range(0, n, every)]
    step = volume[0].get("step", 3600)
    return {
        "width": WIDTH,
        "height": height,
        "left": LEFT,
        "right": WIDTH - RIGHT,
        "top": TOP,
        "bottom": height - BOTTOM,
        "calls": path("calls"),
        "flagged": path("flagged_calls"),
        "y_ticks": y_ticks,
        "x_ticks": x_ticks,
        "calls_colour": CALLS_COLOUR,
        "flagged_colour": FLAGGED_COLOUR,
        "step_label": f"每 {step // 3600} 小时" if step >= 3600 else f"每 {step} 秒",
        "total": sum(p["calls"] for p in volume),
        "flagged_total": sum(p["flagged_calls"] for p in volume),
    }


def top_callers_chart(callers: list[dict[str, Any]], row: int = 24) -> dict[str, Any] | None:
    """Horizontal bars of the busiest callers, coloured by what was found about them."""
    if not callers:
        return None
    label_w = 150
    plot_w = WIDTH - label_w - 70
    top = nice_max(max(c["calls"] for c in callers))
    bars = []
    for i, c in enumerate(callers):
        pattern = c.get("pattern")
        colour = ALLOWED_COLOUR if c.get("allow_listed") else PATTERN_COLOURS.get(pattern or "", CALLS_COLOUR)
        bars.append(
            {
                "y": TOP + i * row,
                "width": max(1.0, plot_w * c["calls"] / top),
                "number": c["number"],
                "calls": c["calls"],
                "colour": colour,
                "note": PATTERN_LABELS.get(pattern or "", "")
                + ("（白名单）" if c.get("allow_listed") else ""),
            }
        )
    return {
        "width": WIDTH,
        "height": TOP + len(callers) * row + 8,
        "label_w": label_w,
        "row": row,
        "bar_h": row - 8,
        "bars": bars,
    }


def confusion_chart(summary: dict[str, Any], height: int = 240) -> dict[str, Any]:
    """Per pattern: grouped bars of correct finds, false flags and misses when the records came with
    labels; otherwise the number of findings per pattern."""
    confusion = summary.get("confusion") or None
    by_pattern: dict[str, int] = summary.get("by_pattern") or {}
    patterns = [p for p in PATTERN_LABELS if p in (confusion or by_pattern)]
    if confusion:
        series = [
            ("true_positives", "正确发现", TP_COLOUR),
            ("false_positives", "误报", FP_COLOUR),
            ("false_negatives", "漏报", FN_COLOUR),
        ]
        values = {p: [int(confusion[p][k]) for k, _, _ in series] for p in patterns}
    else:
        series = [("findings", "发现数", CALLS_COLOUR)]
        values = {p: [int(by_pattern.get(p, 0))] for p in patterns}
    plot_w, plot_h = WIDTH - LEFT - RIGHT, height - TOP - BOTTOM
    top = nice_max(max((v for vs in values.values() for v in vs), default=0))
    group = plot_w / max(1, len(patterns))
    bar = min(36.0, group * 0.8 / len(series))
    groups = []
    for gi, p in enumerate(patterns):
        start = LEFT + gi * group + (group - bar * len(series)) / 2
        bars = []
        for si, (_, name, colour) in enumerate(series):
            v = values[p][si]
            h = plot_h * v / top
            bars.append(
                {
                    "x": start + si * bar,
                    "y": TOP + plot_h - h,
                    "h": h,
                    "w": bar - 2,
                    "v": v,
                    "colour": colour,
                    "name": name,
                }
            )
        groups.append({"label": PATTERN_LABELS[p], "x": LEFT + gi * group + group / 2, "bars": bars})
    rows = []
    if confusion:
        rows = [
            {
                "label": PATTERN_LABELS[p],
                "precision": confusion[p]["precision"],
                "recall": confusion[p]["recall"],
                **{k: confusion[p][k] for k, _, _ in series},
            }
            for p in patterns
        ]
    return {
        "width": WIDTH,
        "height": height,
        "left": LEFT,
        "right": WIDTH - RIGHT,
        "top": TOP,
        "bottom": height - BOTTOM,
        "y_ticks": [Tick(TOP + plot_h * (1 - k / 4), _count(top * k / 4)) for k in range(5)],
        "groups": groups,
        "legend": [(name, colour) for _, name, colour in series],
        "labelled": bool(confusion),
        "rows": rows,
        "legit": (confusion or {}).get("legit"),
    }


#: The evidence an analyst reads first, per pattern, with Chinese names (the API has them all).
EVIDENCE_LABELS = {
    "max_calls_to_one_callee_in_10_min": "10 分钟内呼同一号码",
    "calls_in_window": "60 秒内呼同一号码",
    "victim": "被叫",
    "unanswered_short_rings": "未接短振铃",
    "short_ring_ratio": "短振铃占比",
    "calls_with_86_id_on_international_trunk": "国际中继上的 +86 主叫",
    "max_calls_in_one_day": "单日最多呼叫",
    "busiest_day": "最忙日",
    "risk_score": "风险评分",
    "reciprocity": "回拨率",
    "calls_per_callee": "每被叫呼叫",
    "imei_count": "终端数",
    "calls": "呼叫次数",
    "distinct_callees": "不同被叫",
    "answer_rate": "接通率",
    "latency_seconds": "告警延迟（秒）",
}


def _evidence(evidence: dict[str, Any], limit: int = 4) -> str:
    shown = [f"{label} {evidence[key]}" for key, label in EVIDENCE_LABELS.items() if key in evidence]
    return "，".join(shown[:limit])


@router.get(PATH, response_class=HTMLResponse)
def report(
    request: Request, run: str | None = Query(None, max_length=24, description="A stored run id.")
) -> Response:
    actor = staff.staff_actor(request, Role.CARRIER)
    if isinstance(actor, Response):
        return actor
    carrier = resolve_carrier(actor, None)
    with runtime_of(request).sessions() as session:
        runs = queries.runs(session, carrier, kind="batch", limit=20)
        chosen = queries.run(session, carrier, run) if run else (runs[0] if runs else None)
        found = queries.findings(session, carrier, run_id=chosen.run_id, limit=1000) if chosen else []
        alerts = queries.alerts(session, carrier, limit=10)
    if run and chosen is None:
        return staff.render(
            request,
            "traffic_report.html",
            actor,
            status_code=404,
            error="未找到该检测批次。",
            **_empty(runs, alerts),
        )
    context = _empty(runs, alerts)
    if chosen is not None:
        summary = chosen.summary
        found.sort(key=lambda f: (-f.score, f.number))
        context.update(
            run=chosen,
            summary=summary,
            stored_at=chosen.created_at.astimezone(CHINA_TIME).strftime("%Y-%m-%d %H:%M"),
            span=[_china_iso(summary.get("data_start")), _china_iso(summary.get("data_end"))],
            volume=volume_chart(summary.get("volume") or []),
            top=top_callers_chart(summary.get("top_callers") or []),
            confusion=confusion_chart(summary),
            findings=[_finding_row(f) for f in found[:30]],
            findings_total=len(found),
            candidates=sum(1 for f in found if f.candidate),
        )
    return staff.render(request, "traffic_report.html", actor, **context)


def _empty(runs: list[queries.RunView], alerts: list[queries.FindingView]) -> dict[str, Any]:
    return {
        "runs": [
            {
                "run_id": r.run_id,
                "at": r.created_at.astimezone(CHINA_TIME).strftime("%m-%d %H:%M"),
                "rows": r.rows,
                "findings": r.findings,
                "source": r.source.rsplit("/", 1)[-1],
            }
            for r in runs
        ],
        "run": None,
        "alerts": [_finding_row(a) for a in alerts],
        "legend": [
            *((PATTERN_LABELS[p], c) for p, c in PATTERN_COLOURS.items()),
            ("白名单号码", ALLOWED_COLOUR),
            ("未发现异常", CALLS_COLOUR),
        ],
    }


def _china_iso(text: str | None) -> str:
    if not text:
        return "—"
    return datetime.fromisoformat(text).astimezone(CHINA_TIME).strftime("%Y-%m-%d %H:%M")


def _finding_row(f: queries.FindingView) -> dict[str, Any]:
    return {
        "number": f.number,
        "pattern": PATTERN_LABELS.get(f.pattern, f.pattern),
        "score": f"{f.score:.2f}",
        "action": ACTION_LABELS.get(f.action, f.action),
        "allow_listed": f.allow_listed,
        "candidate": f.candidate,
        "in_progress": f.in_progress,
        "evidence": _evidence(f.evidence),
        "at": f.created_at.astimezone(CHINA_TIME).strftime("%m-%d %H:%M"),
    }
