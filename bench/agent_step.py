"""Per-step cost of the agent loop: corral (bwrap sandbox) vs mini-swe-agent (no sandbox).

The same 50-step scripted trajectory (each step a small bash command) runs through
corral's full path (scripted model → loop → bwrap sandbox → SQLite event log) and through
mini-swe-agent's DefaultAgent + LocalEnvironment, in the same process and run. Reported as
medians and as ratios; nothing here is asserted.

    .venv/bin/python bench/agent_step.py [--steps 50] [--runs 5] [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from corral.agent.config import AgentConfig, AgentLimits
from corral.bench import workload
from corral.models import ScriptedModel
from corral.orchestrator import run_task
from corral.sandbox import BwrapSandbox
from corral.store import Store

RESULTS = Path(__file__).resolve().parent / "results"


def commands(steps: int) -> list[str]:
    return [f"echo step {i} && ls | head -n 3" for i in range(steps)]


async def sandbox_timings(repo: Path, starts: int, execs: int) -> dict[str, float]:
    start_s: list[float] = []
    for _ in range(starts):
        box = BwrapSandbox(repo)
        t = time.perf_counter()
        await box.start()
        start_s.append(time.perf_counter() - t)
        await box.close()
    box = BwrapSandbox(repo)
    await box.start()
    rtt: list[float] = []
    for _ in range(execs):
        t = time.perf_counter()
        await box.exec("true", 10)
        rtt.append(time.perf_counter() - t)
    # The trajectory's own commands, alone: the floor under any agent's step here.
    own: list[float] = []
    for command in commands(execs):
        t = time.perf_counter()
        await box.exec(command, 10)
        own.append(time.perf_counter() - t)
    await box.close()
    return {
        "start_p50_ms": statistics.median(start_s) * 1000,
        "roundtrip_p50_ms": statistics.median(rtt) * 1000,
        "command_p50_ms": statistics.median(own) * 1000,
        "subprocess_p50_ms": subprocess_p50_ms(repo, execs),
    }


def subprocess_p50_ms(repo: Path, n: int) -> float:
    """The trajectory's commands as mini-swe-agent's LocalEnvironment runs them."""
    spawned: list[float] = []
    for command in commands(n):
        t = time.perf_counter()
        subprocess.run(command, shell=True, cwd=repo, capture_output=True, check=False)
        spawned.append(time.perf_counter() - t)
    return statistics.median(spawned) * 1000


async def corral_run(repo: Path, home: Path, steps: int, store: Store) -> float:
    turns: list[dict[str, Any]] = [
        {"tool_calls": [{"tool": "bash", "args": {"command": c}}]} for c in commands(steps)
    ]
    turns.append({"tool_calls": [{"tool": "finish", "args": {"message": "done"}}]})
    model = ScriptedModel.from_turns(turns)
    config = AgentConfig(limits=AgentLimits(max_steps=steps + 5), repo_map_tokens=500)
    t = time.perf_counter()
    result = await run_task("bench", repo, model=model, config=config, store=store, home=home)
    elapsed = time.perf_counter() - t
    assert result.status.value == "finished", result.reason
    return elapsed / (steps + 1)


def mini_run(repo: Path, steps: int) -> float:
    from minisweagent.agents.default import DefaultAgent
    from minisweagent.environments.local import LocalEnvironment
    from minisweagent.models.test_models import DeterministicModel, make_output

    outputs = [make_output(f"step {i}", [{"command": c}]) for i, c in enumerate(commands(steps))]
    outputs.append(make_output("done", [{"command": "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"}]))
    agent = DefaultAgent(
        DeterministicModel(outputs=outputs, cost_per_call=0.0),
        LocalEnvironment(cwd=str(repo)),
        system_template="You are a helpful assistant.",
        instance_template="{{task}}",
        step_limit=steps + 5,
        cost_limit=0,
    )
    t = time.perf_counter()
    info = agent.run("bench")
    elapsed = time.perf_counter() - t
    assert info.get("exit_status") == "Submitted", info
    return elapsed / (steps + 1)


async def main_async(steps: int, runs: int, starts: int = 30, execs: int = 300) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        repo = workload.make_repo(root, files=20)
        sb = await sandbox_timings(repo, starts=starts, execs=execs)
        store = await Store.open(home=root / ".corral")
        corral_steps = [await corral_run(repo, root / ".corral", steps, store) for _ in range(runs)]
        await store.close()
        mini_steps = [mini_run(repo, steps) for _ in range(runs)]
    corral_ms = statistics.median(corral_steps) * 1000
    mini_ms = statistics.median(mini_steps) * 1000
    return {
        "benchmark": "agent_step",
        "machine": f"{platform.node()} {platform.machine()} {platform.python_version()}",
        "steps": steps,
        "runs": runs,
        "bwrap_start_p50_ms": round(sb["start_p50_ms"], 3),
        "bwrap_roundtrip_p50_ms": round(sb["roundtrip_p50_ms"], 3),
        "corral_step_ms": round(corral_ms, 3),
        "mini_swe_agent_step_ms": round(mini_ms, 3),
        # Each step's command alone (in the sandbox's shell; as a subprocess for mini),
        # and what each loop adds on top of it.
        "command_in_sandbox_p50_ms": round(sb["command_p50_ms"], 3),
        "command_as_subprocess_p50_ms": round(sb["subprocess_p50_ms"], 3),
        "corral_loop_overhead_ms": round(corral_ms - sb["command_p50_ms"], 3),
        "mini_loop_overhead_ms": round(mini_ms - sb["subprocess_p50_ms"], 3),
        "speedup_vs_mini_swe_agent": round(mini_ms / corral_ms, 2),
        "goals": {"start_ms": 15, "roundtrip_ms": 2, "speedup": 3},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", type=Path, default=RESULTS, help="directory for the JSON")
    ap.add_argument("--quick", action="store_true", help="5 steps, 1 run, few sandbox starts")
    args = ap.parse_args()
    if args.quick:
        out = asyncio.run(main_async(5, 1, starts=3, execs=20))
    else:
        out = asyncio.run(main_async(args.steps, args.runs))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "agent_step.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
