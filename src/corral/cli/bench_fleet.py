"""`corral bench fleet`: the fleet benchmark, corral beside mini-swe-agent in one run.

Importing this module adds `fleet` to the gateway's `bench` group.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer

from corral.cli.fleet import tune_for_fleet
from corral.cli.gateway import JsonOpt, bench_app

SUMMARY = (
    "agents",
    "steps",
    "wall_s",
    "ideal_s",
    "steps_per_s",
    "sched_delay_p50_ms",
    "sched_delay_p99_ms",
    "first_command_last_s",
    "peak_rss_mb",
    "rss_per_agent_mb",
    "failed",
)


def fleet_report(
    *,
    agents: int,
    steps: int,
    latency: float,
    sandbox: str,
    rpm: int | None,
    tpm: int | None,
    baseline: bool,
    workers: int = 1,
    floor: bool = False,
) -> dict[str, Any]:
    """Corral's run, then (optionally) the bare sandboxes' floor and the baseline in a
    fresh process, and the ratios."""
    from corral.bench import mini
    from corral.bench.fleet import FleetParams, run_fleet
    from corral.bench.floor import run_floor
    from corral.bench.machine import sandbox_user_pids

    params = FleetParams(
        agents=agents, steps=steps, latency=latency, sandbox=sandbox, rpm=rpm, tpm=tpm,
        workers=workers,
    )  # fmt: skip
    stray = len(sandbox_user_pids())
    if stray:
        typer.echo(f"warning: {stray} processes of the sandbox user were already running: "
                   "they compete for the CPU this measures", err=True)  # fmt: skip
    report = asyncio.run(run_fleet(params))
    report["stray_sandbox_processes_before"] = stray
    if floor and sandbox == "bwrap":
        bare = run_floor(agents, steps, latency)
        report["floor"] = bare
        if bare.get("wall_s") and not bare["failed"]:
            report["wall_over_floor"] = round(report["wall_s"] / bare["wall_s"], 3)
    if baseline:
        if not mini.available():
            report["baseline"] = {"error": "mini-swe-agent is not installed (pip install .[bench])"}
        else:
            base = mini.run_baseline_subprocess(agents, steps, latency)
            report["baseline"] = base
            if base.get("steps_per_s"):
                ratio = report["steps_per_s"] / base["steps_per_s"]
                report["throughput_vs_baseline"] = round(ratio, 2)
    return report


@bench_app.command("fleet")
def bench_fleet(
    agents: Annotated[int, typer.Option("--agents", min=1)] = 100,
    steps: Annotated[int, typer.Option("--steps", min=1)] = 10,
    latency: Annotated[
        float, typer.Option("--latency", min=0, help="Seconds per model call.")
    ] = 1.0,
    sandbox: Annotated[str, typer.Option("--sandbox", help="bwrap, docker or local.")] = "bwrap",
    rpm: Annotated[int | None, typer.Option("--rpm", min=1, help="Provider limit.")] = None,
    tpm: Annotated[int | None, typer.Option("--tpm", min=1, help="Provider limit.")] = None,
    baseline: Annotated[
        bool, typer.Option("--baseline/--no-baseline", help="Also run mini-swe-agent.")
    ] = True,
    workers: Annotated[
        int,
        typer.Option("--workers", min=1, help="Worker processes (they share one gateway service)."),
    ] = 1,
    floor: Annotated[
        bool,
        typer.Option(
            "--floor/--no-floor",
            help="Also run the same bwrap sandboxes bare (no corral around them): the floor.",
        ),
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """N scripted agents x S steps through campaign, worker, sandbox, gateway and store."""
    tune_for_fleet("corral.bench.fleet", "corral.bench.mini")
    if sandbox not in ("bwrap", "docker", "local"):
        typer.echo(f"error: unknown sandbox {sandbox!r}: use bwrap, docker or local", err=True)
        raise typer.Exit(2)
    report = fleet_report(
        agents=agents,
        steps=steps,
        latency=latency,
        sandbox=sandbox,
        rpm=rpm,
        tpm=tpm,
        baseline=baseline,
        workers=workers,
        floor=floor,
    )
    if as_json:
        typer.echo(json.dumps(report))
        return
    for key in SUMMARY:
        typer.echo(f"{key}: {report[key]}")
    if report.get("error"):
        typer.echo(f"error: {report['error']}")
    bare = report.get("floor")
    if bare:
        typer.echo(f"bare-sandbox floor wall_s: {bare.get('wall_s', bare.get('error'))}")
    if "wall_over_floor" in report:
        typer.echo(f"wall_over_floor: {report['wall_over_floor']}x")
    base = report.get("baseline")
    if base:
        typer.echo(f"mini-swe-agent steps_per_s: {base.get('steps_per_s', base.get('error'))}")
    if "throughput_vs_baseline" in report:
        typer.echo(f"throughput_vs_baseline: {report['throughput_vs_baseline']}x")
