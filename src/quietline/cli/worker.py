"""``quietline worker``: run the platform's periodic jobs (``quietline.jobs``)."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
from types import FrameType

import typer
from rich.table import Table

from quietline.cli.common import JSON_OPTION, console, emit_json, err_console, runtime
from quietline.jobs import schedule
from quietline.platform.errors import InvalidInput
from quietline.platform.scheduler import Outcome, start_in_threads

app = typer.Typer(
    help="Periodic jobs: deadlines, webhooks, reactions, digests, expiries.", no_args_is_help=True
)


def process_name() -> str:
    """Names this process in job leases, so an operator can see who holds a job."""
    return f"{socket.gethostname()}:{os.getpid()}"


@app.command("run")
def run(
    once: bool = typer.Option(False, "--once", help="Run the jobs that are due now, once, and exit."),
    only: list[str] = typer.Option([], "--only", help="Run only this job (repeatable); see `worker jobs`."),
    tick: float = typer.Option(0.5, "--tick", help="Seconds between looks for due jobs."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per job run (JSON lines)."),
) -> None:
    """Run due jobs until stopped (Ctrl-C or SIGTERM); any number of workers may share a database."""
    if tick <= 0:
        raise InvalidInput("--tick must be positive", field="tick")
    sched = schedule.scheduler(runtime(), owner=process_name())
    if only:
        sched = sched.select(only)

    def report(outcome: Outcome) -> None:
        if as_json:  # JSON lines: one object per job run, flushed, so a log shipper can follow it.
            sys.stdout.write(json.dumps(outcome.as_dict(), ensure_ascii=False, default=str) + "\n")
            sys.stdout.flush()
        elif outcome.ok:
            console.print(f"[green]ok[/green] {outcome.job} {outcome.result}")
        else:
            console.print(f"[red]failed[/red] {outcome.job}: {outcome.error}")

    if once:
        for outcome in sched.run_pending():
            report(outcome)
        return
    stop = threading.Event()

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    # The banner goes to stderr so that stdout stays pure JSON lines under --json.
    err_console.print(f"worker {sched.owner}: {len(sched.jobs)} jobs; stop with Ctrl-C", highlight=False)
    threads = start_in_threads(sched, stop, tick=tick, on_outcome=report)
    while not stop.wait(0.5):
        pass
    for thread in threads:
        thread.join(timeout=60)


@app.command("jobs")
def jobs(as_json: bool = JSON_OPTION) -> None:
    """Every job: what it does, when it is next due, how its last run went."""
    statuses = schedule.scheduler(runtime(), owner=process_name()).status()
    if as_json:
        emit_json([s.as_dict() for s in statuses])
        return
    table = Table("job", "what", "next due", "last", "runs", "failures")
    for s in statuses:
        last = s.last_status or "never"
        if s.running:
            last = "running"
        table.add_row(
            s.name,
            s.description,
            s.next_due_at.isoformat(timespec="seconds") if s.next_due_at else "-",
            last,
            str(s.runs),
            str(s.failures),
        )
    console.print(table)
