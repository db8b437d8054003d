"""The ``edge`` command's contract with scripts and technicians: a mistake they can fix is
one line and exit 2; a defect says it is one, exits 70, and leaves its traceback in the log."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from edge import cli
from edge.command import EXIT_BUG, EXIT_USAGE
from edge.errors import ConfigError
from edge.settings import Settings


def test_a_setting_regional_it_got_wrong_is_a_named_mistake() -> None:
    with pytest.raises(ConfigError, match="settle_seconds"):
        Settings.from_mapping({"settle_seconds": "NaN"})


def test_a_mistake_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], state: Path
) -> None:
    def wrong(_args: object) -> int:
        raise ConfigError("setting 'settle_seconds' must be a finite number, not 'NaN'")

    monkeypatch.setattr(cli, "cmd_dossiers", wrong)
    assert cli.main(["dossiers", "--state", str(state)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err == "edge: error: setting 'settle_seconds' must be a finite number, not 'NaN'\n"


def test_a_defect_says_so_exits_70_and_logs_its_traceback(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    state: Path,
) -> None:
    """A bare ValueError used to be reported as a user mistake (exit 2): a bug looked like
    a typo and nobody reported it."""

    def broken(_args: object) -> int:
        raise ValueError("invalid literal for int() with base 10: ''")

    monkeypatch.setattr(cli, "cmd_dossiers", broken)
    with caplog.at_level(logging.ERROR, logger="edge"):
        assert cli.main(["dossiers", "--state", str(state)]) == EXIT_BUG
    err = capsys.readouterr().err.splitlines()
    last = err[-1]
    assert last.startswith("edge: error: internal error (ValueError: invalid literal")
    assert "defect" in last and "edge doctor" in last
    logged = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert logged and logged[-1].exc_info is not None  # the traceback goes to the log
    assert "'edge dossiers'" in logged[-1].getMessage()


def test_a_missing_state_folder_is_a_mistake(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert cli.main(["dossiers", "--state", str(tmp_path / "nowhere")]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "is not a provisioned box: run 'edge init" in err and err.count("\n") == 1
