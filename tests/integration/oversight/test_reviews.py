"""Quarterly reviews on SQLite and PostgreSQL: computed from the cases, frozen when published, public
once published (and only then), drafted and published by the regulator and the 12321 centre."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from quietline.complaints import actions as complaints
from quietline.complaints.actions import Filing
from quietline.oversight import actions, queries
from quietline.oversight.model import CHINA_TZ, Quarter
from quietline.platform import audit
from quietline.platform.actor import Actor
from quietline.platform.errors import InvalidInput, PermissionDenied
from quietline.platform.runtime import Runtime
from quietline.vocabulary import Role

OP = Actor.operator("test")
REGULATOR = Actor(Role.REGULATOR, "工业和信息化部")
Q4 = Quarter(2025, 4)  # the fake clock stands at 2026-01-05: 2025Q4 is over


def _file(rt: Runtime, received: datetime, n: int, **kw: Any) -> None:
    values: dict[str, Any] = {
        "reporter": f"+86138{n:08d}",
        "reported": "+8613012345678",
        "channel": "call",
        "at": received - timedelta(hours=1),
        "received_at": received,
        "form": "recorded",
        "duration_seconds": 20,
        "category": "loan_finance",
    }
    values.update(kw)
    complaints.file_report(rt, OP, Filing(**values))


def _history(rt: Runtime) -> None:
    """2024Q4: 2 calls; 2025Q3: 4 calls, 1 SMS; 2025Q4: 5 calls (one bombing), 2 SMS."""
    n = iter(range(1, 100))
    for when in [datetime(2024, 11, 3, 10, tzinfo=CHINA_TZ)] * 2:
        _file(rt, when, next(n))
    for when in [datetime(2025, 8, 3, 10, tzinfo=CHINA_TZ)] * 4:
        _file(rt, when, next(n))
    _file(
        rt,
        datetime(2025, 9, 30, 23, 59, tzinfo=CHINA_TZ),
        next(n),
        channel="sms",
        form=None,
        duration_seconds=None,
        text="【贷款】低息",
    )
    for i in range(4):
        _file(rt, datetime(2025, 10, 8 + i, 10, tzinfo=CHINA_TZ), next(n))
    _file(rt, datetime(2025, 12, 31, 23, 0, tzinfo=CHINA_TZ), next(n), form="bombing", category=None)
    for _ in range(2):
        _file(
            rt,
            datetime(2025, 10, 1, 0, 5, tzinfo=CHINA_TZ),
            next(n),
            channel="sms",
            form=None,
            duration_seconds=None,
            text="【房产】急售",
        )


def test_draft_counts_the_quarter_with_changes_on_the_quarter_and_the_year(any_runtime: Runtime) -> None:
    rt = any_runtime
    _history(rt)
    with rt.sessions() as session:
        review = queries.draft_review(session, Q4, now=rt.clock.now())
    assert (review.calls.total, review.sms.total) == (5, 2)
    assert (review.calls.qoq, review.calls.yoy) == (25.0, 150.0)
    assert (review.sms.qoq, review.sms.yoy) == (100.0, None)
    assert [(s.code, s.count, s.percent) for s in review.calls.by_form] == [
        ("recorded", 4, 80.0),
        ("bombing", 1, 20.0),
    ]
    assert [(s.label, s.count) for s in review.calls.by_carrier] == [("中国联通", 5)]


def test_publishing_freezes_the_figures_and_is_audited(any_runtime: Runtime) -> None:
    rt = any_runtime
    _history(rt)
    with pytest.raises(InvalidInput) as early:
        actions.publish_review(rt, REGULATOR, Quarter(2026, 1))
    assert early.value.field == "quarter"
    with pytest.raises(PermissionDenied):
        actions.publish_review(rt, Actor(Role.CARRIER, "china_mobile"), Q4)
    body = actions.publish_review(rt, REGULATOR, Q4)
    assert body["calls"]["total"] == 5
    # A late import of an old report changes the draft, not what was published.
    _file(rt, datetime(2025, 11, 11, 11, tzinfo=CHINA_TZ), 500)
    with rt.sessions() as session:
        assert queries.draft_review(session, Q4, now=rt.clock.now()).calls.total == 6
        published = queries.published(session, Q4)
        assert published is not None and published["calls"]["total"] == 5
    corrected = actions.publish_review(rt, REGULATOR, Q4)
    assert corrected["calls"]["total"] == 6
    with rt.sessions() as session:
        rows = list(
            session.scalars(
                select(audit.AuditEntry).where(audit.AuditEntry.action == "oversight.review.publish")
            )
        )
    assert len(rows) == 2
    assert rows[1].before is not None and rows[1].before["body"]["calls"]["total"] == 5
    assert rows[1].after is not None and rows[1].after["calls"] == 6


def test_api_and_pages(api_client: TestClient, credentials: Any, runtime: Runtime) -> None:
    _history(runtime)
    assert api_client.get("/v1/oversight/reviews").json() == []
    missing = api_client.get("/v1/oversight/reviews/2025Q4")
    assert missing.status_code == 404 and missing.json()["field"] == "quarter"
    assert api_client.get("/v1/oversight/reviews/2025Q9").status_code == 422
    assert api_client.get("/v1/oversight/reviews/2025Q4/draft").status_code == 401
    assert (
        api_client.get(
            "/v1/oversight/reviews/2025Q4/draft", headers=credentials.headers(Role.CARRIER)
        ).status_code
        == 403
    )
    regulator = credentials.headers(Role.REGULATOR)
    draft = api_client.get("/v1/oversight/reviews/2025Q4/draft", headers=regulator)
    assert draft.status_code == 200 and draft.json()["calls"]["total"] == 5
    assert api_client.get("/reviews/2025Q4").status_code == 404

    # The regulator publishes from the staff portal; then everyone can read it.
    login = api_client.post(
        "/staff/login", data={"key": credentials.keys[Role.REGULATOR], "next": "/staff/reviews"}
    )
    assert login.status_code == 200 and "2025年第四季度投诉情况盘点（草稿）" in login.text
    done = api_client.post("/staff/reviews/2025Q4/publish", follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/reviews/2025Q4"
    api_client.cookies.clear()
    page = api_client.get("/reviews/2025Q4")
    assert page.status_code == 200
    assert "共受理骚扰电话举报 5 件（环比 +25.0%，同比 +150.0%）" in page.text
    assert "轰炸/呼死你" in page.text and 'style="width: 20.0%"' in page.text
    assert "+8613012345678" not in page.text and "13012345678" not in page.text  # aggregates only
    listing = api_client.get("/v1/oversight/reviews").json()
    assert [r["quarter"] for r in listing] == ["2025Q4"]
    assert "2025年第四季度" in api_client.get("/reviews").text
    unfinished = api_client.post(
        "/v1/oversight/reviews/2026Q1/publish", headers=credentials.headers(Role.OPERATOR)
    )
    assert unfinished.status_code == 422 and unfinished.json()["field"] == "quarter"
