"""Shared CLI plumbing: the process runtime, JSON output and the one-line error contract.

Every error a user can cause ends the command with exit code 2 and one line on stderr; the
``main`` wrapper in ``cli.main`` enforces it for errors raised anywhere below a command.
"""

from __future__ import annotations

import json
import sys
from functools import lru_cache
from typing import Any, NoReturn

import typer
from rich.console import Console

from quietline.platform.actor import Actor
from quietline.platform.runtime import Runtime
from quietline.platform.settings import get_settings

console = Console()
err_console = Console(stderr=True)

JSON_OPTION = typer.Option(False, "--json", help="Print machine-readable JSON on stdout.")


@lru_cache(maxsize=1)
def runtime() -> Runtime:
    return Runtime.build(get_settings())


def cli_actor() -> Actor:
    """CLI commands are operator actions, audited under the local user's name."""
    import getpass

    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry inside some containers
        name = "unknown"
    return Actor.operator(f"cli:{name}")


def emit_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2, default=str) + "\n")


def fail(message: str) -> NoReturn:
    """Exit 2 with one line on stderr (the CLI's bad-input contract)."""
    sys.stderr.write(f"error: {message}\n")
    raise typer.Exit(2)
