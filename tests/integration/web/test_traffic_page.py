"""The carrier's abnormal-traffic report page (异常话务报告): carriers only, each its own runs, and
the three charts (volume over time, top callers, per-pattern confusion) as inline SVG."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient

from quietline.platform.actor import Actor
from quietline.platform.runtime import Runtime
from quietline.traffic import actions
from quietline.traffic.rules import Finding
from quietline.traffic.streaming import BombingAlert
from quietline.vocabulary import Role
from quietline.web.traffic import nice_max, volume_chart

MOBILE = Actor(Role.CARRIER, "china_mobile")
T0 = int(datetime(2026, 1, 4, 16, 0, tzinfo=UTC).timestamp())  # midnight in Beijing


def _summary(labelled: bool) -> dict[str, Any]:
    volume = [
        {"start": T0 + 3600 * h, "step": 3600, "calls": 1000 + 40 * h, "flagged_calls": 30 if h == 5 else 2}
        for h in range(24)
    ]
    top = [
        {
            "number": f"+8617000000{i:03d}",
            "calls": 5000 - 100 * i,
            "distinct_callees": 900,
            "in_calls": 0,
            "answer_rate": 0.1,
            "short_ring_ratio": 0.9,
            "pattern": "one_ring" if i == 0 else None,
            "allow_listed": i == 1,
        }
        for i in range(20)
    ]
    confusion = None
    if labelled:
        confusion = {
            p: {
                "true_positives": tp,
                "false_positives": fp,
                "false_negatives": fn,
                "precision": 0.99,
                "recall": 0.95,
            }
            for p, tp, fp, fn in (
                ("bombing", 20, 0, 0),
                ("one_ring", 19, 1, 1),
                ("bulk_dialer", 20, 0, 0),
                ("spoofed", 207, 0, 3),
                ("fraud_risk", 194, 0, 6),
            )
        } | {"legit": {"high_volume_callers": 1234, "false_flag_rate": 0.0}}
    return {
        "data_start": datetime.fromtimestamp(T0, UTC).isoformat(),
        "data_end": datetime.fromtimestamp(T0 + 86_399, UTC).isoformat(),
        "callers": 5000,
        "volume": volume,
        "top_callers": top,
        "by_pattern": {"bombing": 1, "one_ring": 1, "bulk_dialer": 0, "spoofed": 0, "fraud_risk": 0},
        "confusion": confusion,
        "timing_seconds": {"total": 1.0},
    }


def _store(rt: Runtime, actor: Actor = MOBILE, labelled: bool = True, source: str = "/cdr/day1") -> str:
    stored = actions.store_run(
        rt,
        actor,
        carrier=None,
        findings=[
            Finding("+8617000000000", "one_ring", 0.9, {"calls": 5000, "short_ring_ratio": 0.9}),
            Finding("+8617000000777", "bombing", 0.8, {"calls": 60, "victim": "+8613800138000"}),
        ],
        rows=1_234_567,
        rejected={"missing_field": 3},
        backend="duckdb",
        source=source,
        summary=_summary(labelled),
        data_end=None,
    )
    return stored.run.run_id


def _login(client: TestClient, key: str) -> None:
    r = client.post("/staff/login", data={"key": key, "next": "/staff/traffic"}, follow_redirects=False)
    assert r.status_code == 303, r.text


def test_only_carriers_see_the_report(api_client: TestClient, credentials: Any, runtime: Runtime) -> None:
    _store(runtime)
    anonymous = api_client.get("/staff/traffic", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/staff/login")
    for role in (Role.ENTERPRISE, Role.REGULATOR, Role.OPERATOR):
        _login(api_client, credentials.keys[role])
        denied = api_client.get("/staff/traffic")
        assert denied.status_code == 403 and "仅供电信企业使用" in denied.text
        assert "+8617000000777" not in denied.text
    # A subscriber signed in with the SMS code is not staff at all.
    api_client.cookies.clear()
    subscriber = api_client.get(
        "/staff/traffic", headers=credentials.headers(Role.SUBSCRIBER), follow_redirects=False
    )
    assert subscriber.status_code == 303 and subscriber.headers["location"].startswith("/staff/login")
    _login(api_client, credentials.keys[Role.CARRIER])
    page = api_client.get("/staff/traffic")
    assert page.status_code == 200
    assert "异常话务报告" in page.text and "+8617000000777" in page.text
    assert 'href="/staff/traffic"' in page.text  # in the carrier's staff navigation


def test_the_report_draws_the_three_charts(
    api_client: TestClient, credentials: Any, runtime: Runtime
) -> None:
    run_id = _store(runtime)
    recorder = actions.AlertRecorder(runtime, MOBILE, carrier=None, min_calls=10, source="api")
    recorder.record(
        [
            BombingAlert(
                caller="+8617100000001",
                callee="+8613800138000",
                onset="2026-01-05T08:59:00+00:00",
                detected_at="2026-01-05T08:59:25+00:00",
                latency_seconds=25.0,
                calls_in_window=11,
                window_seconds=60,
            )
        ]
    )
    _login(api_client, credentials.keys[Role.CARRIER])
    text = api_client.get("/staff/traffic").text
    assert run_id in text and "1,234,567" in text and "缺少字段 3" in text
    svgs = re.findall(r"<svg [^>]*data-testid=\"([a-z-]+)\"", text)
    assert svgs == ["volume-chart", "top-callers-chart", "confusion-chart"]
    volume = text.split('data-testid="volume-chart"')[1].split("</svg>")[0]
    assert volume.count("<path") == 2 and "话务量变化" in volume and ">00:00<" in volume  # Beijing time
    top = text.split('data-testid="top-callers-chart"')[1].split("</svg>")[0]
    assert top.count("<rect") == 20 and "响一声" in top and "（白名单）" in top
    confusion = text.split('data-testid="confusion-chart"')[1].split("</svg>")[0]
    assert confusion.count("<rect") == 5 * 3 + 3  # three bars per pattern and the legend
    assert "误报" in confusion and "改号冒用" in confusion
    assert "99.00%" in text and "95.00%" in text  # precision and recall in the table
    assert "+8617100000001" in text.split('data-testid="alerts"')[1]  # the streaming alert
    assert "<script" not in text and "http://" not in text and "https://" not in text  # nothing fetched


def test_each_carrier_sees_its_own_runs_and_unlabelled_runs_show_counts(
    api_client: TestClient, credentials: Any, runtime: Runtime
) -> None:
    unicom_run = _store(runtime, Actor(Role.CARRIER, "china_unicom"), source="/cdr/unicom")
    mobile_run = _store(runtime, labelled=False)
    _login(api_client, credentials.keys[Role.CARRIER])
    text = api_client.get("/staff/traffic").text
    assert mobile_run in text and unicom_run not in text and "/cdr/unicom" not in text
    assert "各模式发现数" in text and "话单未附带标注" in text
    confusion = text.split('data-testid="confusion-chart"')[1].split("</svg>")[0]
    assert confusion.count("<rect") == 5 + 1
    other = api_client.get(f"/staff/traffic?run={unicom_run}")
    assert other.status_code == 404 and "未找到该检测批次" in other.text


def test_a_carrier_without_runs_is_told_how_to_get_one(api_client: TestClient, credentials: Any) -> None:
    _login(api_client, credentials.keys[Role.CARRIER])
    page = api_client.get("/staff/traffic")
    assert page.status_code == 200
    assert 'data-testid="no-runs"' in page.text and "--store" in page.text


def test_chart_scales() -> None:
    assert [nice_max(v) for v in (0, 3, 10, 11, 230, 2600, 7001)] == [1, 5, 10, 20, 250, 5000, 10000]
    one = volume_chart([{"start": T0, "step": 3600, "calls": 10, "flagged_calls": 0}])
    assert one is not None and one["calls"].startswith("M")
    assert volume_chart([]) is None
