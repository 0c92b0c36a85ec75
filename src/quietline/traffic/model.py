"""The learned risk score (pattern ``fraud_risk``): gradient boosting on per-caller features.

Fraud numbers differ from normal ones mostly by low reciprocity, calls per distinct callee, few
active days and device churn (REFERENCE.md "Abnormal traffic", the Sichuan operator study), a mix no
single threshold captures; a scikit-learn ``HistGradientBoostingClassifier`` learns it from the
generator's labelled callers. Every saved model is versioned: ``DIR/<version>/model.joblib`` with
``metadata.json`` (feature list, version, training-data hash, held-out metrics, the joblib file's
SHA-256) and ``DIR/CURRENT`` naming the version in use. A model file is loaded only when its
SHA-256 matches the metadata, since joblib files are pickles and must not be swapped underneath.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from quietline.platform.errors import InvalidInput, NotFound
from quietline.traffic.features import MODEL_FEATURES

POSITIVE = "fraud_risk"
#: Share of callers held out (chosen by a hash of the number, so the split is stable) for the report.
HOLDOUT_SHARE = 0.3
#: Training weight of legitimate callers other than ordinary subscribers (see ``train``).
HARD_NEGATIVE_WEIGHT = 50.0
#: The generator run the default model is trained on when none has been trained yet: fixed, so every
#: install trains the same model, and different from the seeds the checks evaluate on.
DEFAULT_TRAINING = {"subscribers": 30_000, "days": 14, "seed": 7_000_001}


def feature_matrix(rows: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """The model's feature matrix (rows in order) and the numbers they belong to."""
    x = np.array([[float(r[f] if r[f] is not None else 0.0) for f in MODEL_FEATURES] for r in rows])
    numbers = np.array([int(r["number"]) for r in rows], dtype=np.int64)
    return x.reshape(len(rows), len(MODEL_FEATURES)), numbers


def holdout_mask(numbers: np.ndarray) -> np.ndarray:
    """Stable caller-level split: a multiplicative hash of the number, not the row order."""
    h = (numbers.astype(np.uint64) * np.uint64(2654435761)) % np.uint64(1000)
    return h < np.uint64(int(HOLDOUT_SHARE * 1000))


@dataclass
class RiskModel:
    estimator: Any
    metadata: dict[str, Any]

    @property
    def threshold(self) -> float:
        return float(self.metadata.get("threshold", 0.5))

    def score_table(self, table: Any) -> dict[int, float]:
        """Risk score per number for a pyarrow feature table (column-wise, no per-row Python)."""
        if table.num_rows == 0:
            return {}
        x = np.column_stack(
            [table.column(f).to_numpy(zero_copy_only=False).astype(float) for f in MODEL_FEATURES]
        )
        x = np.nan_to_num(x, nan=0.0)
        numbers = table.column("number").to_numpy(zero_copy_only=False).astype(np.int64)
        proba = self.estimator.predict_proba(x)[:, 1]
        return dict(zip(numbers.tolist(), proba.tolist(), strict=True))

    def score_rows(self, rows: list[dict[str, Any]]) -> dict[int, float]:
        """Risk score in [0, 1] per number."""
        if not rows:
            return {}
        x, numbers = feature_matrix(rows)
        proba = self.estimator.predict_proba(x)[:, 1]
        return {int(n): float(p) for n, p in zip(numbers.tolist(), proba.tolist(), strict=True)}


