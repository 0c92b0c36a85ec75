"""The regulator in real Chromium against a real server process: the overview shows the jobs the server
runs, the quarterly review is drafted and published from the staff portal, and the public review page
draws its shares on a phone screen."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e


def _file(server: Any, reporter: str, *extra: str) -> None:
    cli = Path(sys.executable).parent / "quietline"
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
            "2026-08-03T09:00:00+08:00",
            "--received-at",
            "2026-08-03T10:00:00+08:00",
            "--json",
            *extra,
        ],
        env=server.env,
        check=True,
        capture_output=True,
        timeout=60,
    )


def test_regulator_publishes_the_quarterly_review(live_server: Any, browser: Any, issue_key: Any) -> None:
    _file(live_server, "13600136001", "--channel", "call", "--form", "bombing", "--duration", "2")
    _file(live_server, "13600136002", "--channel", "call", "--form", "recorded", "--duration", "30")
    _file(live_server, "13600136003", "--channel", "call", "--form", "recorded", "--duration", "30")
    _file(live_server, "13600136004", "--channel", "sms", "--text", "【贷款】低息秒批")
    key = issue_key("regulator", "工业和信息化部")

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
    page.wait_for_url(re.compile(r"/staff/reviews/2026Q3$"))  # the last finished quarter
    assert "（草稿）" in page.inner_text("h1")
    assert "共受理骚扰电话举报 3 件" in page.inner_text("[data-testid=headline]")
    page.click("button:has-text('发布 2026Q3 盘点')")
    page.wait_for_url(re.compile(r"/reviews/2026Q3$"))
    desk.close()

    phone = browser.new_context(viewport={"width": 375, "height": 740}, locale="zh-CN", is_mobile=True)
    public = phone.new_page()
    public.goto(live_server.url + "/reviews")
    public.click("a:has-text('2026年第三季度')")
    public.wait_for_url(re.compile(r"/reviews/2026Q3$"))
    text = public.inner_text("main")
    assert "垃圾短信举报 1 件" in text and "轰炸/呼死你" in text
    # Shares are drawn: the bombing bar is half as long as the recorded one (1 of 3 vs 2 of 3).
    by_form = "document.querySelectorAll('[data-channel=call] table.shares')[1]"
    widths = public.evaluate(
        f"[...{by_form}.querySelectorAll('td.bar span')].map(e => e.getBoundingClientRect().width)"
    )
    assert len(widths) == 2 and widths[0] > 0 and abs(widths[0] - 2 * widths[1]) < 2
    assert public.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert "13012345678" not in public.content()
    phone.close()
