"""``quietline registry`` and ``quietline consent``: operator actions on the 谢绝来电 registry and the consent
ledger, audited like any other write (the actor is the local operator)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import typer

from quietline.cli import progress
from quietline.cli.common import JSON_OPTION, cli_actor, console, emit_json, runtime
from quietline.numbers import parse
from quietline.platform.errors import InvalidInput
from quietline.registry import actions, imports, queries
from quietline.registry.model import EntryKind, ListName
from quietline.vocabulary import Category, parse_category_or_all, parse_channels

app = typer.Typer(help="谢绝来电 preferences and personal lists (operator actions).", no_args_is_help=True)
consent_app = typer.Typer(help="The consent ledger (proof that a subscriber agreed).", no_args_is_help=True)

CATEGORY_HELP = "Category code or Chinese label (e.g. loan_finance or 贷款理财), or 'all'; repeatable."
CHANNEL_HELP = "call, sms or both."


def _parse_until(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{value!r} is not an ISO 8601 date or time", field="until") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _changes_out(number: str, changes: list[str], as_json: bool) -> None:
    if as_json:
        emit_json({"number": number, "changes": changes})
    elif changes:
        for change in changes:
            console.print(f"[green]✓[/green] {number} {change}")
    else:
        console.print(f"{number}: nothing to change")


@app.command("refuse")
def refuse(
    number: str = typer.Argument(..., help="The subscriber's number, any spelling."),
    category: list[str] = typer.Option(..., "--category", help=CATEGORY_HELP),
    channel: str = typer.Option("both", "--channel", help=CHANNEL_HELP),
    until: str | None = typer.Option(None, "--until", help="Optional end of validity (ISO 8601)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Refuse marketing in the given categories on the given channels (effective within a second)."""
    rt = runtime()
    phone = parse(number)
    categories = [parse_category_or_all(c) for c in category]
    changes = actions.refuse(
        rt,
        cli_actor(),
        phone,
        categories,
        parse_channels(channel),
        valid_until=_parse_until(until),
        source="cli",
    )
    _changes_out(phone.e164, changes, as_json)


@app.command("withdraw")
def withdraw(
    number: str = typer.Argument(..., help="The subscriber's number, any spelling."),
    category: list[str] = typer.Option(..., "--category", help=CATEGORY_HELP),
    channel: str = typer.Option("both", "--channel", help=CHANNEL_HELP),
    as_json: bool = JSON_OPTION,
) -> None:
    """Withdraw refusals (the subscriber accepts those categories again)."""
    rt = runtime()
    phone = parse(number)
    categories = [parse_category_or_all(c) for c in category]
    changes = actions.withdraw(rt, cli_actor(), phone, categories, parse_channels(channel), source="cli")
    _changes_out(phone.e164, changes, as_json)


@app.command("show")
def show(number: str = typer.Argument(..., help="The number to show."), as_json: bool = JSON_OPTION) -> None:
    """Everything the registry holds about one number."""
    rt = runtime()
    phone = parse(number)
    with rt.sessions() as session:
        data = queries.show(session, phone.e164, rt.clock.now())
    if as_json:
        emit_json(data)
        return
    console.print(f"[bold]{phone.e164}[/bold]")
    for r in data["refusals"]:
        console.print(f"  谢绝 {r['category_label']} · {r['channel']} (since {r['since']})")
    for e in data["lists"]:
        console.print(f"  {e['list']} {e['kind']} {e['value']}")
    for c in data["consents"]:
        console.print(f"  consent {c['enterprise']} {c['category']} {c['channel']}")


