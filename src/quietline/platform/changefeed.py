"""The change feed (transactional outbox): every committed change that other processes must see.

Actions append a ``change_feed`` row in the same transaction as the change, so a change and its
announcement commit together or not at all. Readers (the screening engine, webhook deliverers, NATS
relays) follow the feed with a cursor on the monotonically increasing ``id``: a process that starts
cold loads a snapshot that records the last id it contains, then reads everything after it, so no
change is missed or applied twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Integer, String, func, insert, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from quietline.platform.db import Base, UtcDateTime


class ChangeRow(Base):
    __tablename__ = "change_feed"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    topic: Mapped[str] = mapped_column(String(60), index=True)
    key: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)


@dataclass(frozen=True, slots=True)
class Change:
    id: int
    at: datetime
    topic: str
    key: str
    payload: dict[str, Any]


def emit(session: Session, *, topic: str, key: str, payload: dict[str, Any], at: datetime) -> None:
    """Append a change to the feed inside the caller's transaction."""
    session.add(ChangeRow(topic=topic, key=key, payload=payload, at=at))


def emit_many(session: Session, rows: list[dict[str, Any]]) -> None:
    """Bulk form for imports (each row: topic, key, payload, at)."""
    if rows:
        session.execute(insert(ChangeRow), rows)


def read_after(
    session: Session, cursor: int, limit: int = 10_000, topics: tuple[str, ...] = ()
) -> list[Change]:
    """Changes with ``id > cursor`` in commit-id order."""
    query = select(ChangeRow).where(ChangeRow.id > cursor).order_by(ChangeRow.id).limit(limit)
    if topics:
        query = query.where(ChangeRow.topic.in_(topics))
    return [Change(r.id, r.at, r.topic, r.key, r.payload) for r in session.scalars(query)]


def head(session: Session) -> int:
    """The id of the newest change (0 when the feed is empty)."""
    return int(session.scalar(select(func.coalesce(func.max(ChangeRow.id), 0))) or 0)
