"""``quietline enterprise``: register and manage enterprises by unified social credit code."""

from __future__ import annotations

import typer
from rich.table import Table

from quietline.accounts import actions, queries
from quietline.accounts.model import Enterprise, EnterpriseStatus
from quietline.cli.common import JSON_OPTION, cli_actor, console, emit_json, fail, runtime
from quietline.vocabulary import Category

app = typer.Typer(
    help="Enterprises and call centres (统一社会信用代码, categories, status).", no_args_is_help=True
)

CATEGORY_OPTION = typer.Option(
    None, "--category", help="A category it markets in (code or Chinese label); repeat for several."
)


def _print(enterprise: Enterprise, as_json: bool) -> None:
    if as_json:
        emit_json(enterprise.as_dict())
        return
    console.print(f"[bold]{enterprise.uscc}[/bold] {enterprise.name} ({enterprise.status.value})")
    console.print("categories: " + (", ".join(f"{c.value} {c.label}" for c in enterprise.categories) or "-"))


@app.command("add")
def add(
    uscc: str = typer.Option(..., "--uscc", help="统一社会信用代码 (18 characters, GB 32100-2015)."),
    name: str = typer.Option(..., "--name", help="The registered name."),
    category: list[str] | None = CATEGORY_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Register an enterprise (the code's checksum is verified)."""
    enterprise = actions.register_enterprise(
        runtime(), cli_actor(), uscc=uscc, name=name, categories=category or []
    )
    _print(enterprise, as_json)


@app.command("show")
def show(uscc: str = typer.Argument(..., help="The enterprise's code."), as_json: bool = JSON_OPTION) -> None:
    """Show one enterprise."""
    with runtime().sessions() as session:
        enterprise = queries.get_enterprise(session, uscc)
    _print(enterprise, as_json)


@app.command("list")
def list_(
    status: str | None = typer.Option(None, "--status", help="active or suspended."),
    category: str | None = typer.Option(None, "--category", help="Only those marketing in this category."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List enterprises by code."""
    try:
        state = EnterpriseStatus(status) if status else None
    except ValueError:
        fail(f"--status must be one of {', '.join(s.value for s in EnterpriseStatus)}")
    cat = Category.parse(category, "category") if category else None
    with runtime().sessions() as session:
        found = queries.list_enterprises(session, status=state, category=cat)
    if as_json:
        emit_json([e.as_dict() for e in found])
        return
    table = Table("uscc", "name", "status", "categories")
    for e in found:
        table.add_row(e.uscc, e.name, e.status.value, ", ".join(c.label for c in e.categories))
    console.print(table)


@app.command("categories")
def categories(
    uscc: str = typer.Argument(..., help="The enterprise's code."),
    category: list[str] | None = CATEGORY_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Replace the categories an enterprise markets in."""
    _print(actions.update_enterprise_categories(runtime(), cli_actor(), uscc, category or []), as_json)


@app.command("suspend")
def suspend(
    uscc: str = typer.Argument(..., help="The enterprise's code."),
    reason: str = typer.Option(..., "--reason", help="Why (kept in the audit log)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Suspend an enterprise; its API keys stop working until it is reinstated."""
    _print(actions.suspend_enterprise(runtime(), cli_actor(), uscc, reason=reason), as_json)


@app.command("reinstate")
def reinstate(
    uscc: str = typer.Argument(..., help="The enterprise's code."), as_json: bool = JSON_OPTION
) -> None:
    """Lift a suspension."""
    _print(actions.reinstate_enterprise(runtime(), cli_actor(), uscc), as_json)
