"""traffic: stored detection runs and findings

Revision ID: traffic_0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import quietline.platform.db

revision: str = "traffic_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("traffic",)
depends_on: str | Sequence[str] | None = "platform_0003"


def upgrade() -> None:
    op.create_table(
        "traffic_runs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("run_id", sa.String(length=24), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("carrier", sa.String(length=40), nullable=False),
        sa.Column("source", sa.String(length=300), nullable=False),
        sa.Column("backend", sa.String(length=12), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("rejected", sa.JSON(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("created_at", quietline.platform.db.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_traffic_runs")),
        sa.UniqueConstraint("run_id", name=op.f("uq_traffic_runs_run_id")),
    )
    with op.batch_alter_table("traffic_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_traffic_runs_carrier"), ["carrier"], unique=False)
        batch_op.create_index(batch_op.f("ix_traffic_runs_created_at"), ["created_at"], unique=False)

    op.create_table(
        "traffic_findings",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("run_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("number", sa.String(length=24), nullable=False),
        sa.Column("pattern", sa.String(length=16), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("allow_listed", sa.Boolean(), nullable=False),
        sa.Column("candidate", sa.Boolean(), nullable=False),
        sa.Column("in_progress", sa.Boolean(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("also_matched", sa.JSON(), nullable=False),
        sa.Column("created_at", quietline.platform.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_pk"],
            ["traffic_runs.id"],
            name=op.f("fk_traffic_findings_run_pk_traffic_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_traffic_findings")),
    )
    with op.batch_alter_table("traffic_findings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_traffic_findings_number"), ["number"], unique=False)
        batch_op.create_index(batch_op.f("ix_traffic_findings_run_pk"), ["run_pk"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("traffic_findings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_traffic_findings_run_pk"))
        batch_op.drop_index(batch_op.f("ix_traffic_findings_number"))

    op.drop_table("traffic_findings")
    with op.batch_alter_table("traffic_runs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_traffic_runs_created_at"))
        batch_op.drop_index(batch_op.f("ix_traffic_runs_carrier"))

    op.drop_table("traffic_runs")
