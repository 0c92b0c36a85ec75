"""The append-only audit log: who did what to which subject, with the state before and after.

Every action writes its audit row in the same transaction as the change it describes (zulip's
"action functions" pattern), so there is never a change without its row nor a row without its change.
No code path updates or deletes an audit row: the ORM refuses it here and database triggers refuse
it in the migration (``platform_0001``), so even hand-written SQL cannot rewrite history.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Integer, String, event, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from quietline.platform.actor import Actor
from quietline.platform.db import Base, UtcDateTime

JsonDict = dict[str, Any]


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    actor_role: Mapped[str] = mapped_column(String(20))
    # Only ``at`` and ``subject`` are indexed: bulk imports write one row per changed number, and every
    # extra index is paid on each of those rows; histories are read by subject, reviews by time.
    actor: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(80))
    subject_type: Mapped[str] = mapped_column(String(40))
    subject: Mapped[str] = mapped_column(String(200), index=True)
    before: Mapped[JsonDict | None] = mapped_column(JSON, nullable=True)
    after: Mapped[JsonDict | None] = mapped_column(JSON, nullable=True)


class AuditLogIsAppendOnly(RuntimeError):
    pass


@event.listens_for(AuditEntry, "before_update")
def _refuse_update(*_args: Any) -> None:
    raise AuditLogIsAppendOnly("audit rows are never updated")


@event.listens_for(AuditEntry, "before_delete")
def _refuse_delete(*_args: Any) -> None:
    raise AuditLogIsAppendOnly("audit rows are never deleted")


def record(
    session: Session,
    *,
    actor: Actor,
    action: str,
    subject_type: str,
    subject: str,
    at: datetime,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """Add one audit row to the current transaction (it commits or rolls back with the change)."""
    entry = AuditEntry(
        at=at,
        actor_role=actor.role.value,
        actor=str(actor),
        action=action,
        subject_type=subject_type,
        subject=subject,
        before=_jsonable(before),
        after=_jsonable(after),
    )
    session.add(entry)
    return entry


def _jsonable(value: Mapping[str, Any] | None) -> JsonDict | None:
    if value is None:
        return None
    return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in value.items()}


@dataclass(frozen=True)
class AuditView:
    id: int
    at: datetime
    actor: str
    action: str
    subject_type: str
    subject: str
    before: JsonDict | None
    after: JsonDict | None

    def as_dict(self) -> JsonDict:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "action": self.action,
            "subject_type": self.subject_type,
            "subject": self.subject,
            "before": self.before,
            "after": self.after,
        }


def _view(row: AuditEntry) -> AuditView:
    return AuditView(
        row.id, row.at, row.actor, row.action, row.subject_type, row.subject, row.before, row.after
    )


def tail(session: Session, limit: int = 20) -> list[AuditView]:
    """The newest entries, newest first."""
    rows = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit))
    return [_view(r) for r in rows]


def for_subject(session: Session, subject_type: str, subject: str, limit: int = 200) -> list[AuditView]:
    """A subject's own history, newest first (a subscriber sees only its own number's)."""
    rows = session.scalars(
        select(AuditEntry)
        .where(AuditEntry.subject_type == subject_type, AuditEntry.subject == subject)
        .order_by(AuditEntry.id.desc())
        .limit(limit)
    )
    return [_view(r) for r in rows]
