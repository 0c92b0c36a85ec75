"""Without a trained model, ``detect`` trains the default one once (fixed generator run) and reuses it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

CLI = str(Path(sys.executable).parent / "quietline")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_default_model_is_trained_once_and_versioned(tmp_path: Path) -> None:
    gen = subprocess.run(
        [CLI, "traffic", "generate", "--subscribers", "2000", "--days", "3", "--seed", "5", "--out", "data"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert gen.returncode == 0, gen.stderr
    first = subprocess.run(
        [CLI, "traffic", "detect", "data", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert first.returncode == 0, first.stderr
    assert "training the default one" in first.stderr
    model_dir = tmp_path / "var" / "traffic-model"
    version = (model_dir / "CURRENT").read_text().strip()
    meta = json.loads((model_dir / version / "metadata.json").read_text())
    assert meta["metrics"]["roc_auc"] >= 0.95
    assert meta["training_data"].endswith("default-training")
    second = subprocess.run(
        [CLI, "traffic", "detect", "data", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert second.returncode == 0, second.stderr
    assert "training" not in second.stderr
    assert json.loads(second.stdout) == json.loads(first.stdout)
