"""``quietline db``: schema migrations."""

from __future__ import annotations

import typer

from quietline.cli.common import console, runtime
from quietline.platform import migrate

app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)


@app.command("upgrade")
def upgrade() -> None:
    """Apply every migration to QUIETLINE_DATABASE_URL."""
    url = runtime().settings.database_url
    migrate.upgrade(url)
    console.print("[green]database is at the latest schema[/green]")


@app.command("check")
def check() -> None:
    """Fail when the models and the migrations disagree (drift)."""
    migrate.check(runtime().settings.database_url)
    console.print("[green]no drift between models and migrations[/green]")
