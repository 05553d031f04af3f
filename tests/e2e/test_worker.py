"""`corral worker`: a long-running fleet process that picks campaigns up from the store,
serves Prometheus metrics, and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import yaml
from tests.e2e.conftest import CORRAL, DEMO, Cli, make_repo


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_worker_runs_campaigns_and_serves_metrics(cli: Cli, tmp_path: Path) -> None:
    # A campaign created by one process (then interrupted before it ran anything)...
    tasks = [{"id": "shop", "repo": str(make_repo(tmp_path / "shop")), "instructions": "fix",
              "model": f"scripted:{DEMO / 'agent.yaml'}"}]  # fmt: skip
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump({"name": "w", "tasks": tasks}))
    code, out = cli.json("campaign", "run", str(f), "--concurrency", "1")
    assert code == 0
    assert cli("retry", out["tasks"][0]["id"]).returncode == 2  # succeeded: nothing to retry
    cli.home.mkdir(exist_ok=True)
    f2 = tmp_path / "c2.yaml"
    tasks[0]["id"] = "shop2"
    tasks[0]["repo"] = str(make_repo(tmp_path / "shop2"))
    f2.write_text(yaml.safe_dump({"name": "w2", "tasks": tasks}))
    # ... and a worker that finds work in the store on its own.
    port = _free_port()
    worker = subprocess.Popen(
        [CORRAL, "worker", "--metrics-port", str(port), "--home", str(cli.home)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli.env, text=True,
    )  # fmt: skip
    try:
        created = subprocess.Popen(
            [CORRAL, "campaign", "run", str(f2), "--json", "--home", str(cli.home)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli.env, text=True,
        )  # fmt: skip
        body = ""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                body = (
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5)
                    .read()
                    .decode()
                )
            except OSError:
                time.sleep(0.3)
                continue
            if 'corral_tasks{state="succeeded"} 2.0' in body:
                break
            time.sleep(0.5)
        assert 'corral_tasks{state="succeeded"} 2.0' in body, body[-2000:]
        assert "corral_attempts_total" in body and "corral_queue_wait_seconds_bucket" in body
        assert "corral_tokens_total" in body and "corral_cost_usd_total" in body
        out2, _ = created.communicate(timeout=120)
        assert json.loads(out2)["counts"] == {"succeeded": 1}
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            raise
    assert worker.returncode == 0, worker.stderr.read() if worker.stderr else ""
