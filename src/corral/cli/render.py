"""How events look on a terminal and in JSON. No logic beyond presentation."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any

from rich.cells import cell_len
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from corral.domain import (
    ActionTaken,
    AttemptEnded,
    AttemptStarted,
    Condensed,
    Event,
    ModelCalled,
    Nudged,
    Observed,
)


def event_json(event: Event) -> dict[str, Any]:
    return event.model_dump(mode="json")


def _short(text: str, lines: int = 6, width: int = 160) -> str:
    rows = text.rstrip().splitlines()
    shown = [r[:width] for r in rows[:lines]]
    if len(rows) > lines:
        shown.append(f"... ({len(rows) - lines} more lines)")
    return "\n".join("      " + r for r in shown)


def event_line(e: Event) -> str:
    """One readable block per event, for `corral run` and `corral events`."""
    head = f"{e.seq:>4} "
    if isinstance(e, AttemptStarted):
        return f"{head}start  {e.model} in {e.sandbox} sandbox: {e.task[:100]}"
    if isinstance(e, ModelCalled):
        u = e.completion.usage
        thought = e.completion.content.strip().splitlines()[0][:120] if e.completion.content else ""
        cost = f" ${e.completion.cost_usd:.4f}" if e.completion.cost_usd else ""
        return (
            f"{head}model  {u.input_tokens}→{u.output_tokens} tokens "
            f"{e.completion.latency_s:.2f}s{cost}" + (f"  “{thought}”" if thought else "")
        )
    if isinstance(e, ActionTaken):
        return f"{head}act    {e.tool} {json.dumps(e.args, default=str)[:160]}"
    if isinstance(e, Observed):
        flags = [f"exit {e.exit_code}"] if e.exit_code is not None else []
        flags += ["error"] if e.is_error else []
        flags += ["timed out"] if e.timed_out else []
        flags += ["truncated"] if e.truncated else []
        return f"{head}obs    {e.tool} {' · '.join(flags)}\n{_short(e.output)}"
    if isinstance(e, Nudged):
        return f"{head}nudge  {e.message[:160]}"
    if isinstance(e, Condensed):
        return f"{head}condensed through event {e.through_seq}"
    if isinstance(e, AttemptEnded):
        return (
            f"{head}end    {e.status.value}: {e.reason[:200]} ({e.steps} steps, ${e.cost_usd:.4f})"
        )
    return f"{head}{e.type}"


_BAR, _TIME = 10, 8  # the bar's width; the elapsed time's, up to `99:59:59`


@contextlib.contextmanager
def campaign_progress(title: str, unit: str) -> Iterator[Callable[[dict[str, Any]], None]]:
    """A progress bar on stderr, fed with campaign summaries (counts, done, total, cost)."""
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(bar_width=_BAR),
        TextColumn("{task.completed}/{task.total} " + unit),
        TimeElapsedColumn(),
        TextColumn("{task.fields[detail]}"),
    )
    console = Console(stderr=True)
    with Progress(*columns, console=console) as bar:
        t = bar.add_task(title, total=None, detail="")

        def show(s: dict[str, Any]) -> None:
            c = s["counts"]
            shown = [("running", "running"), ("needs_review", "review"), ("failed", "failed")]
            counts = [f"{name} {c[key]}" for key, name in shown if c.get(key)]
            detail = " · ".join([*counts, f"${s.get('cost_usd', 0.0):.4f}"])
            # Rich shrinks every column of a line too wide for the screen (the elapsed time
            # showed as `0:00:…`): cut the detail to the room the others leave instead.
            done = f"{s['done']}/{s['total']} {unit}"
            room = console.width - cell_len(title) - _BAR - cell_len(done) - _TIME - 4
            if cell_len(detail) > room:
                detail = detail[: max(room - 1, 0)] + "…" if room > 0 else ""
            bar.update(t, total=s["total"], completed=s["done"], detail=detail)

        yield show
