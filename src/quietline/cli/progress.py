"""Bulk imports on the command line: a rich progress bar while the file streams, then the summary.

Exit codes of an import command (so scripts can tell the outcomes apart):

* 0: every row was accepted and written;
* 1: ``--mode skip-bad-rows`` wrote the good rows and skipped some bad ones (listed with line numbers);
* 2: nothing was written: the file or its header is unusable (one line on stderr), or
  ``--mode all-or-nothing`` found bad rows (listed with line numbers).
"""

from __future__ import annotations

from collections.abc import Callable

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from quietline.cli.common import console, emit_json, err_console
from quietline.platform.bulk import ImportMode, ImportSummary
from quietline.platform.bulk import Progress as ProgressCallback

MODE_HELP = "all-or-nothing: any bad row means nothing is written; skip-bad-rows: write the good rows."
#: How many row errors the human-readable output lists (JSON lists every collected error).
SHOWN_ERRORS = 50


def parse_mode(value: str) -> ImportMode:
    return ImportMode.parse(value, field="--mode")


def run_with_progress(run: Callable[[ProgressCallback], ImportSummary], *, label: str) -> ImportSummary:
    """Run an import, drawing a progress bar (bytes read of the file) on stderr when it is a terminal."""
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    ) as bar:
        task = bar.add_task(label, total=None)

        def report(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        return run(report)


def exit_code(summary: ImportSummary) -> int:
    if not summary.written:
        return 2
    return 1 if summary.rejected else 0


def print_summary(summary: ImportSummary, *, as_json: bool) -> None:
    """The summary: JSON on stdout with ``--json``, else a table and the first errors by line."""
    if as_json:
        emit_json(summary.as_dict())
    else:
        table = Table("", "", show_header=False, box=None)
        table.add_row("file", summary.source)
        table.add_row("mode", summary.mode.value)
        table.add_row("written", "yes" if summary.written else "[red]no — nothing was written[/red]")
        table.add_row("rows read", f"{summary.rows_read:,}")
        table.add_row("accepted", f"{summary.accepted:,}")
        table.add_row("rejected", f"{summary.rejected:,}")
        for key, value in summary.details.items():
            table.add_row(key.replace("_", " "), f"{value:,}" if isinstance(value, int) else str(value))
        table.add_row("time", f"{summary.seconds:.2f} s ({summary.rows_per_second:,.0f} rows/s)")
        console.print(table)
        if summary.errors:
            errors = Table("line", "field", "problem", title="rejected rows")
            for error in summary.errors[:SHOWN_ERRORS]:
                errors.add_row(str(error.line), error.field or "", error.message)
            console.print(errors)
            more = summary.rejected - min(len(summary.errors), SHOWN_ERRORS)
            if more > 0:
                console.print(
                    f"… and {more:,} more rejected rows (--json lists up to {len(summary.errors):,})"
                )
    if not summary.written:
        err_console.print(
            f"error: {summary.rejected:,} bad rows in {summary.source}; nothing was written "
            "(fix them, or use --mode skip-bad-rows)",
            soft_wrap=True,
            highlight=False,
            markup=False,
        )


def finish(summary: ImportSummary, *, as_json: bool) -> None:
    """Print the summary and end the command with the import's exit code."""
    print_summary(summary, as_json=as_json)
    code = exit_code(summary)
    if code:
        raise typer.Exit(code)
