"""The 12321 flow in real Chromium against a real server process (issue 5): a subscriber reports a call
on a phone-sized screen, the responsible carrier finds it in its inbox and responds, the 12321 operator
answers, the reporter sees the outcome (and gets the SMS) and appeals, and the case is reopened with a
new clock."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from quietline.platform.sms import dev_outbox

pytestmark = pytest.mark.e2e

REPORTER = "13500135000"  # China Mobile
REPORTED = "13012345678"  # China Unicom: the responsible carrier
CHINA = timezone(timedelta(hours=8))
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _outbox(server: Any, e164: str) -> list[Any]:
    engine = create_engine(server.database_url)
    with Session(engine) as session:
        messages = list(dev_outbox(session, to=e164, limit=5))
    engine.dispose()
    return messages


def _code(server: Any, e164: str) -> str:
    match = re.search(r"验证码是(\d{6})", _outbox(server, e164)[0].text)
    assert match
    return match.group(1)


def _fits_the_phone(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def _staff_login(browser: Any, server: Any, key: str, start: str) -> Any:
    context = browser.new_context(viewport={"width": 1024, "height": 800}, locale="zh-CN")
    page = context.new_page()
    page.goto(server.url + start)
    page.wait_for_url(re.compile(r"/staff/login\?next="))  # not signed in: the login comes first
    page.fill("#key", key[:-2] + "xx")
    page.click("button:has-text('登录')")
    assert "API 密钥无效或已停用" in page.inner_text("#key-error")
    page.fill("#key", key)
    page.click("button:has-text('登录')")
    page.wait_for_url(re.compile(re.escape(start) + "$"))  # and back to the page asked for
    assert key not in json.dumps(context.cookies())  # the key itself never sits in a cookie
    return context, page


def test_report_respond_answer_outcome_appeal(live_server: Any, browser: Any, issue_key: Any) -> None:
    e164 = "+86" + REPORTER
    reporter = browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN")
    me = reporter.new_page()
    me.goto(live_server.url + "/")
    me.fill("#number", REPORTER)
    me.click("text=获取验证码")
    me.fill("#code", _code(live_server, e164))
    me.click("text=验证并登录")
    me.wait_for_url(re.compile(r"/me$"))

    # Report a recorded marketing call through the form, with a screenshot.
    me.click("nav >> text=我的投诉")
    me.wait_for_url(re.compile(r"/me/complaints$"))
    me.click("text=举报骚扰电话 / 垃圾短信")
    me.wait_for_url(re.compile(r"/me/complaints/new$"))
    assert _fits_the_phone(me)
    me.click("button:has-text('提交举报')")  # nothing filled in: refused, the field named
    assert me.locator("#reported-error").is_visible()
    when = (datetime.now(CHINA) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    me.fill("#reported", "130 1234 5678")
    me.check("[data-testid=channel-call]")
    me.fill("#at", when)
    me.fill("#duration", "42")
    me.select_option("#form", "recorded")
    me.select_option("#category", "loan_finance")
    me.select_option("#nature", "marketing")
    me.fill("#description", "自称某银行，推销贷款，拒绝后仍反复来电")
    me.set_input_files("#evidence", files=[{"name": "来电截图.png", "mimeType": "image/png", "buffer": PNG}])
    me.click("button:has-text('提交举报')")
    me.wait_for_url(re.compile(r"/me/complaints/\d+\?filed=1$"))
    case_id = int(re.search(r"/me/complaints/(\d+)", me.url).group(1))  # type: ignore[union-attr]
    assert "举报已提交并受理" in me.inner_text("[role=status]")
    assert me.inner_text("[data-testid=state]") == "已转送"
    assert "企业核查反馈" in me.inner_text("[data-testid=deadlines]")
    assert "来电截图.png" in me.content()
    assert _fits_the_phone(me)
    me.click("text=返回我的投诉")
    assert REPORTED in me.inner_text("[data-testid=my-complaints]")

    # The responsible carrier signs in with its API key and finds the case in its inbox.
    company, inbox = _staff_login(
        browser, live_server, issue_key("carrier", "china_unicom"), "/staff/complaints"
    )
    row = inbox.locator(f"tr[data-case='{case_id}']")
    assert REPORTED in row.inner_text() and "企业核查反馈" in row.inner_text()
    row.locator("a").click()
    inbox.wait_for_url(re.compile(rf"/staff/complaints/{case_id}$"))
    assert "来电截图.png" in inbox.content() and "自称某银行" in inbox.content()
    inbox.check("[data-testid=result-substantiated]")
    inbox.select_option("#measure", "warned")
    inbox.fill("#action", "已核实为营销外呼，已对该号码使用单位约谈警示")
    inbox.click("button:has-text('提交核查结果')")
    inbox.wait_for_url(re.compile(r"\?done=responded$"))
    assert inbox.inner_text("[data-testid=state]") == "已核查处置"
    company.close()

    # Answering the reporter is the 12321 centre's step (actions.answer): the operator answers.
    centre, desk = _staff_login(
        browser, live_server, issue_key("operator", "12321-e2e"), f"/staff/complaints/{case_id}"
    )
    desk.click("button:has-text('答复并短信通知')")
    desk.wait_for_url(re.compile(r"\?done=answered$"))
    assert desk.inner_text("[data-testid=state]") == "已答复"
    centre.close()

    # The reporter is told the outcome by SMS and in the portal, and appeals.
    [answer_sms] = [m for m in _outbox(live_server, e164) if m.purpose == "complaint_answer"]
    assert f"投诉{case_id}" in answer_sms.text and "警示教育" in answer_sms.text
    me.goto(f"{live_server.url}/me/complaints/{case_id}")
    outcome = me.inner_text("[data-testid=outcome]")
    assert "属实" in outcome and "警示教育" in outcome
    assert me.locator("[data-testid=appeal-form]").is_visible()
    first_cycle = me.inner_text("[data-testid=timeline]")
    me.fill("#appeal", "答复后仍然每天接到该号码来电")
    me.click("button:has-text('提交申诉')")
    me.wait_for_url(re.compile(r"\?appealed=1$"))
    assert "申诉已提交" in me.inner_text("[role=status]")
    assert me.inner_text("[data-testid=state]") == "已转送"  # reopened and forwarded again at once
    assert "第 2 轮" in me.inner_text("[data-testid=cycle]")
    timeline = me.inner_text("[data-testid=timeline]")
    assert "举报人申诉，重新办理" in timeline and "申诉重办" in timeline and len(timeline) > len(first_cycle)
    clocks = me.inner_text("[data-testid=deadlines]")
    assert "办理中" in clocks and "预计" in clocks  # the new cycle's feedback clock runs, the answer is ahead
    assert me.locator("[data-testid=outcome]").count() == 0  # the old answer no longer stands
    assert _fits_the_phone(me)
    reporter.close()
