"""Crash recovery: kill -9 a worker running N agents mid-run, resume, and measure.

The real fleet path: a campaign of N scripted agents (every model call through the
gateway to a fake provider answering after L seconds, every step a real command in a
bwrap sandbox) run by `corral campaign run` in its own process group. When every agent
is running and has at least K model answers recorded, the whole group gets SIGKILL;
then `corral campaign resume` carries on and the store and the provider are read back:

- time from the restart until every task runs again, and until all are finished
  (beside the cold start: launch until every task was first running);
- work lost: model answers recorded in the event log before the kill that had to be
  requested from the provider again after it (goal: none);
- duplicate side effects: deliveries that happened more than once, counted both in the
  store's side-effect table and in a ledger the delivery itself appends to (goal: none);
- tasks finished exactly once, and no two live attempts of one task.

Writes OUT/crash_recovery.json (default bench/results/); asserts nothing.

    .venv/bin/python bench/crash_recovery.py [--agents 200] [--steps 40] [--latency 1] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import platform
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from corral.bench.workload import make_repo
from corral.domain import Completion, ToolCall, Usage
from corral.testing import FakeProvider, RecordedRequest

RESULTS = Path(__file__).resolve().parent / "results"
KIND = "crashbench"  # the tasks' kind: the worker wrapper registers its delivery for it


class Agents:
    """The fake provider's `respond` hook: S steps per agent, each appending one line to
    progress.txt; the last also finishes. Notes (agent, step, arrival) of every request."""

    def __init__(self, steps: int) -> None:
        self.steps = steps
        self.seen: list[tuple[str, int, float]] = []
        self.provider: FakeProvider | None = None

    def __call__(self, record: RecordedRequest) -> Completion:
        if self.provider is not None:
            self.provider.requests.clear()  # we keep our own small log instead
        messages = record.body["messages"]
        step = sum(1 for m in messages if m.get("role") == "tool")
        agent = next((_agent(m.get("content")) for m in messages if m.get("role") == "user"), "?")
        self.seen.append((agent, step, record.received_at))
        cmd = f"echo 'step {step}' >> progress.txt"
        calls = [ToolCall(id=f"call_{record.index}_0", name="bash", arguments={"command": cmd})]
        if step >= self.steps - 1:
            calls.append(
                ToolCall(id=f"call_{record.index}_1", name="finish", arguments={"message": "done"})
            )
        return Completion(tool_calls=tuple(calls), usage=Usage(input_tokens=100, output_tokens=20))


def _agent(content: Any) -> str:
    text = content if isinstance(content, str) else json.dumps(content)
    marker = "crash agent "
    start = text.find(marker)
    return text[start + len(marker) :].split(":", 1)[0] if start >= 0 else "?"


def write_inputs(root: Path, args: argparse.Namespace, base_url: str) -> tuple[Path, Path]:
    repo = make_repo(root)
    model = f"openai-compatible:{base_url}#fake-model"
    gateway = root / "gateway.yaml"
    gateway.write_text(
        yaml.safe_dump(
            {
                "deployments": [
                    {
                        "name": "fake",
                        "model": model,
                        "max_output_tokens": 256,
                        "price": {"input_per_mtok": 1.0, "output_per_mtok": 2.0},
                    }
                ]
            }
        )
    )
    tasks = [
        {"id": f"a{i:04d}", "repo": str(repo), "instructions": f"crash agent a{i:04d}: go",
         "model": model, "kind": KIND, "sandbox": args.sandbox, "max_steps": args.steps + 2,
         "max_attempts": 3, "command_timeout_s": 60, "timeout_s": 900}
        for i in range(args.agents)
    ]  # fmt: skip
    campaign = root / "campaign.yaml"
    spec = {"name": f"crash-{args.agents}", "unsafe_local": args.sandbox == "local"}
    campaign.write_text(yaml.safe_dump(spec | {"tasks": tasks}))
    return campaign, gateway


def launch(
    root: Path, name: str, cli: list[str], args: argparse.Namespace
) -> subprocess.Popen[bytes]:
    """The worker in its own process group (so kill -9 takes all of it), with our delivery."""
    cmd = [sys.executable, __file__, "_worker", str(root / "ledger.txt"), *cli]
    cmd += ["--concurrency", str(args.agents), "--json", "--home", str(root / ".corral")]
    cmd += ["--gateway", str(root / "gateway.yaml")]
    out = (root / f"{name}.out").open("wb")
    err = (root / f"{name}.err").open("wb")
    return subprocess.Popen(cmd, stdout=out, stderr=err, start_new_session=True)


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        return conn.execute(sql).fetchall()


def poll(db: Path, sql: str) -> list[tuple[Any, ...]]:
    """`query` while the worker starts up: no store yet is no rows yet."""
    try:
        return query(db, sql)
    except sqlite3.OperationalError:
        return []


def tail(path: Path) -> str:
    text = path.read_text(errors="replace").strip() if path.exists() else ""
    return " | ".join(text.splitlines()[-3:]) or "(no output)"


def wait_mid_run(
    db: Path, proc: subprocess.Popen[bytes], root: Path, args: argparse.Namespace
) -> None:
    """Until every agent runs with at least K answers recorded (none finished yet)."""
    deadline = time.monotonic() + args.timeout
    sql = (
        "select a.id, (select count(*) from events e where e.attempt_id = a.id"
        " and e.type = 'model_called') from attempts a where a.status = 'running'"
    )
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            why = tail(root / "first.err")
            raise RuntimeError(f"the worker exited early ({proc.returncode}): {why}")
        states = dict(poll(db, "select state, count(*) from tasks group by state"))
        if any(k not in ("pending", "ready", "running") for k in states):
            raise RuntimeError(
                f"tasks ended before all {args.agents} agents were mid-run ({states}): "
                "raise --steps or --latency, or lower --kill-after-steps"
            )
        rows = poll(db, sql)
        if len(rows) == args.agents and min(n for _, n in rows) >= args.kill_after_steps:
            return
        time.sleep(0.1)
    raise RuntimeError(f"agents never all got going within {args.timeout:g}s")


def snapshot_at_kill(db: Path) -> dict[str, Any]:
    """Per task: the killed attempt and how many model answers its event log holds (read
    after the kill, the attempts still look running: nobody has reaped them yet)."""
    rows = query(
        db,
        "select t.key, a.id, (select count(*) from events e where e.attempt_id = a.id"
        " and e.type = 'model_called') from attempts a join tasks t on t.id = a.task_id"
        " where a.status = 'running'",
    )
    return {key: {"attempt": att, "answers": n} for key, att, n in rows}


def run(args: argparse.Namespace) -> dict[str, Any]:
    agents = Agents(args.steps)
    with (
        tempfile.TemporaryDirectory(prefix="corral-crash-") as tmp,
        FakeProvider(respond=agents, latency=args.latency) as provider,
    ):
        agents.provider = provider
        root = Path(tmp)
        db = root / ".corral" / "corral.db"
        campaign, _ = write_inputs(root, args, provider.base_url)
        times = {"launch": time.time()}
        first = launch(root, "first", ["campaign", "run", str(campaign)], args)
        try:
            wait_mid_run(db, first, root, args)
        except BaseException:
            kill_group(first)
            raise
        times["kill"] = time.time()
        kill_group(first)
        killed = snapshot_at_kill(db)
        cid = query(db, "select id from campaigns")[0][0]
        times["restart"] = time.time()
        second = launch(root, "second", ["campaign", "resume", cid], args)
        try:
            second.wait(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            kill_group(second)
            raise RuntimeError(f"resume did not finish within {args.timeout:g}s") from None
        times["end"] = time.time()
        report = analyse(db, root, args, agents.seen, killed, times)
        report["error"] = None
        if second.returncode != 0:
            report["error"] = f"resume exited {second.returncode}: {tail(root / 'second.err')}"
        return report


def analyse(
    db: Path,
    root: Path,
    args: argparse.Namespace,
    seen: list[tuple[str, int, float]],
    killed: dict[str, dict[str, Any]],
    times: dict[str, float],
) -> dict[str, Any]:
    attempts = query(
        db,
        "select t.key, a.id, a.number, a.status, a.created_at, a.ended_at from attempts a"
        " join tasks t on t.id = a.task_id order by t.key, a.number",
    )
    by_task: dict[str, list[tuple[Any, ...]]] = {}
    for row in attempts:
        by_task.setdefault(row[0], []).append(row)
    finished = Counter(r[0] for r in attempts if r[3] == "finished")
    states = dict(query(db, "select state, count(*) from tasks group by state"))
    overlapping = sum(
        1
        for rows in by_task.values()
        for a, b in itertools.pairwise(rows)
        if a[5] is None or _t(a[5]) > _t(b[4])
    )
    recorded = {(k, i) for k, v in killed.items() for i in range(v["answers"])}
    after = [(a, s) for a, s, at in seen if at >= times["restart"]]
    lost = sum(1 for pair in after if pair in recorded)
    before = {(a, s) for a, s, at in seen if at < times["restart"]}
    dupes, effects = duplicates(db, root)
    n = args.agents
    return {
        "benchmark": "crash_recovery",
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} cpus",
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "agents": n,
        "steps": args.steps,
        "latency_s": args.latency,
        "sandbox": args.sandbox,
        "kill_after_steps": args.kill_after_steps,
        "running_at_kill": len(killed),
        "answers_recorded_at_kill": len(recorded),
        **timeline(db, by_task, {v["attempt"] for v in killed.values()}, times),
        "provider_requests": len(seen),
        "ideal_requests": n * args.steps,
        "work_lost_steps": lost,
        "work_lost_fraction": round(lost / len(recorded), 3) if recorded else 0.0,
        "work_lost_model_s": round(lost * args.latency, 1),
        "redone_in_flight": sum(1 for p in after if p in before and p not in recorded),
        **effects,
        "bad_patches": bad_patches(root, args.steps),
        "duplicate_side_effects": dupes,
        "task_states": states,
        "tasks_finished_once": sum(1 for k in by_task if finished[k] == 1),
        "overlapping_attempts": overlapping,
        "checks": {
            "all_succeeded": states.get("succeeded", 0) == n,
            "no_work_lost": lost == 0,
            "no_duplicate_side_effects": dupes == 0,
            "each_task_finished_once": len(by_task) == n and all(finished[k] == 1 for k in by_task),
            "each_task_delivered_once": effects["tasks_delivered"] == n and dupes == 0,
            "no_overlapping_attempts": overlapping == 0,
        },
    }


def timeline(
    db: Path, by_task: dict[str, list[tuple[Any, ...]]], killed: set[str], times: dict[str, float]
) -> dict[str, float | None]:
    """An agent counts as running once its attempt has a model answer recorded (its sandbox
    is up and it is stepping), not merely once the attempt was claimed."""
    stepped = {
        a: _t(at)
        for a, at in query(
            db, "select attempt_id, min(ts) from events where type = 'model_called' group by 1"
        )
    }
    firsts = [rows[0] for rows in by_task.values()]
    again = [
        next(r for r in rows if r[1] not in killed)
        for rows in by_task.values()
        if any(r[1] not in killed for r in rows)
    ]
    cold = _span([stepped.get(r[1]) for r in firsts], times["launch"])
    back = [stepped.get(r[1]) for r in again]
    all_back = _span(back, times["restart"]) if len(again) == len(by_task) else None
    first_back = min((x for x in back if x is not None), default=None)
    reaped = [_t(r[5]) for rows in by_task.values() for r in rows if r[1] in killed and r[5]]
    ended = [_t(r[5]) for rows in by_task.values() for r in rows if r[5]]
    return {
        "killed_after_s": _r(times["kill"] - times["launch"]),
        "cold_start_all_claimed_s": _span([_t(r[4]) for r in firsts], times["launch"]),
        "cold_start_all_running_s": cold,
        "reaped_s": _span(list(reaped), times["restart"]),
        "all_claimed_again_s": _span([_t(r[4]) for r in again], times["restart"]),
        "first_running_again_s": _span([first_back], times["restart"]),
        "all_running_again_s": all_back,
        "all_finished_s": _span(list(ended), times["restart"]),
        "resume_process_s": _r(times["end"] - times["restart"]),
        "recovery_vs_cold_start": round(all_back / cold, 2) if all_back and cold else None,
    }


def duplicates(db: Path, root: Path) -> tuple[int, dict[str, int]]:
    """Deliveries beyond one per task, in the store's side-effect table and in the ledger
    the delivery itself appends to (what a second PR would look like)."""
    keys = [k for (k,) in query(db, "select key from side_effects")]
    path = root / "ledger.txt"
    ledger = Counter(path.read_text().split()[::2]) if path.exists() else Counter()
    dupes = (len(keys) - len(set(keys))) + sum(n - 1 for n in ledger.values())
    patches = len(list((root / ".corral" / "results").rglob("*.patch")))
    return dupes, {
        "deliveries": sum(ledger.values()),
        "tasks_delivered": len(ledger),
        "side_effect_rows": len(keys),
        "patch_files": patches,
    }


def bad_patches(root: Path, steps: int) -> int:
    """Delivered patches that do not hold each step's line exactly once."""
    want = sorted(f"+step {i}" for i in range(steps))
    return sum(
        1
        for p in (root / ".corral" / "results").rglob("*.patch")
        if sorted(ln for ln in p.read_text().splitlines() if ln.startswith("+step")) != want
    )


