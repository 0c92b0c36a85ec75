"""Tables of the numbers context: the portability (携号转网) records."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from quietline.platform.db import Base, UtcDateTime


class PortedNumber(Base):
    """The current carrier of a number that has ported (工信部信管〔2019〕242号).

    The number's prefix names only the carrier the range was first allocated to; routing and every
    "which carrier serves this number" question read this table first. One row per number (its
    canonical e164); the history of changes is in the audit log and the change feed.
    """

    __tablename__ = "ported_number"

    number: Mapped[str] = mapped_column(String(24), primary_key=True)
    carrier: Mapped[str] = mapped_column(String(40))
    ported_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
