"""``quietline complaints``: the 12321 complaint centre from the command line (operator actions).

Times are ISO 8601; a time without an offset is read as Beijing time (UTC+8), the time 12321 works in.
The ``file``, ``show``, ``respond`` and ``breaches`` commands are a contract (issue 5): keep their options
and JSON keys.
"""

from __future__ import annotations

import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from sqlalchemy.orm import Session

from quietline.cli.common import JSON_OPTION, cli_actor, console, emit_json, runtime
from quietline.complaints import actions, export, importer, queries, webhooks
from quietline.complaints.actions import Filing
from quietline.complaints.model import MAX_EVIDENCE_BYTES, LedgerHolder
from quietline.complaints.routing import NumbersResolver, Resolver
from quietline.platform.errors import InvalidInput

app = typer.Typer(
    help="12321 complaints: intake, routing, working-day clocks, feedback, appeals.", no_args_is_help=True
)
calendar_app = typer.Typer(
    help="The working-day calendar (statutory schedule plus overrides).", no_args_is_help=True
)
webhooks_app = typer.Typer(
    help="Webhook endpoints of carriers and enterprises, and the outbox.", no_args_is_help=True
)
app.add_typer(calendar_app, name="calendar")
app.add_typer(webhooks_app, name="webhooks")


parse_time = importer.parse_time


