"""The server-rendered web portal (Chinese, phone-friendly).

The subscriber flow: number → one-time code → categories and channels → saved (confirmed by SMS) →
history. Pages call the same actions and queries as the API; they hold no rules. The session cookie is
HttpOnly and SameSite=Lax, so a cross-site form cannot post with it.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from quietline.accounts import actions as accounts
from quietline.accounts.model import SESSION_COOKIE
from quietline.api.auth import client_id
from quietline.numbers import parse
from quietline.platform.actor import Actor
from quietline.platform.errors import InvalidInput, QuietlineError
from quietline.registry import actions, queries
from quietline.registry.model import PRESET_PREFIXES, EntryKind, ListName, category_label
from quietline.screening import queries as screening_queries
from quietline.vocabulary import ALL_CATEGORIES, Category, Channel, Role, VocabularyError
from quietline.web.requests import runtime_of, subscriber_of

HERE = Path(__file__).resolve().parent
CHINA_TIME = timezone(timedelta(hours=8), "CST")
templates = Jinja2Templates(directory=str(HERE / "templates"))
#: Portal pages are HTML for people, not API: they stay out of the OpenAPI schema.
router = APIRouter(include_in_schema=False)

ACTION_LABELS = {
    "registry.refuse": "谢绝营销",
    "registry.withdraw_refusal": "恢复接收",
    "registry.refusal_expired": "谢绝到期",
    "registry.block_list.add": "黑名单新增",
    "registry.block_list.remove": "黑名单移除",
    "registry.allow_list.add": "白名单新增",
    "registry.allow_list.remove": "白名单移除",
    "accounts.otp.request": "申请验证码",
    "accounts.otp.verified": "验证码登录",
    "accounts.otp.failed": "验证码错误",
    "accounts.session.ended": "退出登录",
    "consent.grant": "授权营销",
    "consent.revoke": "撤回授权",
}


def _page(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("actor", subscriber_of(request))
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def _to_login() -> RedirectResponse:
    return RedirectResponse("/", status_code=303)


def _describe_history(entry: Any) -> str:
    after = entry.after or {}
    before = entry.before or {}
    data = after or before
    if entry.action.startswith("registry.") and "category" in data:
        channel = Channel(data["channel"]).label if data.get("channel") in ("call", "sms") else ""
        return f"{category_label(data['category'])} · {channel}"
    if "kind" in data:
        return _display(str(data["kind"]), str(data.get("value", "")))
    return ""


def _end_of_day(text: str) -> datetime | None:
    """A date picked in the portal means the end of that day, China time (UTC+8)."""
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise InvalidInput("有效期格式应为 YYYY-MM-DD", field="valid_until") from None
    return datetime.combine(day + timedelta(days=1), time(), CHINA_TIME)


def _role_label(actor: str) -> str:
    try:
        return Role(actor.split(":", 1)[0]).label
    except ValueError:
        return actor


def _display(kind: str, value: str) -> str:
    """How a list entry reads to a person: numbers as dialled in China, prefixes with a star."""
    if kind == EntryKind.INTERNATIONAL.value:
        return "全部国际来电"
    if kind == EntryKind.PREFIX.value:
        return f"{value}*"
    return parse(value).national


def install(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(router)


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    if subscriber_of(request) is not None:
        return RedirectResponse("/me", status_code=303)
    return _page(request, "home.html")


@router.post("/login/code", response_class=HTMLResponse)
def send_code(request: Request, number: str = Form("")) -> Response:
    try:
        sent = accounts.request_code(runtime_of(request), number, client=client_id(request))
    except QuietlineError as exc:
        return _page(request, "home.html", status_code=exc.status, error=exc.message, number=number)
    return _page(request, "verify.html", number=sent.number, notice="验证码已发送，5分钟内有效。")


@router.post("/login/verify", response_class=HTMLResponse)
def verify(request: Request, number: str = Form(""), code: str = Form("")) -> Response:
    try:
        issued = accounts.verify_code(runtime_of(request), number, code, client=client_id(request))
    except QuietlineError as exc:
        return _page(request, "verify.html", status_code=exc.status, error=exc.message, number=number)
    response = RedirectResponse("/me", status_code=303)
    response.set_cookie(
        SESSION_COOKIE, issued.token, httponly=True, samesite="lax", secure=request.url.scheme == "https"
    )
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    actor = subscriber_of(request)
    if actor is not None:
        accounts.end_session(runtime_of(request), actor)
    response = _to_login()
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/me", response_class=HTMLResponse)
def preferences(request: Request, saved: int = 0) -> Response:
    actor = subscriber_of(request)
    if actor is None:
        return _to_login()
    return _preferences_page(request, actor, notice="已保存，即时生效。确认短信已发送。" if saved else None)


@router.post("/me", response_class=HTMLResponse)
async def save_preferences(request: Request) -> Response:
    actor = subscriber_of(request)
    if actor is None:
        return _to_login()
    form = await request.form()
    wanted: list[tuple[Category | None, Channel]] = []
    try:
        for channel in Channel:
            for value in form.getlist(f"refuse_{channel.value}"):
                text = str(value)
                category = None if text == ALL_CATEGORIES else Category.parse(text)
                wanted.append((category, channel))
        valid_until = _end_of_day(str(form.get("valid_until") or "").strip())
        actions.set_refusals(
            runtime_of(request), actor, parse(actor.subject), wanted, valid_until=valid_until
        )
    except (QuietlineError, VocabularyError) as exc:
        message = exc.message if isinstance(exc, QuietlineError) else str(exc)
        return _preferences_page(request, actor, error=message, status_code=422)
    return RedirectResponse("/me?saved=1", status_code=303)


@router.get("/me/lists", response_class=HTMLResponse)
def lists(request: Request) -> Response:
    actor = subscriber_of(request)
    if actor is None:
        return _to_login()
    return _lists_page(request, actor)


@router.post("/me/lists", response_class=HTMLResponse)
def change_list(
    request: Request,
    op: str = Form("add"),
    list_name: str = Form("block"),
    kind: str = Form("number"),
    value: str = Form(""),
) -> Response:
    actor = subscriber_of(request)
    if actor is None:
        return _to_login()
    try:
        owner = parse(actor.subject)
        name, entry_kind = ListName(list_name), EntryKind(kind)
        if op == "remove":
            actions.remove_list_entry(runtime_of(request), actor, owner, name, entry_kind, value)
        else:
            actions.add_list_entry(runtime_of(request), actor, owner, name, entry_kind, value)
    except (QuietlineError, ValueError) as exc:
        message = exc.message if isinstance(exc, QuietlineError) else "无效的名单或类型"
        return _lists_page(request, actor, error=message, status_code=422)
    return _lists_page(request, actor, notice="名单已更新，即时生效。")


@router.get("/me/history", response_class=HTMLResponse)
def history(request: Request) -> Response:
    actor = subscriber_of(request)
    if actor is None:
        return _to_login()
    with runtime_of(request).sessions() as session:
        entries = queries.history(session, actor.subject)
    rows = [
        {
            "at": e.at,
            "action": ACTION_LABELS.get(e.action, e.action),
            "detail": _describe_history(e),
            "by": "本人" if e.actor.startswith("subscriber:") else _role_label(e.actor),
        }
        for e in entries
    ]
    return _page(request, "history.html", rows=rows)


@router.get("/me/blocks", response_class=HTMLResponse)
def blocks(request: Request) -> Response:
    """拦截记录: the calls and SMS screening blocked for this subscriber, and why."""
    actor = subscriber_of(request)
    if actor is None:
        return _to_login()
    with runtime_of(request).sessions() as session:
        records = screening_queries.block_records(session, actor.subject, limit=200)
    rows = []
    for record in records:
        data = record.as_dict()
        rows.append(
            {
                "at": record.at.astimezone(CHINA_TIME),
                "caller": parse(record.caller).national,
                "channel": Channel(record.channel).label,
                "category": data.get("category_label") or "",
                "why": data.get("explanation") or record.reason,
            }
        )
    return _page(request, "blocks.html", rows=rows)


def _preferences_page(
    request: Request,
    actor: Actor,
    *,
    notice: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    rt = runtime_of(request)
    with rt.sessions() as session:
        current = queries.refusals(session, actor.subject, rt.clock.now())
    refused = {(r.category, r.channel.value) for r in current}
    return _page(
        request,
        "preferences.html",
        status_code=status_code,
        categories=[(ALL_CATEGORIES, "全部营销"), *Category.choices()],
        today=rt.clock.now().astimezone(CHINA_TIME).date().isoformat(),
        channels=list(Channel),
        refused=refused,
        notice=notice,
        error=error,
    )


def _lists_page(
    request: Request,
    actor: Actor,
    *,
    notice: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    with runtime_of(request).sessions() as session:
        entries = queries.list_entries(session, actor.subject)
    return _page(
        request,
        "lists.html",
        status_code=status_code,
        block=[(e, _display(e.kind, e.value)) for e in entries if e.list_name == ListName.BLOCK.value],
        allow=[(e, _display(e.kind, e.value)) for e in entries if e.list_name == ListName.ALLOW.value],
        presets=PRESET_PREFIXES,
        notice=notice,
        error=error,
    )
