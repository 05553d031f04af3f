"""The scripted fleet workload, shared by corral's run and the mini-swe-agent baseline.

One fake-provider `respond` hook serves both: it reads the request to learn which agent is
asking (from the task text) and how far it got (tool results so far), and answers with
the next bash command. Each command prints the shell's own clock (`$EPOCHREALTIME`, a bash
builtin, so no extra process), which is how the scheduling delay is measured from inside
the sandbox.
"""

from __future__ import annotations

import re
import statistics
from pathlib import Path
from typing import Any

from corral.domain import Completion, ToolCall, Usage
from corral.testing import Fault, RecordedRequest, Reply

AGENT_RE = re.compile(r"fleet agent (\w+)")
OUTPUT_RE = re.compile(r"agent (\w+) step (\d+) (\d+\.\d+)")
SUBMIT = "COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"  # mini-swe-agent's end-of-task marker


def task_text(agent: str) -> str:
    return f"fleet agent {agent}: run the scripted steps, then finish."


def command(agent: str, step: int) -> str:
    return f"echo agent {agent} step {step} $EPOCHREALTIME"


def make_repo(root: Path, files: int = 3) -> Path:
    """A tiny repository: the benchmarks are about the fleet and the sandbox, not about
    copying files."""
    repo = root / "repo"
    repo.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        (repo / f"mod{i}.py").write_text(f"def f{i}(x):\n    return x + {i}\n")
    return repo


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


class Script:
    """The `respond` hook: S steps per agent, each one bash command; the last also ends
    the run (corral's `finish` tool; mini-swe-agent's submit marker, printed first)."""

    def __init__(self, steps: int, *, keep_requests: bool = False) -> None:
        self.steps = steps
        self.keep_requests = keep_requests
        self.provider: Any = None  # set to the FakeProvider, to drop its request log

    def __call__(self, record: RecordedRequest) -> Reply | Fault | None:
        if self.provider is not None and not self.keep_requests:
            # The fake provider logs every request for assertions; a fleet would fill
            # memory with them and charge it to corral's peak RSS.
            self.provider.requests.clear()
        body = record.body
        messages = body["messages"]
        step = sum(1 for m in messages if m.get("role") == "tool")
        agent = "unknown"
        for m in messages:
            if m.get("role") == "user":
                found = AGENT_RE.search(_text(m.get("content")))
                if found:
                    agent = found.group(1)
                    break
        tools = {t.get("function", {}).get("name") for t in body.get("tools") or []}
        return reply(agent, step, last=step >= self.steps - 1, finish="finish" in tools,
                     index=record.index)  # fmt: skip


def reply(agent: str, step: int, *, last: bool, finish: bool, index: int) -> Completion:
    """The answer to an agent's request: its next command (`finish`: it has the finish
    tool, as corral's agents do; mini-swe-agent ends on its submit marker instead)."""
    cmd = command(agent, step)
    if last and not finish:
        cmd = f"echo {SUBMIT}; {cmd}"
    calls = [ToolCall(id=f"call_{index}_0", name="bash", arguments={"command": cmd})]
    if last and finish:
        calls.append(ToolCall(id=f"call_{index}_1", name="finish", arguments={"message": "done"}))
    return Completion(tool_calls=tuple(calls), usage=Usage(input_tokens=100, output_tokens=20))


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def summarize_ms(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(values, 0.5) * 1000, 2),
        "p99_ms": round(percentile(values, 0.99) * 1000, 2),
        "mean_ms": round(statistics.fmean(values) * 1000, 2) if values else 0.0,
    }
