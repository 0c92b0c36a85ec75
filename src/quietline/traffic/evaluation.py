"""Compare findings with the generator's ground truth; train and locate the risk model.

``evaluate`` prints what the issue's figures are about: precision and recall per pattern, the share
of legitimate high-volume callers (delivery riders, drivers, businesses, consented call centres)
flagged by anything, and how long detection took.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

from quietline.platform.errors import InvalidInput, NotFound
from quietline.traffic import model as risk
from quietline.traffic.detect import DetectionResult, detect, input_files, read_allow_list
from quietline.traffic.generator import ABUSE_PATTERNS, LEGIT_HIGH_VOLUME, LEGIT_KINDS, generate
from quietline.traffic.rules import Thresholds


def read_labels(path: Path) -> dict[int, str]:
    """``number,pattern`` rows, numbers normalised like the call records."""
    import ibis

    from quietline.traffic.features import normalise_number, quiet_engine_deprecations, to_arrow

    if not path.is_file():
        raise NotFound(f"{path} not found (expected the generator's labels.csv)", field="labels")
    con = ibis.duckdb.connect()
    try:
        with quiet_engine_deprecations():
            t = con.read_csv(str(path), types={"number": "VARCHAR", "pattern": "VARCHAR"})
        if not {"number", "pattern"} <= set(t.columns):
            raise InvalidInput(f"{path} needs the columns number,pattern", field="labels")
        rows = to_arrow(t.select(n=normalise_number(t.number).cast("int64"), p=t.pattern)).to_pylist()
    finally:
        con.disconnect()
    return {int(r["n"]): str(r["p"]) for r in rows if r["n"] is not None}


def _ratio(num: int, den: int) -> float:
    return round(num / den, 6) if den else 1.0


def score(result: DetectionResult, labels: dict[int, str]) -> dict[str, Any]:
    """Per-pattern precision and recall against the labels, over numbers that placed calls."""
    callers = set(result.feature_table.column("number").to_pylist())
    flagged: dict[int, str] = {int(f.number.lstrip("+")): f.pattern for f in result.findings}
    patterns: dict[str, dict[str, Any]] = {}
    for p in ABUSE_PATTERNS:
        actual = {n for n, lab in labels.items() if lab == p and n in callers}
        predicted = {n for n, pat in flagged.items() if pat == p}
        tp = len(actual & predicted)
        patterns[p] = {
            "precision": _ratio(tp, len(predicted)),
            "recall": _ratio(tp, len(actual)),
            "true_positives": tp,
            "false_positives": len(predicted - actual),
            "false_negatives": len(actual - predicted),
            "actual": len(actual),
        }
    high = {n for n, lab in labels.items() if lab in LEGIT_HIGH_VOLUME and n in callers}
    legit = {n for n, lab in labels.items() if lab in LEGIT_KINDS and n in callers}
    high_flagged = sorted(f"+{n}" for n in high if n in flagged)
    legit_flagged = [n for n in legit if n in flagged]
    return {
        **patterns,
        "patterns": patterns,
        "legit_false_flag_rate": _ratio(len(high_flagged), len(high)) if high else 0.0,
        "legit_high_volume_callers": len(high),
        "legit_high_volume_flagged": high_flagged,
        "all_legit_false_flag_rate": _ratio(len(legit_flagged), len(legit)) if legit else 0.0,
        "all_legit_callers": len(legit),
        "unlabelled_flags": sum(1 for n in flagged if n not in labels),
    }


def default_model(model_dir: Path, *, now: datetime, workdir: Path) -> risk.RiskModel:
    """The current risk model in ``model_dir``; trained once from the fixed default run if absent."""
    try:
        return risk.load(model_dir)
    except NotFound:
        pass
    data = workdir / "default-training"
    cfg = risk.DEFAULT_TRAINING
    generate(cfg["subscribers"], cfg["days"], cfg["seed"], data)
    model, _ = train_from_dir(data, model_dir, now=now)
    return model


def train_from_dir(data_dir: Path, model_dir: Path, *, now: datetime) -> tuple[risk.RiskModel, Path]:
    """Train on ``data_dir`` (calls + labels.csv), save a new version into ``model_dir``."""
    calls = _calls_path(data_dir)
    labels = read_labels(data_dir / "labels.csv")
    result = detect(calls)
    _, files = input_files(calls)
    digest = risk.file_sha256([*files, data_dir / "labels.csv"])
    model = risk.train(result.features, labels, data_hash=digest, created=now)
    model.metadata["training_data"] = str(data_dir)
    target = risk.save(model, model_dir)
    return model, target


def _calls_path(data_dir: Path) -> Path:
    if not data_dir.is_dir():
        raise InvalidInput(f"{data_dir} is not a directory", field="dir")
    calls = data_dir / "calls.parquet"
    return calls if calls.exists() else data_dir


def evaluate(
    data_dir: Path,
    *,
    backend: str = "duckdb",
    thresholds: Thresholds | None = None,
    model: risk.RiskModel | None = None,
) -> dict[str, Any]:
    """Detect on ``data_dir`` and compare with its ``labels.csv``."""
    started = time.perf_counter()
    labels = read_labels(data_dir / "labels.csv")
    allow_path = data_dir / "allowlist.csv"
    allow = read_allow_list(allow_path if allow_path.is_file() else None)
    th = thresholds or Thresholds()
    result = detect(_calls_path(data_dir), backend=backend, thresholds=th, allow_list=allow, risk_model=model)
    report = score(result, labels)
    report.update(
        rows=result.rows,
        rejected_rows=result.rejected,
        backend=backend,
        risk_model=model.metadata.get("version") if model else None,
        timing={**result.timing, "evaluate_total": round(time.perf_counter() - started, 3)},
    )
    return report
