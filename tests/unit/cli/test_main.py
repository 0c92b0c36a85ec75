"""The top-level command: each sub-command is reachable on its own (lazy import) and in the full tree."""

from __future__ import annotations

import sys

import pytest

from quietline.cli.main import GROUPS, SCREENING_COMMANDS, app


@pytest.mark.parametrize("command", sorted({*GROUPS, *SCREENING_COMMANDS, "serve"}))
def test_each_command_answers_help(
    command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["quietline", command, "--help"])
    with pytest.raises(SystemExit) as done:
        app()
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert f"quietline {command}" in out  # the usage line names the command: it was not swallowed


def test_the_full_tree_lists_every_command(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["quietline", "--help"])
    with pytest.raises(SystemExit) as done:
        app()
    assert done.value.code == 0
    out = capsys.readouterr().out
    for command in {*GROUPS, *SCREENING_COMMANDS, "serve"}:
        assert f" {command} " in out
