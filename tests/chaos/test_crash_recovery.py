"""kill -9 of the process running a campaign, then `corral campaign resume`: every task
succeeds exactly once, no task ever has two live attempts, nothing is delivered twice, and
the model turns recorded before the kill are replayed, not asked for again."""

from __future__ import annotations

import itertools
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import yaml
from tests.integration.orchestrator.conftest import make_repo, script

CORRAL = str(Path(sys.executable).parent / "corral")
N = 50


def _states(db: Path) -> dict[str, int]:
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return dict(conn.execute("select state, count(*) from tasks group by state").fetchall())
    except sqlite3.OperationalError:
        return {}


def test_kill_9_then_resume(tmp_path: Path) -> None:
    home = tmp_path / ".corral"
    work = script(tmp_path / "work.json", ["sleep 0.4; echo done > result.txt"])
    tasks = [
        {"id": f"t{i:02d}", "repo": str(make_repo(tmp_path / f"r{i}", i)), "instructions": "work",
         "model": f"scripted:{work}", "max_attempts": 3}
        for i in range(N)
    ]  # fmt: skip
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump({"name": "chaos", "tasks": tasks}))
    proc = subprocess.Popen(
        [CORRAL, "campaign", "run", str(f), "--concurrency", "8", "--json", "--home", str(home)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=False,
    )  # fmt: skip
    db = home / "corral.db"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        s = _states(db)
        if s.get("succeeded", 0) >= 10 and s.get("running", 0) >= 4:
            break
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.05)
    else:
        raise AssertionError(f"campaign never got going: {_states(db)}")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _states(db)
    assert before.get("running", 0) >= 1, before  # attempts were lost mid-flight
    time.sleep(0.5)
    # sandboxes die with their parent: nothing of the killed run is left
    assert not _processes_with(b"sleep\x000.4\x00"), "sandbox processes outlived the killed worker"

    with sqlite3.connect(db) as conn:
        cid = conn.execute("select id from campaigns").fetchone()[0]
    t0 = time.monotonic()
    done = subprocess.run(
        [CORRAL, "campaign", "resume", cid, "--json", "--home", str(home)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    recovery_s = time.monotonic() - t0
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout)
    assert out["counts"] == {"succeeded": N}
    with sqlite3.connect(db) as conn:
        effects = conn.execute("select key from side_effects").fetchall()
        attempts = conn.execute(
            "select task_id, number, status, created_at, ended_at from attempts order by task_id, number"
        ).fetchall()
    assert len(effects) == N == len({k for (k,) in effects}), "each task delivered exactly once"
    by_task = itertools.groupby(attempts, key=lambda a: a[0])
    retried = 0
    for _, group in by_task:
        rows = list(group)
        assert sum(1 for r in rows if r[2] == "finished") == 1
        assert all(r[2] != "running" for r in rows)
        # never two live attempts: each attempt ended before the next one started
        for a, b in itertools.pairwise(rows):
            assert a[4] is not None and a[4] <= b[3], (a, b)
        retried += len(rows) > 1
    assert retried >= before.get("running", 0)
    assert recovery_s < 120


def _model_calls(db: Path) -> list[tuple[str, float]]:
    """(attempt id, latency_s) of every recorded model turn, in order."""
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            rows = conn.execute(
                "select attempt_id, payload from events where type = 'model_called' order by id"
            ).fetchall()
    except sqlite3.OperationalError:
        return []
    return [(a, json.loads(b)["completion"]["latency_s"]) for a, b in rows]


def test_a_killed_attempt_resumes_from_its_recorded_turns(tmp_path: Path) -> None:
    home = tmp_path / ".corral"
    turns = [
        {"tool_calls": [{"tool": "bash", "args": {"command": c}}], "latency": 0.1}
        for c in ("echo a > a.txt", "echo b > b.txt", "sleep 3; echo c > c.txt")
    ]
    turns.append({"tool_calls": [{"tool": "finish", "args": {"message": "done"}}], "latency": 0.1})
    work = tmp_path / "work.json"
    work.write_text(json.dumps(turns))
    task = {"id": "t", "repo": str(make_repo(tmp_path / "r")), "instructions": "work",
            "model": f"scripted:{work}", "max_attempts": 2}  # fmt: skip
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump({"name": "resume", "tasks": [task]}))
    proc = subprocess.Popen(
        [CORRAL, "campaign", "run", str(f), "--json", "--home", str(home)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    db = home / "corral.db"
    deadline = time.monotonic() + 60
    while len(_model_calls(db)) < 3:  # the third command (sleep 3) is running
        assert time.monotonic() < deadline, "the attempt never reached its third turn"
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with sqlite3.connect(db) as conn:
        cid = conn.execute("select id from campaigns").fetchone()[0]
    done = subprocess.run(
        [CORRAL, "campaign", "resume", cid, "--json", "--home", str(home)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["counts"] == {"succeeded": 1}
    calls = _model_calls(db)
    first = calls[0][0]
    second = [lat for a, lat in calls if a != first]
    # three turns replayed from the log (no model time), then the live model's finish
    assert second[:3] == [0.0, 0.0, 0.0] and len(second) == 4 and second[3] > 0, calls
    with sqlite3.connect(db) as conn:
        (patch,) = conn.execute(
            "select patch_path from attempts where status = 'finished'"
        ).fetchone()
    diff = Path(patch).read_text()
    assert all(name in diff for name in ("a.txt", "b.txt", "c.txt")), diff


def _processes_with(cmdline: bytes) -> list[int]:
    found = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if (p / "cmdline").read_bytes() == cmdline:
                    found.append(int(p.name))
            except OSError:
                pass
    return found
