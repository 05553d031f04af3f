"""The campaign progress line keeps its elapsed time whole on a narrow screen."""

from __future__ import annotations

import pytest

from corral.cli.render import campaign_progress


def _line(capsys: pytest.CaptureFixture[str], counts: dict[str, int], done: int, total: int) -> str:
    summary = {"counts": counts, "done": done, "total": total, "cost_usd": 1.2345}
    with campaign_progress("cve campaign", "repos") as show:
        show(summary)
    (line,) = [x for x in capsys.readouterr().err.splitlines() if "repos" in x]
    return line


@pytest.mark.parametrize("columns", [50, 70, 80])
@pytest.mark.parametrize("scale", [1, 11])
def test_the_time_is_never_cut(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, columns: int, scale: int
) -> None:
    """Rich shrinks every column of a line too wide for the screen: the time showed as
    `0:00:…` (seen in `make demo`), and the counts were cut too."""
    monkeypatch.setenv("COLUMNS", str(columns))
    counts = {"running": 4 * scale, "needs_review": 2 * scale, "failed": scale}
    line = _line(capsys, counts, 100 * scale, 120 * scale)
    assert f"{100 * scale}/{120 * scale} repos 0:00:0" in line and len(line.rstrip()) <= columns


def test_only_counts_that_are_not_zero_show(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    line = _line(capsys, {"running": 1, "needs_review": 1, "failed": 0, "succeeded": 10}, 10, 12)
    assert line.rstrip().endswith("running 1 · review 1 · $1.2345")
