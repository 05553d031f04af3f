"""Scheduler throughput: no-op tasks through scheduler + executor, SQLite and Postgres,
beside Ray tasks started in the same run. Reports ratios; asserts nothing.

    .venv/bin/python bench/scheduler.py [--tasks 2000] [--concurrency 64] [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from corral.domain import CampaignSpec, TaskSpec
from corral.orchestrator.executor import SimulatedExecutor
from corral.orchestrator.settings import WorkerSettings
from corral.orchestrator.worker import Worker
from corral.store import Store

RESULTS = Path(__file__).resolve().parent / "results"
PG = os.environ.get("CORRAL_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def spec(n: int) -> CampaignSpec:
    return CampaignSpec(
        name="bench",
        tasks=tuple(
            TaskSpec(id=f"t{i:05d}", repo="/r", instructions="noop", model="scripted:/x")
            for i in range(n)
        ),
    )


async def run_store(url: str | None, home: Path, n: int, concurrency: int) -> dict[str, Any]:
    store = await Store.open(url, home=home)
    cid = await store.create_campaign(spec(n))
    worker = Worker(store, WorkerSettings(concurrency=concurrency, poll_s=0.01), campaign_id=cid)
    ex = SimulatedExecutor(store, on_done=worker.wake)
    worker.executor = ex
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await worker.run(until_done=True)
    wall = loop.time() - t0
    tasks = {t.id: t for t in await store.tasks(campaign_id=cid)}
    delays: list[float] = []
    for tid in list(tasks)[: min(n, 500)]:
        for a in await store.attempts_of(tid):
            delays.append((a["created_at"] - tasks[tid].created_at).total_seconds())
    delays.sort()
    await store.close()
    return {
        "tasks": n,
        "wall_s": round(wall, 3),
        "tasks_per_s": round(n / wall, 1),
        "admission_delay_p50_s": round(statistics.median(delays), 4),
        "admission_delay_p99_s": round(delays[int(len(delays) * 0.99) - 1], 4),
    }


def run_ray(n: int) -> dict[str, Any] | None:
    try:
        import ray
    except ImportError:
        return None
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)

    @ray.remote
    def noop() -> None:
        return None

    ray.get([noop.remote() for _ in range(50)])  # warm the workers
    t0 = time.perf_counter()
    ray.get([noop.remote() for _ in range(n)])
    wall = time.perf_counter() - t0
    ray.shutdown()
    return {"tasks": n, "wall_s": round(wall, 3), "tasks_per_s": round(n / wall, 1)}


async def main_async(n: int, concurrency: int, with_ray: bool = True) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        sqlite = await run_store(None, Path(tmp), n, concurrency)
    import psycopg

    name = f"corral_bench_{os.getpid()}"
    with psycopg.connect(PG, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        pg = await run_store(PG.rsplit("/", 1)[0] + "/" + name, Path("/tmp"), n, concurrency)
    finally:
        with psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    ray = run_ray(n) if with_ray else None  # starting Ray alone takes ~10 s here
    out: dict[str, Any] = {
        "benchmark": "scheduler",
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus",
        "concurrency": concurrency,
        "sqlite": sqlite,
        "postgres": pg,
        "ray": ray,
        "goal_sqlite_tasks_per_s": 500,
    }
    if ray:
        out["sqlite_vs_ray"] = round(sqlite["tasks_per_s"] / ray["tasks_per_s"], 3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--out", type=Path, default=RESULTS, help="directory for the JSON")
    ap.add_argument("--quick", action="store_true", help="200 tasks, concurrency 16, no Ray")
    args = ap.parse_args()
    if args.quick:
        args.tasks, args.concurrency = 200, 16
    out = asyncio.run(main_async(args.tasks, args.concurrency, with_ray=not args.quick))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scheduler.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
