"""Every script in bench/ runs with `--quick` into a scratch directory and writes the keys
bench/report.py reads; the report then renders them all. Timings are never asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.bwrap, pytest.mark.timeout(600)]

# bench script -> the JSON file it writes
BENCHES = {
    "store_throughput": "store_throughput",
    "scheduler": "scheduler",
    "agent_step": "agent_step",
    "gateway_ratelimit": "gateway",
    "cve_scan": "cve_scan",
    "fleet": "fleet",
    "crash_recovery": "crash_recovery",
    "sandbox_start": "sandbox",
}
FLEET_RUN = ("agents", "wall_s", "ideal_s", "wall_over_ideal", "steps_per_s", "failed")
CRASH = (
    "running_at_kill", "answers_recorded_at_kill", "cold_start_all_running_s", "reaped_s",
    "all_running_again_s", "all_finished_s", "recovery_vs_cold_start", "provider_requests",
    "work_lost_steps", "redone_in_flight", "deliveries", "duplicate_side_effects",
    "tasks_finished_once", "overlapping_attempts", "checks",
)  # fmt: skip


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Each bench once, one after the other (they measure; running them side by side on
    two cores would only slow them all)."""
    out = tmp_path_factory.mktemp("bench-results")
    runs: dict[str, Any] = {"dir": out}
    for script, name in BENCHES.items():
        p = subprocess.run(
            [sys.executable, str(ROOT / "bench" / f"{script}.py"), "--quick", "--out", str(out)],
            capture_output=True, text=True, timeout=180, cwd=ROOT,
        )  # fmt: skip
        path = out / f"{name}.json"
        runs[script] = (p, json.loads(path.read_text()) if path.is_file() else None)
    return runs


def _ok(results: dict[str, Any], script: str) -> dict[str, Any]:
    proc, data = results[script]
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert data is not None, f"bench/{script}.py wrote no JSON"
    assert data["benchmark"] == script
    return data


def test_store_throughput(results: dict[str, Any]) -> None:
    data = _ok(results, "store_throughput")
    for store in ("sqlite", "postgres"):
        assert data[store]["events"] == 100, data
        assert data[store]["events_per_s"] > 0


def test_scheduler(results: dict[str, Any]) -> None:
    data = _ok(results, "scheduler")
    for store in ("sqlite", "postgres"):
        row = data[store]
        assert row["tasks"] == 200
        assert {"wall_s", "tasks_per_s", "admission_delay_p50_s", "admission_delay_p99_s"} <= set(
            row
        )
    assert data["ray"] is None  # --quick skips starting Ray


def test_agent_step(results: dict[str, Any]) -> None:
    data = _ok(results, "agent_step")
    for key in ("bwrap_start_p50_ms", "bwrap_roundtrip_p50_ms", "corral_step_ms",
                "mini_swe_agent_step_ms", "speedup_vs_mini_swe_agent"):  # fmt: skip
        assert data[key] > 0, key


def test_gateway_ratelimit(results: dict[str, Any]) -> None:
    data = _ok(results, "gateway_ratelimit")
    for system in ("corral", "litellm_router"):
        rate, budget = data[system]["ratelimit"], data[system]["budget"]
        assert {"requests", "rate_limited", "failed_tasks", "utilization"} <= set(rate)
        assert {"spent_usd", "overshoot_usd", "rejected_calls"} <= set(budget)
    assert data["corral"]["budget"]["overshoot_usd"] == 0  # reserved before each call


def test_cve_scan(results: dict[str, Any]) -> None:
    data = _ok(results, "cve_scan")
    assert data["repos"] == 20
    assert data["cold"]["errors"] == 0 and data["warm"]["findings"] == data["cold"]["findings"]


def test_fleet(results: dict[str, Any]) -> None:
    data = _ok(results, "fleet")
    one, two = data["runs"]  # the size with one worker process, then with two
    for run in (one, two):
        assert "error" not in run or run["error"] is None, run
        for key in FLEET_RUN:
            assert key in run, key
        assert run["failed"] == 0
    assert (one["workers"], two["workers"]) == (1, 2)
    assert one["baseline"]["steps_per_s"] > 0  # mini-swe-agent ran beside it
    for run in (one, two):  # and the bare sandboxes' floor
        assert run["floor"]["failed"] == 0 and run["wall_over_floor"] > 0, run["floor"]


def test_crash_recovery(results: dict[str, Any]) -> None:
    data = _ok(results, "crash_recovery")
    for key in CRASH:
        assert key in data, key
    n = data["agents"]
    assert data["error"] is None
    assert data["running_at_kill"] == n  # killed with every agent mid-run
    assert data["answers_recorded_at_kill"] >= 2 * n
    assert data["all_running_again_s"] is not None
    assert data["task_states"] == {"succeeded": n}
    assert data["deliveries"] == data["side_effect_rows"] == data["patch_files"] == n
    checks = data["checks"]
    assert checks["no_duplicate_side_effects"] and checks["each_task_finished_once"], checks
    # What a kill -9 costs in model calls is measured, not asserted (see docs/benchmarks.md).
    assert data["work_lost_steps"] <= data["answers_recorded_at_kill"]


def test_sandbox_start(results: dict[str, Any]) -> None:
    data = _ok(results, "sandbox_start")
    kinds = ["bwrap"] if "error" in data["docker"] else ["bwrap", "docker"]
    for kind in kinds:
        section = data[kind]
        for key in ("cold_start", "cold_start_first_exec", "warm_claim", "roundtrip"):
            assert section[key]["p50_ms"] > 0 and section["x_subprocess"][key] > 0, key
        idle = section["idle_memory"]
        assert idle["alive"] > 0 and len(idle["samples_mb"]) >= 3
    if "docker" in kinds:
        assert data["docker"]["plain_docker_exec"]["p50_ms"] > 0


def test_report_renders_every_section(results: dict[str, Any], tmp_path: Path) -> None:
    p = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "report.py"), "--results", str(results["dir"]),
         "--docs", str(tmp_path)],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr
    text = (tmp_path / "benchmarks.md").read_text()
    assert "Crash recovery" in text and "| work lost: recorded answers asked again (none) |" in text
    assert (tmp_path / "img" / "crash_recovery_ratio.png").is_file()
    sections = text.split("\n## ")
    not_run = [s.splitlines()[0] for s in sections if "\nnot run" in s]
    assert not_run == [], not_run
    assert "| floor_wall_s |" in text or "| floor_wall_s" in text  # the fleet's floor column
