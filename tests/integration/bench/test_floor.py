"""The fleet benchmark's floor: bare bwrap sandboxes, started and timed for real."""

from __future__ import annotations

import pytest

from corral.bench.floor import run_floor

pytestmark = pytest.mark.bwrap


def test_every_bare_sandbox_comes_up_waits_each_step_and_ends() -> None:
    report = run_floor(4, 3, 0.1)
    assert report["failed"] == 0 and report["error"] is None, report
    # Three real waits of 0.1 s each, after the last sandbox came up.
    assert report["wall_s"] >= 0.3
    assert 0 < report["boot_p50_s"] <= report["boot_last_s"] <= report["wall_s"] - 0.3 + 0.05
    assert report["machine_busy_s"] > 0


def test_no_latency_means_no_wait_and_no_failure() -> None:
    report = run_floor(2, 2, 0.0)
    assert report["failed"] == 0 and report["error"] is None, report


def test_sandboxes_that_cannot_start_are_counted_failed_with_the_reason() -> None:
    report = run_floor(3, 2, 0.1, bwrap="/nonexistent/bwrap")
    assert report["failed"] == 3
    assert "/nonexistent/bwrap" in report["error"] and "\n" not in report["error"]
