"""The multi-process fleet benchmark's parent: what it makes of its workers' reports,
and that it neither hangs nor leaves workers behind when something fails."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from corral.bench import fleet
from corral.bench.fleet import FleetParams, run_fleet


def test_worker_reports_merge_delays_cpu_and_failures() -> None:
    good = json.dumps({"delays": [0.1, 0.2], "firsts": [5.0, 6.0], "error": None,
                       "cpu_user_s": 2.0, "cpu_sys_s": 0.5})  # fmt: skip
    crashed = json.dumps({"delays": [0.3], "error": "worker crashed: X", "cpu_user_s": 1.0,
                          "cpu_sys_s": 0.25})  # fmt: skip
    merged = fleet.merge_worker_reports(
        [(0, f"noise\n{good}\n".encode()), (1, crashed.encode()), (-9, b""), (0, b"[1, 2]\n")]
    )
    assert sorted(merged.delays) == [0.1, 0.2, 0.3]
    assert sorted(merged.firsts) == [5.0, 6.0]  # a report without them adds none
    assert (merged.cpu_user, merged.cpu_sys) == (3.0, 0.75)
    assert merged.errors == [
        "worker crashed: X",
        "a worker process exited -9 without a report",
        "a worker process exited 0 without a report",
    ]


async def test_a_gateway_service_that_cannot_start_is_an_error_not_a_hang(
    tmp_path: Path,
) -> None:
    home = tmp_path / ("x" * 120)  # too long a path for a Unix socket
    params = FleetParams(agents=2, steps=1, latency=0.0, sandbox="local", workers=2)
    with pytest.raises(OSError) as err:
        await asyncio.wait_for(run_fleet(params, home=home), 30)
    assert not isinstance(err.value, TimeoutError)  # (an OSError too)


async def test_workers_past_the_deadline_are_killed_and_reported(tmp_path: Path) -> None:
    """A hung worker process must not hang the benchmark (here: slower than allowed)."""
    params = FleetParams(agents=2, steps=3, latency=2.0, sandbox="local", workers=2,
                         deadline_s=1.0)  # fmt: skip
    report = await asyncio.wait_for(run_fleet(params, home=tmp_path), 60)
    assert "did not finish within 1s (killed)" in (report["error"] or "")
    assert report["wall_s"] < 30
