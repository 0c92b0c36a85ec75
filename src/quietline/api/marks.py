"""HTTP routes of the marks context: the reputation lookup for caller-ID display, marking a number,
recycling reports, corrections (号码标记纠错) and the high-risk list. Thin: parse, call, answer.

The lookup is on the call path of every incoming call, so it is public (a phone shows it before anyone
signs in), rate-limited per client, served from an in-process cache that the change feed invalidates
(``quietline.marks.lookup``), and never names a reporter.

Hot path (measured with py-spy under load, ``benchmarks/bench_marks_lookup.py``): a cached answer is
served by ``ReputationFastPath``, a small ASGI middleware in front of FastAPI's router, which costs a
dictionary look-up instead of route matching over every router of the app, dependency resolution and a
``Response`` object. It answers only what it can answer without the database — a cache hit for a
client it can identify (an address, or an API key it has seen authenticate within a minute) — and
passes everything else (misses, invalid numbers, keys it has not seen) to the route below, which does
the same checks in full. A request is counted once against the client's limit, wherever it is answered.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from quietline.accounts import actions as accounts_actions
from quietline.api.auth import client_id, require
from quietline.marks import actions, queries
from quietline.marks.lookup import AnswerCache, FeedWatch, TokenBucketLimiter, serving_processes, share_of
from quietline.marks.model import HighRiskState, Reputation
from quietline.marks.settings import get_marks_settings
from quietline.numbers import parse
from quietline.platform.actor import Actor
from quietline.platform.errors import InvalidInput, RateLimited
from quietline.platform.runtime import Runtime
from quietline.vocabulary import Role

router = APIRouter(prefix="/v1", tags=["marks"])
log = logging.getLogger(__name__)

Marker = Annotated[Actor, Depends(require(Role.SUBSCRIBER, Role.OPERATOR))]
Recycler = Annotated[Actor, Depends(require(Role.CARRIER, Role.OPERATOR))]
Appellant = Annotated[Actor, Depends(require(Role.SUBSCRIBER, Role.ENTERPRISE, Role.OPERATOR))]
RiskReader = Annotated[Actor, Depends(require(Role.CARRIER, Role.REGULATOR, Role.OPERATOR))]
Enterprise = Annotated[Actor, Depends(require(Role.ENTERPRISE))]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: Set on a request's scope once it was counted against its client's look-up limit.
_COUNTED = "quietline.marks.counted"
#: How long an API key's identity is remembered for rate limiting (the look-up itself is public, so a
#: revoked key at worst keeps its own bucket this long instead of its address's).
KEY_MEMO_SECONDS = 60.0
_MEMO_MAX = 100_000


def _rt(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


@dataclass
class MarksApiState:
    """The look-up's cache, limiter and change-feed watch, one per app (tests build their own)."""

    cache: AnswerCache
    limiter: TokenBucketLimiter
    watch: FeedWatch | None = None
    poll_interval: float = 0.1
    max_staleness: float = 1.0
    #: sha256 of an Authorization header → (expiry, client id; "" when the key did not authenticate).
    keys: dict[bytes, tuple[float, str]] = field(default_factory=dict)
    #: A number as spelled in a request path → its E.164 form.
    spellings: dict[str, str] = field(default_factory=dict)
    #: Numbers whose expired answer is being recomputed in the background, and the last such job.
    poll_pending: bool = False
    revalidating: set[str] = field(default_factory=set)
    last_revalidation: concurrent.futures.Future[None] | None = None
    #: Background work (feed polls, recomputing expired answers): never on a request's path.
    background: concurrent.futures.ThreadPoolExecutor = field(
        default_factory=lambda: concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="marks-lookup")
    )

    def revalidate(self, rt: Runtime, e164: str) -> None:
        """Recompute an expired answer in the background (once at a time per number)."""
        if e164 in self.revalidating:
            return
        self.revalidating.add(e164)

        def job() -> None:
            try:
                ticket = self.cache.ticket()
                self.cache.put(e164, compute_answer(rt, e164), ticket)
            except Exception:
                log.exception("reputation cache: recomputing %s failed", e164)
            finally:
                self.revalidating.discard(e164)

        self.last_revalidation = self.background.submit(job)

    async def fresh(self) -> None:
        """Bring the cache up to the change feed: in the background every ``poll_interval``; waiting
        for it when the last read is older than ``max_staleness`` (after an idle spell), so no answer
        outlives a label change by more than that."""
        watch = self.watch
        if watch is None:
            return
        age = time.monotonic() - watch.fresh_as_of
        if age < self.poll_interval:
            return
        if age >= self.max_staleness:
            await run_in_threadpool(watch.poll)
        elif not self.poll_pending:
            self.poll_pending = True
            self.background.submit(self._poll_in_background, watch)

    def _poll_in_background(self, watch: FeedWatch) -> None:
        try:
            watch.poll_quietly()
        finally:
            self.poll_pending = False

    def client_of(self, scope: Scope) -> str | None:
        """The client a request counts against, when known without the database (see ``client_id``)."""
        header: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                header = value
                break
        if header is not None:
            memo = self.keys.get(hashlib.sha256(header).digest())
            if memo is None or memo[0] < time.monotonic():
                return None
            if memo[1]:
                return memo[1]
        client = scope.get("client")
        return f"ip:{client[0] if client else 'unknown'}"

    def remember_key(self, header: str, client: str) -> None:
        if len(self.keys) >= _MEMO_MAX:
            self.keys.clear()
        known = client if client.startswith("key:") else ""
        self.keys[hashlib.sha256(header.encode("latin-1")).digest()] = (
            time.monotonic() + KEY_MEMO_SECONDS,
            known,
        )

    def remember_spelling(self, spelled: str, e164: str) -> None:
        if len(self.spellings) >= _MEMO_MAX:
            self.spellings.clear()
        self.spellings[spelled] = e164


