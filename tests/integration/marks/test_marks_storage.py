"""PostgreSQL storage settings the marks migrations make (migration ``marks_0005``)."""

from __future__ import annotations

import psycopg
import pytest


@pytest.mark.postgres
def test_reporter_rows_leave_room_for_hot_updates(pg_url: str) -> None:
    """``marks_reporters`` is filled to 70% so that ingestion's per-batch window updates stay on
    their page (HOT) instead of leaving dead rows for a VACUUM."""
    with psycopg.connect(pg_url) as conn:
        options = conn.execute("SELECT reloptions FROM pg_class WHERE relname = 'marks_reporters'").fetchone()
    assert options is not None and "fillfactor=70" in (options[0] or [])
