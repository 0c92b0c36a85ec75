"""Reads of the registry. Nothing here lets a caller learn whether an arbitrary number is registered:
every query is scoped to a number the caller has proved it owns, to an enterprise's own records, or is
reserved for operators and regulators by the entry points."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, aliased

from quietline.platform import audit
from quietline.registry import model
from quietline.registry.orm import ConsentRow, PersonalListRow, RefusalRow, SystemListRow
from quietline.vocabulary import ALL_CATEGORIES, Channel


@dataclass(frozen=True, slots=True)
class ListEntry:
    list_name: str
    kind: str
    value: str
    note: str | None
    created_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "list": self.list_name,
            "kind": self.kind,
            "value": self.value,
            "note": self.note,
            "created_at": self.created_at.isoformat(),
        }


def refusals(session: Session, number: str, now: datetime | None = None) -> list[model.RefusalState]:
    """The number's refusals in effect (active and, when ``now`` is given, not past their validity)."""
    rows = session.scalars(
        select(RefusalRow)
        .where(RefusalRow.number == number, RefusalRow.active.is_(True))
        .order_by(RefusalRow.category, RefusalRow.channel)
    )
    states = [
        model.RefusalState(r.number, r.category, Channel(r.channel), r.active, r.since, r.valid_until)
        for r in rows
    ]
    return [s for s in states if now is None or s.effective(now)]


def list_entries(session: Session, owner: str) -> list[ListEntry]:
    rows = session.scalars(
        select(PersonalListRow)
        .where(PersonalListRow.owner == owner)
        .order_by(PersonalListRow.list_name, PersonalListRow.kind, PersonalListRow.value)
    )
    return [ListEntry(r.list_name, r.kind, r.value, r.note, r.created_at) for r in rows]


def consents_of_number(session: Session, number: str) -> list[model.ConsentState]:
    """Everything the subscriber has consented to (its own view)."""
    rows = session.scalars(select(ConsentRow).where(ConsentRow.number == number).order_by(ConsentRow.id))
    return [consent_state(r) for r in rows]


def show(session: Session, number: str, now: datetime) -> dict[str, Any]:
    """Everything the registry holds about one number (the owner's or an operator's view)."""
    return {
        "number": number,
        "refusals": [
            {
                "category": s.category,
                "category_label": model.category_label(s.category),
                "channel": s.channel.value,
                "since": s.since.isoformat(),
                "valid_until": s.valid_until.isoformat() if s.valid_until else None,
            }
            for s in refusals(session, number, now)
        ],
        "lists": [e.as_dict() for e in list_entries(session, number)],
        "consents": [c.as_dict() for c in consents_of_number(session, number) if c.active],
    }


def history(session: Session, number: str, limit: int = 200) -> list[audit.AuditView]:
    """The number's own change history (the subscriber sees who changed what and when)."""
    return audit.for_subject(session, "number", number, limit)


CONSENT_EXPORT_COLUMNS = (
    "id",
    "enterprise",
    "number",
    "category",
    "channel",
    "granted_at",
    "evidence_ref",
    "evidence_sha256",
    "consent_text_version",
    "active",
    "withdrawn_at",
    "withdrawn_by",
    "retain_until",
)


def export_consents(session: Session, out: IO[str], enterprise: str | None = None) -> int:
    """Write consent records as CSV: one enterprise's own, or every record for an operator."""
    query = select(ConsentRow).order_by(ConsentRow.id)
    if enterprise is not None:
        query = query.where(ConsentRow.enterprise == enterprise)
    writer = csv.DictWriter(out, fieldnames=CONSENT_EXPORT_COLUMNS)
    writer.writeheader()
    count = 0
    for row in session.scalars(query.execution_options(yield_per=5000)):
        writer.writerow(consent_state(row).as_dict())
        count += 1
    return count


def consent_state(row: ConsentRow) -> model.ConsentState:
    return model.ConsentState(
        id=row.id,
        enterprise=row.enterprise,
        number=row.number,
        category=row.category,
        channel=Channel(row.channel),
        granted_at=row.granted_at,
        evidence_ref=row.evidence_ref,
        evidence_sha256=row.evidence_sha256,
        consent_text_version=row.consent_text_version,
        withdrawn_at=row.withdrawn_at,
        withdrawn_by=row.withdrawn_by,
        retain_until=row.retain_until,
    )


