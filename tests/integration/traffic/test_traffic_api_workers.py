"""The API's streaming detector behind ``quietline serve --workers 2``, as deployed: a bomber's calls
posted one request (and one connection) at a time land on whichever worker accepts them, and the
bombing is still alerted at its tenth call, once (SQLite and PostgreSQL). With the detector's state
held per process, the calls split between the workers and neither saw ten."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from quietline.accounts import actions as accounts_actions
from quietline.platform.actor import Actor
from quietline.platform.runtime import Runtime
from quietline.platform.settings import Environment, Settings
from quietline.platform.sms import RecordingSmsSender
from quietline.vocabulary import Role

ONSET = datetime(2026, 1, 5, 8, 58, 0, tzinfo=UTC)
BOMBER, VICTIM = "+8617000000001", "+8613800138000"


@pytest.fixture
def two_workers(
    db_url: str, tmp_path: Path, serve_process: Callable[..., AbstractContextManager[tuple[str, Any]]]
) -> Iterator[tuple[str, dict[str, str]]]:
    rt = Runtime.build(
        Settings(env=Environment.TEST, database_url=db_url, secret_key="t"), sms=RecordingSmsSender()
    )
    try:
        key = accounts_actions.create_api_key(
            rt, Actor.operator("test"), role=Role.CARRIER, subject="china_mobile"
        ).plaintext
    finally:
        rt.close()
    env = {"QUIETLINE_DATABASE_URL": db_url, "QUIETLINE_SECRET_KEY": "t", "QUIETLINE_ENV": "test"}
    with serve_process(env, "--workers", "2", "--no-jobs", "--no-access-log", cwd=tmp_path) as (base, _):
        yield base, {"Authorization": f"Bearer {key}"}


def _record(caller: str, callee: str, at: datetime) -> dict[str, Any]:
    return {
        "caller": caller,
        "callee": callee,
        "start_time": at.isoformat(),
        "ring_seconds": 2,
        "duration_seconds": 0,
    }


@pytest.mark.slow  # a two-worker server process per database
def test_a_bombing_spread_over_two_workers_is_alerted_at_its_tenth_call(
    two_workers: tuple[str, dict[str, str]],
) -> None:
    base, carrier = two_workers
    answers = []
    for i in range(16):  # one call every 2.5 s, each with an ordinary call beside it
        at = ONSET + timedelta(seconds=2.5 * i)
        batch = [_record(BOMBER, VICTIM, at), _record(f"+86139{i:08d}", VICTIM, at)]
        # A new connection per request: the kernel hands each to whichever worker accepts first.
        answer = httpx.post(f"{base}/v1/traffic/records", json=batch, headers=carrier, timeout=30)
        assert answer.status_code == 200, answer.text
        answers.append(answer.json())
    alerted = [i for i, a in enumerate(answers) if a["alerts"]]
    assert alerted == [9]
    (alert,) = answers[9]["alerts"]
    assert (alert["number"], alert["evidence"]["victim"]) == (BOMBER, VICTIM)
    assert alert["evidence"]["calls_in_window"] == 10
    assert alert["evidence"]["onset"] == ONSET.isoformat()
    assert [a["stream_records"] for a in answers] == list(range(2, 33, 2))  # every worker's records
    stored = httpx.get(f"{base}/v1/traffic/alerts", headers=carrier, timeout=30).json()
    assert [a["id"] for a in stored] == [alert["id"]]
