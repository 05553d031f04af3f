"""Sandbox start and command round trip: bwrap, Docker, and a plain subprocess, one run.

Reports, per backend, the median over `--repeat` rounds of each round's p50 (p90 too):
- cold start (nothing pre-started; ready for a command), and cold start up to the end of
  a first `true` (that one also waits for the workspace's baseline snapshot);
- warm claim from a SandboxPool; command round trip over the persistent shell (`true`);
  for Docker also a plain `docker exec CONTAINER true`, the usual way;
- the same as ratios to a plain `asyncio.create_subprocess_exec("true")` measured in
  the same round (the floor: one process start, no isolation);
- memory per idle sandbox with many alive: the slope of MemAvailable over the count
  (sampled at 0, 1/4 ... all alive; least squares), the PSS of the sandbox's own
  processes, our own RSS growth, next to a plain idle `bash` (no sandbox); and cold start
  p50 with them all alive (every workspace is a mount, and bwrap reads the mount table).
Writes sandbox.json into `--out` (bench/results). Nothing here is asserted.

    .venv/bin/python bench/sandbox_start.py [--quick] [--repeat 3] [--alive 500]
        [--docker-alive 500] [--no-docker]
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
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from corral.bench import workload
from corral.sandbox import BaseSandbox, SandboxLimits, SandboxPool, open_sandbox
from corral.sandbox.docker_engine import docker, docker_cli, engine_ready
from corral.sandbox.procs import NamespaceScope

RESULTS = Path(__file__).resolve().parent / "results"
LIMITS = SandboxLimits(memory_mb=512, pids=256, workspace_mb=256, tmp_mb=64)
GOALS = {"bwrap_start_ms": 15, "bwrap_roundtrip_ms": 2, "docker_claim_ms": 50,
         "docker_roundtrip_ms": 10}  # fmt: skip


def ms(values: list[float], q: float = 0.5) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 3)


def stats(values: list[float]) -> dict[str, float]:
    return {"p50_ms": round(statistics.median(values) * 1000, 3), "p90_ms": ms(values, 0.9)}


async def timed(n: int, step: Callable[[], Awaitable[Any]]) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        await step()
        out.append(time.perf_counter() - t)
    return out


async def cold_starts(kind: str, repo: Path, n: int) -> tuple[list[float], list[float]]:
    """(until ready, until a first `true` is done); a pause between, as between attempts."""
    ready, first = [], []
    for _ in range(n):
        sb = open_sandbox(kind, repo, limits=LIMITS)
        t = time.perf_counter()
        await sb.start()
        ready.append(time.perf_counter() - t)
        await sb.exec("true", 30)
        first.append(time.perf_counter() - t)
        await sb.close()
        await asyncio.sleep(0.05)
    return ready, first


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


async def plain_subprocess(n: int) -> list[float]:
    async def one() -> None:
        proc = await asyncio.create_subprocess_exec("true")
        await proc.wait()

    return await timed(n, one)


async def one_round(kind: str, repo: Path, args: argparse.Namespace) -> dict[str, Any]:
    floor = stats(await plain_subprocess(args.execs))
    n = args.starts if kind == "bwrap" else max(5, args.starts // 4)
    ready, first = await cold_starts(kind, repo, n)
    out: dict[str, Any] = {"subprocess_true": floor, "cold_start": stats(ready),
                           "cold_start_first_exec": stats(first),
                           "warm_claim": stats(await warm_claims(kind, repo, n))}  # fmt: skip
    sb = open_sandbox(kind, repo, limits=LIMITS)
    await sb.start()
    try:
        await sb.exec("true", 10)
        out["roundtrip"] = stats(await timed(args.execs, lambda: sb.exec("true", 10)))
        cid = getattr(sb, "container_id", None)
        if cid:

            async def plain_exec(cid: str = cid) -> None:
                await docker("exec", cid, "true")

            out["plain_docker_exec"] = stats(await timed(max(10, args.execs // 10), plain_exec))
    finally:
        await sb.close()
    base = floor["p50_ms"]
    out["x_subprocess"] = {k: round(v["p50_ms"] / base, 2) for k, v in out.items()
                           if k != "subprocess_true" and isinstance(v, dict)}  # fmt: skip
    return out


def median_rounds(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per key, the median over rounds (each round's p50/p90 and ratios)."""
    merged: dict[str, Any] = {}
    for key, first in rounds[0].items():
        merged[key] = {
            sub: round(statistics.median(r[key][sub] for r in rounds), 3) for sub in first
        }
    return merged


def mem_available_kb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1])
    return 0


def kb_field(path: str, field: str) -> int:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def sandbox_pids(sb: BaseSandbox) -> list[int]:
    """The sandbox's processes on the host: its namespace, plus bwrap's own process or
    the container's shim (the parent of its init)."""
    scope = getattr(sb._driver, "_scope", None)
    pids = [host for host, _ in NamespaceScope(scope.ns).members()] if scope else []
    proc = getattr(sb, "_proc", None)
    if proc is not None and sb.kind == "bwrap":
        pids.append(proc.pid)
    elif proc is not None:
        pids.append(kb_field(f"/proc/{proc.pid}/status", "PPid"))
    return pids


def slope(points: list[tuple[int, float]]) -> float:
    """Least-squares MB per sandbox from (count, MB used) points."""
    xs, ys = [x for x, _ in points], [y for _, y in points]
    mx, my = statistics.mean(xs), statistics.mean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return round(sum((x - mx) * (y - my) for x, y in points) / den, 3) if den else 0.0


