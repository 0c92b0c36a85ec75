"""``quietline marks``: crowd marks, reputation, recycled numbers, verified identities, the high-risk list,
corrections (号码标记纠错) and the simulator's evaluation. Thin: parse, call an action or query, print."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import typer
from rich.table import Table

from quietline.cli.common import JSON_OPTION, cli_actor, console, emit_json, runtime
from quietline.marks import actions, queries
from quietline.marks.model import HighRiskState, Label
from quietline.platform.errors import InvalidInput

app = typer.Typer(help="Crowd marks, reputation, high-risk numbers and corrections.", no_args_is_help=True)
identity_app = typer.Typer(help="Verified enterprise identities on numbers.", no_args_is_help=True)
high_risk_app = typer.Typer(help="The high-risk list (高危号码).", no_args_is_help=True)
appeal_app = typer.Typer(help="Corrections and appeals (号码标记纠错).", no_args_is_help=True)
review_app = typer.Typer(help="Reviews of verified numbers the crowd marked.", no_args_is_help=True)
app.add_typer(identity_app, name="identity")
app.add_typer(high_risk_app, name="high-risk")
app.add_typer(appeal_app, name="appeal")
app.add_typer(review_app, name="review")

LABEL_HELP = "Label code or Chinese label: " + ", ".join(f"{m.value} ({m.label})" for m in Label)


def _parse_at(value: str | None) -> datetime | None:
    """ISO 8601; a time without an offset is taken as UTC."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(f"{value!r} is not an ISO 8601 date-time", field="at") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def reputation_view(number: str) -> dict[str, Any]:
    """The ``marks show`` answer: labels with count, confidence and displayed; the verified name."""
    rt = runtime()
    with rt.sessions() as session:
        rep = queries.reputation_of(session, number, rt.clock.now())
        risk = queries.high_risk(session, rep.number)
        block = queries.block_standing(session, rep.number)
        review = queries.open_review(session, rep.number)
    return {
        "number": rep.number,
        "labels": [lr.as_dict() for lr in rep.labels],
        "displayed": [lr.label.value for lr in rep.displayed],
        "explanations": [lr.explanation for lr in rep.displayed],
        "verified_name": rep.verified.display if rep.verified else None,
        "verified": (
            {"name": rep.verified.name, "purpose": rep.verified.purpose, "proof": rep.verified.proof}
            if rep.verified
            else None
        ),
        "review_open": review.id if review else None,
        "high_risk": risk.as_dict() if risk else None,
        "block": block.as_dict(),
    }


