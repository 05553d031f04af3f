"""Regenerate docs/benchmarks.md and docs/img/*.png from bench/results/*.json.

Each figure is a ratio against the baseline measured in the same run (mini-swe-agent,
LiteLLM's Router, Ray, a plain subprocess), so machines compare by shape, not by speed.
Missing results are listed as not run, never invented.

    .venv/bin/python bench/report.py [--results DIR] [--docs DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DOCS = ROOT / "docs"
IMG = DOCS / "img"


def load(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def machine() -> list[str]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return [
        f"- CPU: {os.cpu_count()} x {cpu}",
        f"- Memory: {mem_kb / 2**20:.1f} GiB",
        f"- Kernel: {platform.system()} {platform.release()}",
        f"- Python: {platform.python_version()}",
        f"- corral at commit `{commit}` (plus any uncommitted work in the tree at run time)",
        f"- Generated: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
    ]


def table(rows: list[dict[str, Any]], cols: list[str]) -> list[str]:
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        out.append("| " + " | ".join(_cell(r.get(c)) for c in cols) + " |")
    return out


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v).replace("|", "/")


def bar(name: str, title: str, labels: list[str], values: list[float], ylabel: str) -> str:
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.bar(labels, values, color=["#3b7dd8" if v >= 1 else "#d8703b" for v in values])
    ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    for i, v in enumerate(values):
        ax.text(i, v, f"{v:.2g}x", ha="center", va="bottom", fontsize=8)
    fig.tight_layout()
    IMG.mkdir(parents=True, exist_ok=True)
    fig.savefig(IMG / f"{name}.png", dpi=110)
    plt.close(fig)
    return f"![{title}](img/{name}.png)"


def _beside(
    ax: Any, runs: list[dict[str, Any]], part: str, key: str, style: str, label: str
) -> None:
    """A line for what ran beside corral in the same runs (`part`: baseline or floor)."""
    rows = [r for r in runs if (r.get(part) or {}).get(key)]
    ax.plot([r["agents"] for r in rows], [r[part][key] for r in rows], style, label=label)


def fleet_section(data: dict[str, Any]) -> list[str]:
    runs = data["runs"]
    lines = [
        f"{data['steps']} steps per agent, {data['latency_s']} s model latency, "
        f"`{data['sandbox']}` sandboxes, SQLite store; mini-swe-agent: DefaultAgent + "
        "LocalEnvironment (no sandbox) in a thread pool with one worker per agent, its "
        "LitellmModel pointed at the same fake provider. `workers` 2: two worker processes "
        "over the same store, sharing the benchmark's gateway as a service. `floor`: the "
        "same bwrap sandboxes started bare from a shell loop, each waiting the same latency "
        "S times, with nothing of corral around them (no workspace copy, cgroups, agent, "
        "model, store or gateway); `floor_boot_last_s` is when the last of them was up, "
        "`wall_over_floor` corral's wall time over the floor's.",
        "",
    ]
    rows = []
    for r in runs:
        b = r.get("baseline") or {}
        rows.append(
            {
                **r,
                "mini_steps_per_s": b.get("steps_per_s"),
                "mini_wall_over_ideal": b.get("wall_over_ideal"),
                "mini_rss_per_agent_mb": b.get("rss_per_agent_mb"),
                "floor_wall_s": (r.get("floor") or {}).get("wall_s"),
                "floor_boot_last_s": (r.get("floor") or {}).get("boot_last_s"),
                "error": (r.get("error") or "")[:80],
            }
        )
    lines += table(
        rows,
        [
            "agents",
            "workers",
            "wall_s",
            "ideal_s",
            "wall_over_ideal",
            "sched_delay_samples",
            "steps_per_s",
            "sched_delay_p50_ms",
            "sched_delay_p99_ms",
            "first_command_last_s",
            "peak_rss_mb",
            "rss_per_agent_mb",
            "failed",
            "mini_steps_per_s",
            "mini_wall_over_ideal",
            "throughput_vs_baseline",
            "floor_wall_s",
            "floor_boot_last_s",
            "wall_over_floor",
            "error",
        ],
    )
    # The curve is one worker process per size; rows with more are listed in the table.
    ok = [r for r in runs if "wall_over_ideal" in r and r.get("workers", 1) == 1]
    if ok:
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.4))
        xs = [r["agents"] for r in ok]
        a1.plot(xs, [r["wall_over_ideal"] for r in ok], "o-", label="corral")
        _beside(a1, ok, "baseline", "wall_over_ideal", "s--", "mini-swe-agent")
        _beside(a1, ok, "floor", "wall_over_ideal", "^:", "bare bwrap floor")
        a1.axhline(1.5, color="grey", linestyle=":", label="goal 1.5x")
        a1.set_xscale("log")
        a1.set_yscale("log")
        a1.set_xlabel("agents")
        a1.set_ylabel("wall time / ideal")
        a1.legend(fontsize=8)
        a2.plot(xs, [r["rss_per_agent_mb"] for r in ok], "o-", label="corral (+ sandboxes)")
        _beside(a2, ok, "baseline", "rss_per_agent_mb", "s--", "mini-swe-agent")
        a2.set_xscale("log")
        a2.set_xlabel("agents")
        a2.set_ylabel("peak RSS per agent (MB)")
        a2.legend(fontsize=8)
        fig.tight_layout()
        IMG.mkdir(parents=True, exist_ok=True)
        fig.savefig(IMG / "fleet_scale.png", dpi=110)
        plt.close(fig)
        lines += ["", "![fleet scale curve](img/fleet_scale.png)"]
        ratios = [r for r in ok if r.get("throughput_vs_baseline")]
        if ratios:
            lines += [
                "",
                bar(
                    "fleet_ratio",
                    "corral throughput / mini-swe-agent (same run)",
                    [str(r["agents"]) for r in ratios],
                    [r["throughput_vs_baseline"] for r in ratios],
                    "ratio",
                ),
            ]
    return lines


CRASH_NUMBERS = (
    ("agents running when the worker was killed", "running_at_kill"),
    ("model answers recorded before the kill", "answers_recorded_at_kill"),
    ("launch until every task was first running (s)", "cold_start_all_running_s"),
    ("restart until every killed attempt was reaped (s)", "reaped_s"),
    ("restart until every task was running again (s)", "all_running_again_s"),
    ("restart until every task was finished (s)", "all_finished_s"),
    ("running again / cold start", "recovery_vs_cold_start"),
    ("provider requests", "provider_requests"),
    ("provider requests without a crash (agents x steps)", "ideal_requests"),
    ("unrecorded in-flight calls asked again", "redone_in_flight"),
    ("load average (1 min) at the end", "load_avg_1m"),
)
# (goal, count key, check key), one row each
CRASH_GOALS = (
    ("work lost: recorded answers asked again (none)", "work_lost_steps", "no_work_lost"),
    ("duplicate side effects (none)", "duplicate_side_effects", "no_duplicate_side_effects"),
    ("two live attempts of a task (none)", "overlapping_attempts", "no_overlapping_attempts"),
    ("tasks finished exactly once (all)", "tasks_finished_once", "each_task_finished_once"),
    ("tasks delivered exactly once (all)", "tasks_delivered", "each_task_delivered_once"),
)  # fmt: skip


def crash_section(data: dict[str, Any]) -> list[str]:
    lines = [
        f"`corral campaign run` with {data['agents']} agents x {data['steps']} steps "
        f"({data['latency_s']} s model latency, `{data['sandbox']}` sandboxes, SQLite store) "
        f"gets SIGKILL on its whole process group once every agent has "
        f"{data['kill_after_steps']}+ model answers recorded; then `corral campaign resume`. "
        "An agent counts as running once its attempt has recorded a model answer.",
        "",
        "| measure | value |",
        "|---|---|",
    ]
    lines += [f"| {text} | {_cell(data.get(key))} |" for text, key in CRASH_NUMBERS]
    lines += ["", "| goal | count | met |", "|---|---|---|"]
    checks = data.get("checks") or {}
    for text, key, check in CRASH_GOALS:
        met = "yes" if checks.get(check) else "**no**"
        lines.append(f"| {text} | {_cell(data.get(key))} | {met} |")
    if data.get("error"):
        lines += ["", f"error: {data['error']}"]
    if data.get("recovery_vs_cold_start"):
        lines += [
            "",
            bar(
                "crash_recovery_ratio",
                "time until all running again ÷ cold start (same run)",
                ["recovery"],
                [data["recovery_vs_cold_start"]],
                "ratio",
            ),
        ]
    return lines


def simple_sections() -> list[str]:
    out: list[str] = []
    store = load("store_throughput")
    out += ["", "## Store: events appended per second", ""]
    if store:
        rows = [{"store": k, **store[k]} for k in ("sqlite", "postgres") if k in store]
        out += table(rows, ["store", "events", "writers", "wall_s", "events_per_s", "error"])
    else:
        out.append("not run")
    sched = load("scheduler")
    out += ["", "## Scheduler: no-op tasks per second vs Ray tasks", ""]
    if sched:
        rows = [{"system": k, **(sched.get(k) or {})} for k in ("sqlite", "postgres", "ray")]
        out += table(
            rows,
            [
                "system",
                "tasks",
                "wall_s",
                "tasks_per_s",
                "admission_delay_p50_s",
                "admission_delay_p99_s",
            ],
        )
        if sched.get("ray"):
            labels = ["sqlite", "postgres"]
            vals = [sched[k]["tasks_per_s"] / sched["ray"]["tasks_per_s"] for k in labels]
            out += [
                "",
                bar(
                    "scheduler_ratio",
                    "corral scheduler tasks/s ÷ Ray tasks/s",
                    labels,
                    vals,
                    "ratio",
                ),
            ]
    else:
        out.append("not run")
    step = load("agent_step")
    out += ["", "## Agent step: corral (bwrap) vs mini-swe-agent (no sandbox)", ""]
    if step:
        out += table(
            [step],
            [
                "steps",
                "bwrap_start_p50_ms",
                "bwrap_roundtrip_p50_ms",
                "corral_step_ms",
                "mini_swe_agent_step_ms",
                "speedup_vs_mini_swe_agent",
            ],
        )
        if "command_in_sandbox_p50_ms" in step:
            out += [
                "",
                "Where a step's time goes: the command alone, and what each loop adds.",
                "",
                *table(
                    [step],
                    [
                        "command_in_sandbox_p50_ms",
                        "corral_loop_overhead_ms",
                        "command_as_subprocess_p50_ms",
                        "mini_loop_overhead_ms",
                    ],
                ),
            ]
        out += [
            "",
            bar(
                "agent_step_ratio",
                "per-step speed-up over mini-swe-agent",
                ["corral"],
                [step["speedup_vs_mini_swe_agent"]],
                "ratio",
            ),
        ]
    else:
        out.append("not run")
    gw = load("gateway")
    out += ["", "## Gateway vs LiteLLM Router (same limits, same fake provider)", ""]
    if gw:
        rows = []
        for k in ("corral", "litellm_router"):
            if k in gw:
                rows.append({"system": k, **gw[k]["ratelimit"], **gw[k]["budget"]})
        out += table(
            rows,
            [
                "system",
                "requests",
                "rate_limited",
                "failed_tasks",
                "utilization",
                "spent_usd",
                "overshoot_usd",
                "rejected_calls",
            ],
        )
    else:
        out.append("not run")
    crash = load("crash_recovery")
    out += ["", "## Crash recovery: kill -9 mid-run, then resume", ""]
    out += crash_section(crash) if crash else ["not run"]
    for name, title in (("sandbox", "Sandbox start and round trip"), ("cve_scan", "CVE scan")):
        data = load(name)
        out += ["", f"## {title}", "", "```json"]
        out += [json.dumps(data, indent=1)[:3000] if data else "not run", "```"]
    return out


def main() -> None:
    global RESULTS, DOCS, IMG
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=RESULTS, help="where the JSON files are")
    ap.add_argument("--docs", type=Path, default=DOCS, help="where benchmarks.md goes")
    args = ap.parse_args()
    RESULTS, DOCS, IMG = args.results, args.docs, args.docs / "img"
    lines = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (bench/report.py) from bench/results/*.json; every "
        "comparison was measured in the same run on this machine. Nothing here is "
        "asserted by tests.",
        "",
        "## Machine",
        "",
    ]
    lines += machine()
    fleet = load("fleet")
    lines += ["", "## Fleet: corral vs mini-swe-agent", ""]
    lines += fleet_section(fleet) if fleet else ["not run"]
    lines += simple_sections()
    notes = DOCS / "benchmarks-notes.md"
    if notes.is_file():
        lines += ["", notes.read_text().strip()]
    DOCS.mkdir(exist_ok=True)
    (DOCS / "benchmarks.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {DOCS / 'benchmarks.md'}")


if __name__ == "__main__":
    main()
