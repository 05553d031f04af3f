"""Sandbox start and command round trip: bwrap, Docker, and a plain subprocess, one run.

Reports p50 (and p90) of:
- cold start (nothing pre-started) and warm claim (from a SandboxPool) per backend;
- command round trip over the persistent shell (`true`), and for Docker also a plain
  `docker exec CONTAINER true` per command, the usual way;
- a plain `asyncio.create_subprocess_exec("true")` as the floor;
- memory per idle sandbox with many alive (MemAvailable drop / count).
Writes bench/results/sandbox.json. Nothing here is asserted.

    .venv/bin/python bench/sandbox_start.py [--starts 40] [--alive 500] [--docker-alive 40]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from corral.sandbox import BaseSandbox, SandboxLimits, SandboxPool, open_sandbox
from corral.sandbox.docker_engine import docker

RESULTS = Path(__file__).resolve().parent / "results"
LIMITS = SandboxLimits(memory_mb=512, pids=256, workspace_mb=256, tmp_mb=64)
GOALS = {"bwrap_start_ms": 15, "bwrap_roundtrip_ms": 2, "docker_claim_ms": 50,
         "docker_roundtrip_ms": 10}  # fmt: skip


def make_repo(root: Path) -> Path:
    repo = root / "repo"
    repo.mkdir()
    for i in range(20):
        (repo / f"mod{i}.py").write_text(f"def f{i}(x):\n    return x + {i}\n")
    return repo


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 3)


def stats(values: list[float]) -> dict[str, float]:
    return {"p50_ms": round(statistics.median(values) * 1000, 3), "p90_ms": p(values, 0.9)}


async def timed(n: int, step: Callable[[], Awaitable[Any]]) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        await step()
        out.append(time.perf_counter() - t)
    return out


async def cold_starts(kind: str, repo: Path, n: int) -> list[float]:
    times = []
    for _ in range(n):
        sb = open_sandbox(kind, repo, limits=LIMITS)
        t = time.perf_counter()
        await sb.start()
        times.append(time.perf_counter() - t)
        await sb.close()
    return times


async def warm_claims(kind: str, repo: Path, n: int) -> list[float]:
    times = []
    async with SandboxPool(kind, size=2, limits=LIMITS) as pool:
        for _ in range(n):
            await pool.wait_full(120)
            t = time.perf_counter()
            sb = await pool.claim(repo)
            times.append(time.perf_counter() - t)
            await sb.close()
    return times


async def roundtrips(sb: BaseSandbox, n: int) -> list[float]:
    await sb.exec("true", 10)
    return await timed(n, lambda: sb.exec("true", 10))


def mem_available_kb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1])
    return 0


async def idle_memory(kind: str, repo: Path, count: int) -> dict[str, float]:
    await asyncio.sleep(0.5)
    before = mem_available_kb()
    boxes: list[BaseSandbox] = []
    try:
        for _ in range(count):
            sb = open_sandbox(kind, repo, limits=LIMITS)
            await sb.start()
            await sb.exec("true", 30)
            boxes.append(sb)
        await asyncio.sleep(1.0)
        used = before - mem_available_kb()
    finally:
        await asyncio.gather(*(b.close() for b in boxes), return_exceptions=True)
    return {"alive": count, "mb_per_sandbox": round(used / 1024 / max(1, count), 2)}


async def plain_subprocess(n: int) -> list[float]:
    async def one() -> None:
        proc = await asyncio.create_subprocess_exec("true")
        await proc.wait()

    return await timed(n, one)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="corral-bench-"))
    repo = make_repo(root)
    out: dict[str, Any] = {"benchmark": "sandbox_start", "machine": platform.node(),
                           "python": platform.python_version(), "goals": GOALS}  # fmt: skip
    out["subprocess_true"] = stats(await plain_subprocess(args.execs))
    for kind in ("bwrap", "docker"):
        if kind == "docker" and args.no_docker:
            continue
        section: dict[str, Any] = {}
        n = args.starts if kind == "bwrap" else max(5, args.starts // 4)
        await cold_starts(kind, repo, 2)  # warm caches (engine check, image, page cache)
        section["cold_start"] = stats(await cold_starts(kind, repo, n))
        section["warm_claim"] = stats(await warm_claims(kind, repo, n))
        sb = open_sandbox(kind, repo, limits=LIMITS)
        await sb.start()
        try:
            section["roundtrip"] = stats(await roundtrips(sb, args.execs))
            cid = getattr(sb, "container_id", None)
            if cid:

                async def plain_exec(cid: str = cid) -> None:
                    await docker("exec", cid, "true")

                section["plain_docker_exec"] = stats(
                    await timed(max(10, args.execs // 10), plain_exec)
                )
        finally:
            await sb.close()
        alive = args.alive if kind == "bwrap" else args.docker_alive
        section["idle_memory"] = await idle_memory(kind, repo, alive)
        out[kind] = section
        print(kind, json.dumps(section))
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--starts", type=int, default=40)
    ap.add_argument("--execs", type=int, default=300)
    ap.add_argument("--alive", type=int, default=500)
    ap.add_argument("--docker-alive", type=int, default=40)
    ap.add_argument("--no-docker", action="store_true")
    result = asyncio.run(main(ap.parse_args()))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sandbox.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
