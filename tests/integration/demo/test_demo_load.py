"""The demo data on a real database: loaded once, keys written owner-only, and every page has something
to show (complaints over two quarters, a displayed crowd label, a high-risk number, blocked calls)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from sqlalchemy import func, select

from quietline.complaints import queries as complaints_queries
from quietline.demo import load
from quietline.marks import queries as marks_queries
from quietline.oversight import queries as oversight_queries
from quietline.oversight.model import Quarter
from quietline.platform.runtime import Runtime
from quietline.screening import queries as screening_queries
from quietline.screening.orm import BlockRecordRow


def test_demo_loads_once_with_something_on_every_page(any_runtime: Runtime) -> None:
    rt = any_runtime
    first = load.load(rt)
    assert first.loaded and first.keys_file is not None
    keys_file = Path(first.keys_file)
    assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600
    assert set(json.loads(keys_file.read_text())) == {"operator", "regulator", "carrier", "enterprise"}

    now = rt.clock.now()
    with rt.sessions() as session:
        inbox = complaints_queries.inbox(session, "china_mobile")
        review = oversight_queries.draft_review(session, Quarter.containing(now).previous(), now=now)
        reputation = marks_queries.reputation_of(session, load.SPAMMERS[1], now)
        risky = marks_queries.high_risk(session, load.SPAMMERS[4])
        blocks = screening_queries.block_records(session, "+8613800138000", limit=10)
        block_count = session.scalar(select(func.count()).select_from(BlockRecordRow))
    assert len(inbox) >= 5  # the demo carrier has work waiting
    assert review.calls.total > 0 and review.sms.total > 0  # last quarter can be reviewed
    assert risky is not None and risky.state.value == "suspected"
    assert block_count == 4 and {b.reason for b in blocks} == {"refused_category", "personal_prefix_block"}
    assert [lr.label.value for lr in reputation.labels if lr.displayed] == ["real_estate"]

    again = load.load(rt)
    assert not again.loaded
    with rt.sessions() as session:
        assert session.scalar(select(func.count()).select_from(BlockRecordRow)) == 4
