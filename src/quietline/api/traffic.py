"""HTTP routes of abnormal-traffic detection, for carriers only: a streaming source for call records
(bombing alerts within 60 s of onset, stored as findings), the stored alerts, and the stored runs
and findings of the carrier's own call records. Thin: validate, call the traffic package, answer."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from quietline.api.auth import require
from quietline.platform.actor import Actor
from quietline.platform.errors import InvalidInput, NotFound
from quietline.platform.runtime import Runtime
from quietline.traffic import queries
from quietline.traffic.actions import resolve_carrier
from quietline.traffic.live import LiveDetectors
from quietline.traffic.rules import PRECEDENCE
from quietline.traffic.streaming import event_from_record
from quietline.vocabulary import Role

router = APIRouter(prefix="/v1/traffic", tags=["traffic"])

Carrier = Annotated[Actor, Depends(require(Role.CARRIER))]

#: Records per POST: large enough for a switch's second of traffic, small enough to answer quickly.
MAX_BATCH = 10_000


def _rt(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _live(request: Request) -> LiveDetectors:
    """The detectors (their state is in the database, shared by every worker), made on first use."""
    live: LiveDetectors | None = getattr(request.app.state, "traffic_live", None)
    if live is None:
        live = LiveDetectors(_rt(request))
        request.app.state.traffic_live = live
    return live


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput("expected an ISO 8601 time with its offset", field="since") from None
    if value.tzinfo is None:
        raise InvalidInput("the time needs its UTC offset", field="since")
    return value


@router.post("/records", summary="Send call records to the streaming bombing detector (carrier)")
async def post_records(
    request: Request,
    actor: Carrier,
    records: Annotated[Any, Body(description="A JSON list of call records (issue 7 schema).")],
) -> dict[str, Any]:
    """A batch of call records (``caller``, ``callee``, ``start_time`` ISO 8601 with offset or
    epoch seconds, ``ring_seconds``, ``duration_seconds``; optional ``caller_imei``,
    ``callee_carrier``, ``trunk``, ``caller_cell``). The whole batch is refused when one record is
    bad, with the row and field named (``records[3].callee``). Bombing alerts the batch raises are
    stored as in-progress findings and returned, with the stream run's id and ``stream_records``,
    the records posted to the carrier's stream so far (by every server worker)."""
    if not isinstance(records, list):
        raise InvalidInput("expected a JSON list of call records", field="records")
    if not 1 <= len(records) <= MAX_BATCH:
        raise InvalidInput(f"send 1 to {MAX_BATCH} records per request", field="records")
    events = [event_from_record(r, i) for i, r in enumerate(records)]
    result = await run_in_threadpool(_live(request).feed, actor, events)
    return {
        "accepted": result.accepted,
        "alerts": [f.as_dict() for f in result.alerts],
        "run_id": result.run_id,
        "stream_records": result.stream_records,
    }


@router.get("/alerts", summary="Stored call-bombing alerts of the streaming detector (carrier)")
def get_alerts(
    request: Request,
    actor: Carrier,
    since: Annotated[str | None, Query(description="Only alerts stored at or after this time.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[dict[str, Any]]:
    carrier = resolve_carrier(actor, None)
    with _rt(request).sessions() as session:
        found = queries.alerts(session, carrier, since=_since(since), limit=limit)
    return [f.as_dict() for f in found]


@router.get("/findings", summary="Stored findings over the carrier's own call records (carrier)")
def get_findings(
    request: Request,
    actor: Carrier,
    run_id: Annotated[str | None, Query(max_length=24)] = None,
    pattern: Annotated[str | None, Query(max_length=16)] = None,
    number: Annotated[str | None, Query(max_length=40)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[dict[str, Any]]:
    if pattern is not None and pattern not in PRECEDENCE:
        raise InvalidInput(f"unknown pattern; one of {', '.join(PRECEDENCE)}", field="pattern")
    e164 = None
    if number is not None:
        from quietline.numbers import parse

        e164 = parse(number, field="number").e164
    carrier = resolve_carrier(actor, None)
    with _rt(request).sessions() as session:
        found = queries.findings(
            session, carrier, run_id=run_id, pattern=pattern, number=e164, limit=limit, offset=offset
        )
    return [f.as_dict() for f in found]


@router.get("/runs", summary="Stored detection runs over the carrier's own call records (carrier)")
def get_runs(
    request: Request, actor: Carrier, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> list[dict[str, Any]]:
    carrier = resolve_carrier(actor, None)
    with _rt(request).sessions() as session:
        return [r.as_dict() for r in queries.runs(session, carrier, limit=limit)]


@router.get("/runs/{run_id}", summary="One stored run with its report summary (carrier)")
def get_run(request: Request, actor: Carrier, run_id: str) -> dict[str, Any]:
    carrier = resolve_carrier(actor, None)
    with _rt(request).sessions() as session:
        found = queries.run(session, carrier, run_id)
    if found is None:
        raise NotFound(f"no run {run_id} over your call records", field="run_id")
    return found.as_dict(with_summary=True)
