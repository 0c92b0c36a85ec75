"""Reads of the caller-number ledger: listings, CSV export and the in-memory snapshot."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from quietline.callerauth.model import (
    LedgerEntry,
    LedgerSnapshot,
    Line,
    LineKind,
    Purpose,
    Undertaking,
)
from quietline.callerauth.orm import CallerNumberRow, LineRow
from quietline.platform import changefeed

#: The change-feed topic of ledger changes (lines and numbers).
TOPIC = "callerauth.ledger"

#: Column order of the ledger CSV (import and export use the same file).
CSV_COLUMNS = (
    "line",
    "enterprise",
    "line_name",
    "line_kind",
    "number",
    "purpose",
    "direction",
    "undertaking_ref",
    "undertaking_signed_on",
    "undertaking_signatory",
    "carrier",
)


@dataclass(frozen=True, slots=True)
class LedgerRow:
    line: Line
    entry: LedgerEntry

    def as_dict(self) -> dict[str, Any]:
        u = self.entry.undertaking
        return {
            "line": self.line.code,
            "enterprise": self.line.enterprise,
            "line_name": self.line.name,
            "line_kind": self.line.kind.value,
            "number": self.entry.number,
            "purpose": self.entry.purpose.value,
            "direction": self.entry.direction.value,
            "undertaking_ref": u.reference if u else "",
            "undertaking_signed_on": u.signed_on.isoformat() if u else "",
            "undertaking_signatory": u.signatory if u else "",
            "carrier": self.line.carrier or "",
        }


def _line(row: LineRow) -> Line:
    return Line(row.code, row.enterprise, row.name, LineKind.parse(row.kind), row.carrier)


def _entry(line_code: str, row: CallerNumberRow) -> LedgerEntry:
    undertaking = None
    if row.undertaking_ref and row.undertaking_signed_on and row.undertaking_signatory:
        undertaking = Undertaking(row.undertaking_ref, row.undertaking_signed_on, row.undertaking_signatory)
    return LedgerEntry(line_code, row.number, Purpose.parse(row.purpose), undertaking)


def ledger(session: Session, *, line: str | None = None, enterprise: str | None = None) -> list[LedgerRow]:
    """Ledger rows ordered by line and number, optionally for one line or one enterprise."""
    query = select(LineRow, CallerNumberRow).join(CallerNumberRow, CallerNumberRow.line_id == LineRow.id)
    if line is not None:
        query = query.where(LineRow.code == line)
    if enterprise is not None:
        query = query.where(LineRow.enterprise == enterprise)
    rows = session.execute(query.order_by(LineRow.code, CallerNumberRow.number)).all()
    return [LedgerRow(_line(lr), _entry(lr.code, nr)) for lr, nr in rows]


def lines(session: Session) -> list[Line]:
    return [_line(r) for r in session.scalars(select(LineRow).order_by(LineRow.code))]


def lines_presenting(session: Session, number: str) -> list[LedgerRow]:
    """Every line that may present ``number`` (canonical digits): a number on two enterprises'
    lines is worth a look, since numbers are not rented or transferred."""
    query = (
        select(LineRow, CallerNumberRow)
        .join(CallerNumberRow, CallerNumberRow.line_id == LineRow.id)
        .where(CallerNumberRow.number == number)
        .order_by(LineRow.code)
    )
    return [LedgerRow(_line(lr), _entry(lr.code, nr)) for lr, nr in session.execute(query).all()]


def snapshot(session: Session) -> LedgerSnapshot:
    """The whole ledger in memory, for attestation and presentation checks on the per-call path."""
    rows = ledger(session)
    return LedgerSnapshot.build(lines(session), (r.entry for r in rows))


def export_csv(session: Session, *, enterprise: str | None = None) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in ledger(session, enterprise=enterprise):
        writer.writerow(row.as_dict())
    return out.getvalue()


def follow(session: Session, snapshot: LedgerSnapshot, cursor: int, limit: int = 10_000) -> int:
    """Patch ``snapshot`` with the ledger changes committed after ``cursor``; returns the new
    cursor (start from ``changefeed.head`` taken before ``snapshot`` was built)."""
    for change in changefeed.read_after(session, cursor, limit=limit, topics=(TOPIC,)):
        snapshot.apply(change.payload)
        cursor = change.id
    return cursor
