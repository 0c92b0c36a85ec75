"""The complaint pages over the real app on SQLite and PostgreSQL: who sees which case, errors named by
field in Chinese with the values kept, the company's response, the 12321 answer, appeals and their
window, linked reports and deadline highlighting in the inbox."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from quietline.accounts import actions as accounts
from quietline.accounts.model import SESSION_COOKIE, STAFF_SESSION_COOKIE
from quietline.api.app import create_app
from quietline.complaints import queries
from quietline.platform.actor import Actor
from quietline.platform.clock import FakeClock
from quietline.platform.runtime import Runtime
from quietline.platform.sms import RecordingSmsSender
from quietline.vocabulary import Role

USCC = "91350100M000100Y43"
OTHER_USCC = "911100007109310534"
REPORTER = "13600136000"  # China Mobile
OTHER_REPORTER = "13900139001"
REPORTED = "13012345678"  # China Unicom: responsible; China Mobile assists (联动协查)
OPS = Actor.operator("test")
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@dataclass
class Site:
    rt: Runtime
    client: TestClient

    def subscriber(self, number: str = REPORTER) -> dict[str, str]:
        sms = self.rt.sms
        assert isinstance(sms, RecordingSmsSender)
        sent = accounts.request_code(self.rt, number, client=f"ip:{number}")
        code = re.search(r"(\d{6})", sms.last_to(sent.number).text)
        assert code
        issued = accounts.verify_code(self.rt, number, code.group(1), client=f"ip:{number}")
        return {"Cookie": f"{SESSION_COOKIE}={issued.token}"}

    def staff(self, role: Role, subject: str) -> dict[str, str]:
        created = accounts.create_api_key(self.rt, OPS, role=role, subject=subject)
        issued = accounts.open_staff_session(self.rt, created.plaintext, client="ip:staff")
        return {"Cookie": f"{STAFF_SESSION_COOKIE}={issued.token}"}

    def report(self, me: dict[str, str], files: Any = None, **fields: str) -> Any:
        data = {
            "reported": REPORTED,
            "channel": "call",
            "at": "2026-01-05T16:30",
            "duration": "35",
            "form": "recorded",
            "category": "loan_finance",
            "nature": "marketing",
            "description": "自称银行，推销贷款",
            **fields,
        }
        return self.client.post(
            "/me/complaints/new", data=data, files=files, headers=me, follow_redirects=False
        )

    def file(self, me: dict[str, str], **fields: str) -> int:
        r = self.report(me, **fields)
        assert r.status_code == 303, r.text
        found = re.match(r"/me/complaints/(\d+)\?", r.headers["location"])
        assert found
        return int(found.group(1))


@pytest.fixture
def site(any_runtime: Runtime) -> Iterator[Site]:
    accounts.register_enterprise(any_runtime, OPS, uscc=USCC, name="测试营销有限公司")
    accounts.register_enterprise(any_runtime, OPS, uscc=OTHER_USCC, name="另一家公司")
    with TestClient(create_app(any_runtime)) as client:
        yield Site(any_runtime, client)


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# --- access ------------------------------------------------------------------------------------------


def test_anonymous_is_sent_to_the_right_login(site: Site) -> None:
    for path in ("/me/complaints", "/me/complaints/new", "/me/complaints/1"):
        r = site.client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/", path
    for path in ("/staff/complaints", "/staff/complaints/1"):
        r = site.client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == f"/staff/login?next={path}", path
    r = site.client.post("/me/complaints/1/appeal", data={"appeal": "x"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
    r = site.client.post("/staff/complaints/1/respond", data={"result": "x"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/staff/login")


def test_a_subscriber_sees_only_its_own_cases(site: Site) -> None:
    me, other = site.subscriber(), site.subscriber(OTHER_REPORTER)
    case_id = site.file(me)
    mine = site.client.get("/me/complaints", headers=me)
    assert f'href="/me/complaints/{case_id}"' in mine.text and "13012345678" in mine.text
    assert f'href="/me/complaints/{case_id}"' not in site.client.get("/me/complaints", headers=other).text
    page = site.client.get(f"/me/complaints/{case_id}", headers=other)
    assert page.status_code == 404 and "找不到该投诉" in page.text and REPORTED not in page.text
    assert site.client.get(f"/me/complaints/{case_id + 1000}", headers=me).status_code == 404
    r = site.client.post(f"/me/complaints/{case_id}/appeal", data={"appeal": "不服"}, headers=other)
    assert r.status_code == 404
    # Staff pages are not for subscribers.
    r = site.client.get("/staff/complaints", headers=me, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/staff/login")


def test_companies_see_only_cases_routed_to_them(site: Site) -> None:
    case_id = site.file(site.subscriber())
    unicom = site.staff(Role.CARRIER, "china_unicom")
    mobile = site.staff(Role.CARRIER, "china_mobile")  # the reporter's carrier: assists (联动协查)
    telecom = site.staff(Role.CARRIER, "china_telecom")
    enterprise = site.staff(Role.ENTERPRISE, USCC)
    regulator = site.staff(Role.REGULATOR, "工业和信息化部")

    page = site.client.get(f"/staff/complaints/{case_id}", headers=unicom)
    assert page.status_code == 200 and 'data-testid="respond-form"' in page.text
    assisting = site.client.get(f"/staff/complaints/{case_id}", headers=mobile)
    assert assisting.status_code == 200 and 'data-testid="respond-form"' not in assisting.text
    assert "联动协查" in site.client.get("/staff/complaints", headers=mobile).text
    for outsider in (telecom, enterprise):
        assert site.client.get(f"/staff/complaints/{case_id}", headers=outsider).status_code == 404
        assert f'data-case="{case_id}"' not in site.client.get("/staff/complaints", headers=outsider).text
        r = site.client.post(
            f"/staff/complaints/{case_id}/respond",
            data={"result": "unsubstantiated", "action": "查无此事"},
            headers=outsider,
        )
        assert r.status_code == 404
    # The assisting carrier may look but not answer for the responsible one (actions.may_act_for).
    r = site.client.post(
        f"/staff/complaints/{case_id}/respond",
        data={"result": "unsubstantiated", "action": "查无此事"},
        headers=mobile,
    )
    assert r.status_code == 403 and 'id="id-error"' in r.text
    # The regulator sees every open case, read-only.
    assert f'data-case="{case_id}"' in site.client.get("/staff/complaints", headers=regulator).text
    seen = site.client.get(f"/staff/complaints/{case_id}", headers=regulator)
    assert seen.status_code == 200 and '<form method="post" action="/staff/complaints' not in seen.text
    r = site.client.post(
        f"/staff/complaints/{case_id}/respond",
        data={"result": "substantiated", "action": "x"},
        headers=regulator,
    )
    assert r.status_code == 403 and "此页面仅供" in r.text
    with site.rt.sessions() as session:
        assert queries.show(session, case_id).state.value == "forwarded"


def test_an_enterprise_answers_a_case_the_centre_forwarded_to_it_and_never_sees_the_reporter(
    site: Site,
) -> None:
    case_id = site.file(site.subscriber(), reported="4008123456")  # not in the ledger: manual routing
    operator = site.staff(Role.OPERATOR, "12321")
    page = site.client.get(f"/staff/complaints/{case_id}", headers=operator)
    assert 'data-testid="forward-form"' in page.text
    r = site.client.post(
        f"/staff/complaints/{case_id}/forward", data={"carrier": ""}, headers=operator, follow_redirects=False
    )
    assert r.status_code == 422 and 'id="carrier-error"' in r.text
    r = site.client.post(
        f"/staff/complaints/{case_id}/forward",
        data={"carrier": "china_telecom", "company": USCC},
        headers=operator,
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == f"/staff/complaints/{case_id}?done=forwarded"

    enterprise = site.staff(Role.ENTERPRISE, USCC)
    page = site.client.get(f"/staff/complaints/{case_id}", headers=enterprise)
    assert page.status_code == 200 and 'data-testid="respond-form"' in page.text
    assert "13600136000" not in page.text and "+86136****6000" in page.text  # reporter masked
    assert 'value="number_suspended"' not in page.text  # blocking measures are the carrier's
    r = site.client.post(
        f"/staff/complaints/{case_id}/respond",
        data={"result": "substantiated", "measure": "number_suspended", "action": "已停机"},
        headers=enterprise,
    )
    assert r.status_code == 422 and 'id="measure-error"' in r.text and "已停机" in r.text
    other = site.staff(Role.ENTERPRISE, OTHER_USCC)
    assert site.client.get(f"/staff/complaints/{case_id}", headers=other).status_code == 404


# --- validation --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"reported": ""}, "reported"),
        ({"reported": "110"}, "reported"),
        ({"reported": REPORTER}, "reported"),
        ({"channel": "fax"}, "channel"),
        ({"at": ""}, "at"),
        ({"at": "2026-02-01T10:00"}, "at"),  # after the report was received
        ({"at": "yesterday"}, "at"),
        ({"duration": "abc"}, "duration"),
        ({"duration": "-5"}, "duration"),
        ({"channel": "sms", "form": "", "duration": "", "text": ""}, "text"),
        ({"channel": "sms", "form": "", "text": "【某贷】低息"}, "duration"),
        ({"channel": "sms", "duration": "", "text": "【某贷】低息"}, "form"),
        ({"category": "水果"}, "category"),
    ],
)
def test_report_errors_are_shown_next_to_the_field_with_values_kept(
    site: Site, fields: dict[str, str], field: str
) -> None:
    me = site.subscriber()
    r = site.report(me, **fields)
    assert r.status_code in (409, 422), r.text
    assert f'id="{field}-error"' in r.text and 'role="alert"' in r.text
    assert "自称银行，推销贷款" in r.text  # the description typed is kept
    with site.rt.sessions() as session:
        assert queries.of_reporter(session, "+86" + REPORTER) == []


def test_a_bad_evidence_file_refuses_the_report_and_a_good_one_is_kept(site: Site) -> None:
    me = site.subscriber()
    r = site.report(me, files=[("evidence", ("notes.txt", b"just text", "image/png"))])
    assert r.status_code == 422 and 'id="evidence-error"' in r.text
    with site.rt.sessions() as session:
        assert queries.of_reporter(session, "+86" + REPORTER) == []
    r = site.report(me, files=[("evidence", ("截图.png", PNG, "image/png"))])
    assert r.status_code == 303
    page = site.client.get(r.headers["location"], headers=me)
    assert "举报已提交并受理" in page.text and "截图.png" in page.text
    found = re.match(r"/me/complaints/(\d+)\?", r.headers["location"])
    assert found
    evidence = site.client.get(f"/v1/complaints/{found.group(1)}/evidence/1", headers=me)
    assert evidence.status_code == 200 and evidence.content == PNG


def test_a_repeat_report_within_a_day_merges(site: Site) -> None:
    me = site.subscriber()
    first = site.file(me)
    r = site.report(me, at="2026-01-05T16:40")
    assert r.status_code == 303 and r.headers["location"] == f"/me/complaints/{first}?merged=1"
    assert "已合并 2 次举报" in site.client.get(r.headers["location"], headers=me).text


# --- the flow ----------------------------------------------------------------------------------------


def test_respond_answer_outcome_and_appeal(site: Site, sms: RecordingSmsSender) -> None:
    me = site.subscriber()
    case_id = site.file(me)
    page = _text(site.client.get(f"/me/complaints/{case_id}", headers=me).text)
    assert "已转送" in page and "企业核查反馈" in page and "2026-01-26" in page  # 15 working days
    assert 'data-testid="appeal-form"' not in page

    unicom = site.staff(Role.CARRIER, "china_unicom")
    r = site.client.post(
        f"/staff/complaints/{case_id}/respond",
        data={"result": "substantiated", "action": " "},
        headers=unicom,
    )
    assert r.status_code == 422 and 'id="action-error"' in r.text
    r = site.client.post(
        f"/staff/complaints/{case_id}/respond", data={"result": "", "action": "已核实"}, headers=unicom
    )
    assert r.status_code == 422 and 'id="result-error"' in r.text and "已核实" in r.text
    r = site.client.post(
        f"/staff/complaints/{case_id}/respond",
        data={"result": "substantiated", "measure": "warned", "action": "已约谈并警示"},
        files=[("evidence", ("约谈记录.pdf", b"%PDF-1.4 minimal", "application/pdf"))],
        headers=unicom,
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == f"/staff/complaints/{case_id}?done=responded"
    assert "约谈记录.pdf" in site.client.get(r.headers["location"], headers=unicom).text
    # The company's finding is not yet the answer: the reporter waits for 12321.
    assert 'data-testid="outcome"' not in site.client.get(f"/me/complaints/{case_id}", headers=me).text

    operator = site.staff(Role.OPERATOR, "12321")
    assert (
        'data-testid="answer-form"' in site.client.get(f"/staff/complaints/{case_id}", headers=operator).text
    )
    r = site.client.post(
        f"/staff/complaints/{case_id}/answer", data={"answer": ""}, headers=operator, follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"] == f"/staff/complaints/{case_id}?done=answered"
    assert "已答复举报人" in site.client.get(r.headers["location"], headers=operator).text
    assert "警示教育" in sms.last_to("+86" + REPORTER).text  # told by SMS too

    page = site.client.get(f"/me/complaints/{case_id}", headers=me).text
    assert 'data-testid="outcome"' in page and "警示教育" in page and "属实" in page
    assert 'data-testid="appeal-form"' in page
    r = site.client.post(f"/me/complaints/{case_id}/appeal", data={"appeal": "  "}, headers=me)
    assert r.status_code == 422 and 'id="appeal-error"' in r.text
    r = site.client.post(
        f"/me/complaints/{case_id}/appeal", data={"appeal": "还在打"}, headers=me, follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"] == f"/me/complaints/{case_id}?appealed=1"
    page = site.client.get(r.headers["location"], headers=me).text
    assert 'data-testid="cycle"' in page and "第 2 轮" in page and "已转送" in page and "还在打" in page
    with site.rt.sessions() as session:
        view = queries.show(session, case_id)
    assert view.row.cycle == 2 and view.state.value == "forwarded"
    assert (
        'data-testid="respond-form"' in site.client.get(f"/staff/complaints/{case_id}", headers=unicom).text
    )


def test_appeal_window_closes(site: Site, clock: FakeClock) -> None:
    me = site.subscriber()
    case_id = site.file(me)
    with site.rt.sessions() as session:
        forwarded = queries.show(session, case_id)
    assert forwarded.state.value == "forwarded"
    from quietline.complaints import actions

    actions.respond(site.rt, OPS, case_id, result="unsubstantiated", action="号码为正常客服回访")
    actions.answer(site.rt, OPS, case_id)
    clock.advance(days=actions.appeal_window(site.rt).days, seconds=1)
    me = site.subscriber()  # the old session has long expired
    page = site.client.get(f"/me/complaints/{case_id}", headers=me).text
    assert (
        'data-testid="appeal-closed"' in page
        and "申诉期已于" in page
        and 'data-testid="appeal-form"' not in page
    )
    r = site.client.post(f"/me/complaints/{case_id}/appeal", data={"appeal": "不服"}, headers=me)
    assert r.status_code == 409 and 'id="appeal-error"' in r.text


def test_inbox_groups_linked_reports_and_highlights_deadlines(site: Site, clock: FakeClock) -> None:
    first = site.file(site.subscriber())
    second = site.file(site.subscriber(OTHER_REPORTER))
    elsewhere = site.file(site.subscriber(), reported="13112345678")
    unicom = site.staff(Role.CARRIER, "china_unicom")
    inbox = site.client.get("/staff/complaints", headers=unicom).text
    assert "同一号码 2 件关联投诉" in inbox
    rows = re.findall(r'data-case="(\d+)"', inbox)
    assert {int(i) for i in rows} == {first, second, elsewhere}
    assert abs(rows.index(str(first)) - rows.index(str(second))) == 1  # shown together
    page = site.client.get(f"/staff/complaints/{first}", headers=unicom).text
    assert 'data-testid="linked"' in page and f'href="/staff/complaints/{second}"' in page
    assert 'class="due_soon"' not in inbox and 'class="breach"' not in inbox

    clock.advance(days=17)  # 2026-01-22 (Thu): the feedback deadline 01-26 is two working days away
    unicom = site.staff(Role.CARRIER, "china_unicom")  # sessions do not last days
    inbox = site.client.get("/staff/complaints", headers=unicom).text
    assert f'<tr class="due_soon" data-case="{first}"' in inbox and "即将到期" in inbox
    clock.advance(days=5)  # 2026-01-27: past the deadline
    unicom = site.staff(Role.CARRIER, "china_unicom")
    inbox = site.client.get("/staff/complaints", headers=unicom).text
    assert f'<tr class="breach" data-case="{first}"' in inbox and "已超时" in inbox
    answered = site.client.get("/staff/complaints?state=answered", headers=unicom).text
    assert "data-case=" not in answered


def test_stages_in_a_year_without_a_holiday_schedule_show_a_labelled_estimate(
    site: Site, clock: FakeClock
) -> None:
    """Filed in late December 2026: the feedback and answer stages run into 2027, whose State Council
    schedule the calendar lacks; the page shows when they are expected, marked as an estimate."""
    clock.set(datetime(2026, 12, 21, 2, tzinfo=UTC))  # Monday, 10:00 in Beijing
    me = site.subscriber()
    case_id = site.file(me, at="2026-12-21T09:30")
    page = _text(site.client.get(f"/me/complaints/{case_id}", headers=me).text)
    assert "转送企业 2026-12-24" in page  # 2026 is known: an exact deadline
    assert "企业核查反馈 约 2027-01-12 预计（暂按法定假日）" in page  # Jan 1 off: the statutory holiday
    assert "答复举报人 约 2027-01-15" in page
    assert "2027 年节假日安排尚未公布" in page
