"""A fleet process's collector: start-up objects frozen out, young generation less often."""

from __future__ import annotations

import subprocess
import sys


def test_tune_for_fleet_freezes_start_up_and_raises_thresholds() -> None:
    # In a child: the setting is process-wide and must not leak into this test run.
    code = (
        "import gc; from corral.orchestrator.heap import tune_for_fleet; "
        "before = gc.get_threshold(); tune_for_fleet(); "
        "print(before[0], gc.get_threshold()[0], gc.get_freeze_count() > 1000)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    default, tuned, frozen = out.stdout.split()
    assert int(tuned) > 10 * int(default) and frozen == "True"
