"""``quietline oversight``: the quarterly complaint reviews (盘点)."""

from __future__ import annotations

import typer
from rich.table import Table

from quietline.cli.common import JSON_OPTION, cli_actor, console, emit_json, runtime
from quietline.oversight import actions, queries
from quietline.oversight.model import ChannelReview, Quarter, Share

app = typer.Typer(help="Oversight: quarterly complaint reviews (盘点).", no_args_is_help=True)


def _shares(title: str, shares: list[Share]) -> None:
    if not shares:
        return
    table = Table(title=title, title_justify="left")
    table.add_column("")
    table.add_column("件数", justify="right")
    table.add_column("占比", justify="right")
    for s in shares:
        table.add_row(s.label, f"{s.count:,}", f"{s.percent:.1f}%")
    console.print(table)


def _print(review: ChannelReview) -> None:
    _shares(f"{review.channel.label} · 按内容", review.by_category)
    _shares(f"{review.channel.label} · 按呼叫形式", review.by_form)
    _shares(f"{review.channel.label} · 按号码类型", review.by_number_type)
    _shares(f"{review.channel.label} · 按运营商", review.by_carrier)


@app.command("review")
def review(
    quarter: str = typer.Argument(..., help="A quarter such as 2026Q3."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Compute a quarter's review from the cases as they are now (not published)."""
    rt = runtime()
    with rt.sessions() as session:
        result = queries.draft_review(session, Quarter.parse(quarter), now=rt.clock.now())
    if as_json:
        emit_json(result.as_dict())
        return
    console.print(result.headline())
    _print(result.calls)
    _print(result.sms)


@app.command("publish")
def publish(
    quarter: str = typer.Argument(..., help="A finished quarter such as 2026Q3."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Freeze and publish a finished quarter's review (shown at /reviews and /v1/oversight/reviews)."""
    body = actions.publish_review(runtime(), cli_actor(), Quarter.parse(quarter))
    if as_json:
        emit_json(body)
    else:
        console.print(f"published {body['quarter']}: {body['headline']}")


@app.command("published")
def published(as_json: bool = JSON_OPTION) -> None:
    """Every published review."""
    with runtime().sessions() as session:
        rows = queries.published_quarters(session)
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        console.print(f"{row['quarter']}  {row['published_at'][:10]}  {row['headline']}")
