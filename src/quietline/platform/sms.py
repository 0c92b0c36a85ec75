"""Sending SMS is a protocol (DESIGN.md "Architecture"): the development sender keeps messages in a
database outbox that ``quietline sms outbox --json`` shows; production plugs in a carrier gateway."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import BigInteger, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from quietline.platform.db import Base, UtcDateTime


@dataclass(frozen=True, slots=True)
class SmsMessage:
    to: str
    text: str
    at: datetime
    purpose: str


class SmsSender(Protocol):
    def send(self, message: SmsMessage) -> None: ...


class DevSmsRow(Base):
    """Messages the development sender "sent"; only ever written when development settings are on."""

    __tablename__ = "dev_sms_outbox"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    to: Mapped[str] = mapped_column(String(32), index=True)
    purpose: Mapped[str] = mapped_column(String(40))
    text: Mapped[str] = mapped_column(Text)


class DevelopmentSmsSender:
    """Writes each message to ``dev_sms_outbox`` in its own short transaction."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def send(self, message: SmsMessage) -> None:
        with self._sessions.begin() as session:
            session.add(DevSmsRow(at=message.at, to=message.to, purpose=message.purpose, text=message.text))


def dev_outbox(session: Session, to: str | None = None, limit: int = 50) -> list[SmsMessage]:
    query = select(DevSmsRow).order_by(DevSmsRow.id.desc()).limit(limit)
    if to:
        query = query.where(DevSmsRow.to == to)
    return [SmsMessage(r.to, r.text, r.at, r.purpose) for r in session.scalars(query)]


class RecordingSmsSender:
    """In-memory fake for unit tests."""

    def __init__(self) -> None:
        self.sent: list[SmsMessage] = []

    def send(self, message: SmsMessage) -> None:
        self.sent.append(message)

    def last_to(self, number: str) -> SmsMessage:
        return next(m for m in reversed(self.sent) if m.to == number)


class DisabledSmsSender:
    """Production default until a gateway is configured: refuses loudly instead of dropping messages."""

    def send(self, message: SmsMessage) -> None:
        raise RuntimeError(
            "no SMS gateway is configured (set QUIETLINE_ENV=development for the development outbox)"
        )
