"""The ``quietline`` command. Thin: each sub-command parses, calls an action or query, prints."""

from __future__ import annotations

import sys

import typer
from pydantic import ValidationError

from quietline.cli import audit, callerauth, db, demo, enterprise, keys, marks, numbers, registry, sms, worker
from quietline.cli import complaints as complaints_cli
from quietline.cli import screening as screening_cli
from quietline.cli import traffic as traffic_cli
from quietline.platform.errors import QuietlineError
from quietline.vocabulary import VocabularyError

cli = typer.Typer(
    help="quietline: 谢绝来电 registry, consent ledger, screening, complaints and more.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
cli.add_typer(db.app, name="db")
cli.add_typer(numbers.app, name="numbers")
cli.add_typer(registry.app, name="registry")
cli.add_typer(registry.consent_app, name="consent")
cli.add_typer(demo.app, name="demo")
cli.add_typer(audit.app, name="audit")
cli.add_typer(sms.app, name="sms")
cli.add_typer(enterprise.app, name="enterprise")
cli.add_typer(keys.app, name="keys")
cli.add_typer(callerauth.app, name="callerauth")
cli.add_typer(marks.app, name="marks")
cli.add_typer(complaints_cli.app, name="complaints")
cli.add_typer(traffic_cli.app, name="traffic")
cli.add_typer(worker.app, name="worker")
screening_cli.register(cli)


@cli.command("serve")
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
) -> None:
    """Serve the web portal and the API (http://HOST:PORT, OpenAPI at /docs)."""
    import uvicorn

    from quietline.cli.common import runtime
    from quietline.jobs import schedule
    from quietline.platform.scheduler import start_in_thread

    stop = None
    if jobs:
        # One scheduler thread in the serving process: job leases keep it safe beside other workers.
        _thread, stop = start_in_thread(schedule.scheduler(runtime(), owner=f"serve:{worker.process_name()}"))
    try:
        uvicorn.run("quietline.api.app:create_app", factory=True, host=host, port=port, workers=workers)
    finally:
        if stop is not None:
            stop.set()


def app() -> None:
    """Console entry point: user errors become one line on stderr and exit code 2."""
    try:
        cli()
    except (QuietlineError, VocabularyError) as exc:
        sys.stderr.write(f"error: {exc}\n")
        sys.exit(2)
    except ValidationError as exc:
        first = exc.errors()[0]
        sys.stderr.write(f"error: configuration: {first.get('msg')}\n")
        sys.exit(2)
