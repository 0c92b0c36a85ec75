"""HTTP routes of the screening engine. Thin: parse numbers, ask the engine, answer.

- ``GET /v1/screen`` and ``POST /v1/screen/batch`` (≤ 10,000 pairs) are for carriers only: they reveal
  why a call would be blocked, hence whether a number is registered. ``QUIETLINE_DEV_OPEN_SCREEN=1``
  opens them on a development install (the settings refuse it anywhere else).
- ``GET /v1/screen/blocks``: a subscriber's own 拦截记录.
- ``POST /v1/wash`` (an enterprise, for itself; or an operator): a background wash job with status and
  a download link, kept in the database so that any server process can run, report and serve it; only
  its submitter sees it; the result holds only callable numbers of the upload.

The engine of the process (snapshot + change-feed follower + block writer) starts with the first
request that needs it and stops with the application.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from functools import update_wrapper
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, File, Form, Query, Request, UploadFile
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from quietline.api.auth import require
from quietline.callerauth.model import Origin
from quietline.callerauth.service import Call as CallerAuthCall
from quietline.numbers import PhoneNumber, parse
from quietline.platform.actor import Actor
from quietline.platform.errors import InvalidInput, PermissionDenied
from quietline.platform.runtime import Runtime
from quietline.screening import actions, queries
from quietline.screening.engine import ScreeningEngine, request_for
from quietline.screening.model import CallerAuth, WashJobState
from quietline.screening.wash import e164_lines
from quietline.vocabulary import Category, Channel, Role

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["screening"])

MAX_BATCH = 10_000
_ENGINE_LOCK = threading.Lock()


def _rt(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def engine_of(app: FastAPI) -> ScreeningEngine:
    """The app's running engine (started on first use)."""
    engine: ScreeningEngine | None = getattr(app.state, "screening_engine", None)
    if engine is None:
        with _ENGINE_LOCK:
            engine = getattr(app.state, "screening_engine", None)
            if engine is None:
                engine = ScreeningEngine(app.state.runtime).start()
                app.state.screening_engine = engine
    return engine


_carrier = require(Role.CARRIER)


def _screen_actor(request: Request) -> Actor:
    """Carrier role, or anyone on a development install with ``QUIETLINE_DEV_OPEN_SCREEN=1``."""
    if _rt(request).settings.dev_open_screen:
        return Actor(Role.CARRIER, "dev-open-screen")
    return _carrier(request)


# Copy the declared access of ``require(Role.CARRIER)`` so the role-matrix test sees it.
update_wrapper(_screen_actor, _carrier, assigned=(), updated=("__dict__",))

Carrier = Annotated[Actor, Depends(_screen_actor)]
Subscriber = Annotated[Actor, Depends(require(Role.SUBSCRIBER))]
Washer = Annotated[Actor, Depends(require(Role.ENTERPRISE, Role.OPERATOR))]


def _number(value: str, field_name: str) -> PhoneNumber:
    return parse(value, field=field_name)


def _category(value: str | None, field_name: str = "category") -> Category | None:
    return Category.parse(value, field_name) if value else None


def _enterprise(value: str | None, field_name: str = "enterprise") -> str | None:
    if not value:
        return None
    from quietline.accounts.model import parse_uscc

    return parse_uscc(value, field=field_name)


#: The answers are flat dicts of strings: serialised as they are, without FastAPI's generic encoder
#: (which walks every value; measured: 13 of 33 ms of a 1,000-pair batch).
_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {"description": "The decision(s)", "content": {"application/json": {}}}
}


