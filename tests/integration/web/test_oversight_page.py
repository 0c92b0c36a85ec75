"""The regulator's overview page (监管总览): who may see it, and that it shows the centre's lists —
cases by company and state, breaches, stage times, repeat offenders, the high-risk list, job health —
with working CSV/XLSX export links under the staff cookie."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from quietline.complaints import actions as complaints
from quietline.complaints.actions import Filing
from quietline.jobs import schedule
from quietline.marks import actions as marks
from quietline.platform.actor import Actor
from quietline.platform.clock import FakeClock
from quietline.platform.runtime import Runtime
from quietline.vocabulary import Role

OP = Actor.operator("test")
SPAMMER = "+8613012345678"


def _login(client: TestClient, key: str) -> None:
    r = client.post("/staff/login", data={"key": key, "next": "/staff/oversight"}, follow_redirects=False)
    assert r.status_code == 303, r.text


def _cases(rt: Runtime) -> list[int]:
    ids = []
    for i in range(3):
        filing = Filing(
            reporter=f"+861380013800{i}",
            reported=SPAMMER,
            channel="call",
            at=rt.clock.now() - timedelta(hours=1),
            form="recorded",
            duration_seconds=20,
            category="loan_finance",
        )
        ids.append(complaints.file_report(rt, OP, filing).id)
    return ids


def test_only_the_regulator_and_the_centre_see_it(api_client: TestClient, credentials: Any) -> None:
    r = api_client.get("/staff/oversight", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/staff/login")
    _login(api_client, credentials.keys[Role.CARRIER])
    denied = api_client.get("/staff/oversight")
    assert denied.status_code == 403 and "仅供" in denied.text
    for role in (Role.REGULATOR, Role.OPERATOR):
        _login(api_client, credentials.keys[role])
        assert api_client.get("/staff/oversight").status_code == 200


def test_it_shows_the_centres_lists_and_exports_them(
    api_client: TestClient, credentials: Any, runtime: Runtime, clock: FakeClock
) -> None:
    ids = _cases(runtime)
    complaints.respond(runtime, OP, ids[0], result="substantiated", action="warned")
    marks.flag_high_risk(runtime, OP, number="+8617012345678", source="police", reason="公安机关通报涉诈号码")
    schedule.scheduler(runtime, owner="test").select(["registry.expire_refusals"]).run_pending()
    # A month later: two cases are past their company-feedback deadline, the answered one past its answer.
    clock.advance(days=30)
    _login(api_client, credentials.keys[Role.REGULATOR])
    page = api_client.get("/staff/oversight")
    assert page.status_code == 200
    text = page.text
    assert "中国联通" in text  # the responsible carrier of 130… in the company × state table
    assert "已转送" in text and "已核查处置" in text
    breaches = text.split('data-testid="breaches"')[1].split("</table>")[0]
    assert breaches.count('class="badge breach">已超时') == 3
    assert breaches.count("<td>企业反馈</td>") == 2 and breaches.count("<td>答复用户</td>") == 1
    assert SPAMMER in text  # three cases against one number: a repeat offender
    assert "疑似高危 1" in text and "公安机关通报涉诈号码" in text
    assert "谢绝来电到期失效" in text and "正常" in text  # the job ran, and says so
    for name in ("open", "breaches", "offenders"):
        csv = api_client.get(f"/v1/complaints/export/{name}.csv")
        assert csv.status_code == 200, (name, csv.text)
        xlsx = api_client.get(f"/v1/complaints/export/{name}.xlsx")
        assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    assert SPAMMER in api_client.get("/v1/complaints/export/offenders.csv").text
