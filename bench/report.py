"""Regenerate docs/benchmarks.md and docs/img/*.png from bench/results/*.json.

Each figure is a ratio against the baseline measured in the same run (mini-swe-agent,
LiteLLM's Router, Ray, a plain subprocess), so machines compare by shape, not by speed.
Missing results are listed as not run, never invented.

    .venv/bin/python bench/report.py
"""

from __future__ import annotations

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


def fleet_section(data: dict[str, Any]) -> list[str]:
    runs = data["runs"]
    lines = [
        f"{data['steps']} steps per agent, {data['latency_s']} s model latency, "
        f"`{data['sandbox']}` sandboxes, SQLite store; mini-swe-agent: DefaultAgent + "
        "LocalEnvironment (no sandbox) in a thread pool with one worker per agent, its "
        "LitellmModel pointed at the same fake provider.",
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
                "error": (r.get("error") or "")[:80],
            }
        )
    lines += table(
        rows,
        [
            "agents",
            "wall_s",
            "ideal_s",
            "wall_over_ideal",
            "sched_delay_samples",
            "steps_per_s",
            "sched_delay_p50_ms",
            "sched_delay_p99_ms",
            "peak_rss_mb",
            "rss_per_agent_mb",
            "failed",
            "mini_steps_per_s",
            "mini_wall_over_ideal",
            "throughput_vs_baseline",
            "error",
        ],
    )
    ok = [r for r in runs if "wall_over_ideal" in r]
    if ok:
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.4))
        xs = [r["agents"] for r in ok]
        a1.plot(xs, [r["wall_over_ideal"] for r in ok], "o-", label="corral")
        mini = [r for r in ok if (r.get("baseline") or {}).get("wall_over_ideal")]
        a1.plot(
            [r["agents"] for r in mini],
            [r["baseline"]["wall_over_ideal"] for r in mini],
            "s--",
            label="mini-swe-agent",
        )
        a1.axhline(1.5, color="grey", linestyle=":", label="goal 1.5x")
        a1.set_xscale("log")
        a1.set_yscale("log")
        a1.set_xlabel("agents")
        a1.set_ylabel("wall time / ideal")
        a1.legend(fontsize=8)
        a2.plot(xs, [r["rss_per_agent_mb"] for r in ok], "o-", label="corral (+ sandboxes)")
        a2.plot(
            [r["agents"] for r in mini],
            [r["baseline"]["rss_per_agent_mb"] for r in mini],
            "s--",
            label="mini-swe-agent",
        )
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
    for name, title in (("sandbox", "Sandbox start and round trip"), ("cve_scan", "CVE scan")):
        data = load(name)
        out += ["", f"## {title}", "", "```json"]
        out += [json.dumps(data, indent=1)[:3000] if data else "not run", "```"]
    return out


def main() -> None:
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
