"""``quietline audit``: read the append-only audit log."""

from __future__ import annotations

import typer
from rich.table import Table

from quietline.cli.common import JSON_OPTION, console, emit_json, fail, runtime
from quietline.platform import audit

app = typer.Typer(help="The append-only audit log.", no_args_is_help=True)


@app.command("tail")
def tail(
    limit: int = typer.Option(20, "--limit", help="How many of the newest entries to show."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show the newest audit entries, newest first."""
    if limit < 1 or limit > 10_000:
        fail("--limit must be between 1 and 10000")
    with runtime().sessions() as session:
        entries = audit.tail(session, limit)
    if as_json:
        emit_json([e.as_dict() for e in entries])
        return
    table = Table("id", "at", "actor", "action", "subject")
    for e in entries:
        table.add_row(str(e.id), e.at.isoformat(timespec="seconds"), e.actor, e.action, e.subject)
    console.print(table)
