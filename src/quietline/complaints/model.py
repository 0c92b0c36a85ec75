"""The 12321 complaint: its report, its state machine, its working-day deadlines and its routing.

Pure Python: no database, no clock. Times and calendars are passed in.

Rules implemented here (cite when changing):
- Flow 受理 → 转送 → 核查处置 → 反馈 with the limits of the 2020 draft 《通信短信息和语音呼叫服务管理规定
  （征求意见稿）》: forward a complete complaint to the responsible company within 3 working days of
  acceptance, the company reports back within 15 working days of forwarding, the user is answered within
  3 working days of that report (Order No. 31 of 2015 allowed 5 days for forwarding; ``DeadlinePolicy``
  makes the limits explicit).
- Working days follow the State Council schedule with make-up working days (``platform.workdays``); the
  day a period starts is not counted.
- Routing: the responsible carrier is the reported number's *current* carrier (携号转网, 工信部信管
  〔2019〕242号: the prefix names only the original carrier); service numbers (95/96, 400/800, 106 ports)
  and enterprise lines go to the company holding them in the caller-number ledger and to the carrier
  that connects them (谁接入谁负责); when the reporter's carrier differs from the responsible carrier both
  carriers get the case (联动协查).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum

from quietline.platform.errors import Conflict, InvalidInput
from quietline.platform.workdays import (
    CHINA_TZ,
    CalendarNotCovered,
    WorkingCalendar,
    china_date,
    end_of_china_day,
)
from quietline.vocabulary import CallForm, CallNature, Category, Channel, LabelledEnum, NumberType

# --------------------------------------------------------------------------------------------- states


class CaseState(LabelledEnum):
    RECEIVED = ("received", "已接收")
    ACCEPTED = ("accepted", "已受理")
    REJECTED = ("rejected", "不予受理")
    FORWARDED = ("forwarded", "已转送")
    VERIFIED = ("verified", "已核查（不属实）")
    ACTED = ("acted", "已核查处置")
    ANSWERED = ("answered", "已答复")
    CLOSED = ("closed", "已办结")
    REOPENED = ("reopened", "申诉重办")


class Event(StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"
    FORWARD = "forward"
    RESPOND_SUBSTANTIATED = "respond_substantiated"
    RESPOND_UNSUBSTANTIATED = "respond_unsubstantiated"
    ANSWER = "answer"
    CLOSE = "close"
    APPEAL = "appeal"


S = CaseState
#: The only legal transitions. Anything else is refused (``IllegalTransition``).
TRANSITIONS: dict[tuple[CaseState, Event], CaseState] = {
    (S.RECEIVED, Event.ACCEPT): S.ACCEPTED,
    (S.RECEIVED, Event.REJECT): S.REJECTED,
    (S.ACCEPTED, Event.REJECT): S.REJECTED,  # out of scope found while routing
    (S.ACCEPTED, Event.FORWARD): S.FORWARDED,
    (S.FORWARDED, Event.RESPOND_SUBSTANTIATED): S.ACTED,
    (S.FORWARDED, Event.RESPOND_UNSUBSTANTIATED): S.VERIFIED,
    (S.ACTED, Event.ANSWER): S.ANSWERED,
    (S.VERIFIED, Event.ANSWER): S.ANSWERED,
    (S.ANSWERED, Event.CLOSE): S.CLOSED,
    (S.ANSWERED, Event.APPEAL): S.REOPENED,
    (S.CLOSED, Event.APPEAL): S.REOPENED,  # within the appeal window (checked by ``may_appeal``)
    (S.REJECTED, Event.APPEAL): S.REOPENED,
    (S.REOPENED, Event.FORWARD): S.FORWARDED,
    (S.REOPENED, Event.REJECT): S.REJECTED,
}
#: States in which the case still waits for someone (breach scans look only at these).
OPEN_STATES = frozenset({S.RECEIVED, S.ACCEPTED, S.FORWARDED, S.VERIFIED, S.ACTED, S.REOPENED})


class IllegalTransition(Conflict):
    def __init__(self, state: CaseState, event: Event) -> None:
        self.state = state
        self.event = event
        allowed = sorted(e.value for (s, e) in TRANSITIONS if s is state)
        super().__init__(
            f"a case in state {state.value} ({state.label}) cannot {event.value}; "
            f"allowed: {', '.join(allowed) or 'nothing (final state)'}",
            field="state",
        )


def transition(state: CaseState, event: Event) -> CaseState:
    """The state after ``event``; raises ``IllegalTransition`` for any pair not in ``TRANSITIONS``."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransition(state, event) from None


