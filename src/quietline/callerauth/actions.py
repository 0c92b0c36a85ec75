"""The only write path of the caller-number ledger: one transaction per action with its audit rows
and change-feed rows (topic ``callerauth.ledger``, so screening sees a ledger change at once).

Carriers keep the ledger for the enterprises they serve (DESIGN.md party table: carriers
authenticate caller IDs); operators may act for anyone. Everything is audited.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from quietline.accounts.model import parse_uscc
from quietline.callerauth.model import (
    Direction,
    LedgerEntry,
    Line,
    LineKind,
    Purpose,
    Undertaking,
    entry_payload,
    line_payload,
)
from quietline.callerauth.orm import CallerNumberRow, LineRow
from quietline.callerauth.queries import CSV_COLUMNS, TOPIC
from quietline.numbers import parse
from quietline.platform import audit, changefeed
from quietline.platform.actor import Actor
from quietline.platform.errors import InvalidInput, NotFound, PermissionDenied, QuietlineError
from quietline.platform.runtime import Runtime
from quietline.vocabulary import Role, VocabularyError

MAX_IMPORT_ROWS = 100_000


def _require_carrier(actor: Actor) -> None:
    if actor.role not in (Role.CARRIER, Role.OPERATOR):
        raise PermissionDenied("only carriers and operators keep the caller-number ledger")


def _require_line_keeper(actor: Actor, row: LineRow) -> None:
    """A carrier keeps the ledger of the lines it provides; operators may act for anyone."""
    if actor.role is Role.OPERATOR or (actor.role is Role.CARRIER and row.carrier == actor.subject):
        return
    keeper = row.carrier or "the operator"
    raise PermissionDenied(f"line {row.code} is kept by {keeper}", field="line")


def _line_carrier(actor: Actor, carrier: str | None) -> str | None:
    """The carrier a line is registered for: a carrier registers its own lines."""
    wanted = carrier.strip() if carrier and carrier.strip() else None
    if actor.role is Role.CARRIER:
        if wanted is not None and wanted != actor.subject:
            raise PermissionDenied(f"a carrier registers only its own lines, not {wanted}'s", field="carrier")
        return actor.subject
    return wanted


def _text(value: str, field: str, limit: int) -> str:
    text = value.strip()
    if not text:
        raise InvalidInput("is required", field=field)
    if len(text) > limit:
        raise InvalidInput(f"is longer than {limit} characters", field=field)
    return text


def parse_undertaking(
    reference: str | None, signed_on: str | date | None, signatory: str | None
) -> Undertaking | None:
    """All three parts or none: an outbound permission needs the whole 承诺书 record."""
    if reference in (None, "") and signed_on in (None, "") and signatory in (None, ""):
        return None
    if not reference or not signed_on or not signatory:
        raise InvalidInput(
            "an undertaking needs its reference, signing date and signatory", field="undertaking"
        )
    if isinstance(signed_on, date):
        day = signed_on
    else:
        try:
            day = date.fromisoformat(signed_on.strip())
        except ValueError:
            raise InvalidInput(
                f"{signed_on!r} is not a date (YYYY-MM-DD)", field="undertaking_signed_on"
            ) from None
    return Undertaking(
        _text(reference, "undertaking_ref", 120), day, _text(signatory, "undertaking_signatory", 120)
    )


@dataclass(frozen=True, slots=True)
class LineSpec:
    code: str
    enterprise: str
    name: str
    kind: LineKind
    carrier: str | None = None


@dataclass(frozen=True, slots=True)
class NumberSpec:
    line: str
    number: str
    purpose: Purpose
    undertaking: Undertaking | None


def _number_dict(row: CallerNumberRow) -> dict[str, Any]:
    return {
        "number": row.number,
        "purpose": row.purpose,
        "direction": (Direction.OUTBOUND if row.undertaking_ref else Direction.INBOUND).value,
        "undertaking_ref": row.undertaking_ref,
        "undertaking_signed_on": row.undertaking_signed_on.isoformat() if row.undertaking_signed_on else None,
        "undertaking_signatory": row.undertaking_signatory,
    }


def _upsert_line(session: Session, actor: Actor, spec: LineSpec, now: datetime) -> LineRow:
    row = session.scalar(select(LineRow).where(LineRow.code == spec.code))
    before = None
    if row is None:
        row = LineRow(code=spec.code, created_at=now, carrier=_line_carrier(actor, spec.carrier))
        session.add(row)
    else:
        _require_line_keeper(actor, row)
        before = {"enterprise": row.enterprise, "name": row.name, "kind": row.kind}
        if row.enterprise != spec.enterprise:
            # Numbers and lines are not transferred between enterprises (DESIGN.md "Caller numbers").
            raise InvalidInput(
                f"line {spec.code} belongs to {row.enterprise}; lines are not transferred", field="enterprise"
            )
    after: dict[str, str | None] = {"enterprise": spec.enterprise, "name": spec.name, "kind": spec.kind.value}
    if before == after:
        return row
    if before is None:
        after["carrier"] = row.carrier
    row.enterprise, row.name, row.kind, row.updated_at = spec.enterprise, spec.name, spec.kind.value, now
    session.flush()
    line = Line(spec.code, spec.enterprise, spec.name, spec.kind, row.carrier)
    changefeed.emit(session, topic=TOPIC, key=spec.code, payload=line_payload(line), at=now)
    audit.record(
        session,
        actor=actor,
        action="callerauth.line.register" if before is None else "callerauth.line.update",
        subject_type="line",
        subject=spec.code,
        at=now,
        before=before,
        after=after,
    )
    return row


def _upsert_number(session: Session, actor: Actor, line: LineRow, spec: NumberSpec, now: datetime) -> bool:
    row = session.scalar(
        select(CallerNumberRow).where(
            CallerNumberRow.line_id == line.id, CallerNumberRow.number == spec.number
        )
    )
    before = None if row is None else _number_dict(row)
    if row is None:
        row = CallerNumberRow(line_id=line.id, number=spec.number, created_at=now)
        session.add(row)
    u = spec.undertaking
    row.purpose = spec.purpose.value
    row.undertaking_ref = u.reference if u else None
    row.undertaking_signed_on = u.signed_on if u else None
    row.undertaking_signatory = u.signatory if u else None
    after = _number_dict(row)
    if before == after:
        return False
    row.updated_at = now
    audit.record(
        session,
        actor=actor,
        action="callerauth.number.assign" if before is None else "callerauth.number.update",
        subject_type="line",
        subject=line.code,
        at=now,
        before=before,
        after=after,
    )
    entry = LedgerEntry(line.code, spec.number, spec.purpose, spec.undertaking)
    payload = entry_payload(entry, line=line.code, number=spec.number)
    changefeed.emit(session, topic=TOPIC, key=spec.number, payload=payload, at=now)
    return True


def register_line(
    rt: Runtime,
    actor: Actor,
    *,
    code: str,
    enterprise: str,
    name: str,
    kind: str,
    carrier: str | None = None,
) -> None:
    """Add an enterprise line to the ledger (or update its name and kind). A carrier registers
    its own lines; an operator may name the carrier."""
    _require_carrier(actor)
    spec = LineSpec(
        _text(code, "line", 64),
        parse_uscc(enterprise, "enterprise"),
        _text(name, "line_name", 120),
        LineKind.parse(kind, "line_kind"),
        carrier,
    )
    now = rt.clock.now()
    with rt.sessions.begin() as session:
        _upsert_line(session, actor, spec, now)


def assign_number(
    rt: Runtime,
    actor: Actor,
    *,
    line: str,
    number: str,
    purpose: str,
    undertaking: Undertaking | None = None,
) -> bool:
    """Let ``line`` present ``number`` for ``purpose``; inbound-only unless ``undertaking`` is given.
    Returns whether anything changed."""
    _require_carrier(actor)
    spec = NumberSpec(
        line.strip(), parse(number, "number").digits, Purpose.parse(purpose, "purpose"), undertaking
    )
    now = rt.clock.now()
    with rt.sessions.begin() as session:
        row = session.scalar(select(LineRow).where(LineRow.code == spec.line))
        if row is None:
            raise NotFound(f"no line {spec.line!r} in the ledger", field="line")
        _require_line_keeper(actor, row)
        return _upsert_number(session, actor, row, spec, now)


def remove_number(rt: Runtime, actor: Actor, *, line: str, number: str) -> None:
    """Take a number off a line (it may no longer be presented there)."""
    _require_carrier(actor)
    digits = parse(number, "number").digits
    now = rt.clock.now()
    with rt.sessions.begin() as session:
        found = session.execute(
            select(LineRow, CallerNumberRow)
            .join(CallerNumberRow, CallerNumberRow.line_id == LineRow.id)
            .where(LineRow.code == line.strip(), CallerNumberRow.number == digits)
        ).first()
        if found is None:
            raise NotFound(f"{digits} is not on line {line!r}", field="number")
        line_row, number_row = found
        _require_line_keeper(actor, line_row)
        audit.record(
            session,
            actor=actor,
            action="callerauth.number.remove",
            subject_type="line",
            subject=line_row.code,
            at=now,
            before=_number_dict(number_row),
        )
        payload = entry_payload(None, line=line_row.code, number=digits)
        changefeed.emit(session, topic=TOPIC, key=digits, payload=payload, at=now)
        session.delete(number_row)


@dataclass(frozen=True, slots=True)
class ImportResult:
    rows: int
    lines_changed: int
    numbers_changed: int

    def as_dict(self) -> dict[str, int]:
        return {
            "rows": self.rows,
            "lines_changed": self.lines_changed,
            "numbers_changed": self.numbers_changed,
        }


def _parse_row(number: int, raw: dict[str, str | None]) -> tuple[LineSpec, NumberSpec]:
    def get(name: str) -> str:
        return (raw.get(name) or "").strip()

    try:
        line = LineSpec(
            _text(get("line"), "line", 64),
            parse_uscc(get("enterprise"), "enterprise"),
            _text(get("line_name"), "line_name", 120),
            LineKind.parse(get("line_kind"), "line_kind"),
            get("carrier") or None,
        )
        undertaking = parse_undertaking(
            get("undertaking_ref"), get("undertaking_signed_on"), get("undertaking_signatory")
        )
        direction = Direction.parse(get("direction") or Direction.INBOUND.value, "direction")
        if direction is Direction.OUTBOUND and undertaking is None:
            raise InvalidInput("outbound needs a recorded undertaking (承诺书)", field="direction")
        if direction is Direction.INBOUND and undertaking is not None:
            raise InvalidInput("an undertaking was given but direction says inbound", field="direction")
        spec = NumberSpec(
            line.code,
            parse(get("number"), "number").digits,
            Purpose.parse(get("purpose"), "purpose"),
            undertaking,
        )
    except QuietlineError as exc:
        raise InvalidInput(f"row {number}: {exc.message}", field=exc.field) from exc
    except VocabularyError as exc:
        raise InvalidInput(f"row {number}: {exc}", field=exc.field) from exc
    return line, spec


def import_csv(rt: Runtime, actor: Actor, text: str) -> ImportResult:
    """Import a ledger CSV (columns as ``queries.CSV_COLUMNS``; labels in Chinese accepted).

    All or nothing: every row is checked before anything is written, and the first bad row is
    named with its field. Rows add or update; numbers missing from the file are left alone.
    """
    _require_carrier(actor)
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    missing = [
        c
        for c in ("line", "enterprise", "line_name", "line_kind", "number", "purpose")
        if c not in (reader.fieldnames or [])
    ]
    if missing:
        raise InvalidInput(
            f"missing columns: {', '.join(missing)} (expected {', '.join(CSV_COLUMNS)})", field="csv"
        )
    parsed: list[tuple[LineSpec, NumberSpec]] = []
    for i, raw in enumerate(reader, start=2):  # row 1 is the header
        if i - 1 > MAX_IMPORT_ROWS:
            raise InvalidInput(f"more than {MAX_IMPORT_ROWS} rows; split the file", field="csv")
        parsed.append(_parse_row(i, raw))
    if not parsed:
        raise InvalidInput("the file has no rows", field="csv")
    seen_lines: dict[str, LineSpec] = {}
    for i, (line, _) in enumerate(parsed, start=2):
        if seen_lines.setdefault(line.code, line) != line:
            raise InvalidInput(
                f"row {i}: line {line.code} is described differently on another row", field="line"
            )
    now = rt.clock.now()
    lines_changed = numbers_changed = 0
    with rt.sessions.begin() as session:
        rows: dict[str, LineRow] = {}
        for spec in seen_lines.values():
            existing = session.scalar(select(LineRow.updated_at).where(LineRow.code == spec.code))
            rows[spec.code] = _upsert_line(session, actor, spec, now)
            lines_changed += existing is None or rows[spec.code].updated_at != existing
        for _, number in parsed:
            numbers_changed += _upsert_number(session, actor, rows[number.line], number, now)
    return ImportResult(len(parsed), lines_changed, numbers_changed)
