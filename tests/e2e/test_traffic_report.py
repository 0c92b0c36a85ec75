"""A carrier in real Chromium against a real server process: a detection run stored with the CLI
(``traffic detect --store``) is shown on the report page, whose inline SVG charts render — with
drawn lines and bars — on a desktop and within a phone's width, with no request leaving the server."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e
CLI = str(Path(sys.executable).parent / "quietline")


def _detect_and_store(server: Any, data: Path) -> None:
    def run(*args: str) -> None:
        subprocess.run([CLI, "traffic", *args], env=server.env, check=True, capture_output=True, timeout=300)

    run("generate", "--subscribers", "2000", "--days", "2", "--seed", "4242", "--out", str(data))
    run("detect", str(data), "--no-model", "--store", "--carrier", "china_mobile")


def _box(page: Any, selector: str) -> dict[str, float]:
    box = page.locator(selector).first.bounding_box()
    assert box is not None, selector
    return dict(box)


def test_the_carrier_sees_the_charts_render(
    live_server: Any, browser: Any, issue_key: Any, tmp_path: Path
) -> None:
    _detect_and_store(live_server, tmp_path / "cdr")
    key = issue_key("carrier", "china_mobile")
    requested: list[str] = []

    desk = browser.new_context(viewport={"width": 1024, "height": 800}, locale="zh-CN")
    page = desk.new_page()
    page.on("request", lambda r: requested.append(r.url))
    page.goto(live_server.url + "/staff/traffic")
    page.wait_for_url(re.compile(r"/staff/login\?next="))
    page.fill("#key", key)
    page.click("button:has-text('登录')")
    page.wait_for_url(re.compile(r"/staff/traffic$"))
    assert page.inner_text("h1") == "异常话务报告"
    for chart in ("volume-chart", "top-callers-chart", "confusion-chart"):
        box = _box(page, f"svg[data-testid={chart}]")
        assert box["width"] > 600 and box["height"] > 150, (chart, box)
    # The lines and bars are drawn, not just their frames: the call-volume line spans the plot,
    # the busiest caller's bar is the longest, and the confusion chart has its bars.
    line = _box(page, "svg[data-testid=volume-chart] path")
    assert line["width"] > 500 and line["height"] > 10
    bars = page.evaluate(
        "[...document.querySelectorAll('svg[data-testid=top-callers-chart] rect')]"
        ".map(r => r.getBoundingClientRect().width)"
    )
    assert len(bars) == 20 and bars[0] == max(bars) > 100
    tp = page.evaluate(
        "[...document.querySelectorAll('svg[data-testid=confusion-chart] rect[fill=\"#067647\"]')]"
        ".map(r => r.getBoundingClientRect().height)"
    )
    assert len(tp) >= 5 and max(tp) > 20  # labels came with the records: correct finds per pattern
    assert "精确率" in page.inner_text("[data-testid=confusion-table]")
    desk.close()

    phone = browser.new_context(viewport={"width": 375, "height": 740}, locale="zh-CN", is_mobile=True)
    mobile = phone.new_page()
    mobile.on("request", lambda r: requested.append(r.url))
    mobile.goto(live_server.url + "/staff/login?next=/staff/traffic")
    mobile.fill("#key", key)
    mobile.click("button:has-text('登录')")
    mobile.wait_for_url(re.compile(r"/staff/traffic$"))
    width = _box(mobile, "svg[data-testid=volume-chart]")["width"]
    assert 300 < width <= 375
    assert mobile.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    phone.close()
    assert requested and all(u.startswith(live_server.url) for u in requested), requested
