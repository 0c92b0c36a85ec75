"""``quietline screen``, ``quietline wash`` and ``quietline screening …``: screening from the shell.

``screen`` answers "why would this call be blocked (or let through)?" against the current rules (the
most frequent support question of every blocker, REFERENCE.md); it loads the latest saved snapshot,
catches up from the change feed and decides, without recording a block (it is a test, not a call).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

from quietline.callerauth.model import Origin
from quietline.callerauth.service import Call as CallerAuthCall
from quietline.cli.common import JSON_OPTION, cli_actor, console, emit_json, err_console, fail, runtime
from quietline.numbers import parse
from quietline.platform.errors import InvalidInput
from quietline.platform.workdays import china_date
from quietline.screening import actions, queries
from quietline.screening.engine import ScreeningEngine, request_for
from quietline.screening.model import CallerAuth
from quietline.vocabulary import Category, Channel

app = typer.Typer(
    help="The real-time screening engine: snapshot, rebuild, block records, digests.", no_args_is_help=True
)


def register(cli: typer.Typer) -> None:
    """Add ``screen``, ``wash`` and the ``screening`` group to the main command."""
    cli.command("screen")(screen)
    cli.command("wash")(wash)
    cli.add_typer(app, name="screening")


def _engine() -> ScreeningEngine:
    return ScreeningEngine.open(runtime())


def screen(
    caller: str = typer.Option(..., "--caller", help="The calling number (any usual spelling)."),
    callee: str = typer.Option(..., "--callee", help="The called subscriber's number."),
    channel: str = typer.Option("call", "--channel", help="call or sms."),
    category: str | None = typer.Option(
        None, "--category", help="Marketing category (code or 中文), if marketing."
    ),
    enterprise: str | None = typer.Option(None, "--enterprise", help="The calling enterprise's USCC."),
    origin: str | None = typer.Option(
        None, "--origin", help="Where the call entered (enterprise_line, domestic_interconnect, …)."
    ),
    line: str | None = typer.Option(None, "--line", help="The enterprise line or trunk it came from."),
    identity_header: Path | None = typer.Option(
        None, "--identity-header", help="File with the call's SIP Identity header (RFC 8224)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Decide one call or SMS against the current rules: decision, reason, rule, Chinese explanation.

    With --origin (and --identity-header) caller authentication runs first."""
    caller_n = parse(caller, field="--caller")
    callee_n = parse(callee, field="--callee")
    ch = Channel.parse(channel, "--channel")
    cat = Category.parse(category, "--category") if category is not None else None
    uscc = _uscc(enterprise)
    engine = _engine()
    caller_auth, authentication = CallerAuth.NOT_CHECKED, None
    if origin is not None or identity_header is not None:
        headers: tuple[str, ...] = ()
        if identity_header is not None:
            try:
                headers = (identity_header.read_text(encoding="utf-8").strip(),)
            except (OSError, UnicodeDecodeError) as exc:
                raise InvalidInput(
                    f"{identity_header}: cannot be read ({exc})", field="--identity-header"
                ) from None
        call = CallerAuthCall(
            caller=caller_n.e164,
            callee=callee_n.e164,
            origin=Origin.parse(origin or Origin.DOMESTIC_INTERCONNECT.value, "--origin"),
            line=line,
            identity_headers=headers,
        )
        caller_auth, authentication = engine.authenticate(call)
    out = engine.decide(request_for(caller_n, callee_n, ch, cat, uscc, caller_auth), record=False)
    result = {
        **out.as_dict(),
        "caller": caller_n.e164,
        "callee": callee_n.e164,
        "channel": ch.value,
        "category": cat.value if cat else None,
        "enterprise": uscc,
        "policy": engine.snapshot.policy.value,
        "feed_id": engine.snapshot.feed_id,
        **({"caller_auth": authentication} if authentication is not None else {}),
    }
    if as_json:
        emit_json(result)
        return
    console.print(
        f"[bold]{out.decision.value}[/bold] ({out.reason.value}, rule {out.rule.value}): {out.explanation}"
    )


