"""The baseline: the same fleet workload through mini-swe-agent, in its batch style.

mini-swe-agent's batch runner gives each instance a thread from a ThreadPoolExecutor
(`--workers`), running `DefaultAgent` with a `LitellmModel` and a `LocalEnvironment`
(no sandbox: `subprocess.Popen(shell=True)` per command). Here its model is litellm
pointed at the same fake provider (its own process), answering after the same latency
with the same script, so both sides pay for real HTTP; one worker thread per agent, its best case.

It runs in a child process (`python -m corral.bench.mini ...`, JSON on stdout) so its
memory is measured on its own. mini-swe-agent is an optional dependency (`bench` extra).
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from corral.bench.provider import ProviderProcess
from corral.bench.rss import RssSampler
from corral.bench.workload import make_repo, task_text


def available() -> bool:
    try:
        importlib.import_module("minisweagent")
    except ImportError:
        return False
    return True


def _one(agent: str, steps: int, base_url: str, repo: Path) -> str:
    default = importlib.import_module("minisweagent.agents.default")
    local = importlib.import_module("minisweagent.environments.local")
    litellm_model = importlib.import_module("minisweagent.models.litellm_model")
    model = litellm_model.LitellmModel(
        model_name="openai/fake-model",
        model_kwargs={"api_base": base_url, "api_key": "sk-fake", "timeout": 120},
        cost_tracking="ignore_errors",
    )
    runner = default.DefaultAgent(
        model,
        local.LocalEnvironment(cwd=str(repo)),
        system_template="You are a helpful assistant.",
        instance_template="{{task}}",
        step_limit=steps + 2,
        cost_limit=0,
    )
    info = runner.run(task_text(agent))
    return str(info.get("exit_status", "unknown"))


def run_baseline(agents: int, steps: int, latency: float) -> dict[str, Any]:
    """Run the baseline in this process; returns the same fields as corral's report."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("MSWEA_COST_TRACKING", "ignore_errors")
    importlib.import_module("minisweagent.agents.default")  # imports outside the timing
    importlib.import_module("minisweagent.models.litellm_model")
    with tempfile.TemporaryDirectory(prefix="corral-mini-") as tmp:
        repo = make_repo(Path(tmp))
        with ProviderProcess(steps=steps, latency=latency) as provider:
            sampler = RssSampler().start()
            cpu0 = os.times()
            t0 = time.perf_counter()
            with ThreadPoolExecutor(max_workers=agents) as pool:
                futures = [
                    pool.submit(_one, f"a{i:05d}", steps, provider.base_url, repo)
                    for i in range(agents)
                ]
                statuses = []
                for f in futures:
                    try:
                        statuses.append(f.result())
                    except Exception as exc:
                        statuses.append(type(exc).__name__)
            wall = time.perf_counter() - t0
            cpu1 = os.times()
            peak = sampler.stop()
    requests = provider.requests
    ok = statuses.count("Submitted")
    ideal = steps * latency
    return {
        "system": "mini-swe-agent",
        "agents": agents,
        "steps": steps,
        "latency_s": latency,
        "sandbox": "none (LocalEnvironment)",
        "model": "LitellmModel -> fake provider (real HTTP)",
        "wall_s": round(wall, 3),
        "ideal_s": round(ideal, 3),
        "wall_over_ideal": round(wall / ideal, 3) if ideal else None,
        "steps_per_s": round(agents * steps / wall, 1),
        "peak_rss_mb": peak.peak_mb,
        "rss_per_agent_mb": round(peak.peak_mb / agents, 2),
        "procs_at_peak": peak.procs_at_peak,
        "cpu_user_s": round(cpu1.user - cpu0.user, 2),
        "cpu_sys_s": round(cpu1.system - cpu0.system, 2),
        "failed": agents - ok,
        "exit_statuses": {s: statuses.count(s) for s in sorted(set(statuses))},
        "model_requests": requests,
    }


def run_baseline_subprocess(
    agents: int, steps: int, latency: float, timeout: float = 1800
) -> dict[str, Any]:
    """The baseline in a fresh interpreter, so neither side's memory counts for the other."""
    cmd = [sys.executable, "-m", "corral.bench.mini", str(agents), str(steps), str(latency)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        tail = (done.stderr or "").strip().splitlines()[-3:]
        return {"system": "mini-swe-agent", "error": " | ".join(tail) or "exit code != 0"}
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


if __name__ == "__main__":
    n, s, lat = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    print(json.dumps(run_baseline(n, s, lat)))
