"""What a stored run keeps for the carrier's report page: call volume over time, the top callers, the
findings per pattern and, when the records came with the generator's labels, the per-pattern
confusion (true and false positives, misses). Computed once when the run is stored, so the page
never re-reads millions of call records."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from quietline.traffic.detect import DetectionResult
from quietline.traffic.evaluation import score
from quietline.traffic.generator import ABUSE_PATTERNS

#: How many of the busiest callers the report lists.
TOP_CALLERS = 20


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(float(ts), UTC).isoformat()


def top_callers(result: DetectionResult, limit: int = TOP_CALLERS) -> list[dict[str, Any]]:
    """The callers with the most calls, with what was found about them (if anything)."""
    table = result.feature_table
    if table.num_rows == 0:
        return []
    import pyarrow.compute as pc

    order = pc.sort_indices(table, sort_keys=[("calls", "descending"), ("number", "ascending")])
    top = table.take(order[:limit]).select(
        ["number", "calls", "distinct_callees", "answer_rate", "short_ring_ratio", "in_calls"]
    )
    found = {f.number: f for f in result.findings}
    out: list[dict[str, Any]] = []
    for row in top.to_pylist():
        number = f"+{int(row['number'])}"
        finding = found.get(number)
        out.append(
            {
                "number": number,
                "calls": int(row["calls"]),
                "distinct_callees": int(row["distinct_callees"]),
                "in_calls": int(row["in_calls"]),
                "answer_rate": round(float(row["answer_rate"]), 4),
                "short_ring_ratio": round(float(row["short_ring_ratio"]), 4),
                "pattern": finding.pattern if finding else None,
                "allow_listed": bool(finding and finding.allow_listed),
            }
        )
    return out


def confusion(result: DetectionResult, labels: dict[int, str]) -> dict[str, dict[str, Any]]:
    """Per rule and risk pattern: true positives, false positives, misses, precision and recall."""
    report = score(result, labels)
    return {
        p: {
            "true_positives": m["true_positives"],
            "false_positives": m["false_positives"],
            "false_negatives": m["false_negatives"],
            "precision": m["precision"],
            "recall": m["recall"],
        }
        for p, m in report["patterns"].items()
    } | {
        "legit": {
            "high_volume_callers": report["legit_high_volume_callers"],
            "false_flag_rate": report["legit_false_flag_rate"],
        }
    }


def summary(result: DetectionResult, labels: dict[int, str] | None = None) -> dict[str, Any]:
    """The JSON a stored batch run keeps (see the module docstring)."""
    by_pattern = dict.fromkeys(ABUSE_PATTERNS, 0)
    for f in result.findings:
        by_pattern[f.pattern] = by_pattern.get(f.pattern, 0) + 1
    return {
        "data_start": _iso(result.data_start),
        "data_end": _iso(result.data_end),
        "callers": result.callers,
        "volume": result.volume,
        "top_callers": top_callers(result),
        "by_pattern": by_pattern,
        "confusion": confusion(result, labels) if labels else None,
        "timing_seconds": result.timing,
    }