_STATE_LOCK = threading.Lock()


def state_of(app: Any) -> MarksApiState:
    """The app's look-up state, built from ``QUIETLINE_MARKS_*`` on first use (tests set their own)."""
    state: MarksApiState | None = getattr(app.state, "marks_api", None)
    if state is None:
        with _STATE_LOCK:
            state = getattr(app.state, "marks_api", None)
            if state is None:
                settings = get_marks_settings()
                rt: Runtime = app.state.runtime
                cache = AnswerCache(settings.api_cache_seconds)
                share = share_of(settings.api_rate_per_minute, serving_processes(settings.api_processes))
                state = MarksApiState(
                    cache,
                    TokenBucketLimiter(share),
                    FeedWatch(rt.engine, cache.drop),
                    settings.api_feed_poll_seconds,
                    settings.api_max_staleness_seconds,
                )
                app.state.marks_api = state
    return state


def api_state(request: Request) -> MarksApiState:
    return state_of(request.app)


def _too_many(wait: float) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    seconds = int(wait) + 1
    refused = RateLimited(f"too many look-ups; retry in {seconds} s", field="client")
    body = json.dumps(refused.as_dict(), ensure_ascii=False).encode()
    # RFC 6585 §4: 429 Too Many Requests, with Retry-After saying how long to wait.
    return 429, body, [(b"retry-after", str(seconds).encode())]


_PREFIX = "/v1/numbers/"
_SUFFIX = "/reputation"


class ReputationFastPath:
    """Serves cached reputation answers before the router (see the module docstring)."""

    def __init__(self, app: AsgiApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            path: str = scope["path"]
            if path.startswith(_PREFIX) and path.endswith(_SUFFIX) and await self._answer(scope, send, path):
                return
        await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, send: Send, path: str) -> bool:
        spelled = path[len(_PREFIX) : -len(_SUFFIX)]
        if not spelled or "/" in spelled:
            return False
        state = state_of(scope["app"])
        client = state.client_of(scope)
        if client is None:
            return False
        wait = state.limiter.hit(client)
        if wait is not None:
            status, body, extra = _too_many(wait)
            await _send(send, status, body, extra)
            return True
        scope[_COUNTED] = True
        await state.fresh()
        e164 = state.spellings.get(spelled)
        found = None if e164 is None else state.cache.lookup(e164)
        if e164 is None or found is None:
            return False
        body, fresh = found
        if not fresh:  # only counts can be old: serve it once more and recompute it behind
            state.revalidate(scope["app"].state.runtime, e164)
        await _send(send, 200, body, [(b"x-cache", b"hit" if fresh else b"stale")])
        return True