async def idle_memory(kind: str, repo: Path, count: int, batch: int) -> dict[str, Any]:
    """Start `count` sandboxes (a few at a time), sampling memory as they pile up."""
    await asyncio.sleep(1.0)
    before, rss0 = mem_available_kb(), kb_field("/proc/self/status", "VmRSS")
    marks = sorted({0, *(count * k // 4 for k in range(1, 5))})
    boxes: list[BaseSandbox] = []
    points: list[tuple[int, float]] = []
    t0 = time.perf_counter()
    try:
        while True:
            if marks and len(boxes) >= marks[0]:
                marks = [m for m in marks if m > len(boxes)]
                await asyncio.sleep(1.0)
                points.append((len(boxes), (before - mem_available_kb()) / 1024))
            if len(boxes) >= count:
                break

            async def one() -> BaseSandbox:
                sb = open_sandbox(kind, repo, limits=LIMITS)
                await sb.start()
                await sb.exec("true", 60)
                return sb

            boxes += await asyncio.gather(*(one() for _ in range(min(batch, count - len(boxes)))))
        fill_s = time.perf_counter() - t0
        pss = [sum(kb_field(f"/proc/{p}/smaps_rollup", "Pss") for p in sandbox_pids(sb))
               for sb in boxes[:: max(1, len(boxes) // 50)]]  # fmt: skip
        ours = (kb_field("/proc/self/status", "VmRSS") - rss0) / 1024 / max(1, count)
        starts, _ = await cold_starts(kind, repo, 5)
    finally:  # a few at a time: 500 `docker rm` at once load the machine for a minute
        gate = asyncio.Semaphore(batch)

        async def close(sb: BaseSandbox) -> None:
            async with gate:
                await sb.close()

        await asyncio.gather(*(close(b) for b in boxes), return_exceptions=True)
    return {"alive": count, "samples_mb": {str(n): round(mb, 1) for n, mb in points},
            "mb_per_sandbox": slope(points),
            "pss_mb_per_sandbox": round(statistics.median(pss) / 1024, 2) if pss else None,
            "host_rss_mb_per_sandbox": round(ours, 3), "fill_s": round(fill_s, 1),
            "cold_start_with_all_alive_p50_ms": ms(starts)}  # fmt: skip


async def idle_bash_memory(count: int) -> dict[str, Any]:
    """The reference: plain idle `bash` processes, no isolation."""
    await asyncio.sleep(1.0)
    before = mem_available_kb()
    procs = []
    try:
        for _ in range(count):
            procs.append(await asyncio.create_subprocess_exec(
                "/bin/bash", "--noprofile", "--norc", stdin=asyncio.subprocess.PIPE))  # fmt: skip
        await asyncio.sleep(1.0)
        used = (before - mem_available_kb()) / 1024
        pss = statistics.median(kb_field(f"/proc/{p.pid}/smaps_rollup", "Pss") for p in procs)
    finally:
        for p in procs:
            p.kill()
            await p.wait()
    return {"alive": count, "mb_per_process": round(used / count, 3),
            "pss_mb_per_process": round(pss / 1024, 2)}  # fmt: skip


async def main(args: argparse.Namespace) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="corral-bench-"))
    repo = workload.make_repo(root, files=20)
    out: dict[str, Any] = {"benchmark": "sandbox_start", "machine": platform.node(),
                           "python": platform.python_version(), "cpus": os.cpu_count(),
                           "load_avg_1m": os.getloadavg()[0], "repeat": args.repeat,
                           "goals": GOALS}  # fmt: skip
    kinds = ["bwrap"]
    if not args.no_docker:
        if docker_cli() is not None and await engine_ready():
            kinds.append("docker")
        else:
            out["docker"] = {"error": "no Docker engine here (scripts/setup-docker.sh)"}
    for kind in kinds:
        await cold_starts(kind, repo, 2)  # warm caches (engine check, image, launcher)
        rounds = [await one_round(kind, repo, args) for _ in range(args.repeat)]
        out[kind] = median_rounds(rounds)
        print(kind, json.dumps(out[kind]), flush=True)
    out["bash_idle_memory"] = await idle_bash_memory(min(args.alive, 100))
    for kind in kinds:
        alive = args.alive if kind == "bwrap" else args.docker_alive
        batch = 4 if kind == "bwrap" else args.docker_batch
        out[kind]["idle_memory"] = await idle_memory(kind, repo, alive, batch)
        print(kind, "idle", json.dumps(out[kind]["idle_memory"]), flush=True)
    out["load_avg_1m_end"] = os.getloadavg()[0]
    return out


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a small run (~1 min): fewer of all")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--starts", type=int, default=40)
    ap.add_argument("--execs", type=int, default=300)
    ap.add_argument("--alive", type=int, default=500)
    ap.add_argument("--docker-alive", type=int, default=500)
    ap.add_argument("--docker-batch", type=int, default=4, help="docker starts at a time")
    ap.add_argument("--no-docker", action="store_true")
    ap.add_argument("--out", type=Path, default=RESULTS, help="directory for the JSON")
    parsed = ap.parse_args()
    if parsed.quick:
        parsed.repeat, parsed.starts, parsed.execs = 1, 10, 100
        parsed.alive, parsed.docker_alive = min(parsed.alive, 40), min(parsed.docker_alive, 8)
    result = asyncio.run(main(parsed))
    parsed.out.mkdir(parents=True, exist_ok=True)
    (parsed.out / "sandbox.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