def may_appeal(state: CaseState, answered_at: datetime | None, now: datetime, window: timedelta) -> None:
    """A reporter may appeal an answer (or a rejection) within the appeal window; raises otherwise."""
    transition(state, Event.APPEAL)
    if state is not S.REJECTED and answered_at is None:
        raise Conflict("the case has not been answered yet", field="state")
    if answered_at is not None and now > answered_at + window:
        raise Conflict(
            f"the appeal window of {window.days} days after the answer of "
            f"{answered_at.astimezone(CHINA_TZ).date().isoformat()} has passed",
            field="appeal",
        )


# ------------------------------------------------------------------------------------------ reports

MAX_TEXT = 2000
MAX_DURATION_SECONDS = 24 * 3600
#: Clock skew tolerated between the reporter's "when it happened" and the receiving server.
FUTURE_SKEW = timedelta(minutes=10)


@dataclass(frozen=True)
class ReportInput:
    """A report as a user or an import gives it (already-parsed numbers are validated by the caller)."""

    channel: str
    occurred_at: datetime | None
    received_at: datetime
    duration_seconds: int | None = None
    form: str | None = None
    category: str | None = None
    nature: str | None = None
    sms_text: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class ValidReport:
    channel: Channel
    occurred_at: datetime
    received_at: datetime
    duration_seconds: int | None
    form: CallForm | None
    category: Category | None
    nature: CallNature | None
    sms_text: str | None
    description: str | None


def _clean_text(value: str | None, field_name: str) -> str | None:
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"at most {MAX_TEXT} characters (got {len(text)})", field=field_name)
    return text


def validate_report(raw: ReportInput) -> ValidReport:
    """Check a report's fields; a missing or contradictory field is refused with its name.

    Calls carry a duration and the form of the call (REFERENCE "12321 and complaints": for calls also the
    form of harassment); an SMS carries its text (12321's SMS channel takes ``被举报号码*短信内容``). A
    duration or a call form on an SMS, or SMS text on a call, contradicts the channel.
    """
    channel = Channel.parse(raw.channel, "channel")
    if raw.occurred_at is None:
        raise InvalidInput("when the call or SMS happened is required", field="at")
    if raw.occurred_at.tzinfo is None or raw.received_at.tzinfo is None:
        raise InvalidInput("times need a time zone", field="at")
    if raw.occurred_at > raw.received_at + FUTURE_SKEW:
        raise InvalidInput(
            f"{raw.occurred_at.isoformat()} is after the report was received ({raw.received_at.isoformat()})",
            field="at",
        )
    form = CallForm.parse(raw.form, "form") if raw.form not in (None, "") else None
    category = Category.parse(raw.category, "category") if raw.category not in (None, "") else None
    nature = CallNature.parse(raw.nature, "nature") if raw.nature not in (None, "") else None
    sms_text = _clean_text(raw.sms_text, "text")
    description = _clean_text(raw.description, "description")
    duration = raw.duration_seconds
    if channel is Channel.SMS:
        if duration is not None:
            raise InvalidInput("an SMS has no call duration", field="duration")
        if form is not None:
            raise InvalidInput("the form of a call (live/recorded/…) does not apply to an SMS", field="form")
        if sms_text is None:
            raise InvalidInput("the SMS text is required for an SMS report", field="text")
    else:
        if sms_text is not None:
            raise InvalidInput("SMS text given for a call; describe the call with description", field="text")
        if duration is not None and not 0 <= duration <= MAX_DURATION_SECONDS:
            raise InvalidInput(
                f"duration must be between 0 and {MAX_DURATION_SECONDS} seconds", field="duration"
            )
    return ValidReport(
        channel=channel,
        occurred_at=raw.occurred_at,
        received_at=raw.received_at,
        duration_seconds=duration,
        form=form,
        category=category,
        nature=nature,
        sms_text=sms_text,
        description=description,
    )