def _uscc(enterprise: str | None) -> str | None:
    if enterprise is None:
        return None
    from quietline.accounts.model import parse_uscc

    return parse_uscc(enterprise, field="--enterprise")


def wash(
    file: Path = typer.Argument(
        ..., help="The list: CSV (number in the first column) or one number per line."
    ),
    enterprise: str = typer.Option(..., "--enterprise", help="The washing enterprise's USCC."),
    category: str = typer.Option(..., "--category", help="Marketing category (code or 中文)."),
    channel: str = typer.Option("call", "--channel", help="call or sms."),
    out: Path = typer.Option(..., "--out", help="Where to write the callable numbers (E.164, one per line)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Wash a call list: callable numbers to --out, and a summary (callable, refused, no_consent, …)."""
    if not file.is_file():
        fail(f"file: {file}: no such file")
    cat = Category.parse(category, "--category")
    ch = Channel.parse(channel, "--channel")
    rt = runtime()
    engine = ScreeningEngine.open(rt)
    with Progress(
        TextColumn("washing"),
        BarColumn(),
        TaskProgressColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    ) as bar:
        task = bar.add_task("wash", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        summary = actions.wash_file(
            rt,
            cli_actor(),
            engine.snapshot,
            source=file,
            enterprise=enterprise,
            category=cat,
            channel=ch,
            out=out,
            progress=progress,
        )
    if as_json:
        emit_json(summary)
        return
    console.print(
        f"callable {summary['callable']}, refused {summary['refused']}, no consent {summary['no_consent']}, "
        f"invalid {summary['invalid']}, duplicates {summary['duplicates']} → {out}"
    )


@app.command("rebuild")
def rebuild(as_json: bool = JSON_OPTION) -> None:
    """Rebuild the snapshot from the database, check the delta-fed one agrees, save it for cold starts."""
    engine = _engine()
    result = engine.rebuild_and_verify(save=True)
    result["path"] = str(engine.snapshot_path)
    result["stats"] = engine.snapshot.stats()
    if as_json:
        emit_json(result)
        return
    verdict = "agree" if result["agree"] else f"DISAGREE in {', '.join(result['differences'])}"
    console.print(f"deltas and rebuild {verdict}; saved {engine.snapshot_path} at change {result['feed_id']}")


@app.command("stats")
def stats(as_json: bool = JSON_OPTION) -> None:
    """Sizes of the current snapshot (counts and bytes only, never numbers)."""
    data = _engine().snapshot.stats()
    if as_json:
        emit_json(data)
        return
    for key, value in data.items():
        console.print(f"{key}: {value}")


@app.command("blocks")
def blocks(
    number: str = typer.Option(..., "--number", help="The subscriber whose 拦截记录 to show."),
    limit: int = typer.Option(50, "--limit", help="How many, newest first."),
    as_json: bool = JSON_OPTION,
) -> None:
    """A subscriber's block records (拦截记录), newest first (operator view)."""
    if not 1 <= limit <= 10_000:
        fail("--limit must be between 1 and 10000")
    callee = parse(number, field="--number").e164
    with runtime().sessions() as session:
        records = [r.as_dict() for r in queries.block_records(session, callee, limit)]
    if as_json:
        emit_json(records)
        return
    for r in records:
        console.print(f"{r['at']}  {r['caller']}  {r['channel']}  {r['reason']}  {r['explanation']}")


@app.command("digest")
def digest(
    day: str | None = typer.Option(None, "--day", help="China calendar day YYYY-MM-DD (default: today)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Send each subscriber one SMS with the day's count of blocked marketing calls and SMS."""
    rt = runtime()
    try:
        when = date.fromisoformat(day) if day else china_date(rt.clock.now())
    except ValueError:
        fail(f"--day: {day!r} is not a date (YYYY-MM-DD)")
    sent = actions.send_daily_digests(rt, cli_actor(), when)
    if as_json:
        emit_json({"day": when.isoformat(), "sent": sent})
        return
    console.print(f"{sent} digest SMS sent for {when}")
