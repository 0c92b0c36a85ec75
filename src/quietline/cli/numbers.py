"""``quietline numbers``: what a number is, and the portability (携号转网) records."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from quietline.cli import marks as marks_cli
from quietline.cli import progress
from quietline.cli.common import JSON_OPTION, cli_actor, console, emit_json, runtime
from quietline.numbers import actions, parse, queries

app = typer.Typer(help="Phone numbers: parsing, number plan, carriers and portability.", no_args_is_help=True)


@app.command("info")
def info(
    number: str = typer.Argument(..., help="Any spelling: 13800138000, +86 10 1234 5678, 95588, 110 …"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Show the canonical form, type, original and current carrier of a number (exit 2 if invalid)."""
    parsed = parse(number, field="number")
    with runtime().sessions() as session:
        view = queries.info(session, parsed)
    if as_json:
        emit_json(view)
        return
    table = Table("", "", show_header=False, box=None)
    for key, value in view.items():
        table.add_row(key, "" if value is None else str(value))
    console.print(table)


@app.command("import-portability")
def import_portability(
    file: Path = typer.Argument(..., help="CSV with a header: number,carrier[,ported_at]."),
    mode: str = typer.Option("all-or-nothing", "--mode", help=progress.MODE_HELP),
    as_json: bool = JSON_OPTION,
) -> None:
    """Import portability records (columns number,carrier; carrier codes china_mobile, china_unicom,
    china_telecom, china_broadnet or their Chinese names; optional ported_at in ISO 8601 with offset).

    Resale, satellite, IoT and non-mobile numbers are refused (they cannot port). Exit 0: all rows
    written; 1: bad rows skipped (skip-bad-rows); 2: nothing written (bad file, header or rows).
    """
    import_mode = progress.parse_mode(mode)
    rt = runtime()
    actor = cli_actor()
    summary = progress.run_with_progress(
        lambda report: actions.import_portability(rt, actor, file, import_mode, progress=report),
        label=f"importing {file.name}",
    )
    progress.finish(summary, as_json=as_json)


# Reassignment (二次放号) clears a number's crowd marks; the carrier reports it on the number itself.
# The command is the marks context's own, registered here as well so `quietline numbers recycle` works.
app.command("recycle")(marks_cli.recycle)