def train(
    rows: list[dict[str, Any]],
    labels: dict[int, str],
    *,
    data_hash: str,
    created: datetime,
    seed: int = 0,
    max_iter: int = 200,
) -> RiskModel:
    """Fit on the training callers, report ROC AUC and precision/recall on the held-out ones."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import average_precision_score, roc_auc_score

    # In number order: the engines return feature rows in no particular order, and the booster's
    # early-stopping split follows row order, so an unsorted input gave a different model each run.
    known = sorted((r for r in rows if int(r["number"]) in labels), key=lambda r: int(r["number"]))
    if not known:
        raise InvalidInput("no caller in the call records has a label", field="labels")
    x, numbers = feature_matrix(known)
    y = np.array([labels[int(n)] == POSITIVE for n in numbers.tolist()], dtype=int)
    test = holdout_mask(numbers)
    if y[~test].sum() < 3 or y[test].sum() < 2:
        raise InvalidInput(
            f"too few {POSITIVE} callers to train and evaluate ({int(y.sum())}); generate more subscribers",
            field="labels",
        )
    est = HistGradientBoostingClassifier(
        max_iter=max_iter, learning_rate=0.08, class_weight="balanced", random_state=seed
    )
    # Legitimate callers that are not ordinary subscribers (businesses, riders, drivers, call
    # centres, roamers, foreign callers) are few but are exactly the classic false positives
    # (REFERENCE.md "Abnormal traffic"); weighting them up teaches the model where they lie.
    kinds = np.array([labels[int(n)] for n in numbers.tolist()])
    weight = np.where((y == 0) & (kinds != "normal"), HARD_NEGATIVE_WEIGHT, 1.0)
    est.fit(x[~test], y[~test], sample_weight=weight[~test])
    p_test = est.predict_proba(x[test])[:, 1]
    threshold = 0.5
    flagged = p_test >= threshold
    tp = int((flagged & (y[test] == 1)).sum())
    metrics = {
        "roc_auc": round(float(roc_auc_score(y[test], p_test)), 4),
        "average_precision": round(float(average_precision_score(y[test], p_test)), 4),
        "precision_at_threshold": round(tp / max(1, int(flagged.sum())), 4),
        "recall_at_threshold": round(tp / max(1, int(y[test].sum())), 4),
        "train_callers": int((~test).sum()),
        "test_callers": int(test.sum()),
        "train_positives": int(y[~test].sum()),
        "test_positives": int(y[test].sum()),
    }
    import sklearn

    metadata = {
        "kind": "quietline.traffic.risk",
        "pattern": POSITIVE,
        "algorithm": "sklearn.ensemble.HistGradientBoostingClassifier",
        "sklearn_version": sklearn.__version__,
        "features": list(MODEL_FEATURES),
        "created": created.isoformat(),
        "training_data_sha256": data_hash,
        "threshold": threshold,
        "metrics": metrics,
        "version": f"{created:%Y%m%dT%H%M%S}-{data_hash[:8]}",
    }
    return RiskModel(est, metadata)


def save(model: RiskModel, directory: Path) -> Path:
    """Write ``directory/<version>/`` and point ``directory/CURRENT`` at it."""
    import joblib

    version = str(model.metadata["version"])
    target = directory / version
    target.mkdir(parents=True, exist_ok=True)
    joblib.dump(model.estimator, target / "model.joblib")
    digest = hashlib.sha256((target / "model.joblib").read_bytes()).hexdigest()
    metadata = {**model.metadata, "model_sha256": digest}
    (target / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    (directory / "CURRENT").write_text(version + "\n", encoding="utf-8")
    model.metadata = metadata
    return target


def load(directory: Path) -> RiskModel:
    """Load the current version, refusing a model file whose hash does not match its metadata."""
    import joblib

    current = directory / "CURRENT"
    if not current.is_file():
        raise NotFound(f"no trained risk model in {directory}", field="model")
    version = current.read_text(encoding="utf-8").strip()
    target = directory / version
    try:
        metadata = json.loads((target / "metadata.json").read_text(encoding="utf-8"))
        blob = (target / "model.joblib").read_bytes()
    except (OSError, ValueError) as exc:
        raise InvalidInput(
            f"risk model {version} in {directory} is unreadable: {exc}", field="model"
        ) from None
    if hashlib.sha256(blob).hexdigest() != metadata.get("model_sha256"):
        raise InvalidInput(f"risk model {version}: model.joblib does not match its metadata", field="model")
    if metadata.get("features") != list(MODEL_FEATURES):
        raise InvalidInput(f"risk model {version} was trained on other features; retrain it", field="model")
    return RiskModel(joblib.load(target / "model.joblib"), metadata)


def file_sha256(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        with p.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()
