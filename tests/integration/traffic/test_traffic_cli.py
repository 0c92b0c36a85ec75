"""The ``quietline traffic`` contract end to end through the real CLI: generate, train, detect,
evaluate (on a seed never used in tuning), watch, and the one-line error contract."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

CLI = str(Path(sys.executable).parent / "quietline")
RULE_PATTERNS = ("bombing", "one_ring", "bulk_dialer", "spoofed")


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, "traffic", *args], capture_output=True, text=True, timeout=600, cwd=cwd, check=False
    )


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("model")
    gen = run(
        "generate", "--subscribers", "10000", "--days", "14", "--seed", "99", "--out", str(base / "train")
    )
    assert gen.returncode == 0, gen.stderr
    trained = run("train", str(base / "train"), "--model", str(base / "model"), "--json")
    assert trained.returncode == 0, trained.stderr
    meta = json.loads(trained.stdout)
    assert meta["metrics"]["roc_auc"] >= 0.95
    assert (base / "model" / "CURRENT").read_text().strip() == meta["version"]
    return base / "model"


@pytest.fixture(scope="module")
def unseen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("unseen") / "data"
    gen = run(
        "generate", "--subscribers", "15000", "--days", "7", "--seed", "31337", "--out", str(out), "--json"
    )
    assert gen.returncode == 0, gen.stderr
    assert json.loads(gen.stdout)["calls"] > 100_000
    return out


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("small") / "data"
    gen = run("generate", "--subscribers", "3000", "--days", "4", "--seed", "31338", "--out", str(out))
    assert gen.returncode == 0, gen.stderr
    return out


@pytest.mark.slow
def test_evaluate_meets_the_figures_on_an_unseen_seed(unseen: Path, model_dir: Path) -> None:
    res = run("evaluate", str(unseen), "--model", str(model_dir), "--json")
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    for p in RULE_PATTERNS:
        assert report[p]["precision"] >= 0.99, (p, report[p])
        assert report[p]["recall"] >= 0.95, (p, report[p])
        assert report["patterns"][p] == report[p]
    assert report["fraud_risk"]["recall"] >= 0.8
    assert report["fraud_risk"]["precision"] >= 0.8
    assert report["legit_false_flag_rate"] <= 0.001
    assert report["legit_high_volume_callers"] > 10
    assert report["timing"]["total"] > 0
    assert report["rejected_rows"].get("missing_field", 0) >= 0


@pytest.mark.slow
def test_detect_with_the_risk_model_reports_fraud_risk(unseen: Path, model_dir: Path) -> None:
    res = run("detect", str(unseen / "calls.parquet"), "--model", str(model_dir), "--json")
    assert res.returncode == 0, res.stderr
    fraud = [f for f in json.loads(res.stdout) if f["pattern"] == "fraud_risk"]
    assert fraud
    assert all(f["score"] >= 0.5 for f in fraud)
    assert all({"reciprocity", "imei_count", "active_days"} <= set(f["evidence"]) for f in fraud)


def test_detect_json_findings_with_evidence_and_allow_list(small: Path) -> None:
    unseen = small
    res = run("detect", str(unseen / "calls.parquet"), "--no-model", "--json")
    assert res.returncode == 0, res.stderr
    findings = json.loads(res.stdout)
    assert {f["pattern"] for f in findings} >= set(RULE_PATTERNS)
    for f in findings:
        assert set(f) >= {"number", "pattern", "score", "evidence"}
        assert 0 <= f["score"] <= 1
        assert f["evidence"]["calls"] > 0
    bombing = next(f for f in findings if f["pattern"] == "bombing")
    assert bombing["evidence"]["max_calls_to_one_callee_in_10_min"] >= 20
    assert bombing["evidence"]["victim"].startswith("+86")
    assert "rows read" in res.stderr
    # An allow-listed number is never auto-blocked, even when a rule fires.
    allow = unseen.parent / "allow.csv"
    allow.write_text("number\n" + bombing["number"] + "\n")
    res2 = run("detect", str(unseen / "calls.parquet"), "--no-model", "--allow-list", str(allow), "--json")
    same = next(f for f in json.loads(res2.stdout) if f["number"] == bombing["number"])
    assert same["allow_listed"] is True
    assert same["action"] == "review"


def test_detect_reads_a_csv_directory_and_reports_bad_rows(small: Path, tmp_path: Path) -> None:
    table = pq.read_table(small / "calls.parquet").slice(0, 30_000)
    d = tmp_path / "csvs"
    d.mkdir()
    pacsv.write_csv(table.slice(0, 15_000), d / "a.csv")
    pacsv.write_csv(table.slice(15_000), d / "b.csv")
    with (d / "b.csv").open("a") as fh:
        fh.write('"+8613800138000",,"2026-11-02 10:00:00+08:00",2,0,,,,\n')
        fh.write('"hello","+8613800138000","2026-11-02 10:00:00+08:00",2,0,,,,\n')
    res = run("detect", str(d), "--no-model", "--json")
    assert res.returncode == 0, res.stderr
    assert isinstance(json.loads(res.stdout), list)
    assert "missing_field=" in res.stderr
    assert "invalid_number=1" in res.stderr
    assert "30,002 rows read" in res.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("detect", "/nonexistent/calls.parquet", "--no-model"), "does not exist"),
        (("detect", "{data}", "--backend", "oracle", "--no-model"), "unknown backend"),
        (("detect", "{data}", "--threshold", "bogus=1", "--no-model"), "unknown threshold"),
        (("detect", "{data}", "--threads", "0", "--no-model"), "threads must be at least 1"),
        (("generate", "--subscribers", "5", "--days", "1", "--seed", "1", "--out", "{tmp}"), "subscribers"),
        (("evaluate", "{tmp}", "--no-model"), "labels"),
    ],
)
def test_user_errors_exit_2_with_one_line(
    args: tuple[str, ...], needle: str, unseen: Path, tmp_path: Path
) -> None:
    res = run(*(a.format(data=unseen / "calls.parquet", tmp=tmp_path) for a in args))
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert needle in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert "Traceback" not in res.stderr


def test_watch_alerts_on_bombing_within_a_minute(small: Path, tmp_path: Path) -> None:
    with (small / "labels.csv").open() as fh:
        bombers = {r["number"] for r in csv.DictReader(fh) if r["pattern"] == "bombing"}
    import duckdb

    path = tmp_path / "tail.csv"
    nationals = ", ".join(f"'{b[3:]}'" for b in bombers)
    # The bombers' calls among a sample of everyone else's, in time order, as a switch emits them.
    duckdb.sql(
        f"""COPY (SELECT caller, callee, start_time, ring_seconds, duration_seconds
                  FROM '{small / "calls.parquet"}'
                  WHERE right(regexp_replace(caller, '[^0-9]', '', 'g'), 11) IN ({nationals})
                     OR hash(caller) % 10 = 0
                  ORDER BY start_time) TO '{path}' (HEADER)"""
    )
    res = run("watch", str(path), "--json")
    assert res.returncode == 0, res.stderr
    alerts = [json.loads(line) for line in res.stdout.splitlines()]
    assert alerts
    assert all(a["caller"] in bombers for a in alerts)
    assert all(a["latency_seconds"] <= 60 for a in alerts)


def test_detect_store_keeps_the_run_and_announces_candidates(
    small: Path, sqlite_url: str, tmp_path: Path
) -> None:
    """``detect --store`` leaves the JSON contract as it is, and the stored run holds the findings,
    the report's volume series, top callers and (labels beside the records) the confusion."""
    import os

    from sqlalchemy import create_engine, text

    env = {**os.environ, "QUIETLINE_DATABASE_URL": sqlite_url, "QUIETLINE_ENV": "test"}
    args = [CLI, "traffic", "detect", str(small), "--no-model", "--json", "--store"]
    missing = subprocess.run(args, capture_output=True, text=True, timeout=600, env=env, check=False)
    assert missing.returncode == 2
    assert "--carrier" in missing.stderr
    res = subprocess.run(
        [*args, "--carrier", "中国移动"], capture_output=True, text=True, timeout=600, env=env, check=False
    )
    assert res.returncode == 0, res.stderr
    findings = json.loads(res.stdout)
    assert {f["pattern"] for f in findings} >= set(RULE_PATTERNS)
    assert "stored as run tr-" in res.stderr
    engine = create_engine(sqlite_url)
    with engine.connect() as conn:
        run_row = conn.execute(text("SELECT id, carrier, summary, rows, rejected FROM traffic_runs")).one()
        stored = conn.execute(
            text("SELECT count(*) FROM traffic_findings WHERE run_pk = :r"), {"r": run_row[0]}
        ).scalar()
        feed = conn.execute(text("SELECT count(*) FROM change_feed WHERE topic = 'traffic.finding'")).scalar()
    engine.dispose()
    assert run_row[1] == "china_mobile"
    assert stored == len(findings)
    assert feed == sum(1 for f in findings if not f["allow_listed"])
    summary = json.loads(run_row[2]) if isinstance(run_row[2], str) else run_row[2]
    rejected = json.loads(run_row[4]) if isinstance(run_row[4], str) else run_row[4]
    assert sum(p["calls"] for p in summary["volume"]) == run_row[3] - sum(rejected.values()) > 50_000
    assert sum(p["flagged_calls"] for p in summary["volume"]) > 0
    assert len(summary["top_callers"]) == 20
    assert summary["confusion"]["bombing"]["true_positives"] >= 1
    assert summary["by_pattern"]["bombing"] == sum(1 for f in findings if f["pattern"] == "bombing")