def parse_sms_report(body: str) -> tuple[str, str]:
    """12321's SMS channel: a message to 12321 reads ``被举报号码*短信内容`` (the reported number, an
    asterisk, the SMS text). Returns (reported number text, SMS text)."""
    text = body.strip().replace("＊", "*")
    number, sep, content = text.partition("*")
    if not sep or not number.strip():
        raise InvalidInput(
            "write the reported number, an asterisk, then the SMS text (号码*短信内容)", field="body"
        )
    if not content.strip():
        raise InvalidInput("the SMS text after the asterisk is missing", field="text")
    return number.strip(), content.strip()


#: Repeat reports of one number by one reporter within a day merge into one case (issue 5, "Report").
MERGE_WINDOW = timedelta(days=1)


def merges_with(last_report_at: datetime, new_received_at: datetime) -> bool:
    return abs(new_received_at - last_report_at) < MERGE_WINDOW


# ----------------------------------------------------------------------------------------- evidence

#: Evidence limits (a policy choice: a phone screenshot or a minute of call recording fits easily).
MAX_EVIDENCE_BYTES = 10 * 1024 * 1024
MAX_EVIDENCE_PER_CASE = 10


_SIGNATURES: tuple[tuple[Callable[[bytes], bool], str], ...] = (
    (lambda h: h.startswith(b"\x89PNG\r\n\x1a\n"), "image/png"),
    (lambda h: h.startswith(b"\xff\xd8\xff"), "image/jpeg"),
    (lambda h: h.startswith(b"RIFF") and h[8:12] == b"WEBP", "image/webp"),
    (lambda h: h.startswith(b"RIFF") and h[8:12] == b"WAVE", "audio/wav"),
    (lambda h: h.startswith(b"%PDF-"), "application/pdf"),
    (lambda h: h.startswith(b"#!AMR"), "audio/amr"),
    (lambda h: h.startswith(b"ID3") or (len(h) > 1 and h[0] == 0xFF and h[1] & 0xE0 == 0xE0), "audio/mpeg"),
    (lambda h: h[4:8] == b"ftyp", "audio/mp4"),
)


def sniff_evidence(data: bytes) -> str:
    """The media type of an evidence file from its leading bytes (its declared type is not trusted).

    Accepted: screenshots (PNG, JPEG, WebP), documents (PDF) and recordings (AMR, the format of most
    Chinese phones' call recorders; MP3; WAV; M4A/MP4 audio). Signatures: PNG (ISO/IEC 15948), JPEG
    SOI marker (ITU T.81), RIFF WEBP/WAVE, ``%PDF-`` (ISO 32000), ``#!AMR`` (RFC 4867 §5), ID3 or an MPEG
    audio frame sync, ISO BMFF ``ftyp`` (ISO/IEC 14496-12).
    """
    if not data:
        raise InvalidInput("the file is empty", field="evidence")
    if len(data) > MAX_EVIDENCE_BYTES:
        raise InvalidInput(f"larger than {MAX_EVIDENCE_BYTES // (1024 * 1024)} MiB", field="evidence")
    head = data[:16]
    for matches, media_type in _SIGNATURES:
        if matches(head):
            return media_type
    raise InvalidInput(
        "only screenshots (PNG, JPEG, WebP), PDF and recordings (AMR, MP3, WAV, M4A) are accepted",
        field="evidence",
    )


