"""``quietline keys``: API keys for enterprise, carrier, regulator and operator users."""

from __future__ import annotations

import typer
from rich.table import Table

from quietline.accounts import actions, queries
from quietline.cli.common import JSON_OPTION, cli_actor, console, emit_json, err_console, runtime

app = typer.Typer(help="API keys (ql_<id>_<secret>; stored hashed, scoped, revocable).", no_args_is_help=True)


@app.command("create")
def create(
    role: str = typer.Option(..., "--role", help="enterprise, carrier, regulator or operator."),
    subject: str = typer.Option(
        ..., "--subject", help="Enterprise USCC, carrier code (or resale:<code>), or regulator/operator name."
    ),
    scope: list[str] | None = typer.Option(
        None, "--scope", help="A scope such as registry:read; repeatable."
    ),
    label: str = typer.Option("", "--label", help="A note for people (what the key is for)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Create a key and print it ONCE (only its hash is kept)."""
    created = actions.create_api_key(
        runtime(), cli_actor(), role=role, subject=subject, scopes=scope or [], label=label
    )
    if as_json:
        emit_json(created.as_dict())
        return
    console.print(f"key id {created.key.id} for {created.key.role.value}:{created.key.subject}")
    console.print(created.plaintext, highlight=False, soft_wrap=True)
    err_console.print("[yellow]store this key now: it cannot be shown again[/yellow]")


@app.command("list")
def list_(
    include_revoked: bool = typer.Option(False, "--all", help="Also list revoked keys."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List keys (never their secrets)."""
    with runtime().sessions() as session:
        keys = queries.list_api_keys(session, include_revoked=include_revoked)
    if as_json:
        emit_json([k.as_dict() for k in keys])
        return
    table = Table("id", "role", "subject", "scopes", "label", "last used", "revoked")
    for k in keys:
        table.add_row(
            k.id,
            k.role.value,
            k.subject,
            " ".join(k.scopes),
            k.label,
            k.last_used_at.isoformat(timespec="seconds") if k.last_used_at else "-",
            k.revoked_at.isoformat(timespec="seconds") if k.revoked_at else "-",
        )
    console.print(table)


@app.command("revoke")
def revoke(
    key_id: str = typer.Argument(..., help="The key id (the part after ql_)."), as_json: bool = JSON_OPTION
) -> None:
    """Revoke a key; it stops working at once."""
    key = actions.revoke_api_key(runtime(), cli_actor(), key_id)
    if as_json:
        emit_json(key.as_dict())
        return
    console.print(f"revoked {key.id}")
