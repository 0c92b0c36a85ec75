"""The regulator in real Chromium against a real server process: the overview shows the jobs the server
runs, the quarterly review is drafted and published from the staff portal, and the public review page
draws its shares on a phone screen."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from quietline.oversight.model import Quarter

pytestmark = pytest.mark.e2e
#: The last finished quarter: the one the staff page opens and the regulator may publish.
LAST = Quarter.containing(datetime.now(UTC)).previous()


def _draft(server: Any, key: str) -> dict[str, Any]:
    r = httpx.get(
        f"{server.url}/v1/oversight/reviews/{LAST.code}/draft", headers={"Authorization": f"Bearer {key}"}
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _file(server: Any, reporter: str, *extra: str) -> None:
    cli = Path(sys.executable).parent / "quietline"
    received = LAST.start + timedelta(days=10, hours=10)
    subprocess.run(
        [
            str(cli),
            "complaints",
            "file",
            "--reporter",
            reporter,
            "--reported",
            "13012345678",
            "--at",
            (received - timedelta(hours=1)).isoformat(),
            "--received-at",
            received.isoformat(),
            "--json",
            *extra,
        ],
        env=server.env,
        check=True,
        capture_output=True,
        timeout=60,
    )


def test_regulator_publishes_the_quarterly_review(live_server: Any, browser: Any, issue_key: Any) -> None:
    key = issue_key("regulator", "工业和信息化部")
    before = _draft(live_server, key)  # the demo data has complaints of its own in that quarter
    _file(live_server, "13600136001", "--channel", "call", "--form", "bombing", "--duration", "2")
    _file(live_server, "13600136002", "--channel", "call", "--form", "recorded", "--duration", "30")
    _file(live_server, "13600136003", "--channel", "call", "--form", "recorded", "--duration", "30")
    _file(live_server, "13600136004", "--channel", "sms", "--text", "【贷款】低息秒批")
    after = _draft(live_server, key)
    calls, sms = after["calls"]["total"], after["sms"]["total"]
    assert (calls, sms) == (before["calls"]["total"] + 3, before["sms"]["total"] + 1)

    desk = browser.new_context(viewport={"width": 1024, "height": 800}, locale="zh-CN")
    page = desk.new_page()
    page.goto(live_server.url + "/staff/oversight")
    page.wait_for_url(re.compile(r"/staff/login\?next="))
    page.fill("#key", key)
    page.click("button:has-text('登录')")
    page.wait_for_url(re.compile(r"/staff/oversight$"))
    # `quietline serve` runs the periodic jobs itself: the relay has run by the time the page is shown.
    page.wait_for_function(
        "document.querySelector('[data-testid=jobs]').innerText.includes('正常')", timeout=20_000
    )
    assert "reactions.relay" in page.inner_text("[data-testid=jobs]")

    page.click("nav a:has-text('季度盘点')")
    page.wait_for_url(re.compile(rf"/staff/reviews/{LAST.code}$"))  # the last finished quarter
    assert "（草稿）" in page.inner_text("h1")
    assert f"共受理骚扰电话举报 {calls} 件" in page.inner_text("[data-testid=headline]")
    page.click(f"button:has-text('发布 {LAST.code} 盘点')")
    page.wait_for_url(re.compile(rf"/reviews/{LAST.code}$"))
    desk.close()

    phone = browser.new_context(viewport={"width": 375, "height": 740}, locale="zh-CN", is_mobile=True)
    public = phone.new_page()
    public.goto(live_server.url + "/reviews")
    public.click(f"a:has-text('{LAST.label}')")
    public.wait_for_url(re.compile(rf"/reviews/{LAST.code}$"))
    text = public.inner_text("main")
    assert f"垃圾短信举报 {sms} 件" in text and "轰炸/呼死你" in text
    # Shares are drawn: each call-form bar is as long, relative to the first, as its share.
    by_form = "document.querySelectorAll('[data-channel=call] table.shares')[1]"
    widths = public.evaluate(
        f"[...{by_form}.querySelectorAll('td.bar span')].map(e => e.getBoundingClientRect().width)"
    )
    percents = [s["percent"] for s in after["calls"]["by_form"]]
    assert len(widths) == len(percents) and widths[0] > 0
    for width, percent in zip(widths, percents, strict=True):
        assert abs(width / widths[0] - percent / percents[0]) < 0.05
    assert public.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert "13012345678" not in public.content()
    phone.close()