async def _send(send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]]) -> None:
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def install(app: FastAPI) -> None:
    """Include the router and put the look-up's fast path in front of it."""
    app.include_router(router)
    app.add_middleware(ReputationFastPath)


class LabelOut(BaseModel):
    label: str = Field(examples=["real_estate"])
    label_zh: str = Field(examples=["房产中介"])
    severity: str = Field(description="warning (the number turns red), info, or positive")
    count: int = Field(description="Distinct reporters with a live mark of this label.")
    confidence: float = Field(description="Share of the number's weighted evidence behind this label.")
    displayed: bool
    explanation: str = Field(examples=["被 37 位用户标记为房产中介，最近一次 2 天前"])


class ReputationOut(BaseModel):
    number: str
    labels: list[LabelOut]
    displayed: list[str]
    warning: bool = Field(description="A warning label is displayed (DESIGN.md decision order step 7).")
    verified_name: str | None = Field(description="The verified enterprise identity, e.g. 某某银行 · 客服.")
    high_risk: str | None = Field(description="suspected, verified or acted when on the high-risk list.")
    computed_at: str
    block: dict[str, Any] | None = Field(
        default=None,
        description="Warnings among the number's 10- and 100-number block (block_suspected at 4 of 10).",
    )


def _public(
    rep: Reputation, risk: queries.HighRiskEntry | None, block: queries.BlockStanding | None = None
) -> dict[str, Any]:
    """What a caller-ID client may see: labels, counts and confidences; never a reporter."""
    return {
        "number": rep.number,
        "labels": [
            {
                "label": lr.label.value,
                "label_zh": lr.label.label,
                "severity": lr.label.severity.value,
                "count": lr.count,
                "confidence": round(lr.confidence, 4),
                "displayed": lr.displayed,
                "explanation": lr.explanation,
            }
            for lr in rep.labels
        ],
        "displayed": [lr.label.value for lr in rep.displayed],
        "warning": rep.is_red,
        "verified_name": rep.verified.display if rep.verified else None,
        "high_risk": risk.state.value if risk and risk.state is not HighRiskState.CLEARED else None,
        "computed_at": (rep.computed_at.isoformat() if rep.computed_at else ""),
        "block": block.as_dict() if block else None,
    }


def compute_answer(rt: Runtime, e164: str) -> bytes:
    """The public answer for a number, from the database, serialised once per cache entry (a hit is
    then a dictionary look-up and a write)."""
    with rt.sessions() as session:
        rep = queries.reputations(session, [e164], rt.clock.now())[e164]
        body = _public(rep, queries.high_risk(session, e164), queries.block_standing(session, e164))
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


@router.get(
    "/numbers/{number}/reputation",
    response_model=ReputationOut,
    summary="Crowd reputation of a number for caller-ID display (anyone; rate-limited, cached)",
)
async def reputation(
    request: Request,
    number: str = Path(description="Any spelling: 13800138000, +8613800138000, 010-12345678 …"),
) -> Response:
    """Labels with count, confidence, whether each is displayed and why, and the verified name. Counts
    may be up to ``QUIETLINE_MARKS_API_CACHE_SECONDS`` old; a change of a displayed label, of the
    high-risk state or of the verified name shows within ``QUIETLINE_MARKS_API_MAX_STALENESS_SECONDS``.
    Reporter identities are never shown."""
    state = api_state(request)
    if not request.scope.get(_COUNTED):
        header = request.headers.get("authorization")
        if header is None:
            client = client_id(request)
        else:  # authenticating a key reads the database: not on the event loop
            client = await run_in_threadpool(client_id, request)
            state.remember_key(header, client)
        wait = state.limiter.hit(client)
        if wait is not None:
            status, body, extra = _too_many(wait)
            return Response(body, status, {k.decode(): v.decode() for k, v in extra}, "application/json")
        await state.fresh()
    e164 = parse(number, field="number").e164
    state.remember_spelling(number, e164)
    cached = state.cache.get(e164)
    if cached is not None:
        return Response(content=cached, media_type="application/json", headers={"X-Cache": "hit"})
    rt = _rt(request)
    ticket = state.cache.ticket()  # before the read: a change invalidated meanwhile is not stored
    computed = await run_in_threadpool(compute_answer, rt, e164)
    state.cache.put(e164, computed, ticket)
    return Response(content=computed, media_type="application/json", headers={"X-Cache": "miss"})


