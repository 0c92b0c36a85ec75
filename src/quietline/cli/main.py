"""The ``quietline`` command. Thin: each sub-command parses, calls an action or query, prints."""

from __future__ import annotations

import os
import sys
import threading
from importlib import import_module

import typer
from pydantic import ValidationError

from quietline.platform import logredact
from quietline.platform.errors import QuietlineError
from quietline.vocabulary import VocabularyError

#: Sub-command groups: name → (module, Typer attribute). A command imports only its own group: the
#: whole CLI pulls in every context (numpy, DuckDB, Ibis, cryptography …), which costs seconds of start-up
#: on a small machine, and scripts call ``quietline`` many times.
GROUPS: dict[str, tuple[str, str]] = {
    "db": ("quietline.cli.db", "app"),
    "numbers": ("quietline.cli.numbers", "app"),
    "registry": ("quietline.cli.registry", "app"),
    "consent": ("quietline.cli.registry", "consent_app"),
    "demo": ("quietline.cli.demo", "app"),
    "audit": ("quietline.cli.audit", "app"),
    "sms": ("quietline.cli.sms", "app"),
    "enterprise": ("quietline.cli.enterprise", "app"),
    "keys": ("quietline.cli.keys", "app"),
    "callerauth": ("quietline.cli.callerauth", "app"),
    "marks": ("quietline.cli.marks", "app"),
    "complaints": ("quietline.cli.complaints", "app"),
    "traffic": ("quietline.cli.traffic", "app"),
    "worker": ("quietline.cli.worker", "app"),
    "oversight": ("quietline.cli.oversight", "app"),
}
#: Commands the screening module adds at the top level (``screen``, ``wash``) and its own group.
SCREENING_COMMANDS = frozenset({"screen", "wash", "screening"})


def _root() -> None:
    """quietline: 谢绝来电 registry, consent ledger, screening, complaints and more."""


def build(only: str | None = None) -> typer.Typer:
    """The command tree; with ``only``, just the part that command needs (plus ``serve``)."""
    cli = typer.Typer(
        help="quietline: 谢绝来电 registry, consent ledger, screening, complaints and more.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )
    # A callback keeps the tree a command group even when it holds one command (``serve`` alone):
    # Typer would otherwise run that command directly and refuse the word ``serve`` as an argument.
    cli.callback()(_root)
    for name, (module, attribute) in GROUPS.items():
        if only is None or only == name:
            cli.add_typer(getattr(import_module(module), attribute), name=name)
    if only is None or only in SCREENING_COMMANDS:
        import_module("quietline.cli.screening").register(cli)
    cli.command("serve")(serve)
    return cli


def serve(
    host: str = typer.Option("127.0.0.1", help="Address to bind."),
    port: int = typer.Option(8000, help="Port to listen on."),
    workers: int = typer.Option(1, help="Worker processes."),
    jobs: bool = typer.Option(
        True,
        "--jobs/--no-jobs",
        help="Also run the periodic jobs in this process (the embedded install); turn off when "
        "separate `quietline worker run` processes do it.",
    ),
    access_log: bool = typer.Option(
        True,
        "--access-log/--no-access-log",
        help="Log every request line (numbers masked). Measured: it doubles the server's CPU per "
        "reputation look-up; a carrier's call path behind its own request logging may turn it off.",
    ),
) -> None:
    """Serve the web portal and the API (http://HOST:PORT, OpenAPI at /docs)."""
    import uvicorn

    from quietline.cli.common import runtime
    from quietline.cli.worker import process_name
    from quietline.jobs import schedule
    from quietline.platform.scheduler import start_in_threads

    os.environ["WEB_CONCURRENCY"] = str(workers)  # the worker processes share per-client limits
    stop = threading.Event()
    if jobs:
        # Scheduler threads in the serving process: job leases keep them safe beside other workers.
        start_in_threads(schedule.scheduler(runtime(), owner=f"serve:{process_name()}"), stop)
    try:
        uvicorn.run(
            "quietline.api.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            access_log=access_log,
        )
    finally:
        stop.set()


def app() -> None:
    """Console entry point: user errors become one line on stderr and exit code 2."""
    command = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), None)
    known = command in GROUPS or command in SCREENING_COMMANDS or command == "serve"
    logredact.install()  # workers and commands log numbers masked, as the server does
    try:
        build(command if known else None)()
    except (QuietlineError, VocabularyError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        sys.exit(2)
    except ValidationError as exc:
        first = exc.errors()[0]
        sys.stderr.write(f"error: configuration: {first.get('msg')}\n")
        sys.exit(2)