@app.command("list-add")
def list_add(
    owner: str = typer.Argument(..., help="The subscriber's number."),
    list_name: ListName = typer.Option(..., "--list", help="block or allow."),
    number: str | None = typer.Option(None, "--number", help="A number to add."),
    prefix: str | None = typer.Option(None, "--prefix", help="A prefix such as 400 or 950."),
    international: bool = typer.Option(False, "--international", help="All international calls."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Add a number, a prefix or all international calls to a personal list."""
    kind, value = _entry(number, prefix, international)
    stored = actions.add_list_entry(runtime(), cli_actor(), parse(owner), list_name, kind, value)
    if as_json:
        emit_json({"list": list_name.value, "kind": kind.value, "value": stored})
    else:
        console.print(f"[green]✓[/green] added {kind.value} {stored} to the {list_name.value} list")


@app.command("list-remove")
def list_remove(
    owner: str = typer.Argument(..., help="The subscriber's number."),
    list_name: ListName = typer.Option(..., "--list", help="block or allow."),
    number: str | None = typer.Option(None, "--number", help="A number to remove."),
    prefix: str | None = typer.Option(None, "--prefix", help="A prefix to remove."),
    international: bool = typer.Option(False, "--international", help="The international entry."),
) -> None:
    """Remove an entry from a personal list."""
    kind, value = _entry(number, prefix, international)
    actions.remove_list_entry(runtime(), cli_actor(), parse(owner), list_name, kind, value)
    console.print("[green]✓[/green] removed")


def _entry(number: str | None, prefix: str | None, international: bool) -> tuple[EntryKind, str]:
    given = [x for x in (number, prefix) if x is not None] + (["intl"] if international else [])
    if len(given) != 1:
        raise InvalidInput("give exactly one of --number, --prefix, --international", field="entry")
    if number is not None:
        return EntryKind.NUMBER, number
    if prefix is not None:
        return EntryKind.PREFIX, prefix
    return EntryKind.INTERNATIONAL, ""


@app.command("import")
def import_refusals(
    file: Path = typer.Argument(..., help="CSV with a header: number,category,channel[,valid_until]."),
    mode: str = typer.Option("all-or-nothing", "--mode", help=progress.MODE_HELP),
    as_json: bool = JSON_OPTION,
) -> None:
    """Import refusals (category a code, a Chinese label or 'all'; channel call, sms or both).

    Exit 0: all rows written; 1: bad rows skipped (skip-bad-rows); 2: nothing written.
    """
    import_mode = progress.parse_mode(mode)
    rt, actor = runtime(), cli_actor()
    summary = progress.run_with_progress(
        lambda report: imports.import_refusals(rt, actor, file, import_mode, progress=report),
        label=f"importing {file.name}",
    )
    progress.finish(summary, as_json=as_json)


@app.command("expire")
def expire(as_json: bool = JSON_OPTION) -> None:
    """Deactivate refusals whose validity period has ended (run from a scheduler)."""
    count = actions.expire_refusals(runtime(), cli_actor())
    emit_json({"expired": count}) if as_json else console.print(f"{count} refusals expired")


@consent_app.command("grant")
def grant(
    enterprise: str = typer.Option(..., "--enterprise", help="The enterprise's unified social credit code."),
    number: str = typer.Option(..., "--number", help="The consenting subscriber's number."),
    category: str = typer.Option(..., "--category", help="Category code or Chinese label."),
    channel: str = typer.Option("both", "--channel", help=CHANNEL_HELP),
    evidence: str = typer.Option(..., "--evidence", help="Proof: a reference or the consent text."),
    text_version: str | None = typer.Option(None, "--text-version", help="Version of the consent wording."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Record that a subscriber explicitly consented to an enterprise's marketing in a category."""
    states = actions.grant_consent(
        runtime(),
        cli_actor(),
        enterprise=enterprise.strip().upper(),
        number=parse(number),
        category=Category.parse(category),
        channels=parse_channels(channel),
        evidence_text=evidence,
        consent_text_version=text_version,
    )
    if as_json:
        emit_json([s.as_dict() for s in states])
    else:
        for s in states:
            console.print(
                f"[green]✓[/green] consent #{s.id}: {s.enterprise} → {s.number} {s.category} {s.channel}"
            )


@consent_app.command("revoke")
def revoke(
    enterprise: str = typer.Option(..., "--enterprise", help="The enterprise's unified social credit code."),
    number: str = typer.Option(..., "--number", help="The subscriber's number."),
    category: str = typer.Option(..., "--category", help="Category code or Chinese label."),
    channel: str = typer.Option("both", "--channel", help=CHANNEL_HELP),
    as_json: bool = JSON_OPTION,
) -> None:
    """Withdraw a consent (proof is kept for the retention period)."""
    closed = actions.revoke_consent(
        runtime(),
        cli_actor(),
        enterprise=enterprise.strip().upper(),
        number=parse(number),
        category=Category.parse(category),
        channels=parse_channels(channel),
    )
    emit_json({"revoked": closed}) if as_json else console.print(
        f"[green]✓[/green] {closed} consent(s) revoked"
    )


@consent_app.command("export")
def export(
    out: Path | None = typer.Option(None, "--out", help="CSV file to write (stdout when omitted)."),
    enterprise: str | None = typer.Option(None, "--enterprise", help="Only this enterprise's records."),
) -> None:
    """Export consent records as CSV (an operator may export any)."""
    rt = runtime()
    with rt.sessions() as session:
        if out is None:
            queries.export_consents(session, sys.stdout, enterprise)
            return
        with out.open("w", encoding="utf-8", newline="") as handle:
            count = queries.export_consents(session, handle, enterprise)
    console.print(f"{count} records written to {out}")


@consent_app.command("import")
def import_consents(
    file: Path = typer.Argument(..., help="CSV: number,category,evidence[,enterprise,channel,granted_at,…]."),
    enterprise: str | None = typer.Option(None, "--enterprise", help="USCC for files without the column."),
    mode: str = typer.Option("all-or-nothing", "--mode", help=progress.MODE_HELP),
    as_json: bool = JSON_OPTION,
) -> None:
    """Import consent records with their proof (latest expression wins over older open consents)."""
    import_mode = progress.parse_mode(mode)
    rt, actor = runtime(), cli_actor()
    summary = progress.run_with_progress(
        lambda report: imports.import_consents(
            rt, actor, file, import_mode, enterprise=enterprise, progress=report
        ),
        label=f"importing {file.name}",
    )
    progress.finish(summary, as_json=as_json)


@consent_app.command("purge-proofs")
def purge_proofs(as_json: bool = JSON_OPTION) -> None:
    """Erase proof text whose retention period (≥ 5 months after withdrawal) has ended."""
    count = actions.purge_expired_proofs(runtime(), cli_actor())
    emit_json({"purged": count}) if as_json else console.print(f"{count} proofs purged")