class MarkIn(BaseModel):
    number: str = Field(max_length=40, description="The number being marked.")
    label: str = Field(
        max_length=40, description="Label code or Chinese label, e.g. real_estate or 房产中介."
    )
    device: str | None = Field(default=None, max_length=64, description="The app's device id.")
    reporter: str | None = Field(
        default=None, max_length=40, description="Operator imports only: the reporting subscriber."
    )


@router.post("/marks", status_code=201, summary="Mark a number after a call (subscriber, operator)")
def add_mark(body: MarkIn, request: Request, actor: Marker) -> dict[str, Any]:
    """One live mark per reporter per number (a new one replaces the old); rate-limited per reporter.
    A subscriber marks as itself; the operator names the reporter of an imported mark."""
    reporter = body.reporter or (actor.subject if actor.role is Role.SUBSCRIBER else "")
    if not reporter:
        raise InvalidInput("name the reporting subscriber", field="reporter")
    added = actions.add_mark(
        _rt(request), actor, number=body.number, label=body.label, reporter=reporter, device=body.device
    )
    api_state(request).cache.drop([added.number])
    return {
        "number": added.number,
        "label": added.label.value,
        "replaced": added.replaced.value if added.replaced else None,
        "reputation": _public(added.reputation, None),
    }


@router.post(
    "/numbers/{number}/recycle",
    summary="Report a reassigned number (二次放号): its marks are cleared (carrier, operator)",
)
def recycle(request: Request, actor: Recycler, number: str = Path(max_length=40)) -> dict[str, Any]:
    done = actions.recycle(_rt(request), actor, number)
    api_state(request).cache.drop([done.number])
    return done.as_dict()


class AppealIn(BaseModel):
    number: str = Field(max_length=40)
    label: str = Field(max_length=40)
    reason: str = Field(max_length=2000)
    proof: str | None = Field(default=None, max_length=40, description="Operator only: the proof checked.")


@router.post(
    "/marks/appeals",
    status_code=201,
    summary="Dispute a label on one's own number (its subscriber, its verified enterprise, operator)",
)
def open_appeal(body: AppealIn, request: Request, actor: Appellant) -> dict[str, Any]:
    """号码标记纠错: decided within 3 working days; the owner is told the outcome."""
    appeal = actions.open_appeal(
        _rt(request), actor, number=body.number, label=body.label, reason=body.reason, proof=body.proof
    )
    return appeal.as_dict()


@router.get("/marks/high-risk", summary="The high-risk list (carrier, regulator, operator)")
def high_risk(request: Request, actor: RiskReader, state: str | None = None) -> list[dict[str, Any]]:
    del actor  # access is checked by the dependency
    wanted = HighRiskState.parse(state, "state") if state else None
    rt = _rt(request)
    with rt.sessions() as session:
        return [e.as_dict() for e in queries.list_high_risk(session, wanted)]


class IdentityIn(BaseModel):
    number: str = Field(max_length=40, description="The enterprise's mobile number to verify.")
    code: str = Field(max_length=20, description="The code sent to that number by POST /v1/auth/otp.")
    name: str = Field(max_length=200, description="Display name, e.g. 某某银行信用卡中心.")
    purpose: str = Field(default="", max_length=100, description="Purpose, e.g. 客服.")


@router.post(
    "/marks/identities",
    status_code=201,
    summary="Register a verified identity on a number proved by a code sent to it (enterprise)",
)
def register_identity(body: IdentityIn, request: Request, actor: Enterprise) -> dict[str, Any]:
    """Proof of ownership by a one-time code (issue 6, "Verified identities"): request a code to the
    number with ``POST /v1/auth/otp``, then send it here. The code is used up; the subscriber session
    its check opens is ended at once (the enterprise proved the number, it did not sign in with it).
    Numbers on the caller-number ledger get their identity from the ledger instead."""
    rt = _rt(request)
    proved = accounts_actions.verify_code(rt, body.number, body.code, client=client_id(request))
    accounts_actions.end_session(rt, proved.actor)
    rep = actions.register_identity(
        rt, actor, number=proved.number, name=body.name, purpose=body.purpose, proof="otp"
    )
    api_state(request).cache.drop([rep.number])
    return {"number": rep.number, "verified_name": rep.verified.display if rep.verified else None}
