"""platform: scheduler job leases and durable feed cursors

Revision ID: platform_0003
Revises: platform_0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import quietline.platform.db

revision: str = "platform_0003"
down_revision: str | Sequence[str] | None = "platform_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "scheduler_jobs",
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("next_due_at", quietline.platform.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("lease_owner", sa.String(length=120), nullable=True),
        sa.Column("lease_until", quietline.platform.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("last_started_at", quietline.platform.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("last_finished_at", quietline.platform.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("last_status", sa.String(length=10), nullable=True),
        sa.Column("last_result", sa.JSON(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_scheduler_jobs")),
    )
    op.create_table(
        "feed_cursors",
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("low_water", sa.BigInteger(), nullable=False),
        sa.Column("handled_above", sa.JSON(), nullable=False),
        sa.Column("updated_at", quietline.platform.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_feed_cursors")),
    )


def downgrade() -> None:
    op.drop_table("feed_cursors")
    op.drop_table("scheduler_jobs")
