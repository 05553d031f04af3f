"""A fleet process's collector: start-up objects frozen out, young generation less often."""

from __future__ import annotations

from collections.abc import Callable


def test_tune_for_fleet_freezes_start_up_and_raises_thresholds(
    fresh_python: Callable[[str], str],
) -> None:
    # In a child: the setting is process-wide and must not leak into this test run.
    out = fresh_python(
        "import gc; from corral.orchestrator.heap import tune_for_fleet; "
        "before = gc.get_threshold(); tune_for_fleet(); "
        "print(before[0], gc.get_threshold()[0], gc.get_freeze_count() > 1000)"
    )
    default, tuned, frozen = out.split()
    assert int(tuned) > 10 * int(default) and frozen == "True"
