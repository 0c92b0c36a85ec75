"""``quietline traffic``: generate call records, detect abnormal traffic, evaluate, train, watch.

Thin: each command parses its options, calls ``quietline.traffic`` and prints. The command lines
are a contract the checks use (issue 7): keep ``generate``, ``detect`` and ``evaluate`` as they are.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from quietline.cli.common import JSON_OPTION, cli_actor, console, emit_json, runtime
from quietline.platform.clock import SystemClock

if TYPE_CHECKING:
    from quietline.traffic.actions import StoredRun
    from quietline.traffic.detect import DetectionResult
    from quietline.traffic.rules import Thresholds

app = typer.Typer(
    help="Abnormal traffic detection from call records (呼死你, 响一声, bulk dialers, spoofing).",
    no_args_is_help=True,
)

DEFAULT_MODEL_DIR = Path("var/traffic-model")
MODEL_OPTION = typer.Option(
    DEFAULT_MODEL_DIR, "--model", help="Risk-model directory (trained once from the default run if empty)."
)
NO_MODEL_OPTION = typer.Option(False, "--no-model", help="Rules only: skip the learned fraud_risk score.")
STORE_OPTION = typer.Option(
    False, "--store", help="Keep the run and its findings (audited; findings become high-risk candidates)."
)
CARRIER_OPTION = typer.Option(
    None, "--carrier", help="Whose call records these are (china_mobile, 中国移动, or a resale operator)."
)
THRESHOLD_OPTION = typer.Option(
    [], "--threshold", help="Override a rule threshold, NAME=VALUE (repeatable), e.g. bulk_daily_quota=1000."
)


def _note(message: str) -> None:
    sys.stderr.write(message + "\n")


def _model(model_dir: Path, no_model: bool):  # type: ignore[no-untyped-def]
    from quietline.traffic import evaluation

    if no_model:
        return None
    if not (model_dir / "CURRENT").is_file():
        _note(f"note: no risk model in {model_dir}; training the default one (once)…")
    return evaluation.default_model(model_dir, now=SystemClock().now(), workdir=model_dir)


@app.command("generate")
def generate(
    subscribers: int = typer.Option(
        ..., "--subscribers", help="Ordinary subscribers (others scale with it)."
    ),
    days: int = typer.Option(..., "--days", help="Days of traffic."),
    seed: int = typer.Option(..., "--seed", help="Random seed: the same seed writes the same files."),
    out: Path = typer.Option(..., "--out", help="Directory for calls.parquet, labels.csv, allowlist.csv."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Write synthetic call records with ground truth (DIR/calls.parquet, DIR/labels.csv)."""
    from quietline.traffic.generator import generate as run

    result = run(subscribers, days, seed, out)
    if as_json:
        emit_json(result.as_dict())
    else:
        console.print(
            f"{result.calls:,} calls, {result.numbers:,} labelled numbers in {result.seconds:.1f} s → {out}"
        )