# --- full-state reads for the screening snapshot (operator/platform use only) ---------------------


def iter_active_refusals(session: Session, now: datetime) -> Iterator[tuple[str, str, str]]:
    """(number, category or "all", channel) for every refusal in effect."""
    query = select(RefusalRow.number, RefusalRow.category, RefusalRow.channel).where(
        RefusalRow.active.is_(True), or_(RefusalRow.valid_until.is_(None), RefusalRow.valid_until > now)
    )
    yield from session.execute(query.execution_options(yield_per=50_000))


def iter_personal_lists(session: Session) -> Iterator[tuple[str, str, str, str]]:
    """(owner, list, kind, value) for every personal list entry."""
    query = select(
        PersonalListRow.owner, PersonalListRow.list_name, PersonalListRow.kind, PersonalListRow.value
    )
    yield from session.execute(query.execution_options(yield_per=50_000))


def iter_system_lists(session: Session) -> Iterator[tuple[str, str, str]]:
    """(list, number, reason) for every active system list entry."""
    query = select(SystemListRow.list_name, SystemListRow.number, SystemListRow.reason).where(
        SystemListRow.active.is_(True)
    )
    yield from session.execute(query)


def system_list_entry(session: Session, list_name: str, number: str) -> tuple[bool, str] | None:
    """(active, reason) of one number's system list entry, or None when it was never listed."""
    row = session.execute(
        select(SystemListRow.active, SystemListRow.reason).where(
            SystemListRow.list_name == list_name, SystemListRow.number == number
        )
    ).one_or_none()
    return None if row is None else (bool(row[0]), str(row[1]))


def iter_effective_consents(session: Session) -> Iterator[tuple[str, str, str, str]]:
    """(enterprise, number, category, channel) of open consents not overtaken by a later refusal.

    The latest expression wins both ways (DESIGN.md decision order, step 6): a refusal of the category
    (or of all marketing) on the same channel given after the consent makes the consent ineffective.
    """
    later = aliased(RefusalRow)
    overtaken = (
        select(later.id)
        .where(
            later.number == ConsentRow.number,
            later.channel == ConsentRow.channel,
            later.active.is_(True),
            or_(later.category == ConsentRow.category, later.category == ALL_CATEGORIES),
            later.since > ConsentRow.granted_at,
        )
        .exists()
    )
    query = select(ConsentRow.enterprise, ConsentRow.number, ConsentRow.category, ConsentRow.channel).where(
        and_(ConsentRow.withdrawn_at.is_(None), ~overtaken)
    )
    yield from session.execute(query.execution_options(yield_per=50_000))


def iter_open_consents(session: Session) -> Iterator[tuple[str, str, str, str, datetime]]:
    """(enterprise, number, category, channel, granted_at) of every consent not withdrawn.

    With ``iter_refusal_times_of_consenting_numbers`` this lets a reader keep "the latest expression
    wins" itself as changes arrive (the screening snapshot), where ``iter_effective_consents`` answers
    it once in SQL.
    """
    query = select(
        ConsentRow.enterprise,
        ConsentRow.number,
        ConsentRow.category,
        ConsentRow.channel,
        ConsentRow.granted_at,
    ).where(ConsentRow.withdrawn_at.is_(None))
    yield from session.execute(query.execution_options(yield_per=50_000))


def iter_refusal_times_of_consenting_numbers(
    session: Session, now: datetime
) -> Iterator[tuple[str, str, str, datetime]]:
    """(number, category or "all", channel, since) of refusals in effect for numbers that hold an open
    consent: the times a consent must be compared with."""
    query = select(RefusalRow.number, RefusalRow.category, RefusalRow.channel, RefusalRow.since).where(
        RefusalRow.active.is_(True),
        or_(RefusalRow.valid_until.is_(None), RefusalRow.valid_until > now),
        RefusalRow.number.in_(select(ConsentRow.number).where(ConsentRow.withdrawn_at.is_(None))),
    )
    yield from session.execute(query.execution_options(yield_per=50_000))
