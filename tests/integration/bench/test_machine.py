"""The benchmark notices processes of the sandbox user left from earlier runs."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from tests.e2e.conftest import CORRAL

from corral.bench.machine import sandbox_user_pids, wait_for_sandbox_user
from corral.sandbox.base import SANDBOX_UID

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="starts a process as another user")


def _stray() -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sleep", "60"], user=SANDBOX_UID, group=SANDBOX_UID, extra_groups=[])


def test_a_process_of_the_sandbox_user_is_found_and_waited_for() -> None:
    proc = _stray()
    try:
        assert proc.pid in sandbox_user_pids()
        assert not wait_for_sandbox_user(0.3)  # it is still there
    finally:
        proc.kill()
        proc.wait()
    assert proc.pid not in sandbox_user_pids()


def test_the_fleet_benchmark_warns_of_them_and_reports_them(tmp_path: Path) -> None:
    proc = _stray()
    try:
        p = subprocess.run(
            [CORRAL, "bench", "fleet", "--agents", "1", "--steps", "1", "--latency", "0",
             "--sandbox", "local", "--no-baseline", "--json"],
            capture_output=True, text=True, timeout=120, cwd=tmp_path,
        )  # fmt: skip
    finally:
        proc.kill()
        proc.wait()
    assert p.returncode == 0, p.stderr
    assert "processes of the sandbox user were already running" in p.stderr
    report = json.loads(p.stdout.strip().splitlines()[-1])
    assert report["stray_sandbox_processes_before"] >= 1
