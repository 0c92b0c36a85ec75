"""marks: room on every page of marks_reporters for its updates (PostgreSQL fillfactor 70)

Revision ID: marks_0005
Revises: marks_0004
Create Date: 2026-12-07

Every ingested batch updates the rate-limit window of each of its reporters (``marks_reporters``),
about nine times per reporter over a million marks. With full pages (the default fillfactor 100) a
new row version that does not fit on its page goes to another one: a new index entry, and a dead row
that only VACUUM removes. With 30% of each page kept free, the new version stays on its page (a HOT
update, PostgreSQL's storage docs, "Heap-Only Tuples"): no index entry, and the old version is
pruned by the next reader of the page, with or without autovacuum. SQLite has no such setting.

Measured with ``benchmarks/bench_marks_ingest.py --marks 1000000`` (its ``tables`` output), two
alternating pairs on a server with autovacuum off: HOT updates 82% -> 94% of 906,983, dead rows
left 181,000 -> 82,000 beside 100,259 live. Ingestion speed did not change (PostgreSQL CPU 51.3 and
49.6 s without, 51.3 and 51.7 s with): the table is small; this is about its bloat, not speed.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "marks_0005"
down_revision: str | Sequence[str] | None = "marks_0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Percent of each heap page filled by inserts; the rest waits for updates of the rows on it.
FILLFACTOR = 70


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # Applies to pages written from now on; existing pages get the room when the table is rewritten.
        op.execute(f"ALTER TABLE marks_reporters SET (fillfactor = {FILLFACTOR})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE marks_reporters RESET (fillfactor)")
