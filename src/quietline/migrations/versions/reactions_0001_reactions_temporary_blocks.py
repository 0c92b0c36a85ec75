"""reactions: automatic temporary blocks of call bombing in progress

Revision ID: reactions_0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import quietline.platform.db

revision: str = "reactions_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = ("reactions",)
depends_on: str | Sequence[str] | None = "platform_0003"


def upgrade() -> None:
    op.create_table(
        "reaction_temporary_blocks",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("number", sa.String(length=24), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("created_at", quietline.platform.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("until", quietline.platform.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("lifted_at", quietline.platform.db.UtcDateTime(timezone=True), nullable=True),
        sa.Column("change_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reaction_temporary_blocks")),
        sa.UniqueConstraint("change_id", name=op.f("uq_reaction_temporary_blocks_change_id")),
    )
    with op.batch_alter_table("reaction_temporary_blocks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reaction_temporary_blocks_number"), ["number"], unique=False)
        batch_op.create_index(batch_op.f("ix_reaction_temporary_blocks_until"), ["until"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("reaction_temporary_blocks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_reaction_temporary_blocks_until"))
        batch_op.drop_index(batch_op.f("ix_reaction_temporary_blocks_number"))
    op.drop_table("reaction_temporary_blocks")
