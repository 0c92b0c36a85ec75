"""oversight: published quarterly reviews

Revision ID: oversight_0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import quietline.platform.db

revision: str = "oversight_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("oversight",)
depends_on: str | Sequence[str] | None = "platform_0003"


def upgrade() -> None:
    op.create_table(
        "oversight_published_reviews",
        sa.Column("quarter", sa.String(length=7), nullable=False),
        sa.Column("published_at", quietline.platform.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("published_by", sa.String(length=200), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("quarter", name=op.f("pk_oversight_published_reviews")),
    )


def downgrade() -> None:
    op.drop_table("oversight_published_reviews")
