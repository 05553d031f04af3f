"""`corral bench fleet` runs end to end with tiny numbers and prints every field.

Timings are not asserted (they live in bench/); only that the run works and reports.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from tests.e2e.conftest import CORRAL

FIELDS = (
    "agents",
    "steps",
    "wall_s",
    "ideal_s",
    "steps_per_s",
    "sched_delay_p50_ms",
    "sched_delay_p99_ms",
    "peak_rss_mb",
    "rss_per_agent_mb",
    "failed",
)


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CORRAL, "bench", "fleet", *args], capture_output=True, text=True, timeout=120, cwd=cwd
    )


def test_fleet_json_reports_every_field(tmp_path: Path) -> None:
    p = _run(
        "--agents",
        "3",
        "--steps",
        "2",
        "--latency",
        "0.05",
        "--sandbox",
        "local",
        "--no-baseline",
        "--json",
        cwd=tmp_path,
    )
    assert p.returncode == 0, p.stderr
    report = json.loads(p.stdout.strip().splitlines()[-1])
    for field in FIELDS:
        assert field in report, field
    assert report["agents"] == 3 and report["steps"] == 2
    assert report["failed"] == 0, report
    assert report["model_requests"] == 6  # one model call per step, all through the gateway
    assert report["sched_delay_samples"] == 6  # every step's command ran and was timed
    # Every agent's first command ran after the start and within the run.
    assert 0 < report["first_command_p50_s"] <= report["first_command_last_s"] <= report["wall_s"]


@pytest.mark.bwrap
def test_fleet_with_two_worker_processes_sharing_the_gateway(tmp_path: Path) -> None:
    p = _run("--agents", "6", "--steps", "2", "--latency", "0.05", "--workers", "2",
             "--no-baseline", "--json", cwd=tmp_path)  # fmt: skip
    assert p.returncode == 0, p.stderr
    report = json.loads(p.stdout.strip().splitlines()[-1])
    assert report["workers"] == 2 and report["failed"] == 0 and report["error"] is None, report
    # Every call crossed the shared gateway service to the provider; every step was timed
    # in the worker process that ran it.
    assert report["model_requests"] == 12 and report["sched_delay_samples"] == 12
    assert 0 < report["first_command_last_s"] <= report["wall_s"]  # from the workers' reports
    assert report["cpu_children_s"] > 0  # the work ran in the worker processes


@pytest.mark.bwrap
def test_fleet_text_output_in_bwrap(tmp_path: Path) -> None:
    p = _run("--agents", "2", "--steps", "1", "--latency", "0", "--no-baseline", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "failed: 0" in p.stdout
    assert "steps_per_s:" in p.stdout
    assert "bare-sandbox floor wall_s:" in p.stdout and "wall_over_floor:" in p.stdout


@pytest.mark.bwrap
def test_fleet_json_holds_the_bare_sandbox_floor_and_the_ratio(tmp_path: Path) -> None:
    p = _run("--agents", "3", "--steps", "2", "--latency", "0.05", "--no-baseline", "--json",
             cwd=tmp_path)  # fmt: skip
    assert p.returncode == 0, p.stderr
    report = json.loads(p.stdout.strip().splitlines()[-1])
    floor = report["floor"]
    assert floor["agents"] == 3 and floor["failed"] == 0 and floor["error"] is None, floor
    assert report["wall_over_floor"] == round(report["wall_s"] / floor["wall_s"], 3)


def test_no_floor_for_sandboxes_other_than_bwrap(tmp_path: Path) -> None:
    p = _run("--agents", "1", "--steps", "1", "--latency", "0", "--sandbox", "local",
             "--no-baseline", "--json", cwd=tmp_path)  # fmt: skip
    assert p.returncode == 0, p.stderr
    report = json.loads(p.stdout.strip().splitlines()[-1])
    assert "floor" not in report and "wall_over_floor" not in report


def test_unknown_sandbox_is_one_line_error(tmp_path: Path) -> None:
    p = _run("--agents", "1", "--sandbox", "vm", "--no-baseline", cwd=tmp_path)
    assert p.returncode == 2
    assert "unknown sandbox" in p.stderr
