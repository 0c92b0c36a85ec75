"""The subscriber flow in real Chromium on a phone-sized screen: number → code → categories → saved →
history, against a real server process."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import create_engine

from quietline.platform.sms import dev_outbox

pytestmark = pytest.mark.e2e

NUMBER = "13600136000"


def _latest_code(server: Any, e164: str) -> str:
    from sqlalchemy.orm import Session

    engine = create_engine(server.database_url)
    with Session(engine) as session:
        [message, *_] = dev_outbox(session, to=e164, limit=1)
    engine.dispose()
    match = re.search(r"验证码是(\d{6})", message.text)
    assert match, message.text
    return match.group(1)


def test_subscriber_refuses_categories_and_sees_history(live_server: Any, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    page = context.new_page()
    page.goto(live_server.url + "/")
    page.fill("#number", "+86 136 0013 6000")
    page.click("text=获取验证码")
    page.wait_for_selector("#code")
    assert "验证码已发送" in page.content()

    page.fill("#code", "000000" if _latest_code(live_server, "+8613600136000") != "000000" else "111111")
    page.click("text=验证并登录")
    assert page.locator("[role=alert]").is_visible()  # a wrong code is refused with a message

    page.fill("#code", _latest_code(live_server, "+8613600136000"))
    page.click("text=验证并登录")
    page.wait_for_url(re.compile(r"/me$"))
    page.check("[data-testid=refuse-call-loan_finance]")
    page.check("[data-testid=refuse-sms-insurance]")
    page.click("button:has-text('保存')")
    page.wait_for_url(re.compile(r"/me\?saved=1$"))
    assert "已保存" in page.inner_text("[role=status]")
    assert page.is_checked("[data-testid=refuse-call-loan_finance]")
    assert page.is_checked("[data-testid=refuse-sms-insurance]")
    assert not page.is_checked("[data-testid=refuse-sms-loan_finance]")

    # The page fits a phone screen: no horizontal scrolling.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    page.click("text=变更记录")
    page.wait_for_url(re.compile(r"/me/history$"))
    rows = page.inner_text("table")
    assert "贷款理财 · 电话" in rows and "保险推销 · 短信" in rows and "本人" in rows
    context.close()


def test_confirmation_sms_is_sent_after_saving(live_server: Any, browser: Any) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.goto(live_server.url + "/")
    page.fill("#number", NUMBER)
    page.click("text=获取验证码")
    page.fill("#code", _latest_code(live_server, "+86" + NUMBER))
    page.click("text=验证并登录")
    page.wait_for_url(re.compile(r"/me$"))
    page.check("[data-testid=refuse-call-all]")
    page.click("button:has-text('保存')")
    page.wait_for_url(re.compile(r"/me\?saved=1$"))
    from sqlalchemy.orm import Session

    engine = create_engine(live_server.database_url)
    with Session(engine) as session:
        [latest, *_] = dev_outbox(session, to="+86" + NUMBER, limit=1)
    engine.dispose()
    assert latest.purpose == "confirmation" and "全部营销" in latest.text
    context.close()
