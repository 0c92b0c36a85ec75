"""Tables of the reactions context."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from quietline.platform.db import Base, UtcDateTime


class TemporaryBlockRow(Base):
    """A system block put on automatically for a call bombing in progress, lifted at ``until``.

    ``reason`` is the exact reason written to the system block list: the block is lifted only while
    the list still carries it, so a block someone confirmed or re-set in the meantime stays.
    """

    __tablename__ = "reaction_temporary_blocks"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    number: Mapped[str] = mapped_column(String(24), index=True)
    reason: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    until: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    lifted_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    change_id: Mapped[int] = mapped_column(BigInteger, unique=True)
