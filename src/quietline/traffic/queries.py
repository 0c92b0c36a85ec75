"""Reads of stored traffic runs and findings. Every read is scoped to one carrier: a carrier's staff
see the runs over its own call records and nothing of other carriers' (DESIGN.md privacy rules)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from quietline.traffic.orm import FindingRow, RunRow


@dataclass(frozen=True, slots=True)
class RunView:
    run_id: str
    kind: str
    carrier: str
    source: str
    backend: str
    rows: int
    rejected: dict[str, int]
    summary: dict[str, Any]
    created_at: datetime
    findings: int

    def as_dict(self, *, with_summary: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "run_id": self.run_id,
            "kind": self.kind,
            "carrier": self.carrier,
            "source": self.source,
            "backend": self.backend,
            "rows": self.rows,
            "rejected_rows": self.rejected,
            "findings": self.findings,
            "created_at": self.created_at.isoformat(),
        }
        if with_summary:
            out["summary"] = self.summary
        return out


@dataclass(frozen=True, slots=True)
class FindingView:
    id: int
    run_id: str
    number: str
    pattern: str
    score: float
    action: str
    allow_listed: bool
    candidate: bool
    in_progress: bool
    evidence: dict[str, Any]
    also_matched: list[str]
    created_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "run_id": self.run_id,
            "number": self.number,
            "pattern": self.pattern,
            "score": self.score,
            "action": self.action,
            "allow_listed": self.allow_listed,
            "candidate": self.candidate,
            "in_progress": self.in_progress,
            "evidence": self.evidence,
            "also_matched": self.also_matched,
            "created_at": self.created_at.isoformat(),
        }


def run_view(row: RunRow, *, findings: int) -> RunView:
    return RunView(
        row.run_id,
        row.kind,
        row.carrier,
        row.source,
        row.backend,
        int(row.rows),
        dict(row.rejected or {}),
        dict(row.summary or {}),
        row.created_at,
        findings,
    )


def finding_view(row: FindingRow, run_id: str) -> FindingView:
    return FindingView(
        int(row.id),
        run_id,
        row.number,
        row.pattern,
        float(row.score),
        row.action,
        bool(row.allow_listed),
        bool(row.candidate),
        bool(row.in_progress),
        dict(row.evidence or {}),
        list(row.also_matched or []),
        row.created_at,
    )


def runs(session: Session, carrier: str, *, kind: str | None = None, limit: int = 50) -> list[RunView]:
    """The carrier's runs, newest first, each with its number of findings."""
    counts = select(FindingRow.run_pk, func.count().label("n")).group_by(FindingRow.run_pk).subquery()
    query = (
        select(RunRow, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.run_pk == RunRow.id)
        .where(RunRow.carrier == carrier)
        .order_by(RunRow.created_at.desc(), RunRow.id.desc())
        .limit(limit)
    )
    if kind is not None:
        query = query.where(RunRow.kind == kind)
    return [run_view(row, findings=int(n)) for row, n in session.execute(query)]


def run(session: Session, carrier: str, run_id: str) -> RunView | None:
    row = session.scalar(select(RunRow).where(RunRow.run_id == run_id, RunRow.carrier == carrier))
    if row is None:
        return None
    n = session.scalar(select(func.count()).where(FindingRow.run_pk == row.id)) or 0
    return run_view(row, findings=int(n))


def latest_run(session: Session, carrier: str, kind: str = "batch") -> RunView | None:
    found = runs(session, carrier, kind=kind, limit=1)
    return found[0] if found else None


def findings(
    session: Session,
    carrier: str,
    *,
    run_id: str | None = None,
    pattern: str | None = None,
    number: str | None = None,
    in_progress: bool | None = None,
    since: datetime | None = None,
    limit: int = 200,
    offset: int = 0,
) -> list[FindingView]:
    """The carrier's stored findings, newest first, optionally of one run, pattern or number."""
    query = (
        select(FindingRow, RunRow.run_id)
        .join(RunRow, RunRow.id == FindingRow.run_pk)
        .where(RunRow.carrier == carrier)
        .order_by(FindingRow.id.desc())
        .limit(limit)
        .offset(offset)
    )
    if run_id is not None:
        query = query.where(RunRow.run_id == run_id)
    if pattern is not None:
        query = query.where(FindingRow.pattern == pattern)
    if number is not None:
        query = query.where(FindingRow.number == number)
    if in_progress is not None:
        query = query.where(FindingRow.in_progress.is_(in_progress))
    if since is not None:
        query = query.where(FindingRow.created_at >= since)
    return [finding_view(row, rid) for row, rid in session.execute(query)]


def alerts(
    session: Session, carrier: str, *, since: datetime | None = None, limit: int = 200
) -> list[FindingView]:
    """The carrier's stored streaming bombing alerts (in-progress bombing findings of stream runs)."""
    query = (
        select(FindingRow, RunRow.run_id)
        .join(RunRow, RunRow.id == FindingRow.run_pk)
        .where(RunRow.carrier == carrier, RunRow.kind == "stream", FindingRow.pattern == "bombing")
        .order_by(FindingRow.id.desc())
        .limit(limit)
    )
    if since is not None:
        query = query.where(FindingRow.created_at >= since)
    return [finding_view(row, rid) for row, rid in session.execute(query)]
