"""Tables of the oversight context."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from quietline.platform.db import Base, UtcDateTime


class PublishedReviewRow(Base):
    """A quarterly review as published: frozen, so later imports of old reports do not rewrite history
    (a corrected figure is a new publication, and the audit log keeps the old one)."""

    __tablename__ = "oversight_published_reviews"

    quarter: Mapped[str] = mapped_column(String(7), primary_key=True)
    published_at: Mapped[datetime] = mapped_column(UtcDateTime)
    published_by: Mapped[str] = mapped_column(String(200))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
