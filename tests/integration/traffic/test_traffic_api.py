"""The API's streaming source over a real HTTP server (uvicorn), on SQLite and PostgreSQL: a carrier
posts call records in batches, a bombing is alerted within 60 s of its onset and stored as an
in-progress finding (a high-risk candidate), and the carrier — only that carrier — reads it back."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from quietline.accounts import actions as accounts_actions
from quietline.api.app import create_app
from quietline.platform import changefeed
from quietline.platform.actor import Actor
from quietline.platform.runtime import Runtime
from quietline.traffic.actions import TOPIC_FINDING
from quietline.vocabulary import Role

ONSET = datetime(2026, 1, 5, 8, 58, 0, tzinfo=UTC)  # two minutes before the fake clock's now
BOMBER, VICTIM = "+8617000000001", "13800138000"


def _key(rt: Runtime, role: Role, subject: str) -> dict[str, str]:
    created = accounts_actions.create_api_key(rt, Actor.operator("test"), role=role, subject=subject)
    return {"Authorization": f"Bearer {created.plaintext}"}


def _record(caller: str, callee: str, at: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "caller": caller,
        "callee": callee,
        "start_time": at.isoformat(),
        "ring_seconds": 2,
        "duration_seconds": 0,
        **extra,
    }


def _traffic() -> list[list[dict[str, Any]]]:
    """Three batches: ordinary calls, and a bomber dialling one victim every 2.5 s from ONSET."""
    batches: list[list[dict[str, Any]]] = []
    for b in range(3):
        batch = [
            _record(f"+86139{b:02d}{i:06d}", f"+86186{i:08d}", ONSET + timedelta(seconds=i), trunk="ran")
            for i in range(40)
        ]
        batch += [
            _record(
                BOMBER, VICTIM, ONSET + timedelta(seconds=2.5 * (8 * b + i)), caller_imei="35000000000001"
            )
            for i in range(8)
        ]
        batches.append(batch)
    return batches


@pytest.fixture
def served(
    any_runtime: Runtime, serve_app: Callable[[FastAPI], AbstractContextManager[str]]
) -> Iterator[str]:
    with serve_app(create_app(any_runtime)) as url:
        yield url


def test_a_bombing_posted_in_batches_is_alerted_within_a_minute_and_stored(
    any_runtime: Runtime, served: str
) -> None:
    rt = any_runtime
    mobile = _key(rt, Role.CARRIER, "china_mobile")
    with httpx.Client(base_url=served, timeout=30) as client:
        answers = [client.post("/v1/traffic/records", json=b, headers=mobile) for b in _traffic()]
        assert [a.status_code for a in answers] == [200, 200, 200], answers[0].text
        bodies = [a.json() for a in answers]
        assert [b["accepted"] for b in bodies] == [48, 48, 48]
        assert [b["stream_records"] for b in bodies] == [48, 96, 144]
        # Ten calls within 60 s: the second batch holds the bomber's 9th to 16th calls.
        assert bodies[0]["alerts"] == []
        (alert,) = bodies[1]["alerts"]
        assert bodies[2]["alerts"] == []  # the same episode is not alerted twice
        assert alert["number"] == BOMBER
        assert (alert["pattern"], alert["action"], alert["in_progress"]) == (
            "bombing",
            "temporary_block",
            True,
        )
        assert alert["evidence"]["victim"] == "+8613800138000"
        assert alert["evidence"]["latency_seconds"] <= 60
        assert alert["evidence"]["onset"] == ONSET.isoformat()
        assert bodies[1]["run_id"] == bodies[2]["run_id"] == alert["run_id"]

        stored = client.get("/v1/traffic/alerts", headers=mobile)
        assert stored.status_code == 200
        assert [a["id"] for a in stored.json()] == [alert["id"]]
        later = client.get(
            "/v1/traffic/alerts", params={"since": "2026-01-06T00:00:00+08:00"}, headers=mobile
        )
        assert later.json() == []
        runs = client.get("/v1/traffic/runs", headers=mobile).json()
        assert [(r["run_id"], r["kind"], r["findings"]) for r in runs] == [(alert["run_id"], "stream", 1)]
        one = client.get(f"/v1/traffic/runs/{alert['run_id']}", headers=mobile).json()
        assert one["rows"] == 96 and one["summary"]["alerts"] == 1  # records read up to the alert
        found = client.get("/v1/traffic/findings", params={"number": "17000000001"}, headers=mobile)
        assert [f["id"] for f in found.json()] == [alert["id"]]

        # Another carrier sees nothing of China Mobile's records, findings or runs.
        unicom = _key(rt, Role.CARRIER, "china_unicom")
        assert client.get("/v1/traffic/alerts", headers=unicom).json() == []
        assert client.get("/v1/traffic/findings", headers=unicom).json() == []
        assert client.get("/v1/traffic/runs", headers=unicom).json() == []
        assert client.get(f"/v1/traffic/runs/{alert['run_id']}", headers=unicom).status_code == 404

        # Carriers only: the other roles are refused, anonymous callers challenged.
        for role, subject in ((Role.REGULATOR, "工业和信息化部"), (Role.OPERATOR, "ops")):
            refused = client.post("/v1/traffic/records", json=_traffic()[0], headers=_key(rt, role, subject))
            assert refused.status_code == 403 and refused.json()["field"] == "role"
        assert client.get("/v1/traffic/alerts").status_code == 401

    with rt.sessions() as session:
        feed = changefeed.read_after(session, 0, topics=(TOPIC_FINDING,))
    assert [(c.key, c.payload["in_progress"], c.payload["finding_id"]) for c in feed] == [
        (BOMBER, True, alert["id"])
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"caller": BOMBER}, "records"),
        ([], "records"),
        ([_record(BOMBER, VICTIM, ONSET), _record(BOMBER, "not a number", ONSET)], "records[1].callee"),
        (
            [_record(BOMBER, VICTIM, ONSET), {**_record(BOMBER, VICTIM, ONSET), "ring_seconds": None}],
            "records[1].ring_seconds",
        ),
        ([{**_record(BOMBER, VICTIM, ONSET), "start_time": "2026-01-05 09:00:00"}], "records[0].start_time"),
        ([{**_record(BOMBER, VICTIM, ONSET), "duration_seconds": -3}], "records[0].duration_seconds"),
        ([{**_record(BOMBER, VICTIM, ONSET), "trunk": 7}], "records[0].trunk"),
        ([{**_record(BOMBER, VICTIM, ONSET), "colour": "red"}], "records[0].colour"),
        (["caller,callee"], "records[0]"),
    ],
)
def test_bad_batches_are_refused_naming_the_row_and_field(
    runtime: Runtime, live_server: str, body: Any, field: str
) -> None:
    mobile = _key(runtime, Role.CARRIER, "china_mobile")
    with httpx.Client(base_url=live_server, timeout=30) as client:
        answer = client.post("/v1/traffic/records", json=body, headers=mobile)
        assert answer.status_code == 422, answer.text
        assert answer.json()["field"] == field
        assert client.get("/v1/traffic/runs", headers=mobile).json() == []


def test_an_oversized_batch_is_refused(runtime: Runtime, live_server: str) -> None:
    mobile = _key(runtime, Role.CARRIER, "china_mobile")
    body = [_record(BOMBER, VICTIM, ONSET)] * 10_001
    with httpx.Client(base_url=live_server, timeout=60) as client:
        answer = client.post("/v1/traffic/records", json=body, headers=mobile)
    assert answer.status_code == 422
    assert answer.json()["field"] == "records"
