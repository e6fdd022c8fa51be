"""`newsflow replay --help` names the stages that can be replayed, from the stage wiring."""

from __future__ import annotations

from typer.testing import CliRunner

from streams.commands.cli import REPLAYABLE, app


def test_replay_help_lists_the_stages_with_dead_letters() -> None:
    assert {"extract", "enrich", "index"} <= set(REPLAYABLE)
    result = CliRunner().invoke(app, ["replay", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert ", ".join(REPLAYABLE) in result.output
    assert "enrich or index" not in result.output
