"""HTTP routes of the marks context: the reputation lookup for caller-ID display, marking a number,
recycling reports, corrections (号码标记纠错) and the high-risk list. Thin: parse, call, answer.

The lookup is on the call path of every incoming call, so it is public (a phone shows it before anyone
signs in), rate-limited per client, served from a short in-process cache, and never names a reporter.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from quietline.accounts import actions as accounts_actions
from quietline.api.auth import client_id, require
from quietline.marks import actions, queries
from quietline.marks.model import HighRiskState, Reputation
from quietline.marks.settings import get_marks_settings
from quietline.numbers import parse
from quietline.platform.actor import Actor
from quietline.platform.errors import InvalidInput, RateLimited
from quietline.platform.runtime import Runtime
from quietline.vocabulary import Role

router = APIRouter(prefix="/v1", tags=["marks"])

Marker = Annotated[Actor, Depends(require(Role.SUBSCRIBER, Role.OPERATOR))]
Recycler = Annotated[Actor, Depends(require(Role.CARRIER, Role.OPERATOR))]
Appellant = Annotated[Actor, Depends(require(Role.SUBSCRIBER, Role.ENTERPRISE, Role.OPERATOR))]
RiskReader = Annotated[Actor, Depends(require(Role.CARRIER, Role.REGULATOR, Role.OPERATOR))]
Enterprise = Annotated[Actor, Depends(require(Role.ENTERPRISE))]


def _rt(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


class TtlCache:
    """A bounded map whose entries expire after ``ttl`` seconds (monotonic time)."""

    def __init__(self, ttl: float, max_entries: int = 100_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._items: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            if item[0] < time.monotonic():
                del self._items[key]
                return None
            return item[1]

    def put(self, key: str, value: bytes) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            self._items[key] = (time.monotonic() + self.ttl, value)
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)

    def drop(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)


class WindowLimiter:
    """At most ``limit`` requests per client per fixed minute window."""

    def __init__(self, limit: int, window: float = 60.0, max_clients: int = 100_000) -> None:
        self.limit = limit
        self.window = window
        self.max_clients = max_clients
        self._windows: OrderedDict[str, list[float]] = OrderedDict()
        self._lock = threading.Lock()

    def hit(self, client: str) -> float | None:
        """Count a request; the seconds to wait when over the limit, else None."""
        now = time.monotonic()
        with self._lock:
            entry = self._windows.get(client)
            if entry is None or now - entry[0] >= self.window:
                entry = [now, 0.0]
                self._windows[client] = entry
                self._windows.move_to_end(client)
                while len(self._windows) > self.max_clients:
                    self._windows.popitem(last=False)
            if entry[1] >= self.limit:
                return max(0.0, entry[0] + self.window - now)
            entry[1] += 1
            return None


@dataclass
class MarksApiState:
    cache: TtlCache
    limiter: WindowLimiter


def api_state(request: Request) -> MarksApiState:
    """Per-app cache and limiter, built from ``QUIETLINE_MARKS_*`` on first use (tests replace it)."""
    state: MarksApiState | None = getattr(request.app.state, "marks_api", None)
    if state is None:
        settings = get_marks_settings()
        state = MarksApiState(
            TtlCache(settings.api_cache_seconds), WindowLimiter(settings.api_rate_per_minute)
        )
        request.app.state.marks_api = state
    return state


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


@router.get(
    "/numbers/{number}/reputation",
    response_model=ReputationOut,
    summary="Crowd reputation of a number for caller-ID display (anyone; rate-limited, cached)",
)
async def reputation(
    request: Request,
    number: str = Path(description="Any spelling: 13800138000, +8613800138000, 010-12345678 …"),
) -> Response:
    """Labels with count, confidence, whether each is displayed and why, and the verified name. The
    answer may be up to ``QUIETLINE_MARKS_API_CACHE_SECONDS`` old; reporter identities are never shown."""
    state = api_state(request)
    wait = state.limiter.hit(client_id(request))
    if wait is not None:
        seconds = int(wait) + 1
        refused = RateLimited(f"too many look-ups; retry in {seconds} s", field="client")
        # RFC 6585 §4: 429 Too Many Requests, with Retry-After saying how long to wait.
        return JSONResponse(status_code=429, content=refused.as_dict(), headers={"Retry-After": str(seconds)})
    e164 = parse(number, field="number").e164
    cached = state.cache.get(e164)
    if cached is None:
        rt = _rt(request)

        def compute() -> bytes:
            with rt.sessions() as session:
                rep = queries.reputations(session, [e164], rt.clock.now())[e164]
                body = _public(rep, queries.high_risk(session, e164), queries.block_standing(session, e164))
            # Serialised once per cache entry: a hit is then a dictionary look-up and a write.
            return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()

        cached = await run_in_threadpool(compute)
        state.cache.put(e164, cached)
        source = "miss"
    else:
        source = "hit"
    return Response(content=cached, media_type="application/json", headers={"X-Cache": source})


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
    api_state(request).cache.drop(added.number)
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
    api_state(request).cache.drop(done.number)
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
    api_state(request).cache.drop(rep.number)
    return {"number": rep.number, "verified_name": rep.verified.display if rep.verified else None}
