"""Import of past reports from a CSV file (operators migrating from email and spreadsheets).

Columns: ``reporter,reported,channel,at`` and optionally ``received_at,duration,form,category,nature,
text,description``. Times are ISO 8601; one without an offset is Beijing time (UTC+8), the time the
centre works in. Each row is filed on its own (``actions.file_report``: validated, merged, routed,
audited), so a bad row never takes good ones with it; bad rows come back with their line and field.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from quietline.complaints import actions
from quietline.complaints.actions import Filing
from quietline.complaints.routing import Resolver
from quietline.platform.actor import Actor
from quietline.platform.errors import InvalidInput, QuietlineError
from quietline.platform.runtime import Runtime
from quietline.platform.workdays import CHINA_TZ

REQUIRED = ("reporter", "reported", "channel", "at")
MAX_ROWS = 100_000


def parse_time(value: str, field_name: str) -> datetime:
    """ISO 8601; without an offset the time is Beijing time."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInput(f"{value!r} is not an ISO 8601 date or time", field=field_name) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=CHINA_TZ)


def _duration(value: str | None) -> int | None:
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidInput(f"{value!r} is not a whole number of seconds", field="duration") from None


@dataclass
class ImportResult:
    ids: list[int] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"filed": len(self.ids), "ids": self.ids, "errors": self.errors}


def import_rows(
    rt: Runtime, actor: Actor, lines: Iterable[str], *, resolver: Resolver | None = None
) -> ImportResult:
    reader = csv.DictReader(lines)
    missing = set(REQUIRED) - set(reader.fieldnames or [])
    if missing:
        raise InvalidInput(f"missing columns: {', '.join(sorted(missing))}", field="header")
    result = ImportResult()
    for line, row in enumerate(reader, start=2):
        if line - 1 > MAX_ROWS:
            raise InvalidInput(f"at most {MAX_ROWS} rows per file", field="rows")
        try:
            filing = Filing(
                reporter=row["reporter"] or "",
                reported=row["reported"] or "",
                channel=row["channel"] or "",
                at=parse_time(row["at"] or "", "at"),
                received_at=parse_time(row["received_at"], "received_at") if row.get("received_at") else None,
                duration_seconds=_duration(row.get("duration")),
                form=row.get("form") or None,
                category=row.get("category") or None,
                nature=row.get("nature") or None,
                text=row.get("text") or None,
                description=row.get("description") or None,
                source="import",
            )
            result.ids.append(actions.file_report(rt, actor, filing, resolver=resolver).id)
        except (QuietlineError, ValueError) as exc:  # VocabularyError is a ValueError naming its field
            result.errors.append({"line": line, "field": getattr(exc, "field", None), "message": str(exc)})
    return result