@app.command("detect")
def detect(
    input_path: Path = typer.Argument(
        ..., metavar="INPUT", help="Call records: a CSV or Parquet file or a directory."
    ),
    backend: str = typer.Option("duckdb", "--backend", help="duckdb (embedded) or pyspark."),
    allow_list: Path | None = typer.Option(
        None, "--allow-list", help="CSV with a number column: never auto-blocked."
    ),
    threshold: list[str] = THRESHOLD_OPTION,
    model_dir: Path = MODEL_OPTION,
    no_model: bool = NO_MODEL_OPTION,
    store: bool = STORE_OPTION,
    carrier: str | None = CARRIER_OPTION,
    threads: int | None = typer.Option(
        None, "--threads", help="Cap the engine's threads (default: DuckDB uses every core)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Find bombing, one-ring, bulk dialers, spoofed IDs and fraud risk; each finding with evidence.

    With ``--store`` the run and its findings are kept in the database (audited) and every finding
    of a caller not on an allow list becomes a high-risk candidate (change feed ``traffic.finding``).
    """
    from quietline.traffic.detect import BACKENDS, read_allow_list
    from quietline.traffic.detect import detect as run
    from quietline.traffic.rules import Thresholds

    if backend not in BACKENDS:
        from quietline.platform.errors import InvalidInput

        raise InvalidInput(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}", field="backend")
    th = Thresholds().with_overrides(threshold)
    if store:
        from quietline.traffic.actions import resolve_carrier

        resolve_carrier(cli_actor(), carrier)  # a missing or bad --carrier fails before the work
    allow = read_allow_list(allow_list)
    model = _model(model_dir, no_model)
    result = run(
        input_path,
        backend=backend,
        thresholds=th,
        allow_list=allow,
        risk_model=model,
        summarise=store,
        threads=threads,
    )
    rejected = ", ".join(f"{k}={v}" for k, v in sorted(result.rejected.items())) or "none"
    _note(
        f"{result.rows:,} rows read; set aside: {rejected}; {len(result.findings)} findings "
        f"in {result.timing['total']:.2f} s on {backend}"
    )
    if store:
        stored = _store(result, input_path, carrier, th)
        _note(
            f"stored as run {stored.run.run_id} for {stored.run.carrier}: {stored.candidates} high-risk "
            f"candidates, {stored.allow_listed} allow-listed kept for review"
        )
    if as_json:
        emit_json([f.as_dict() for f in result.findings])
        return
    table = Table("number", "pattern", "score", "action", "evidence")
    for f in result.findings[:200]:
        key = {k: v for k, v in f.evidence.items() if k not in ("first_call", "last_call")}
        table.add_row(f.number, f.pattern, f"{f.score:.3f}", f.action, str(key)[:120])
    console.print(table)


def _labels_near(input_path: Path) -> dict[int, str] | None:
    """The generator's labels.csv beside the records, if there is one (for the report's confusion)."""
    from quietline.traffic.evaluation import read_labels

    folder = input_path if input_path.is_dir() else input_path.parent
    path = folder / "labels.csv"
    return read_labels(path) if path.is_file() else None


def _store(result: DetectionResult, input_path: Path, carrier: str | None, th: Thresholds) -> StoredRun:
    from quietline.traffic import actions, report

    return actions.store_run(
        runtime(),
        cli_actor(),
        carrier=carrier,
        findings=result.findings,
        rows=result.rows,
        rejected=result.rejected,
        backend=result.backend,
        source=str(input_path),
        summary=report.summary(result, _labels_near(input_path)),
        data_end=result.data_end,
        thresholds=th,
    )


@app.command("evaluate")
def evaluate(
    data_dir: Path = typer.Argument(..., metavar="DIR", help="A generated directory (calls + labels.csv)."),
    backend: str = typer.Option("duckdb", "--backend", help="duckdb (embedded) or pyspark."),
    threshold: list[str] = THRESHOLD_OPTION,
    model_dir: Path = MODEL_OPTION,
    no_model: bool = NO_MODEL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Precision and recall per pattern, legitimate false-flag rate and timing against the labels."""
    from quietline.traffic.evaluation import evaluate as run
    from quietline.traffic.rules import Thresholds

    th = Thresholds().with_overrides(threshold)
    report = run(data_dir, backend=backend, thresholds=th, model=_model(model_dir, no_model))
    if as_json:
        emit_json(report)
        return
    table = Table("pattern", "precision", "recall", "tp", "fp", "fn")
    for name, m in report["patterns"].items():
        table.add_row(
            name,
            f"{m['precision']:.4f}",
            f"{m['recall']:.4f}",
            str(m["true_positives"]),
            str(m["false_positives"]),
            str(m["false_negatives"]),
        )
    console.print(table)
    console.print(
        f"legit high-volume false-flag rate: {report['legit_false_flag_rate']:.4%} "
        f"of {report['legit_high_volume_callers']}; timing {report['timing']}"
    )


@app.command("train")
def train(
    data_dir: Path = typer.Argument(..., metavar="DIR", help="A generated directory (calls + labels.csv)."),
    model_dir: Path = MODEL_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Train a new version of the risk model on DIR and make it current; prints its report."""
    from quietline.traffic.evaluation import train_from_dir

    model, target = train_from_dir(data_dir, model_dir, now=SystemClock().now())
    if as_json:
        emit_json({**model.metadata, "path": str(target)})
    else:
        console.print(f"model {model.metadata['version']} → {target}")
        console.print(model.metadata["metrics"])


@app.command("watch")
def watch(
    input_path: Path = typer.Argument(
        ..., metavar="FILE", help="CSV call records, read as they are appended."
    ),
    follow: bool = typer.Option(False, "--follow", help="Keep reading as lines are appended (tail -f)."),
    window: int = typer.Option(60, "--window", help="Seconds of event time a bombing is counted over."),
    min_calls: int = typer.Option(
        10, "--min-calls", help="Calls to one callee in the window that raise an alert."
    ),
    store: bool = typer.Option(
        False, "--store", help="Keep each alert as an in-progress bombing finding (a high-risk candidate)."
    ),
    carrier: str | None = CARRIER_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Streaming call-bombing detector: one alert line per bombing, within 60 s of its onset."""
    import time

    from quietline.platform.errors import InvalidInput
    from quietline.traffic.actions import AlertRecorder
    from quietline.traffic.streaming import BombingDetector, StreamConfig, StreamStats, watch_file

    if window < 1 or min_calls < 2:
        raise InvalidInput("--window must be ≥ 1 and --min-calls ≥ 2", field="window")
    recorder = (
        AlertRecorder(runtime(), cli_actor(), carrier=carrier, min_calls=min_calls, source=str(input_path))
        if store
        else None
    )

    def wait() -> bool:
        time.sleep(0.5)
        return True

    detector = BombingDetector(StreamConfig(window_seconds=window, min_calls=min_calls))
    stats = StreamStats()
    try:
        for alert in watch_file(input_path, detector, stats, follow=follow, wait=wait):
            if recorder is not None:
                recorder.record([alert])
            if as_json:
                sys.stdout.write(json.dumps(alert.as_dict(), ensure_ascii=False) + "\n")
                sys.stdout.flush()
            else:
                console.print(
                    f"[bold red]bombing[/] {alert.caller} → {alert.callee}: {alert.calls_in_window} calls "
                    f"since {alert.onset} (alert after {alert.latency_seconds:.0f} s)"
                )
    except KeyboardInterrupt:
        pass
    rejected = ", ".join(f"{k}={v}" for k, v in sorted(stats.rejected.items())) or "none"
    _note(f"{stats.rows:,} rows read; set aside: {rejected}; {detector.active_callers} callers tracked")
    if recorder is not None and recorder.run_id is not None:
        _note(f"alerts stored in run {recorder.run_id} for {recorder.carrier}")


@app.command("watch-nats")
def watch_nats(
    subject: str = typer.Argument(..., help="JetStream subject carrying one JSON call record per message."),
    url: str = typer.Option("nats://127.0.0.1:4222", "--url", help="NATS server."),
    stream: str = typer.Option("QUIETLINE_CDR", "--stream", help="JetStream stream (created if missing)."),
    durable: str = typer.Option("quietline-bombing", "--durable", help="Durable consumer name."),
    idle_exit: float | None = typer.Option(None, "--idle-exit", help="Stop after this many idle seconds."),
    store: bool = typer.Option(
        False, "--store", help="Keep each alert as an in-progress bombing finding (a high-risk candidate)."
    ),
    carrier: str | None = CARRIER_OPTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Streaming call-bombing detector on a NATS JetStream subject (alerts as with ``watch``)."""
    from quietline.traffic.actions import AlertRecorder
    from quietline.traffic.nats_source import watch_nats as run
    from quietline.traffic.streaming import BombingAlert, BombingDetector, StreamStats

    detector = BombingDetector()
    recorder = (
        AlertRecorder(
            runtime(),
            cli_actor(),
            carrier=carrier,
            min_calls=detector.config.min_calls,
            source=f"nats:{subject}",
        )
        if store
        else None
    )

    def show(alert: BombingAlert) -> None:
        if recorder is not None:
            recorder.record([alert])
        if as_json:
            sys.stdout.write(json.dumps(alert.as_dict(), ensure_ascii=False) + "\n")
            sys.stdout.flush()
        else:
            console.print(f"[bold red]bombing[/] {alert.caller} → {alert.callee} since {alert.onset}")

    stats = StreamStats()
    with contextlib.suppress(KeyboardInterrupt):
        run(
            subject,
            detector,
            stats,
            show,
            url=url,
            stream=stream,
            durable=durable,
            idle_exit_seconds=idle_exit,
        )
    rejected = ", ".join(f"{k}={v}" for k, v in sorted(stats.rejected.items())) or "none"
    _note(f"{stats.rows:,} messages read; set aside: {rejected}")
