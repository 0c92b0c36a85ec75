"""The learned risk score: training report, versioned save/load, tamper refusal."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from quietline.platform.errors import InvalidInput, NotFound
from quietline.traffic import model as risk
from quietline.traffic.features import MODEL_FEATURES


def _rows(n: int, fraud: int, seed: int) -> tuple[list[dict[str, float]], dict[int, str]]:
    rng = np.random.default_rng(seed)
    rows, labels = [], {}
    for i in range(n):
        bad = i < fraud
        row = {f: float(rng.random()) for f in MODEL_FEATURES}
        # Fraud: low reciprocity, few active days, several handsets (the Sichuan study's signals).
        row["reciprocity"] = float(rng.uniform(0, 0.1) if bad else rng.uniform(0.3, 1))
        row["active_days"] = float(rng.integers(1, 5) if bad else rng.integers(5, 30))
        row["imei_count"] = float(rng.integers(2, 5) if bad else 1)
        row["number"] = 8613000000000 + i
        rows.append(row)
        labels[8613000000000 + i] = "fraud_risk" if bad else "normal"
    return rows, labels


NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def test_train_reports_held_out_auc_and_round_trips(tmp_path: Path) -> None:
    rows, labels = _rows(3000, 80, 1)
    m = risk.train(rows, labels, data_hash="ab" * 32, created=NOW, max_iter=40)
    assert m.metadata["metrics"]["roc_auc"] >= 0.95
    assert m.metadata["metrics"]["test_positives"] > 0
    assert m.metadata["features"] == list(MODEL_FEATURES)
    target = risk.save(m, tmp_path)
    meta = json.loads((target / "metadata.json").read_text())
    assert meta["version"] == m.metadata["version"]
    assert meta["training_data_sha256"] == "ab" * 32
    loaded = risk.load(tmp_path)
    probe, _ = _rows(50, 10, 2)
    a, b = m.score_rows(probe), loaded.score_rows(probe)
    assert a == b
    frauds = [a[8613000000000 + i] for i in range(10)]
    normals = [a[8613000000000 + i] for i in range(10, 50)]
    assert min(frauds) > max(normals)


def test_tampered_or_missing_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        risk.load(tmp_path)
    rows, labels = _rows(1000, 40, 3)
    target = risk.save(risk.train(rows, labels, data_hash="cd" * 32, created=NOW, max_iter=40), tmp_path)
    blob = (target / "model.joblib").read_bytes()
    (target / "model.joblib").write_bytes(blob + b"\0")
    with pytest.raises(InvalidInput, match="does not match"):
        risk.load(tmp_path)


def test_too_few_positives_is_a_user_error() -> None:
    rows, labels = _rows(200, 1, 4)
    with pytest.raises(InvalidInput):
        risk.train(rows, labels, data_hash="00" * 32, created=NOW, max_iter=40)


def test_scoring_a_feature_table_matches_scoring_rows() -> None:
    import pyarrow as pa

    rows, labels = _rows(1500, 60, 5)
    m = risk.train(rows, labels, data_hash="ef" * 32, created=NOW, max_iter=40)
    probe, _ = _rows(40, 8, 6)
    by_table = m.score_table(pa.Table.from_pylist(probe))
    by_rows = m.score_rows(probe)
    assert by_table.keys() == by_rows.keys()
    for k, v in by_rows.items():
        assert by_table[k] == pytest.approx(v)