@app.command("add")
def add(
    number: str = typer.Option(..., "--number", help="The number being marked, any spelling."),
    label: str = typer.Option(..., "--label", help=LABEL_HELP),
    reporter: str = typer.Option(..., "--reporter", help="The verified subscriber number marking it."),
    at: str | None = typer.Option(None, "--at", help="When (ISO 8601; default now; no offset = UTC)."),
    device: str | None = typer.Option(None, "--device", help="The reporter's device id, if known."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Record a subscriber's mark (one live mark per reporter per number; a new one replaces the old)."""
    added = actions.add_mark(
        runtime(), cli_actor(), number=number, label=label, reporter=reporter, at=_parse_at(at), device=device
    )
    if as_json:
        emit_json(added.as_dict())
        return
    replaced = f" (replaces {added.replaced.label})" if added.replaced else ""
    console.print(f"[green]✓[/green] {added.number} marked {added.label.label} by {added.reporter}{replaced}")
    for lr in added.reputation.displayed:
        console.print(f"  shown: {lr.explanation}")


@app.command("show")
def show(
    number: str = typer.Argument(..., help="The number, any spelling."), as_json: bool = JSON_OPTION
) -> None:
    """A number's reputation: every label with its count, confidence and whether it is displayed."""
    view = reputation_view(number)
    if as_json:
        emit_json(view)
        return
    console.print(
        f"[bold]{view['number']}[/bold]" + (f" · {view['verified_name']}" if view["verified_name"] else "")
    )
    table = Table("label", "count", "confidence", "displayed", "explanation")
    for lr in view["labels"]:
        table.add_row(
            f"{lr['label']} {lr['label_zh']}",
            str(lr["count"]),
            f"{lr['confidence']:.2f}",
            "yes" if lr["displayed"] else "no",
            lr["explanation"],
        )
    console.print(table)
    if view["high_risk"]:
        console.print(f"high risk: {view['high_risk']['state_zh']} ({view['high_risk']['source_zh']})")


@app.command("recycle")
def recycle(
    number: str = typer.Argument(..., help="The reassigned number."), as_json: bool = JSON_OPTION
) -> None:
    """Carrier action: the number was reassigned (二次放号); clear every mark, label and identity."""
    done = actions.recycle(runtime(), cli_actor(), number)
    if as_json:
        emit_json(done.as_dict())
    else:
        console.print(
            f"[green]✓[/green] {done.number}: {done.marks_cleared} marks cleared; the new owner starts clean"
        )


@app.command("refresh")
def refresh(as_json: bool = JSON_OPTION) -> None:
    """Re-judge every displayed label (evidence decays); run it on a schedule, e.g. hourly."""
    changes = actions.refresh(runtime(), cli_actor())
    if as_json:
        emit_json({"label_changes": changes})
    else:
        console.print(f"{changes} label change(s) announced")


@app.command("evaluate")
def evaluate(
    seed: int = typer.Option(1, "--seed", help="Random seed of the simulated population."),
    days: int = typer.Option(90, "--days", min=7, max=365, help="Simulated days."),
    scale: float = typer.Option(1.0, "--scale", min=0.01, max=10.0, help="Multiply every population count."),
    malicious: float = typer.Option(
        0.05, "--malicious-share", min=0.0, max=0.9, help="Share of malicious reporters."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Run the population simulator and print precision/recall per label, marks needed to flag new
    spam, and what brigades of each size can do — with the issue's targets and whether each is met."""
    from quietline.marks.simulation import SimulationConfig
    from quietline.marks.simulation import evaluate as run

    report = run(SimulationConfig(seed=seed, days=days, malicious_share=malicious).scaled(scale))
    if as_json:
        emit_json(report)
        return
    console.print_json(json.dumps({k: report[k] for k in ("population", "targets")}, ensure_ascii=False))
    quality = report["quality"]
    if isinstance(quality, dict):
        console.print_json(json.dumps(quality["warnings"], ensure_ascii=False))


@identity_app.command("register")
def identity_register(
    number: str = typer.Option(..., "--number"),
    name: str = typer.Option(..., "--name", help="Display name, e.g. 某某银行信用卡中心."),
    purpose: str = typer.Option("", "--purpose", help="Purpose, e.g. 客服."),
    owner: str = typer.Option(..., "--owner", help="The owning enterprise (its USCC)."),
    proof: str = typer.Option(..., "--proof", help="How ownership was proved: ledger or otp."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Register a verified enterprise identity (crowd marks can then no longer turn it red)."""
    actions.register_identity(
        runtime(), cli_actor(), number=number, name=name, purpose=purpose, proof=proof, owner=owner
    )
    view = reputation_view(number)
    if as_json:
        emit_json(view)
    else:
        console.print(f"[green]✓[/green] {view['number']} · {view['verified_name']}")


@identity_app.command("sync-ledger")
def identity_sync_ledger(as_json: bool = JSON_OPTION) -> None:
    """Give every number of the caller-number ledger its enterprise's verified identity (the ledger
    proves ownership) and withdraw ledger identities whose number left the ledger."""
    from quietline.accounts import queries as accounts_queries
    from quietline.callerauth import queries as ledger_queries

    rt = runtime()
    with rt.sessions() as session:
        rows = ledger_queries.ledger(session)
        names: dict[str, str] = {}
        for uscc in {r.line.enterprise for r in rows}:
            try:
                enterprise = accounts_queries.find_enterprise(session, uscc)
            except InvalidInput:
                enterprise = None
            names[uscc] = enterprise.name if enterprise else ""
    claims = [
        actions.OwnershipClaim(
            number="+" + r.entry.number,
            owner=r.line.enterprise,
            name=names.get(r.line.enterprise) or r.line.name,
            purpose=r.entry.purpose.label,
        )
        for r in rows
    ]
    done = actions.sync_identities(rt, cli_actor(), claims, proof="ledger")
    if as_json:
        emit_json(done.as_dict())
    else:
        console.print(
            f"[green]✓[/green] {done.registered} registered, {done.updated} updated, {done.removed} withdrawn"
            + (f"; conflicts: {', '.join(done.conflicts)}" if done.conflicts else "")
        )


@identity_app.command("remove")
def identity_remove(number: str = typer.Argument(...), as_json: bool = JSON_OPTION) -> None:
    """Withdraw a verified identity."""
    actions.remove_identity(runtime(), cli_actor(), number)
    view = reputation_view(number)
    if as_json:
        emit_json(view)
    else:
        console.print(f"[green]✓[/green] {view['number']}: identity removed")


@high_risk_app.command("flag")
def high_risk_flag(
    number: str = typer.Argument(...),
    source: str = typer.Option(..., "--source", help="complaints, crowd_fraud, traffic or police."),
    reason: str = typer.Option(..., "--reason", help="The evidence."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Put a number on the high-risk list as suspected."""
    entry = actions.flag_high_risk(runtime(), cli_actor(), number=number, source=source, reason=reason)
    if as_json:
        emit_json(entry.as_dict())
    else:
        console.print(f"[green]✓[/green] {entry.number}: {entry.state.label}")


@high_risk_app.command("move")
def high_risk_move(
    number: str = typer.Argument(...),
    state: str = typer.Option(..., "--state", help="verified, acted or cleared (or suspected again)."),
    reason: str = typer.Option("", "--reason"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Move a high-risk number along suspected → verified → acted → cleared."""
    entry = actions.move_high_risk(runtime(), cli_actor(), number=number, state=state, reason=reason)
    if as_json:
        emit_json(entry.as_dict())
    else:
        console.print(f"[green]✓[/green] {entry.number}: {entry.state.label}")


@high_risk_app.command("list")
def high_risk_list(
    state: str | None = typer.Option(None, "--state"),
    as_json: bool = JSON_OPTION,
) -> None:
    """The high-risk list, newest change first."""
    wanted = HighRiskState.parse(state, "state") if state else None
    with runtime().sessions() as session:
        entries = queries.list_high_risk(session, wanted)
    if as_json:
        emit_json([e.as_dict() for e in entries])
        return
    table = Table("number", "state", "source", "reason", "updated")
    for e in entries:
        table.add_row(
            e.number, e.state.label, e.source.label, e.reason, e.updated_at.isoformat(timespec="seconds")
        )
    console.print(table)


@appeal_app.command("open")
def appeal_open(
    number: str = typer.Option(..., "--number"),
    label: str = typer.Option(..., "--label", help=LABEL_HELP),
    reason: str = typer.Option(..., "--reason"),
    proof: str = typer.Option(
        ..., "--proof", help="The proof of ownership checked (e.g. carrier_statement)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """File a correction on the owner's behalf; it is due within 3 working days."""
    appeal = actions.open_appeal(
        runtime(), cli_actor(), number=number, label=label, reason=reason, proof=proof
    )
    if as_json:
        emit_json(appeal.as_dict())
    else:
        console.print(f"[green]✓[/green] appeal {appeal.id} on {appeal.number}, due {appeal.due.isoformat()}")


@appeal_app.command("decide")
def appeal_decide(
    appeal_id: int = typer.Argument(...),
    outcome: str = typer.Option(..., "--outcome", help="upheld (marks withdrawn) or rejected (marks stay)."),
    note: str = typer.Option("", "--note"),
    as_json: bool = JSON_OPTION,
) -> None:
    """Decide a correction: the outcome is recorded, wrong reporters lose credibility, the owner is told."""
    decision = actions.decide_appeal(runtime(), cli_actor(), appeal_id, outcome=outcome, note=note)
    if as_json:
        emit_json(decision.as_dict())
    else:
        late = " (late)" if decision.appeal.decided_late else ""
        console.print(f"[green]✓[/green] appeal {appeal_id}: {decision.appeal.outcome}{late}")


@appeal_app.command("list")
def appeal_list(
    state: str | None = typer.Option(None, "--state", help="open or decided."), as_json: bool = JSON_OPTION
) -> None:
    """Appeals with their due day and outcome."""
    with runtime().sessions() as session:
        appeals = queries.list_appeals(session, state)
    if as_json:
        emit_json([a.as_dict() for a in appeals])
        return
    table = Table("id", "number", "label", "due", "state", "outcome")
    for a in appeals:
        table.add_row(str(a.id), a.number, a.label.label, a.due.isoformat(), a.state, a.outcome or "")
    console.print(table)


@review_app.command("list")
def review_list(
    state: str | None = typer.Option(None, "--state", help="open or closed."), as_json: bool = JSON_OPTION
) -> None:
    """Reviews opened because the crowd marked a verified number."""
    with runtime().sessions() as session:
        reviews = queries.list_reviews(session, state)
    if as_json:
        emit_json([r.as_dict() for r in reviews])
        return
    table = Table("id", "number", "labels", "state", "outcome")
    for r in reviews:
        table.add_row(str(r.id), r.number, ",".join(lb.value for lb in r.labels), r.state, r.outcome or "")
    console.print(table)


@review_app.command("close")
def review_close(
    review_id: int = typer.Argument(...),
    outcome: str = typer.Option(..., "--outcome", help="dismissed (marks wrong) or confirmed (crowd right)."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Decide a review of a verified number."""
    review = actions.close_review(runtime(), cli_actor(), review_id, outcome)
    if as_json:
        emit_json(review.as_dict())
    else:
        console.print(f"[green]✓[/green] review {review.id}: {review.outcome}")