@router.get(
    "/screen", summary="Decide one call or SMS (carrier)", response_class=JSONResponse, responses=_ANSWER
)
def screen(
    request: Request,
    actor: Carrier,
    caller: Annotated[str, Query(max_length=40)],
    callee: Annotated[str, Query(max_length=40)],
    channel: Annotated[str, Query(max_length=8)] = "call",
    category: Annotated[str | None, Query(max_length=40)] = None,
    enterprise: Annotated[str | None, Query(max_length=40)] = None,
    origin: Annotated[
        str | None,
        Query(max_length=40, description="Where the call entered (enterprise_line, international_gateway…)."),
    ] = None,
    line: Annotated[
        str | None, Query(max_length=64, description="The enterprise line or trunk, if any.")
    ] = None,
    identity: Annotated[
        list[str] | None, Query(max_length=4, description="SIP Identity header values (RFC 8224).")
    ] = None,
) -> JSONResponse:
    """Decision (allow/block/warn), reason code, the rule that fired and the Chinese explanation.

    With ``origin`` (and ``identity`` when the call carried PASSporTs) caller authentication runs
    first: a failed verification or a confirmed spoof blocks with ``caller_auth_failed``."""
    caller_n, callee_n = _number(caller, "caller"), _number(callee, "callee")
    engine = engine_of(request.app)
    caller_auth, authentication = CallerAuth.NOT_CHECKED, None
    if origin is not None or identity:
        if any(len(h) > 8192 for h in identity or ()):
            raise InvalidInput("an Identity header is at most 8192 characters", field="identity")
        call = CallerAuthCall(
            caller=caller_n.e164,
            callee=callee_n.e164,
            origin=Origin.parse(origin or Origin.DOMESTIC_INTERCONNECT.value, "origin"),
            line=line,
            identity_headers=tuple(identity or ()),
        )
        caller_auth, authentication = engine.authenticate(call)
    req = request_for(
        caller_n,
        callee_n,
        Channel.parse(channel, "channel"),
        _category(category),
        _enterprise(enterprise),
        caller_auth,
    )
    out = engine.decide(req, caller=caller_n.e164, callee=callee_n.e164)
    answer = {**out.as_dict(), "caller": caller_n.e164, "callee": callee_n.e164}
    if authentication is not None:
        answer["caller_auth"] = authentication
    return JSONResponse(answer)


class PairIn(BaseModel):
    caller: str = Field(max_length=40)
    callee: str = Field(max_length=40)
    channel: str | None = Field(None, max_length=8, description="Overrides the batch's channel.")
    category: str | None = Field(None, max_length=40, description="Overrides the batch's category.")
    enterprise: str | None = Field(None, max_length=40, description="Overrides the batch's enterprise.")


class BatchIn(BaseModel):
    channel: str = Field("call", max_length=8)
    category: str | None = Field(None, max_length=40)
    enterprise: str | None = Field(None, max_length=40)
    pairs: list[PairIn] = Field(min_length=1, max_length=MAX_BATCH)


@router.post(
    "/screen/batch",
    summary="Decide up to 10,000 calls or SMS (carrier)",
    response_class=JSONResponse,
    responses=_ANSWER,
)
def screen_batch(request: Request, actor: Carrier, body: BatchIn) -> JSONResponse:
    """One result per pair, in order; a malformed pair fails the whole batch naming ``pairs.N.field``."""
    default_channel = Channel.parse(body.channel, "channel")
    default_category = _category(body.category)
    default_enterprise = _enterprise(body.enterprise)
    engine = engine_of(request.app)
    results: list[dict[str, Any]] = []
    requests = []
    for i, pair in enumerate(body.pairs):
        where = f"pairs.{i}"
        caller_n, callee_n = _number(pair.caller, f"{where}.caller"), _number(pair.callee, f"{where}.callee")
        channel = Channel.parse(pair.channel, f"{where}.channel") if pair.channel else default_channel
        category = _category(pair.category, f"{where}.category") if pair.category else default_category
        enterprise = (
            _enterprise(pair.enterprise, f"{where}.enterprise") if pair.enterprise else default_enterprise
        )
        requests.append((request_for(caller_n, callee_n, channel, category, enterprise), caller_n, callee_n))
    for req, caller_n, callee_n in requests:
        out = engine.decide(req, caller=caller_n.e164, callee=callee_n.e164)
        results.append({**out.as_dict(), "caller": caller_n.e164, "callee": callee_n.e164})
    return JSONResponse({"count": len(results), "results": results})


