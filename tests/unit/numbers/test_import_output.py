"""How an import's outcome is shown on the command line (quietline.cli.progress)."""

from __future__ import annotations

import json

import pytest
import typer

from quietline.cli import progress
from quietline.platform.bulk import ImportMode, ImportSummary, RowError
from quietline.platform.errors import InvalidInput


def summary(*, written: bool, rejected: int, mode: ImportMode = ImportMode.SKIP_BAD_ROWS) -> ImportSummary:
    errors = [RowError(line + 2, "number", f"bad number on line {line + 2}") for line in range(rejected)]
    return ImportSummary(
        source="ports.csv",
        mode=mode,
        rows_read=100,
        accepted=100 - rejected,
        rejected=rejected,
        errors=errors,
        seconds=0.5,
        written=written,
        details={"inserted": 100 - rejected},
    )


@pytest.mark.parametrize(
    ("written", "rejected", "code"),
    [(True, 0, 0), (True, 3, 1), (False, 3, 2)],
)
def test_exit_codes_tell_the_outcome(written: bool, rejected: int, code: int) -> None:
    result = summary(written=written, rejected=rejected)
    assert progress.exit_code(result) == code
    if code:
        with pytest.raises(typer.Exit) as caught:
            progress.finish(result, as_json=True)
        assert caught.value.exit_code == code
    else:
        progress.finish(result, as_json=True)


def test_json_lists_every_collected_error(capsys: pytest.CaptureFixture[str]) -> None:
    progress.print_summary(summary(written=True, rejected=60), as_json=True)
    out = json.loads(capsys.readouterr().out)
    assert len(out["errors"]) == 60
    assert out["errors"][0] == {"line": 2, "field": "number", "message": "bad number on line 2"}
    assert out["rows_per_second"] == 200.0


def test_human_output_lists_the_first_errors_and_counts_the_rest(capsys: pytest.CaptureFixture[str]) -> None:
    progress.print_summary(summary(written=True, rejected=60), as_json=False)
    out = capsys.readouterr()
    assert "bad number on line 51" in out.out
    assert "bad number on line 52" not in out.out
    assert "10 more rejected rows" in out.out
    assert out.err == ""


def test_nothing_written_says_so_on_one_stderr_line(capsys: pytest.CaptureFixture[str]) -> None:
    progress.print_summary(summary(written=False, rejected=2, mode=ImportMode.ALL_OR_NOTHING), as_json=True)
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "nothing was written" in err


def test_progress_callback_reaches_the_import() -> None:
    seen: list[tuple[int, int]] = []

    def fake_import(report: progress.ProgressCallback) -> ImportSummary:
        report(50, 100)
        seen.append((50, 100))
        return summary(written=True, rejected=0)

    assert progress.run_with_progress(fake_import, label="test").written
    assert seen == [(50, 100)]


def test_mode_names() -> None:
    assert progress.parse_mode("skip-bad-rows") is ImportMode.SKIP_BAD_ROWS
    with pytest.raises(InvalidInput) as caught:
        progress.parse_mode("maybe")
    assert caught.value.field == "--mode"
