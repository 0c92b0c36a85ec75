"""CSV and XLSX export of any regulator list (issue 5, "Oversee"): open cases, breaches, repeat
offenders, cases by carrier and state, time per stage.

CSV is UTF-8 with a byte-order mark so that Excel on a Chinese Windows opens the Chinese labels
correctly; XLSX is written with openpyxl. Cells that a spreadsheet would run as a formula (starting
with ``= + - @``, except plain numbers such as an E.164 ``+86…``) get an apostrophe in front (OWASP
"CSV Injection"), since reported SMS texts and descriptions come from the public.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from quietline.complaints import queries
from quietline.platform.errors import InvalidInput

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


#: Plain numbers (an E.164 "+86…", a negative count) are data, not formulas: left as they are.
PLAIN_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")


def _safe(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_START) and not PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    columns: list[str] = []
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    return columns


def to_csv(rows: list[dict[str, Any]]) -> bytes:
    buffer = io.StringIO()
    columns = _columns(rows)
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _safe(v) for k, v in row.items()})
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def to_xlsx(rows: list[dict[str, Any]], title: str) -> bytes:
    from openpyxl import Workbook

    book = Workbook(write_only=True)
    sheet = book.create_sheet(title[:31])  # Excel limits sheet names to 31 characters
    columns = _columns(rows)
    sheet.append(columns)
    for row in rows:
        sheet.append([_safe(row.get(c)) for c in columns])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def list_rows(session: Session, name: str, now: datetime) -> list[dict[str, Any]]:
    """The rows of one named list."""
    makers: dict[str, Callable[[], list[dict[str, Any]]]] = {
        "open": lambda: queries.open_cases(session),
        "breaches": lambda: [b.as_dict() for b in queries.breaches(session, now, include_warnings=True)],
        "offenders": lambda: queries.repeat_offenders(session),
        "stats": lambda: queries.counts_by_company_and_state(session),
        "stage_times": lambda: queries.stage_times(session),
    }
    if name not in makers:
        raise InvalidInput(f"unknown list {name!r}; one of {', '.join(makers)}", field="list")
    return makers[name]()


def render(rows: list[dict[str, Any]], fmt: str, title: str) -> tuple[bytes, str]:
    """(bytes, media type) of ``rows`` as CSV or XLSX."""
    if fmt == "csv":
        return to_csv(rows), "text/csv; charset=utf-8"
    if fmt == "xlsx":
        return to_xlsx(rows, title), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    raise InvalidInput("csv or xlsx", field="format")