def clean_filename(name: str) -> str:
    """A display name without directories or control characters (never used as a path)."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(ch for ch in base if ch.isprintable() and ch not in '"<>')
    return cleaned.strip()[:200] or "evidence"


# ------------------------------------------------------------------------------------------ outcome


class Result(LabelledEnum):
    SUBSTANTIATED = ("substantiated", "属实")
    UNSUBSTANTIATED = ("unsubstantiated", "不属实")


class Measure(LabelledEnum):
    """What the company did (issue 5, "Act and answer")."""

    WARNED = ("warned", "警示教育")
    LINE_RESTRICTED = ("line_restricted", "限制呼出")
    NUMBER_SUSPENDED = ("number_suspended", "停机处理")
    SYSTEM_BLOCK = ("system_block", "加入系统黑名单")
    OTHER = ("other", "其他处置")
    NONE = ("none", "不属实未处置")


#: Measures that stop the number from reaching anyone: they feed screening's system block list.
BLOCKING_MEASURES = frozenset({Measure.NUMBER_SUSPENDED, Measure.SYSTEM_BLOCK})


def respond_event(result: Result) -> Event:
    return Event.RESPOND_SUBSTANTIATED if result is Result.SUBSTANTIATED else Event.RESPOND_UNSUBSTANTIATED


def parse_measure(result: Result, action_text: str, measure: str | None) -> tuple[Measure, str]:
    """The measure and the text of a company response.

    ``action_text`` is required: what was done, or for an unsubstantiated report why not. When it is
    itself a measure code or label (``--action number_suspended``) it names the measure; a measure that
    acts on a number contradicts an unsubstantiated result.
    """
    text = action_text.strip()
    if not text:
        raise InvalidInput("describe the verification and the action taken", field="action")
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"at most {MAX_TEXT} characters", field="action")
    if measure:
        chosen = Measure.parse(measure, "measure")
    else:
        try:
            chosen = Measure.parse(text, "action")
        except ValueError:
            chosen = Measure.OTHER if result is Result.SUBSTANTIATED else Measure.NONE
    if result is Result.UNSUBSTANTIATED and chosen not in (Measure.NONE, Measure.OTHER):
        raise InvalidInput(f"measure {chosen.value} contradicts an unsubstantiated result", field="measure")
    if result is Result.UNSUBSTANTIATED:
        chosen = Measure.NONE
    if result is Result.SUBSTANTIATED and chosen is Measure.NONE:
        raise InvalidInput("a substantiated report needs a measure", field="measure")
    return chosen, text


# ------------------------------------------------------------------------------------------ routing


@dataclass(frozen=True)
class NumberFacts:
    """What routing needs to know about a number (from ``quietline.numbers``)."""

    e164: str
    type: NumberType
    original_carrier: str | None
    current_carrier: str | None
    #: Emergency and public-service numbers (110, 12345, 96110 …): never blocked, never a complaint.
    never_block: bool = False


@dataclass(frozen=True)
class LedgerHolder:
    """The enterprise that holds a caller number in the caller-number ledger and its connecting carrier."""

    enterprise: str  # unified social credit code (USCC)
    connecting_carrier: str | None
    name: str | None = None


class RouteBasis(StrEnum):
    PORTABILITY = "current_carrier"
    LEDGER = "caller_number_ledger"
    INTERNATIONAL = "terminating_carrier"
    MANUAL = "manual"  # the centre named the company by hand
    UNRESOLVED = "unresolved"


@dataclass(frozen=True)
class Routing:
    responsible_carrier: str | None
    responsible_company: str | None
    assisting_carrier: str | None
    basis: RouteBasis
    explanation: str

    @property
    def resolved(self) -> bool:
        """Someone can be held to the deadline: a carrier, or the enterprise holding the number."""
        return self.responsible_carrier is not None or self.responsible_company is not None

    def recipients(self) -> list[tuple[str, str]]:
        """(party kind, party id) of everyone who gets the case."""
        out: list[tuple[str, str]] = []
        if self.responsible_carrier:
            out.append(("carrier", self.responsible_carrier))
        if self.assisting_carrier:
            out.append(("carrier", self.assisting_carrier))
        if self.responsible_company:
            out.append(("enterprise", self.responsible_company))
        return out


SERVICE_TYPES = frozenset({NumberType.SERVICE_95_96, NumberType.TOLL_FREE_400_800, NumberType.SMS_PORT})


def route(reported: NumberFacts, reporter_carrier: str | None, holder: LedgerHolder | None) -> Routing:
    """Who is responsible for a reported number (see the module docstring for the rules)."""
    company: str | None = None
    if holder is not None:
        # 谁接入谁负责: the ledger names the enterprise and the carrier connecting its line.
        carrier = holder.connecting_carrier or reported.current_carrier
        company = holder.enterprise
        basis = RouteBasis.LEDGER
        why = f"号码登记在企业 {holder.name or holder.enterprise} 名下，由接入运营商负责（谁接入谁负责）"
    elif reported.type is NumberType.INTERNATIONAL:
        carrier = reporter_carrier
        basis = RouteBasis.INTERNATIONAL if carrier else RouteBasis.UNRESOLVED
        why = "国际来电由落地（被叫所属）运营商核查"
    elif reported.type in SERVICE_TYPES and reported.current_carrier is None:
        carrier = None
        basis = RouteBasis.UNRESOLVED
        why = "服务号码未在主叫号码台账中登记，需人工转送"
    else:
        # 携号转网: the current carrier from the portability table, never the prefix alone.
        carrier = reported.current_carrier
        basis = RouteBasis.PORTABILITY if carrier else RouteBasis.UNRESOLVED
        why = "按携号转网数据确定的号码当前归属运营商" if carrier else "无法确定号码归属运营商，需人工转送"
    assisting = reporter_carrier if carrier and reporter_carrier and reporter_carrier != carrier else None
    if assisting:
        why += "；举报人所属运营商不同，联动协查"
    return Routing(carrier, company, assisting, basis, why)


# ---------------------------------------------------------------------------------------- deadlines


class Stage(StrEnum):
    """The three timed stages; each runs from its start event to its completion event."""

    FORWARD = "forward"  # acceptance (or reopening) → forwarding
    FEEDBACK = "feedback"  # forwarding → company feedback
    ANSWER = "answer"  # feedback → answer to the user


STAGE_LABELS = {Stage.FORWARD: "转送", Stage.FEEDBACK: "企业反馈", Stage.ANSWER: "答复用户"}


@dataclass(frozen=True)
class DeadlinePolicy:
    """Working-day limits per stage (2020 draft 通信短信息和语音呼叫服务管理规定: 3 / 15 / 3)."""

    forward: int = 3
    feedback: int = 15
    answer: int = 3
    #: Warn this many working days before a deadline (issue 5, "Clock").
    warn_before: int = 2

    def limit(self, stage: Stage) -> int:
        return {Stage.FORWARD: self.forward, Stage.FEEDBACK: self.feedback, Stage.ANSWER: self.answer}[stage]


@dataclass(frozen=True)
class Timeline:
    """The moments that start and finish the stages of the current cycle (a reopening starts a new one)."""

    clock_start: datetime | None  # acceptance, or the appeal that reopened the case
    forwarded_at: datetime | None
    feedback_at: datetime | None
    answered_at: datetime | None

    def started(self, stage: Stage) -> datetime | None:
        return {Stage.FORWARD: self.clock_start, Stage.FEEDBACK: self.forwarded_at}.get(
            stage, self.feedback_at
        )

    def finished(self, stage: Stage) -> datetime | None:
        return {Stage.FORWARD: self.forwarded_at, Stage.FEEDBACK: self.feedback_at}.get(
            stage, self.answered_at
        )


@dataclass(frozen=True)
class StageClock:
    stage: Stage
    due: date | None  # None when the calendar does not cover it (``uncovered``) or nothing started
    projected: bool  # the stage has not started: ``due`` assumes the previous stage uses its full time
    started_at: datetime | None
    finished_at: datetime | None
    uncovered: date | None = None  # the first date no calendar source knows
    #: When ``uncovered``: the expected date on the statutory holidays alone (shown as an estimate, never
    #: enforced: breaches and warnings wait for the year's schedule).
    estimate: date | None = None

    @property
    def due_end(self) -> datetime | None:
        return None if self.due is None else end_of_china_day(self.due)

    def breached(self, as_of: datetime) -> bool:
        """Late as of ``as_of``: finished after the deadline, or still unfinished past it."""
        due_end = self.due_end
        if self.projected or due_end is None or self.started_at is None or as_of <= due_end:
            return False
        return self.finished_at is None or self.finished_at > due_end

    def late_by_finish(self) -> bool:
        return self.finished_at is not None and self.due_end is not None and self.finished_at > self.due_end


@dataclass(frozen=True)
class Deadlines:
    clocks: tuple[StageClock, ...] = field(default_factory=tuple)

    def __getitem__(self, stage: Stage) -> StageClock:
        return next(c for c in self.clocks if c.stage is stage)

    def as_dates(self) -> dict[str, str | None]:
        return {c.stage.value: c.due.isoformat() if c.due else None for c in self.clocks}


def compute_deadlines(timeline: Timeline, calendar: WorkingCalendar, policy: DeadlinePolicy) -> Deadlines:
    """Each stage's deadline; unstarted stages are projected from the previous stage's deadline.

    A stage that has started counts from its actual start date; a stage that has not started yet is
    shown as it would be if the previous stage finished on its own deadline (the latest the company
    can be asked for), so every clock is visible from acceptance on.
    """
    clocks: list[StageClock] = []
    anchor: date | None = None
    for stage in Stage:
        started = timeline.started(stage)
        projected = started is None
        start_day = china_date(started) if started is not None else anchor
        due: date | None = None
        uncovered: date | None = None
        estimate: date | None = None
        if start_day is not None:
            try:
                due = calendar.add_working_days(start_day, policy.limit(stage))
            except CalendarNotCovered as exc:
                uncovered = exc.day
                estimate = calendar.add_working_days(start_day, policy.limit(stage), estimate=True)
        clocks.append(
            StageClock(stage, due, projected, started, timeline.finished(stage), uncovered, estimate)
        )
        finished = timeline.finished(stage)
        anchor = china_date(finished) if finished is not None else (due or estimate)
    return Deadlines(tuple(clocks))


class Alert(StrEnum):
    BREACH = "breach"
    DUE_SOON = "due_soon"
    CALENDAR_GAP = "calendar_gap"


@dataclass(frozen=True)
class StageAlert:
    stage: Stage
    alert: Alert
    due: date | None


def alerts(
    deadlines: Deadlines, as_of: datetime, calendar: WorkingCalendar, policy: DeadlinePolicy
) -> list[StageAlert]:
    """Breaches, warnings two working days before a deadline, and deadlines the calendar cannot place."""
    out: list[StageAlert] = []
    today = china_date(as_of)
    for clock in deadlines.clocks:
        if clock.started_at is None or clock.started_at > as_of:
            continue
        if clock.uncovered is not None:
            out.append(StageAlert(clock.stage, Alert.CALENDAR_GAP, None))
            continue
        if clock.breached(as_of):
            out.append(StageAlert(clock.stage, Alert.BREACH, clock.due))
            continue
        unfinished = clock.finished_at is None or clock.finished_at > as_of
        if unfinished and clock.due is not None and today <= clock.due:
            try:
                warn_from = calendar.add_working_days(clock.due, -policy.warn_before)
            except CalendarNotCovered:
                warn_from = clock.due
            if today >= warn_from:
                out.append(StageAlert(clock.stage, Alert.DUE_SOON, clock.due))
    return out
