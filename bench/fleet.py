"""Fleet scale curve: `corral bench fleet` at 10, 100, 1,000 and 2,000 agents, each in a
fresh process, with mini-swe-agent's batch style and the bare sandboxes' floor (the same
bwrap sandboxes with nothing of corral around them) measured beside it in the same run.

Every size runs the shipped configuration; a size that crashes is reported as such (its
failures and error), not dropped. Writes bench/results/fleet.json; asserts nothing.

    .venv/bin/python bench/fleet.py [--sizes 10,100,1000,2000] [--baseline-max 1000]
        [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def run_size(
    agents: int, steps: int, latency: float, sandbox: str, baseline: bool, timeout: float,
    workers: int = 1,
) -> dict[str, Any]:  # fmt: skip
    cmd = [
        str(Path(sys.executable).parent / "corral"),
        "bench",
        "fleet",
        "--agents",
        str(agents),
        "--steps",
        str(steps),
        "--latency",
        str(latency),
        "--sandbox",
        sandbox,
        "--json",
        "--baseline" if baseline else "--no-baseline",
        "--workers",
        str(workers),
    ]
    t0 = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"agents": agents, "steps": steps, "error": f"timed out after {timeout:g}s"}
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = " | ".join(done.stderr.strip().splitlines()[-2:])
        return {"agents": agents, "steps": steps, "error": tail or f"exit {done.returncode}"}
    out: dict[str, Any] = json.loads(lines[-1])
    out["process_s"] = round(time.perf_counter() - t0, 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10,100,1000,2000")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--latency", type=float, default=1.0)
    ap.add_argument("--sandbox", default="bwrap")
    ap.add_argument(
        "--baseline-max",
        type=int,
        default=1000,
        help="run mini-swe-agent only up to this many agents",
    )
    ap.add_argument(
        "--workers-at",
        default="1000",
        help="sizes also run with 2 worker processes sharing one gateway service",
    )
    ap.add_argument("--timeout", type=float, default=600.0, help="per size, seconds")
    ap.add_argument("--quick", action="store_true", help="3 agents, 3 steps, short latency")
    ap.add_argument("--out", type=Path, default=RESULTS, help="directory for the JSON")
    args = ap.parse_args()
    if args.quick:
        args.sizes, args.steps, args.latency, args.baseline_max = "3", 3, 0.2, 3
        args.workers_at = "3"
    plan = [(int(s), 1) for s in args.sizes.split(",")]
    plan += [(int(s), 2) for s in args.workers_at.split(",") if s]
    runs = []
    for n, workers in plan:
        print(f"fleet: {n} agents x {args.steps} steps, {workers} worker process(es)...",
              file=sys.stderr, flush=True)  # fmt: skip
        baseline = n <= args.baseline_max and workers == 1
        run = run_size(n, args.steps, args.latency, args.sandbox, baseline, args.timeout, workers)
        print(
            json.dumps(
                {
                    k: run.get(k)
                    for k in (
                        "agents",
                        "workers",
                        "wall_s",
                        "steps_per_s",
                        "failed",
                        "throughput_vs_baseline",
                        "wall_over_floor",
                        "error",
                    )
                }
            ),
            file=sys.stderr,
            flush=True,
        )
        runs.append(run)
    out = {
        "benchmark": "fleet",
        "steps": args.steps,
        "latency_s": args.latency,
        "sandbox": args.sandbox,
        "goals": {
            "agents": 1000,
            "wall_over_ideal_max": 1.5,
            "failed": 0,
            "throughput_vs_mini_swe_agent_min": 5,
        },
        "runs": runs,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fleet.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
