"""12321 complaints in the portal (issue 5): the reporter's pages and the companies' inbox.

Reporter (subscriber session): ``/me/complaints/new`` files a report of a call or an SMS with optional
evidence; ``/me/complaints`` lists the reporter's cases with their state and deadlines;
``/me/complaints/{id}`` shows the timeline, the deadlines, the company's outcome once the 12321 centre
has answered, and the appeal form while the appeal window is open.

Staff (``web.staff`` session): ``/staff/complaints`` is the inbox. A carrier or an enterprise sees the
cases routed to it (``queries.inbox``/``queries.may_see``, the API's rules) and records its
verification and action (``actions.respond``, which refuses anyone ``may_act_for`` refuses). Answering
the reporter is the centre's step in the domain (``actions.answer`` admits the operator and the regulator
only), so the 12321 operator sees every open case and answers those a company has responded to (and
forwards cases routing could not place); the regulator sees every open case read-only.

Pages hold no rules: every check is the domain's, and its errors are shown next to the field they name,
in Chinese, with the submitted values kept.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from quietline.api import complaints as complaints_api
from quietline.complaints import actions, queries
from quietline.complaints.actions import Filing, may_act_for
from quietline.complaints.model import (
    BLOCKING_MEASURES,
    MAX_EVIDENCE_BYTES,
    MAX_EVIDENCE_PER_CASE,
    OPEN_STATES,
    Alert,
    CaseState,
    Measure,
    Result,
    Stage,
    StageClock,
    alerts,
    may_appeal,
    sniff_evidence,
)
from quietline.complaints.routing import NumbersResolver
from quietline.numbers import parse as parse_number
from quietline.platform.actor import Actor
from quietline.platform.errors import Conflict, InvalidInput, NotFound, QuietlineError
from quietline.platform.runtime import Runtime
from quietline.platform.workdays import CHINA_TZ
from quietline.vocabulary import (
    CallForm,
    CallNature,
    Carrier,
    Category,
    Channel,
    LabelledEnum,
    Role,
    VocabularyError,
)
from quietline.web import staff
from quietline.web.portal import templates
from quietline.web.requests import runtime_of, subscriber_of

router = APIRouter(include_in_schema=False)
staff.add_nav("/staff/complaints", "投诉工单")

#: Chinese names of the fields the domain names in its errors.
FIELD_LABELS = {
    "reported": "被举报号码",
    "reporter": "举报号码",
    "channel": "类型",
    "at": "发生时间",
    "duration": "通话时长",
    "form": "呼叫方式",
    "category": "行业类别",
    "nature": "性质",
    "text": "短信内容",
    "description": "情况描述",
    "evidence": "证据文件",
    "result": "核查结果",
    "measure": "处置措施",
    "action": "核查及处置说明",
    "appeal": "申诉理由",
    "answer": "答复内容",
    "carrier": "运营商",
    "company": "企业",
    "state": "办理状态",
    "id": "投诉",
}
#: What to do about an error in each field, in Chinese (the domain's own message is shown as detail).
FIELD_HINTS = {
    "reported": "请填写正确的被举报号码（手机、固话、95/96、400 等号码）；"
    "紧急和公共服务号码不受理，也不能举报本人号码。",
    "reporter": "举报号码须为能接收短信的手机号码，且每个号码每天最多举报 30 次。",
    "channel": "请选择“电话”或“短信”。",
    "at": "请填写来电或收到短信的时间，不能晚于当前时间。",
    "duration": "通话时长为 0 至 86400 之间的整数秒；举报短信时请留空。",
    "form": "请从列表中选择呼叫方式；举报短信时请留空。",
    "category": "请从列表中选择行业类别。",
    "nature": "请从列表中选择性质。",
    "text": "举报短信时请粘贴短信内容（不超过 2000 字）；举报来电请写在“情况描述”中。",
    "description": "情况描述不超过 2000 字。",
    "evidence": "证据仅支持截图（PNG、JPEG、WebP）、PDF 和录音（AMR、MP3、WAV、M4A），"
    f"每个文件不超过 {MAX_EVIDENCE_BYTES // (1024 * 1024)} MB，每件投诉最多 {MAX_EVIDENCE_PER_CASE} 个。",
    "result": "请选择核查结果：属实或不属实。",
    "measure": "核查属实须选择处置措施；不属实时无需选择；停机和加入系统黑名单仅限电信企业。",
    "action": "请填写核查情况和处置说明（不超过 2000 字）。",
    "appeal": "请写明对答复有异议的理由（不超过 2000 字）。",
    "answer": "答复内容不超过 2000 字，留空则按核查结果自动生成。",
    "carrier": "请选择负责核查的运营商。",
    "company": "请填写正确的统一社会信用代码。",
    "state": "当前状态下不能进行此操作，可能已有他人处理，请刷新页面。",
    "id": "找不到该投诉。",
}
EVENT_LABELS = {
    "received": "收到举报",
    "accept": "受理",
    "reject": "不予受理",
    "forward": "转送责任企业",
    "route": "人工确定责任企业",
    "merged": "合并同一号码的重复举报",
    "respond_substantiated": "企业核查：属实并处置",
    "respond_unsubstantiated": "企业核查：不属实",
    "answer": "答复举报人",
    "close": "办结",
    "appeal": "举报人申诉，重新办理",
    "evidence": "提交证据",
    "breach": "办理超时",
    "due_soon": "临近办理期限",
    "calendar_gap": "节假日安排未公布，期限待定",
}
STAGE_LABELS = {Stage.FORWARD: "转送企业", Stage.FEEDBACK: "企业核查反馈", Stage.ANSWER: "答复举报人"}
ALERT_LABELS = {Alert.BREACH: "已超时", Alert.DUE_SOON: "即将到期", Alert.CALENDAR_GAP: "期限待定"}


# --------------------------------------------------------------------------------------- helpers


def _reporter_page(
    request: Request, name: str, actor: Actor | None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    context.setdefault("error", None)
    context.setdefault("notice", None)
    context.setdefault("errors", {})
    context["actor"] = actor
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def _field_error(exc: QuietlineError | VocabularyError) -> tuple[str, str, str]:
    """(field, what to do in Chinese, the domain's own detail) for a domain error."""
    field = exc.field or ""
    detail = exc.message if isinstance(exc, QuietlineError) else str(exc)
    return field, FIELD_HINTS.get(field, "提交的内容有误，请检查后重试。"), detail


def _problem(exc: QuietlineError | VocabularyError) -> dict[str, Any]:
    """Template context for an error: the top alert names the field in Chinese; next to the field the
    hint and, in small print, the domain's exact reason."""
    field, hint, detail = _field_error(exc)
    label = FIELD_LABELS.get(field, "")
    return {
        "error": f"{label}：{hint}" if label else hint,
        "errors": {field: {"hint": hint, "detail": detail}},
    }


def _status_of(exc: QuietlineError | VocabularyError) -> int:
    return exc.status if isinstance(exc, QuietlineError) else 422


def _label(enum: type[LabelledEnum], value: str | None) -> str:
    if not value:
        return ""
    try:
        return enum.parse(value).label
    except VocabularyError:
        return value


def _national(e164: str) -> str:
    try:
        return parse_number(e164).national
    except QuietlineError:
        return e164


def _china(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M")


def _carrier_label(code: str | None) -> str:
    return _label(Carrier, code) if code else ""


@dataclass(frozen=True)
class ClockRow:
    """One stage's deadline as a page shows it."""

    stage: str
    due: str
    status: str
    css: str
    #: The year whose holiday schedule is missing when ``due`` is an estimate (see the page's note).
    estimated_year: int | None = None


def _clock_rows(view: queries.CaseView, now: datetime, rt: Runtime, session: Any) -> list[ClockRow]:
    calendar = queries.load_calendar(session)
    flagged = {a.stage: a.alert for a in alerts(view.deadlines, now, calendar, queries.POLICY)}
    rows = []
    for clock in view.deadlines.clocks:
        rows.append(
            ClockRow(
                STAGE_LABELS[clock.stage],
                _due_text(clock),
                _clock_status(clock, flagged.get(clock.stage)),
                _clock_css(clock, flagged.get(clock.stage)),
                clock.uncovered.year if clock.uncovered is not None and clock.estimate is not None else None,
            )
        )
    return rows


def _due_text(clock: StageClock) -> str:
    if clock.due is not None:
        return clock.due.isoformat()
    if clock.estimate is not None:
        return f"约 {clock.estimate.isoformat()}"
    return "待定"


def _clock_status(clock: StageClock, alert: Alert | None) -> str:
    if clock.uncovered is not None:
        if clock.estimate is not None and clock.finished_at is None:
            return "预计（暂按法定假日）"
        return f"节假日安排未公布（{clock.uncovered.year} 年），期限待定"
    if clock.finished_at is not None:
        done = f"已于 {_china(clock.finished_at)} 完成"
        return done + ("（超时）" if clock.late_by_finish() else "")
    if alert is not None:
        return ALERT_LABELS[alert]
    if clock.projected:
        return "预计（上一环节按期完成时）"
    return "办理中"


def _clock_css(clock: StageClock, alert: Alert | None) -> str:
    if clock.finished_at is not None:
        return "breach" if clock.late_by_finish() else "done"
    return alert.value if alert is not None else ""


def _current(view: queries.CaseView, now: datetime, calendar: Any) -> tuple[str, str, str]:
    """(stage label, due date, alert css) of the stage the case waits on; empty when it waits on none."""
    if view.state not in OPEN_STATES:
        return "", "", ""
    flagged = {a.stage: a.alert for a in alerts(view.deadlines, now, calendar, queries.POLICY)}
    for clock in view.deadlines.clocks:
        if clock.finished_at is None:
            alert = flagged.get(clock.stage)
            due = _due_text(clock)
            return STAGE_LABELS[clock.stage], due, alert.value if alert else ""
    return "", "", ""


def _timeline(entries: Iterable[Any], *, viewer: Actor) -> list[dict[str, str]]:
    """The audited steps of a case, oldest first, as the viewer may see them: the reporter sees who
    acted by role; an enterprise sees subscribers masked (it learns what was reported, not who)."""
    out = []
    for entry in entries:
        event = entry.action.removeprefix("complaint.")
        after = entry.after or {}
        state = after.get("state")
        actor_role, _, actor_subject = entry.actor.partition(":")
        if actor_role == Role.SUBSCRIBER.value and event in ("accept", "forward"):
            by = "系统自动"  # a complete report is accepted and forwarded as it is filed
        elif actor_role == Role.SUBSCRIBER.value:
            if viewer.role is Role.SUBSCRIBER:
                by = "本人"
            elif viewer.role is Role.ENTERPRISE:
                by = f"举报人 {queries.mask_number(actor_subject)}"
            else:
                by = f"举报人 {actor_subject}"
        elif actor_subject.startswith("system:"):
            by = "系统"
        elif viewer.role is Role.SUBSCRIBER:
            by = "12321" if actor_role in (Role.OPERATOR.value, Role.REGULATOR.value) else "责任企业"
        else:
            by = _label(Role, actor_role) + (f" · {actor_subject}" if actor_subject else "")
        out.append(
            {
                "at": _china(entry.at),
                "event": EVENT_LABELS.get(event, event),
                "state": _label(CaseState, state) if state else "",
                "by": by,
            }
        )
    return out


def _outcome(view: queries.CaseView) -> dict[str, str] | None:
    """The answer the reporter received, once the centre has answered (the company's finding alone is
    not yet the answer: 12321 answers within 3 working days of it)."""
    row = view.row
    if view.state not in (CaseState.ANSWERED, CaseState.CLOSED) or not row.answer_text:
        return None
    return {
        "result": _label(Result, row.result),
        "measure": _label(Measure, row.measure) if row.measure and row.measure != Measure.NONE.value else "",
        "answer": row.answer_text,
        "answered_at": _china(row.answered_at),
    }


def _appeal_status(view: queries.CaseView, now: datetime, window: timedelta) -> tuple[bool, str]:
    """(may appeal now, what to tell the reporter). ``model.may_appeal`` decides."""
    row = view.row
    try:
        may_appeal(view.state, row.answered_at, now, window)
    except Conflict as exc:
        if exc.field == "appeal" and row.answered_at is not None:
            closed = (row.answered_at + window).astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M")
            return False, f"申诉期已于 {closed} 结束，不能再申诉。"
        return False, ""
    if row.answered_at is None:  # a rejected report
        return True, "如对不予受理有异议，可以申诉。"
    until = (row.answered_at + window).astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M")
    return True, f"如对答复有异议，可在 {until} 前申诉，申诉后将重新转送办理。"


@dataclass(frozen=True)
class Submitted:
    """A posted form, read completely (its temporary files closed): text fields and the evidence files
    as uploaded (not yet checked)."""

    values: dict[str, str]
    files: list[tuple[str, bytes]]

    def text(self, name: str) -> str:
        return self.values.get(name, "")


async def _submitted(request: Request) -> Submitted:
    async with request.form() as form:
        values = {k: v.strip() for k, v in form.items() if isinstance(v, str)}
        uploads = [f for f in form.getlist("evidence") if isinstance(f, UploadFile) and f.filename]
        files = []
        for upload in uploads[: MAX_EVIDENCE_PER_CASE + 1]:  # one more than allowed is enough to refuse
            files.append((upload.filename or "", await upload.read(MAX_EVIDENCE_BYTES + 1)))
    return Submitted(values, files)


def _checked_evidence(files: list[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """Check every file (type from its bytes, size, count) before anything is saved, so one bad file
    refuses the whole form."""
    if len(files) > MAX_EVIDENCE_PER_CASE:
        raise InvalidInput(f"at most {MAX_EVIDENCE_PER_CASE} files", field="evidence")
    for _name, data in files:
        sniff_evidence(data)
    return files


def _attach_all(rt: Runtime, actor: Actor, case_id: int, files: list[tuple[str, bytes]]) -> int:
    """Attach checked files; returns how many could not be attached (the case limit, a closed case)."""
    failed = 0
    for name, data in files:
        try:
            actions.attach_evidence(rt, actor, case_id, filename=name, data=data)
        except QuietlineError:
            failed += 1
    return failed


def _deliver_webhooks(request: Request, background: BackgroundTasks) -> None:
    """Post the webhooks a forwarding queued, after the response, exactly as the API does (the outbox
    keeps any that fail for the scheduled ``complaints scan``)."""
    background.add_task(complaints_api.deliver_after_response, request)  # the API's shared HTTP transport


# ----------------------------------------------------------------------------------- reporter pages


def _report_form(
    request: Request,
    actor: Actor,
    *,
    values: dict[str, str] | None = None,
    status_code: int = 200,
    **ctx: Any,
) -> HTMLResponse:
    now = runtime_of(request).clock.now().astimezone(CHINA_TZ)
    return _reporter_page(
        request,
        "complaints_new.html",
        actor,
        status_code=status_code,
        values=values or {"channel": "call"},
        channels=Channel.choices(),
        forms=CallForm.choices(),
        categories=Category.choices(),
        natures=CallNature.choices(),
        max_at=now.strftime("%Y-%m-%dT%H:%M"),
        **ctx,
    )


@router.get("/me/complaints/new", response_class=HTMLResponse)
def new_report(request: Request, reported: str = "") -> Response:
    actor = subscriber_of(request)
    if actor is None:
        return RedirectResponse("/", status_code=303)
    return _report_form(request, actor, values={"channel": "call", "reported": reported[:40]})


def _parse_local_time(text: str) -> datetime | None:
    """A ``datetime-local`` value: a time in China (UTC+8), which is what the reporter's phone showed."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput("use YYYY-MM-DDTHH:MM", field="at") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=CHINA_TZ)


def _parse_duration(text: str) -> int | None:
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise InvalidInput(f"{text!r} is not a whole number of seconds", field="duration") from None


@router.post("/me/complaints/new", response_class=HTMLResponse)
async def file_report(request: Request, background: BackgroundTasks) -> Response:
    actor = subscriber_of(request)
    if actor is None:
        return RedirectResponse("/", status_code=303)
    form = await _submitted(request)
    names = ("reported", "channel", "at", "duration", "form", "category", "nature", "text", "description")
    values = {name: form.text(name) for name in names}
    rt = runtime_of(request)
    try:
        evidence = _checked_evidence(form.files)
        filing = Filing(
            reporter=actor.subject,
            reported=values["reported"],
            channel=values["channel"],
            at=_parse_local_time(values["at"]),
            duration_seconds=_parse_duration(values["duration"]),
            form=values["form"] or None,
            category=values["category"] or None,
            nature=values["nature"] or None,
            text=values["text"] or None,
            description=values["description"] or None,
            source="portal",
        )
        resolver = NumbersResolver(complaints_api.ledger_holder)
        view = await run_in_threadpool(actions.file_report, rt, actor, filing, resolver=resolver)
    except (QuietlineError, VocabularyError) as exc:
        return _report_form(request, actor, values=values, status_code=_status_of(exc), **_problem(exc))
    failed = await run_in_threadpool(_attach_all, rt, actor, view.id, evidence)
    _deliver_webhooks(request, background)
    flags = "merged=1" if view.merged else "filed=1"
    if failed:
        flags += f"&evidence_failed={failed}"
    return RedirectResponse(f"/me/complaints/{view.id}?{flags}", status_code=303)


@router.get("/me/complaints", response_class=HTMLResponse)
def my_complaints(request: Request) -> Response:
    actor = subscriber_of(request)
    if actor is None:
        return RedirectResponse("/", status_code=303)
    rt = runtime_of(request)
    now = rt.clock.now()
    with rt.sessions() as session:
        calendar = queries.load_calendar(session)
        rows = []
        for view in queries.of_reporter(session, actor.subject):
            stage, due, css = _current(view, now, calendar)
            rows.append(
                {
                    "id": view.id,
                    "reported": _national(view.row.reported),
                    "channel": _label(Channel, view.row.channel),
                    "received": _china(view.row.received_at),
                    "state": view.state.label,
                    "cycle": view.row.cycle,
                    "stage": stage,
                    "due": due,
                    "css": css,
                }
            )
    return _reporter_page(request, "complaints_mine.html", actor, rows=rows)


def _not_found(request: Request, actor: Actor | None, *, staff_page: bool) -> HTMLResponse:
    context = {"base": "staff_base.html" if staff_page else "base.html"}
    if staff_page:
        return staff.render(request, "complaints_not_found.html", actor, status_code=404, **context)
    return _reporter_page(request, "complaints_not_found.html", actor, status_code=404, **context)


def _case_fields(view: queries.CaseView) -> dict[str, Any]:
    """What both case pages (the reporter's and the company's) show of a case, in Chinese."""
    row = view.row
    return {
        "case": row,
        "state": view.state,
        "reported": _national(row.reported),
        "channel": _label(Channel, row.channel),
        "form_label": _label(CallForm, row.form),
        "category": _label(Category, row.category),
        "nature": _label(CallNature, row.nature),
        "occurred": _china(row.occurred_at),
        "received": _china(row.received_at),
        "carrier": _carrier_label(row.responsible_carrier),
    }


def _reporter_case(
    request: Request, actor: Actor, case_id: int, *, status_code: int = 200, **ctx: Any
) -> HTMLResponse:
    rt = runtime_of(request)
    now = rt.clock.now()
    with rt.sessions() as session:
        try:
            view = queries.show_for(session, actor, case_id)  # another reporter's case: 404, no leak
        except NotFound:
            return _not_found(request, actor, staff_page=False)
        clocks = _clock_rows(view, now, rt, session)
        timeline = _timeline(queries.history(session, case_id), viewer=actor)
        files = queries.evidence(session, case_id)
    may, appeal_note = _appeal_status(view, now, actions.appeal_window(rt))
    row = view.row
    return _reporter_page(
        request,
        "complaints_case.html",
        actor,
        status_code=status_code,
        **_case_fields(view),
        clocks=clocks,
        timeline=timeline,
        files=files,
        outcome=_outcome(view),
        may_appeal=may,
        appeal_note=appeal_note,
        rejection=row.rejection_reason if view.state is CaseState.REJECTED else None,
        **ctx,
    )


@router.get("/me/complaints/{case_id}", response_class=HTMLResponse)
def my_complaint(
    request: Request,
    case_id: int,
    filed: int = 0,
    merged: int = 0,
    appealed: int = 0,
    evidence_failed: int = 0,
) -> Response:
    actor = subscriber_of(request)
    if actor is None:
        return RedirectResponse("/", status_code=303)
    notice = None
    if filed:
        notice = "举报已提交并受理，已转送责任企业核查。"
    elif merged:
        notice = "您一天内已举报过该号码，本次举报已合并到原投诉。"
    elif appealed:
        notice = "申诉已提交，投诉已重新办理，办理期限重新计算。"
    error = (
        f"有 {evidence_failed} 个证据文件未能保存（每件投诉最多 {MAX_EVIDENCE_PER_CASE} 个）。"
        if evidence_failed
        else None
    )
    return _reporter_case(request, actor, case_id, notice=notice, error=error)


@router.post("/me/complaints/{case_id}/appeal", response_class=HTMLResponse)
async def appeal(request: Request, case_id: int, background: BackgroundTasks) -> Response:
    actor = subscriber_of(request)
    if actor is None:
        return RedirectResponse("/", status_code=303)
    text = (await _submitted(request)).text("appeal")
    rt = runtime_of(request)

    def run() -> QuietlineError | None:
        with rt.sessions() as session:
            queries.show_for(session, actor, case_id)  # 404 for someone else's case, before anything else
        if not text:
            return InvalidInput("say what is wrong with the answer", field="appeal")
        try:
            actions.appeal(rt, actor, case_id, text)
        except InvalidInput as exc:
            return InvalidInput(exc.message, field="appeal") if exc.field == "text" else exc
        except QuietlineError as exc:
            return exc
        return None

    try:
        problem = await run_in_threadpool(run)
    except NotFound:
        return _not_found(request, actor, staff_page=False)
    if problem is not None:
        return await run_in_threadpool(
            _reporter_case,
            request,
            actor,
            case_id,
            status_code=problem.status,
            appeal_text=text,
            **_problem(problem),
        )
    _deliver_webhooks(request, background)
    return RedirectResponse(f"/me/complaints/{case_id}?appealed=1", status_code=303)


# ------------------------------------------------------------------------------------------ inbox

CENTRE = (Role.OPERATOR, Role.REGULATOR)
COMPANIES = (Role.CARRIER, Role.ENTERPRISE)


def _state_filter(value: str) -> tuple[str, list[CaseState]]:
    """``open`` (the default: cases still waiting for someone), ``all``, or one state's code."""
    if value == "all":
        return "all", list(CaseState)
    try:
        state = CaseState.parse(value)
    except VocabularyError:
        return "open", [s for s in CaseState if s in OPEN_STATES]
    return state.value, [state]


@router.get("/staff/complaints", response_class=HTMLResponse)
def inbox(request: Request, state: str = "open") -> Response:
    actor = staff.staff_actor(request, *COMPANIES, *CENTRE)
    if isinstance(actor, Response):
        return actor
    rt = runtime_of(request)
    now = rt.clock.now()
    chosen, states = _state_filter(state)
    with rt.sessions() as session:
        calendar = queries.load_calendar(session)
        if actor.role in COMPANIES:
            views = queries.inbox(session, actor.subject, states=states)
        else:
            # The centre and the regulator see every open case (the regulator's list, issue 5 "Oversee").
            wanted = {s.value for s in states}
            ids = [c["id"] for c in queries.open_cases(session, limit=500) if c["state"] in wanted]
            views = [queries.view(session, queries.get_row(session, i), calendar=calendar) for i in ids]
        rows = [_inbox_row(actor, v, now, calendar) for v in views]
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row["reported_e164"], []).append(row)
    # Reports of one number are seen together; the group with the most urgent deadline comes first.
    ordered = sorted(groups.values(), key=lambda g: (min(r["sort_due"] for r in g), g[0]["id"]))
    filters = [("open", "待办"), *((s.value, s.label) for s in CaseState), ("all", "全部")]
    if actor.role in CENTRE:
        filters = [f for f in filters if f[0] == "open" or f[0] in {s.value for s in OPEN_STATES}]
    return staff.render(
        request,
        "complaints_inbox.html",
        actor,
        groups=ordered,
        filters=filters,
        chosen=chosen,
        count=len(rows),
        centre=actor.role in CENTRE,
        operator=actor.role is Role.OPERATOR,
    )


def _inbox_row(actor: Actor, view: queries.CaseView, now: datetime, calendar: Any) -> dict[str, Any]:
    row = view.row
    stage, due, css = _current(view, now, calendar)
    return {
        "id": row.id,
        "reported": _national(row.reported),
        "reported_e164": row.reported,
        "channel": _label(Channel, row.channel),
        "category": _label(Category, row.category),
        "state": view.state.label,
        "cycle": row.cycle,
        "stage": stage,
        "due": due,
        "sort_due": due or "9999",
        "css": css,
        "reports": row.report_count,
        "linked": view.linked,
        "carrier": _carrier_label(row.responsible_carrier),
        "assisting": actor.role is Role.CARRIER and actor.subject == row.assisting_carrier,
    }


def _may_respond(actor: Actor, view: queries.CaseView) -> bool:
    """The respond form is offered to the responsible company of a forwarded case: the domain's own
    rule (``may_act_for``), so the page offers exactly what ``actions.respond`` accepts."""
    if actor.role not in COMPANIES or view.state is not CaseState.FORWARDED:
        return False
    try:
        may_act_for(actor, view.row)
    except QuietlineError:
        return False
    return True


def _staff_case(
    request: Request, actor: Actor, case_id: int, *, status_code: int = 200, **ctx: Any
) -> HTMLResponse:
    rt = runtime_of(request)
    now = rt.clock.now()
    with rt.sessions() as session:
        try:
            view = queries.show_for(session, actor, case_id)  # not theirs: 404, existence not revealed
        except NotFound:
            return _not_found(request, actor, staff_page=True)
        clocks = _clock_rows(view, now, rt, session)
        timeline = _timeline(queries.history(session, case_id), viewer=actor)
        files = queries.evidence(session, case_id)
        calendar = queries.load_calendar(session)
        linked = [
            _inbox_row(actor, other, now, calendar)
            for other in queries.linked(session, view.row.reported)
            if other.id != case_id and queries.may_see(actor, other.row)
        ]
    row = view.row
    enterprise = actor.role is Role.ENTERPRISE
    measures = [
        (m.value, m.label)
        for m in Measure
        if m is not Measure.NONE and not (enterprise and m in BLOCKING_MEASURES)
    ]
    return staff.render(
        request,
        "complaints_staff_case.html",
        actor,
        status_code=status_code,
        **_case_fields(view),
        reporter=queries.mask_number(row.reporter) if enterprise else _national(row.reporter),
        assisting=_carrier_label(row.assisting_carrier),
        clocks=clocks,
        timeline=timeline,
        files=files,
        linked=linked,
        result_label=_label(Result, row.result),
        measure_label=_label(Measure, row.measure),
        may_respond=_may_respond(actor, view),
        may_answer=actor.role is Role.OPERATOR and view.state in (CaseState.ACTED, CaseState.VERIFIED),
        may_forward=actor.role is Role.OPERATOR and view.state in (CaseState.ACCEPTED, CaseState.REOPENED),
        results=Result.choices(),
        measures=measures,
        carriers=Carrier.choices(),
        values=ctx.pop("values", {}),
        **ctx,
    )


_DONE = {
    "responded": "核查结果已提交，12321 将在 3 个工作日内答复举报人。",
    "answered": "已答复举报人（短信和网页同时告知）。",
    "forwarded": "已转送责任企业。",
}


@router.get("/staff/complaints/{case_id}", response_class=HTMLResponse)
def staff_case(request: Request, case_id: int, done: str = "", evidence_failed: int = 0) -> Response:
    actor = staff.staff_actor(request, *COMPANIES, *CENTRE)
    if isinstance(actor, Response):
        return actor
    error = f"有 {evidence_failed} 个证据文件未能保存。" if evidence_failed else None
    return _staff_case(request, actor, case_id, notice=_DONE.get(done), error=error)


async def _staff_action(
    request: Request,
    case_id: int,
    roles: tuple[Role, ...],
    run: Callable[[Runtime, Actor, Submitted], Awaitable[int]],
    done: str,
    background: BackgroundTasks | None = None,
) -> Response:
    """Shared shape of the staff case forms: sign-in, 404 for cases the caller may not see, the domain
    action in a worker thread, its error next to the field (values kept), then back to the case."""
    actor = staff.staff_actor(request, *roles)
    if isinstance(actor, Response):
        return actor
    form = await _submitted(request)
    values = form.values
    rt = runtime_of(request)

    def visible() -> None:
        with rt.sessions() as session:
            queries.show_for(session, actor, case_id)

    try:
        await run_in_threadpool(visible)
    except NotFound:
        return _not_found(request, actor, staff_page=True)
    try:
        failed = await run(rt, actor, form)
    except (QuietlineError, VocabularyError) as exc:
        return await run_in_threadpool(
            _staff_case, request, actor, case_id, status_code=_status_of(exc), values=values, **_problem(exc)
        )
    if background is not None:
        _deliver_webhooks(request, background)
    extra = f"&evidence_failed={failed}" if failed else ""
    return RedirectResponse(f"/staff/complaints/{case_id}?done={done}{extra}", status_code=303)


@router.post("/staff/complaints/{case_id}/respond", response_class=HTMLResponse)
async def respond(request: Request, case_id: int) -> Response:
    async def run(rt: Runtime, actor: Actor, form: Submitted) -> int:
        evidence = _checked_evidence(form.files)
        await run_in_threadpool(
            lambda: actions.respond(
                rt,
                actor,
                case_id,
                result=form.text("result"),
                action=form.text("action"),
                measure=form.text("measure") or None,
            )
        )
        return int(await run_in_threadpool(_attach_all, rt, actor, case_id, evidence))

    return await _staff_action(request, case_id, COMPANIES, run, "responded")


@router.post("/staff/complaints/{case_id}/answer", response_class=HTMLResponse)
async def answer(request: Request, case_id: int) -> Response:
    async def run(rt: Runtime, actor: Actor, form: Submitted) -> int:
        text = form.text("answer")
        if len(text) > 2000:
            raise InvalidInput("at most 2000 characters", field="answer")
        await run_in_threadpool(actions.answer, rt, actor, case_id, text or None)
        return 0

    return await _staff_action(request, case_id, (Role.OPERATOR,), run, "answered")


@router.post("/staff/complaints/{case_id}/forward", response_class=HTMLResponse)
async def forward(request: Request, case_id: int, background: BackgroundTasks) -> Response:
    async def run(rt: Runtime, actor: Actor, form: Submitted) -> int:
        carrier = form.text("carrier")
        await run_in_threadpool(
            lambda: actions.forward(rt, actor, case_id, carrier=carrier, company=form.text("company") or None)
        )
        return 0

    return await _staff_action(request, case_id, (Role.OPERATOR,), run, "forwarded", background)
