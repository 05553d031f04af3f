"""Peak memory of a whole process tree, sampled from /proc by a separate process.

The sampler is its own process so that walking thousands of /proc entries neither holds
the benchmarked process's GIL nor adds to the memory it measures. It sums RSS over the
root and every descendant (sandboxes included); shared pages (libc, bash) are counted
once per process, so the figure is an upper bound on real use.

    python -m corral.bench.rss ROOT_PID [INTERVAL_S]   # prints JSON when stdin closes
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

PAGE = os.sysconf("SC_PAGE_SIZE")


def tree_rss(root: int, exclude: int | None = None) -> tuple[int, int]:
    """(bytes of RSS summed over `root` and its descendants but `exclude`, processes)."""
    parent: dict[int, int] = {}
    rss: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        parent[pid] = int(fields[1])
        rss[pid] = int(fields[21]) * PAGE
    children: dict[int, list[int]] = {}
    for pid, ppid in parent.items():
        children.setdefault(ppid, []).append(pid)
    total, count, todo = 0, 0, [root]
    while todo:
        pid = todo.pop()
        if pid == exclude:
            continue
        total += rss.get(pid, 0)
        count += 1
        todo.extend(children.get(pid, ()))
    return total, count


def _main(argv: list[str]) -> int:
    root = int(argv[0])
    interval = float(argv[1]) if len(argv) > 1 else 0.5
    peak = [0, 0, 0]  # bytes, processes at that moment, most processes seen
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            began = time.perf_counter()
            total, count = tree_rss(root, exclude=os.getpid())
            if total > peak[0]:
                peak[0], peak[1] = total, count
            peak[2] = max(peak[2], count)
            # A pass over thousands of /proc entries costs CPU the benchmark needs: keep
            # the sampler under a tenth of one core, whatever the fleet's size.
            done.wait(max(interval, 9 * (time.perf_counter() - began)))

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    sys.stdin.read()  # until the parent closes our stdin
    done.set()
    thread.join()
    print(json.dumps({"peak_bytes": peak[0], "procs_at_peak": peak[1], "max_procs": peak[2]}))
    return 0


@dataclass
class RssPeak:
    peak_mb: float
    procs_at_peak: int
    max_procs: int


class RssSampler:
    """Start before the workload, `stop()` after; returns the peak of the tree."""

    def __init__(self, root: int | None = None, interval: float = 0.5) -> None:
        self.root = root or os.getpid()
        self.interval = interval
        self._proc: subprocess.Popen[str] | None = None

    def start(self) -> RssSampler:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "corral.bench.rss", str(self.root), str(self.interval)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(0.05)
        return self

    def stop(self) -> RssPeak:
        assert self._proc is not None
        out, _ = self._proc.communicate("", timeout=60)
        data = json.loads(out)
        return RssPeak(
            round(data["peak_bytes"] / 2**20, 1), data["procs_at_peak"], data["max_procs"]
        )


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
