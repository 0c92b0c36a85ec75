"""``quietline demo``: demo data for a local install."""

from __future__ import annotations

import typer

from quietline.cli.common import JSON_OPTION, console, emit_json, runtime
from quietline.demo import load as demo

app = typer.Typer(help="Demo data for a local install (development settings only).", no_args_is_help=True)


@app.command("load")
def load(as_json: bool = JSON_OPTION) -> None:
    """Load the demo data once (a second run does nothing)."""
    result = demo.load(runtime())
    if as_json:
        emit_json(result.as_dict())
    elif result.loaded:
        console.print(f"[green]demo data loaded[/green]; demo API keys (one per role) in {result.keys_file}")
    else:
        console.print("demo data already loaded")