@router.get("/screen/blocks", summary="My block records, 拦截记录 (subscriber)")
def my_blocks(
    request: Request, actor: Subscriber, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> dict[str, Any]:
    with _rt(request).sessions() as session:
        records = queries.block_records(session, actor.subject, limit)
    return {"number": actor.subject, "records": [r.as_dict() for r in records]}


# --- wash jobs --------------------------------------------------------------------------------------
# The jobs live in the database (``screening.actions``): any process of the deployment can run them
# (``quietline worker``, or this process's runner thread kicked below), report them and serve them.

_RUNNER_LOCK = threading.Lock()
#: Status polls kick the runner at most this often (it also re-claims jobs whose worker died).
_KICK_INTERVAL = 1.0


def _kick_runner(app: FastAPI) -> None:
    """Make sure this process runs queued wash jobs soon: one runner thread per app, woken by a flag."""
    with _RUNNER_LOCK:
        app.state.wash_pending = True
        app.state.wash_kicked_at = time.monotonic()
        if getattr(app.state, "wash_runner", None) is not None:
            return
        runner = threading.Thread(target=_run_pending, args=(app,), name="wash-runner", daemon=True)
        app.state.wash_runner = runner
        runner.start()


def _run_pending(app: FastAPI) -> None:
    rt: Runtime = app.state.runtime
    while True:
        with _RUNNER_LOCK:
            if not app.state.wash_pending:
                app.state.wash_runner = None
                return
            app.state.wash_pending = False
        try:
            while actions.run_wash_jobs(rt, limit=1, snapshot=lambda: engine_of(app).snapshot):
                pass
        except Exception:  # the jobs stay in the database; the next kick or a worker retries them
            log.exception("wash runner failed")


def _read_upload(file: UploadFile) -> bytes:
    parts: list[bytes] = []
    size = 0
    while chunk := file.file.read(1 << 20):
        size += len(chunk)
        if size > actions.MAX_WASH_BYTES:
            raise InvalidInput(f"the upload exceeds {actions.MAX_WASH_BYTES} bytes", field="file")
        parts.append(chunk)
    return b"".join(parts)


def _job_answer(job: queries.WashJob) -> dict[str, Any]:
    data = job.as_dict()
    if job.result_available:
        data["download"] = f"/v1/wash/{job.id}/download"
    return data


@router.post("/wash", status_code=202, summary="Wash a call list in the background (enterprise, operator)")
def start_wash(
    request: Request,
    actor: Washer,
    file: Annotated[UploadFile, File(description="CSV (number in the first column) or one number per line")],
    enterprise: Annotated[str, Form(max_length=40)],
    category: Annotated[str, Form(max_length=40)],
    channel: Annotated[str, Form(max_length=8)] = "call",
) -> dict[str, Any]:
    """Queue the wash and answer at once with the job's id and state; poll ``GET /v1/wash/{id}``."""
    rt = _rt(request)
    uscc = _enterprise(enterprise)
    if uscc is None:
        raise InvalidInput("name the enterprise whose list this is", field="enterprise")
    if actor.role is Role.ENTERPRISE and actor.subject != uscc:
        raise PermissionDenied("an enterprise washes lists only in its own name", field="enterprise")
    cat = Category.parse(category, "category")
    ch = Channel.parse(channel, "channel")
    job_id = actions.submit_wash_job(
        rt, actor, data=_read_upload(file), enterprise=uscc, category=cat, channel=ch
    )
    _kick_runner(request.app)
    with rt.sessions() as session:
        return _job_answer(queries.wash_job(session, actor, job_id))


@router.get("/wash/{job_id}", summary="Status and summary of a wash job (its submitter)")
def wash_status(request: Request, actor: Washer, job_id: str) -> dict[str, Any]:
    with _rt(request).sessions() as session:
        job = queries.wash_job(session, actor, job_id)
    unfinished = job.state in (WashJobState.QUEUED.value, WashJobState.RUNNING.value)
    if unfinished and time.monotonic() - getattr(request.app.state, "wash_kicked_at", 0.0) > _KICK_INTERVAL:
        _kick_runner(request.app)
    return _job_answer(job)


@router.get("/wash/{job_id}/download", summary="The callable numbers of a finished wash (its submitter)")
def wash_download(request: Request, actor: Washer, job_id: str) -> StreamingResponse:
    """E.164, one per line, sorted; only numbers of the upload that may be called."""
    with _rt(request).sessions() as session:
        numbers = queries.wash_job_result(session, actor, job_id)

    def lines() -> Iterator[bytes]:
        for begin in range(0, len(numbers), 1 << 20):
            yield e164_lines(numbers[begin : begin + (1 << 20)])

    return StreamingResponse(
        lines(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="callable-{job_id}.csv"'},
    )


def install(app: FastAPI) -> None:
    """Include the router and stop the engine (flushing block records) when the app shuts down."""
    app.include_router(router)
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[Any]:
        async with inner(application) as state:
            yield state
        engine: ScreeningEngine | None = getattr(app.state, "screening_engine", None)
        if engine is not None:
            engine.stop()
            app.state.screening_engine = None

    app.router.lifespan_context = lifespan