def _t(value: str) -> float:
    parsed = datetime.fromisoformat(value)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def _span(stamps: list[float | None], since: float) -> float | None:
    """Seconds from `since` until the last of `stamps`; None if any is missing."""
    if not stamps or any(x is None for x in stamps):
        return None
    return _r(max(x for x in stamps if x is not None) - since)


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def worker_main(argv: list[str]) -> None:
    """`corral` itself, plus a delivery for our tasks that notes each time it runs: a
    delivery is the side effect (a PR in real life) that must happen once per task."""
    from corral.cli.main import app
    from corral.orchestrator.hooks import register_delivery
    from corral.store import Store, TaskRow

    ledger = Path(argv[0])

    def write(task: TaskRow, attempt_id: str, diff: str, home: Path) -> dict[str, Any]:
        out = home / "results" / task.campaign_id / f"{task.key}.patch"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(diff)
        with ledger.open("a") as f:
            f.write(f"{task.key} {attempt_id}\n")
        return {"patch": str(out)}

    async def deliver(
        store: Store, task: TaskRow, attempt_id: str, diff: str, home: Path
    ) -> dict[str, Any]:
        return write(task, attempt_id, diff, home)

    register_delivery(KIND, deliver)
    app(args=argv[1:], prog_name="corral")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=200)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--latency", type=float, default=1.0, help="seconds per model call")
    ap.add_argument("--kill-after-steps", type=int, default=3, help="answers every agent has")
    ap.add_argument("--sandbox", default="bwrap", choices=("bwrap", "docker", "local"))
    ap.add_argument("--timeout", type=float, default=600.0, help="per phase, seconds")
    ap.add_argument("--out", type=Path, default=RESULTS, help="directory for the JSON")
    ap.add_argument("--quick", action="store_true", help="20 agents, 12 steps, 0.5 s latency")
    args = ap.parse_args(argv)
    if args.quick:
        args.agents, args.steps, args.latency, args.kill_after_steps = 20, 12, 0.5, 2
    if not 0 < args.kill_after_steps < args.steps:
        ap.error("--kill-after-steps must be between 1 and --steps - 1")
    return args


def main() -> None:
    args = parse()
    out = run(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "crash_recovery.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_worker":
        worker_main(sys.argv[2:])
    else:
        main()
