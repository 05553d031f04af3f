"""The campaign progress line fits an 80-column screen with its elapsed time whole."""

from __future__ import annotations

import pytest

from corral.cli.render import campaign_progress


def test_progress_keeps_its_time_on_80_columns(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The time was the last column and was cut to `0:00:…` (seen in `make demo`)."""
    monkeypatch.setenv("COLUMNS", "80")
    summary = {"counts": {"running": 1, "needs_review": 1, "failed": 0, "succeeded": 10},
               "done": 10, "total": 12, "cost_usd": 0.0}  # fmt: skip
    with campaign_progress("cve campaign", "repos") as show:
        show(summary)
    (line,) = [x for x in capsys.readouterr().err.splitlines() if "repos" in x]
    assert "10/12 repos" in line and "0:00:0" in line and "…" not in line
    assert "running 1 · review 1 · $0.0000" in line and "failed" not in line  # none failed
