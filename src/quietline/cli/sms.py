"""``quietline sms``: the development SMS outbox (codes and confirmations sent in development)."""

from __future__ import annotations

import typer
from rich.table import Table

from quietline.cli.common import JSON_OPTION, console, emit_json, fail, runtime
from quietline.platform.sms import dev_outbox

app = typer.Typer(help="SMS sent by the development sender.", no_args_is_help=True)


@app.command("outbox")
def outbox(
    to: str | None = typer.Option(None, "--to", help="Only messages to this number (any spelling)."),
    limit: int = typer.Option(20, "--limit", help="How many of the newest messages to show (1-1000)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show the newest messages of the development outbox (only with the development sender)."""
    rt = runtime()
    if not rt.settings.uses_development_sms:
        fail(
            "the development SMS sender is not configured (set QUIETLINE_ENV=development); "
            "there is no outbox to show"
        )
    if limit < 1 or limit > 1000:
        fail("--limit must be between 1 and 1000")
    number = None
    if to is not None:
        from quietline.numbers import parse

        number = parse(to, field="to").e164
    with rt.sessions() as session:
        messages = dev_outbox(session, to=number, limit=limit)
    if as_json:
        emit_json(
            [{"to": m.to, "text": m.text, "at": m.at.isoformat(), "purpose": m.purpose} for m in messages]
        )
        return
    table = Table("at", "to", "purpose", "text")
    for m in messages:
        table.add_row(m.at.isoformat(timespec="seconds"), m.to, m.purpose, m.text)
    console.print(table)