def parse_day(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(f"{value!r} is not an ISO 8601 date (YYYY-MM-DD)", field=field) from None


def ledger_holder(session: Session, e164: str) -> LedgerHolder | None:
    """The enterprise whose line may present ``e164`` and the carrier providing that line (callerauth's
    caller-number ledger): 谁接入谁负责."""
    from quietline.callerauth.queries import lines_presenting

    rows = lines_presenting(session, e164.removeprefix("+"))
    if not rows:
        return None
    line = rows[0].line
    return LedgerHolder(enterprise=line.enterprise, connecting_carrier=line.carrier, name=line.name)


def resolver() -> Resolver:
    """Numbers and portability from ``quietline.numbers``; the caller-number ledger when available."""
    return NumbersResolver(ledger_holder)


def _print_case(view: queries.CaseView, as_json: bool) -> None:
    data = view.as_dict()
    if as_json:
        emit_json(data)
        return
    console.print(
        f"[bold]complaint {data['id']}[/bold] {data['state']} ({data['state_label']}) "
        f"{data['reported']} → {data['responsible_carrier'] or '未确定'}"
        + (f" + {data['assisting_carrier']}（联动协查）" if data["assisting_carrier"] else "")
    )
    for clock in data["clocks"]:
        mark = "projected" if clock["projected"] else ("late" if clock["late"] else "")
        due = clock["due"] or (
            f"calendar gap (about {clock['due_estimate']})" if clock["due_estimate"] else "calendar gap"
        )
        console.print(f"  {clock['stage']:<9} due {due} {mark}")


@app.command("file")
def file(
    reporter: str = typer.Option(..., "--reporter", help="The reporter's mobile number."),
    reported: str = typer.Option(..., "--reported", help="The number reported."),
    channel: str = typer.Option(..., "--channel", help="call or sms."),
    at: str = typer.Option(..., "--at", help="When the call or SMS happened (ISO 8601)."),
    duration: int | None = typer.Option(None, "--duration", help="Call duration in seconds (calls only)."),
    form: str | None = typer.Option(None, "--form", help="live, recorded, bombing or one_ring (calls only)."),
    category: str | None = typer.Option(None, "--category", help="Category code or Chinese label."),
    text: str | None = typer.Option(None, "--text", help="The SMS text (SMS reports only)."),
    description: str | None = typer.Option(
        None, "--description", help="What happened, in the reporter's words."
    ),
    nature: str | None = typer.Option(None, "--nature", help="marketing, harassment or fraud."),
    received_at: str | None = typer.Option(
        None,
        "--received-at",
        help="For imports of past reports: when 12321 received it (the clock starts then).",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Report a call or an SMS: validated, merged or opened, accepted and forwarded at once."""
    filing = Filing(
        reporter=reporter,
        reported=reported,
        channel=channel,
        at=parse_time(at, "at"),
        received_at=parse_time(received_at, "received-at") if received_at else None,
        duration_seconds=duration,
        form=form,
        category=category,
        nature=nature,
        text=text,
        description=description,
        source="import" if received_at else "cli",
    )
    rt = runtime()
    view = actions.file_report(rt, cli_actor(), filing, resolver=resolver())
    _deliver_quietly(rt)
    _print_case(view, as_json)


def _deliver_quietly(rt: Any) -> None:
    """Post the webhooks this command queued (the outbox keeps any that fail for the next run)."""
    transport = webhooks.HttpxTransport(timeout=5.0)
    try:
        actions.deliver_webhooks(rt, transport)
    finally:
        transport.close()


@app.command("sms-intake")
def sms_intake(
    sender: str = typer.Option(..., "--from", help="The number that texted 12321 (the reporter)."),
    body: str = typer.Option(..., "--body", help="The message: 被举报号码*短信内容."),
    as_json: bool = JSON_OPTION,
) -> None:
    """File a report received by SMS to 12321."""
    rt = runtime()
    view = actions.file_sms_report(rt, cli_actor(), sender=sender, body=body, resolver=resolver())
    _deliver_quietly(rt)
    _print_case(view, as_json)


@app.command("show")
def show(case_id: int = typer.Argument(..., help="The complaint id."), as_json: bool = JSON_OPTION) -> None:
    """A case with its deadlines, routing, outcome and history."""
    with runtime().sessions() as session:
        view = queries.show(session, case_id)
        history = [e.as_dict() for e in queries.history(session, case_id)]
        files = queries.evidence(session, case_id)
    if as_json:
        emit_json({**view.as_dict(), "evidence": files, "history": history})
        return
    _print_case(view, False)
    for entry in history:
        console.print(f"  {entry['at']} {entry['actor']} {entry['action']}")


@app.command("attach")
def attach(
    case_id: int = typer.Argument(..., help="The complaint id."),
    path: Path = typer.Argument(..., help="Screenshot (PNG/JPEG/WebP), PDF or recording (AMR/MP3/WAV/M4A)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Attach an evidence file (at most 10 MiB; the type is checked from the content)."""
    if not path.is_file():
        raise InvalidInput(f"{path} is not a file", field="path")
    with path.open("rb") as handle:
        data = handle.read(MAX_EVIDENCE_BYTES + 1)
    meta = actions.attach_evidence(runtime(), cli_actor(), case_id, filename=path.name, data=data)
    if as_json:
        emit_json(meta)
    else:
        console.print(f"evidence {meta['id']}: {meta['content_type']} {meta['size']} bytes")


@app.command("respond")
def respond(
    case_id: int = typer.Argument(..., help="The complaint id."),
    result: str = typer.Option(..., "--result", help="substantiated or unsubstantiated."),
    action: str = typer.Option(
        ..., "--action", help="What was done (or why the report is not substantiated)."
    ),
    measure: str | None = typer.Option(
        None, "--measure", help="warned, line_restricted, number_suspended, system_block or other."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Record the company's verification and action (on the company's behalf)."""
    view = actions.respond(runtime(), cli_actor(), case_id, result=result, action=action, measure=measure)
    _print_case(view, as_json)


@app.command("answer")
def answer(
    case_id: int = typer.Argument(..., help="The complaint id."),
    text: str | None = typer.Option(
        None, "--text", help="The answer; composed from the feedback if omitted."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Answer the reporter (portal and SMS)."""
    _print_case(actions.answer(runtime(), cli_actor(), case_id, text), as_json)


@app.command("appeal")
def appeal(
    case_id: int = typer.Argument(..., help="The complaint id."),
    text: str = typer.Option(..., "--text", help="Why the answer is not accepted."),
    window_days: int | None = typer.Option(
        None, "--window-days", help="Appeal window after the answer, in days (default: the deployment's)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Reopen a case on the reporter's appeal (new cycle, new clock)."""
    window = timedelta(days=window_days) if window_days else None
    view = actions.appeal(runtime(), cli_actor(), case_id, text, window=window)
    _deliver_quietly(runtime())
    _print_case(view, as_json)


@app.command("close")
def close(case_id: int = typer.Argument(..., help="The complaint id."), as_json: bool = JSON_OPTION) -> None:
    """Close an answered case."""
    _print_case(actions.close(runtime(), cli_actor(), case_id), as_json)


@app.command("reject")
def reject(
    case_id: int = typer.Argument(..., help="The complaint id."),
    reason: str = typer.Option(..., "--reason", help="Why (incomplete, out of scope)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Reject a report (不予受理)."""
    _print_case(actions.reject(runtime(), cli_actor(), case_id, reason), as_json)


@app.command("forward")
def forward(
    case_id: int = typer.Argument(..., help="The complaint id."),
    carrier: str = typer.Option(..., "--carrier", help="The responsible carrier (code or Chinese name)."),
    company: str | None = typer.Option(None, "--company", help="The responsible enterprise's USCC."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Forward a case routing could not resolve."""
    view = actions.forward(runtime(), cli_actor(), case_id, carrier=carrier, company=company)
    _deliver_quietly(runtime())
    _print_case(view, as_json)


@app.command("breaches")
def breaches(
    as_of: str | None = typer.Option(None, "--as-of", help="ISO 8601 moment (default: now)."),
    warnings: bool = typer.Option(
        False, "--warnings", help="Also list due-soon warnings and deadlines the calendar cannot place."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Breached deadlines as of a moment (with --warnings: due-soon warnings and calendar gaps too)."""
    rt = runtime()
    moment = parse_time(as_of, "as-of") if as_of else rt.clock.now()
    with rt.sessions() as session:
        items = queries.breaches(session, moment, include_warnings=warnings)
    if as_json:
        emit_json([i.as_dict() for i in items])
        return
    table = Table("id", "stage", "kind", "due", "carrier", "reported")
    for i in items:
        table.add_row(
            str(i.case_id), i.stage.value, i.alert.value, str(i.due), i.responsible_carrier or "", i.reported
        )
    console.print(table)


@app.command("scan")
def scan(
    window_days: int | None = typer.Option(
        None, "--window-days", help="Close answered cases after this many days (default: the appeal window)."
    ),
    every: float | None = typer.Option(
        None, "--every", help="Keep running, one pass every this many seconds (a scheduler without cron)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """The scheduled job: flag breaches and warnings, close expired answers, deliver due webhooks."""
    if every is not None and every < 1:
        raise InvalidInput("at least one second", field="every")
    rt = runtime()
    transport = webhooks.HttpxTransport(timeout=5.0)
    try:
        while True:
            flagged = actions.scan(rt)
            closed = actions.close_expired(rt, timedelta(days=window_days) if window_days else None)
            delivered = actions.deliver_webhooks(rt, transport, limit=1000)
            out = {
                "flagged": [f.as_dict() for f in flagged],
                "closed": closed,
                "webhooks": delivered.as_dict(),
            }
            if as_json:
                emit_json(out)
            else:
                console.print(f"flagged {len(flagged)}, closed {len(closed)}, webhooks {delivered.as_dict()}")
            if every is None:
                break
            time.sleep(every)
    finally:
        transport.close()


@app.command("inbox")
def inbox(
    party: str = typer.Argument(..., help="A carrier code or an enterprise USCC."),
    as_json: bool = JSON_OPTION,
) -> None:
    """A company's open cases, nearest feedback deadline first."""
    with runtime().sessions() as session:
        views = queries.inbox(session, party)
    if as_json:
        emit_json([v.as_dict() for v in views])
        return
    for v in views:
        _print_case(v, False)


@app.command("overview")
def overview(
    min_cases: int = typer.Option(3, "--min-cases", help="Repeat offender: at least this many cases."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Regulator view: cases by carrier and state, time per stage (median, p90), repeat offenders."""
    with runtime().sessions() as session:
        out = {
            "by_carrier_and_state": queries.counts_by_company_and_state(session),
            "stage_times": queries.stage_times(session),
            "repeat_offenders": queries.repeat_offenders(session, min_cases=min_cases),
        }
    if as_json:
        emit_json(out)
        return
    for row in out["stage_times"]:
        console.print(row)
    for row in out["repeat_offenders"]:
        console.print(row)


@app.command("export")
def export_list(
    name: str = typer.Argument(..., help="open, breaches, offenders, stats or stage_times."),
    output: Path = typer.Option(..., "--output", "-o", help="File to write; .csv or .xlsx."),
) -> None:
    """Export a regulator list as CSV or XLSX."""
    fmt = output.suffix.lower().lstrip(".")
    rt = runtime()
    with rt.sessions() as session:
        rows = export.list_rows(session, name, rt.clock.now())
    data, _ = export.render(rows, fmt, name)
    output.write_bytes(data)
    console.print(f"[green]{len(rows)} rows → {output}[/green]")


@app.command("import")
def import_csv(
    path: Path = typer.Argument(
        ..., help="CSV with reporter,reported,channel,at[,received_at,duration,form,…]."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Import past reports (operator migration). Each row is filed on its own; bad rows are listed by
    line and field, good rows are kept."""
    if not path.is_file():
        raise InvalidInput(f"{path} is not a file", field="path")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        result = importer.import_rows(runtime(), cli_actor(), handle, resolver=resolver())
    filed, errors = result.ids, result.errors
    out = {"filed": len(filed), "ids": filed, "errors": errors}
    if as_json:
        emit_json(out)
    else:
        console.print(f"filed {len(filed)}, refused {len(errors)}")
        for e in errors:
            console.print(f"  line {e['line']}: {e['message']}")
    if errors:
        raise typer.Exit(2)


@calendar_app.command("set")
def calendar_set(
    day: str = typer.Argument(..., help="The date (YYYY-MM-DD)."),
    working: bool = typer.Option(..., "--working/--rest", help="A working day or a rest day."),
    note: str = typer.Option(..., "--note", help="The State Council notice it comes from."),
) -> None:
    """Override one day (a correction, or a year the holiday package does not know yet)."""
    actions.set_workday(runtime(), cli_actor(), parse_day(day, "day"), working=working, note=note)
    console.print(f"[green]{day} is a {'working' if working else 'rest'} day[/green]")


@calendar_app.command("declare-year")
def calendar_declare(
    year: int = typer.Argument(..., help="The year whose holidays and make-up days are all entered."),
    source: str = typer.Option(..., "--source", help="The State Council notice for the year."),
) -> None:
    """Declare a year complete: its days without an override follow the plain week."""
    actions.declare_year(runtime(), cli_actor(), year, source=source)
    console.print(f"[green]{year} declared[/green]")


@calendar_app.command("show")
def calendar_show(
    start: str = typer.Option(..., "--from", help="First date (YYYY-MM-DD)."),
    end: str = typer.Option(..., "--to", help="Last date (YYYY-MM-DD)."),
    add: int | None = typer.Option(None, "--add", help="Also print FROM plus this many working days."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Which days are working days (make-up days included) and, optionally, a deadline."""
    first, last = parse_day(start, "from"), parse_day(end, "to")
    if not 0 <= (last - first).days <= 366:
        raise InvalidInput("--to must be after --from and at most a year later", field="to")
    with runtime().sessions() as session:
        cal = queries.load_calendar(session)
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    out: dict[str, Any] = {"days": {d.isoformat(): cal.is_working_day(d) for d in days}}
    if add is not None:
        out["deadline"] = cal.add_working_days(first, add).isoformat()
    if as_json:
        emit_json(out)
        return
    for d in days:
        console.print(f"{d.isoformat()} {'working' if out['days'][d.isoformat()] else 'rest'}")
    if add is not None:
        console.print(f"{first.isoformat()} + {add} working days = {out['deadline']}")


@webhooks_app.command("add")
def webhooks_add(
    party_kind: str = typer.Option(..., "--party-kind", help="carrier or enterprise."),
    party_id: str = typer.Option(..., "--party-id", help="Carrier code or enterprise USCC."),
    url: str = typer.Option(..., "--url", help="The https URL that receives the cases."),
    secret: str | None = typer.Option(None, "--secret", help="Shared secret (generated when omitted)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Register an endpoint; prints the shared secret once."""
    endpoint_id, shared = actions.register_endpoint(
        runtime(), cli_actor(), party_kind=party_kind, party_id=party_id, url=url, secret=secret
    )
    if as_json:
        emit_json({"id": endpoint_id, "secret": shared})
    else:
        console.print(f"endpoint {endpoint_id}; secret (shown once): {shared}")


@webhooks_app.command("rotate")
def webhooks_rotate(
    endpoint_id: int = typer.Argument(..., help="The endpoint id."), as_json: bool = JSON_OPTION
) -> None:
    """Rotate an endpoint's secret (the old one keeps signing for 24 hours); prints the new one once."""
    secret = actions.rotate_endpoint_secret(runtime(), cli_actor(), endpoint_id)
    if as_json:
        emit_json({"id": endpoint_id, "secret": secret})
    else:
        console.print(f"endpoint {endpoint_id}; new secret (shown once): {secret}")


@webhooks_app.command("pause")
def webhooks_pause(
    endpoint_id: int = typer.Argument(..., help="The endpoint id."),
    resume: bool = typer.Option(False, "--resume", help="Resume instead of pausing."),
) -> None:
    """Pause (or resume) deliveries to an endpoint; nothing is dropped while paused."""
    actions.set_endpoint_active(runtime(), cli_actor(), endpoint_id, active=resume)
    console.print(f"endpoint {endpoint_id} {'resumed' if resume else 'paused'}")


@webhooks_app.command("list")
def webhooks_list(
    status: str | None = typer.Option(None, "--status", help="pending, delivered or dead."),
    as_json: bool = JSON_OPTION,
) -> None:
    """The webhook outbox, newest first."""
    with runtime().sessions() as session:
        rows = queries.webhook_deliveries(session, status)
    if as_json:
        emit_json(rows)
        return
    for r in rows:
        console.print(f"{r['delivery_id']} {r['event']} {r['party']} {r['status']} attempts={r['attempts']}")


@webhooks_app.command("deliver")
def webhooks_deliver(
    limit: int = typer.Option(1000, "--limit", help="At most this many deliveries."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Post every due webhook once (failures are retried later with backoff)."""
    transport = webhooks.HttpxTransport()
    try:
        report = actions.deliver_webhooks(runtime(), transport, limit=limit)
    finally:
        transport.close()
    if as_json:
        emit_json(report.as_dict())
    else:
        console.print(report.as_dict())
