"""Read the registry and the marks into a ``RegistryState`` for a full snapshot rebuild.

This is an adapter (SQL is allowed here, never in ``model``/``snapshot``). It reads through the
registry's and the marks' query modules, including the consent and refusal times the "latest
expression wins" rule needs, all in one consistent read.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from quietline.marks import queries as marks_queries
from quietline.platform import changefeed
from quietline.platform.changefeed import ChangeRow
from quietline.registry import queries as registry_queries
from quietline.screening.snapshot import ConsentEntry, RegistryState, e164_int

#: How far behind the feed head a rebuild records which ids it has seen. A transaction that takes
#: longer than this many other changes to commit would be missed (PostgreSQL ids commit out of order).
FEED_WINDOW = 10_000


def consistent_read(session: Session) -> None:
    """Make every statement of this session see one snapshot of the database.

    PostgreSQL's default READ COMMITTED gives each statement a new snapshot; REPEATABLE READ gives the
    whole transaction one. SQLite's read transaction in WAL mode is already one snapshot.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "REPEATABLE READ"})


def read_state(session: Session, now: datetime) -> RegistryState:
    """Everything the snapshot compiles from, plus the change-feed position it reflects."""
    consistent_read(session)
    head = changefeed.head(session)
    low = max(0, head - FEED_WINDOW)
    seen = set(session.scalars(select(ChangeRow.id).where(ChangeRow.id > low)))

    grouped: dict[tuple[str, str], list[int]] = {}
    for number, category, channel in registry_queries.iter_active_refusals(session, now):
        grouped.setdefault((category, channel), []).append(e164_int(number))
    refusals = {key: np.array(values, dtype=np.int64) for key, values in grouped.items()}

    consents = [
        ConsentEntry(enterprise, e164_int(number), category, channel, granted_at)
        for enterprise, number, category, channel, granted_at in registry_queries.iter_open_consents(session)
    ]
    refusal_since: dict[tuple[int, str, str], datetime] = {
        (e164_int(number), category, channel): since
        for number, category, channel, since in registry_queries.iter_refusal_times_of_consenting_numbers(
            session, now
        )
    }

    personal = [
        (e164_int(owner), list_name, kind, value)
        for owner, list_name, kind, value in registry_queries.iter_personal_lists(session)
    ]
    system_allow: list[int] = []
    system_block: list[int] = []
    for list_name, number, _reason in registry_queries.iter_system_lists(session):
        (system_allow if list_name == "allow" else system_block).append(e164_int(number))

    labels: list[tuple[int, str]] = []
    high_risk: list[tuple[int, str]] = []
    for entry in marks_queries.snapshot(session):
        n = e164_int(entry.number)
        labels += [(n, label.value) for label in entry.labels]
        if entry.high_risk is not None:
            high_risk.append((n, entry.high_risk.value))

    return RegistryState(
        refusals=refusals,
        refusal_since=refusal_since,
        consents=consents,
        personal=personal,
        system_allow=system_allow,
        system_block=system_block,
        labels=labels,
        high_risk=high_risk,
        feed_id=low,
        feed_seen=seen,
    )
