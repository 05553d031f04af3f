"""`corral bench fleet`: N scripted agents through the real fleet path, timed.

campaign (SQLite store) → Worker → leased attempts → `execute_attempt` (sandbox + agent
loop + event log) with every model call through the Gateway to an in-process fake
provider answering after L seconds, in its own process as a real provider would be.
Nothing is mocked above the provider's HTTP socket.

Two delays are reported:
- `sched_delay`: from the moment a step's model answer reaches the agent (the gateway
  call returns) to the moment its command starts in the sandbox (read from the shell's
  own clock in the command's output). It covers the event write, tool dispatch and the
  sandbox round trip, i.e. corral's overhead per step, under load.
- `admission_delay`: from a task becoming ready to its attempt being created (the
  scheduler's part), read back from the store.

And `first_command_p50_s` / `first_command_last_s`: from the run's start to each agent's
first command running in its sandbox (its sandbox booted and its first model call
answered). Beside the floor's `boot_last_s` it shows how long the fleet takes to get
going, which bounds its wall time: every agent still has S - 1 model calls to wait for.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corral.bench.provider import ProviderProcess
from corral.bench.rss import RssPeak, RssSampler
from corral.bench.workload import OUTPUT_RE, make_repo, percentile, summarize_ms, task_text
from corral.domain import CampaignSpec, Completion, Event, Message, Observed, TaskSpec, ToolSpec
from corral.gateway import BudgetScope, Face, Gateway, parse_config
from corral.gateway.face import serve_face
from corral.orchestrator.hooks import register_model
from corral.orchestrator.settings import WorkerSettings
from corral.orchestrator.worker import Worker
from corral.ports import Model
from corral.store import Store, TaskRow

MODEL_PREFIX = "fleetbench:"
_TASK_TIMEOUT_S = 600


@dataclass(frozen=True)
class FleetParams:
    agents: int = 100
    steps: int = 10
    latency: float = 1.0
    sandbox: str = "bwrap"
    rpm: int | None = None
    tpm: int | None = None
    heartbeat_s: float = 5.0
    store_url: str | None = None
    # Worker processes (one core each); with more than one they share this process's
    # gateway as a service (fleet-wide limits) and one store.
    workers: int = 1
    # With workers: past this many seconds they are hung, killed, and the run says so
    # (None: every task's own timeout, plus two minutes).
    deadline_s: float | None = None
    # Diagnostic only: rebuild the store's read engine with this pool (size, no overflow,
    # no checkout timeout) to see past the shipped pool's limits. None = as shipped.
    db_pool: int | None = None


class _TimedModel:
    """The gateway's model, noting when each answer arrived (per agent)."""

    def __init__(self, inner: Model, agent: str, answered: dict[str, float]) -> None:
        self.inner = inner
        self.agent = agent
        self.answered = answered
        self.name = inner.name
        self.context_window = inner.context_window

    async def complete(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> Completion:
        done = await self.inner.complete(messages, tools)
        self.answered[self.agent] = time.time()
        return done

    async def aclose(self) -> None:
        close = getattr(self.inner, "aclose", None)  # a gateway service's token, say
        if close is not None:
            await close()


def _gateway_config(base_url: str, params: FleetParams) -> Any:
    return parse_config(
        {
            "deployments": [
                {
                    "name": "fake",
                    "model": f"openai-compatible:{base_url}#fake-model",
                    "limits": {"rpm": params.rpm, "tpm": params.tpm},
                    "price": {"input_per_mtok": 1.0, "output_per_mtok": 2.0},
                    "max_output_tokens": 256,
                }
            ]
        }
    )


def _campaign(params: FleetParams, repo: Path) -> CampaignSpec:
    return CampaignSpec(
        name=f"fleet-bench-{params.agents}x{params.steps}",
        unsafe_local=params.sandbox == "local",
        tasks=tuple(
            TaskSpec(
                id=f"a{i:05d}",
                repo=str(repo),
                instructions=task_text(f"a{i:05d}"),
                model=f"{MODEL_PREFIX}fake",
                sandbox=params.sandbox,  # type: ignore[arg-type]
                max_steps=params.steps + 2,
                max_attempts=1,  # a failure is reported, not hidden by a retry
                command_timeout_s=60,
                timeout_s=_TASK_TIMEOUT_S,
            )
            for i in range(params.agents)
        ),
    )


async def run_fleet(params: FleetParams, home: Path | None = None) -> dict[str, Any]:
    """Run the fleet once; returns the report (see the module docstring for the delays)."""
    with tempfile.TemporaryDirectory(prefix="corral-fleet-") as tmp:
        root = Path(home or tmp)
        repo = make_repo(root)
        with ProviderProcess(
            steps=params.steps, latency=params.latency, rpm=params.rpm, tpm=params.tpm
        ) as provider:
            async with Gateway(_gateway_config(provider.base_url, params), env={}) as gw:
                run = _run if params.workers == 1 else _run_workers
                report = await run(params, root, repo, gw)
        report["model_requests"] = provider.requests
        return report


class Probe:
    """The gateway's answer times per agent, and from them each step's scheduling delay."""

    def __init__(self) -> None:
        self.answered: dict[str, float] = {}
        self.delays: list[float] = []
        self.firsts: list[float] = []  # the wall clock of each agent's first command

    def register(self, model_for: Callable[[str, BudgetScope], Model]) -> None:
        """Serve the bench's tasks with `model_for(deployment, scope)`, timed per agent."""

        def factory(spec: str, task: TaskRow, env: Any) -> Model:
            scope = BudgetScope(task=task.id, campaign=task.campaign_id)
            model = model_for(spec[len(MODEL_PREFIX) :], scope)
            return _TimedModel(model, task.key, self.answered)

        register_model(MODEL_PREFIX, factory)

    def on_event(self, event: Event) -> None:
        if isinstance(event, Observed):
            found = OUTPUT_RE.search(event.output)
            if found and found.group(1) in self.answered:
                self.delays.append(float(found.group(3)) - self.answered[found.group(1)])
                if found.group(2) == "0":
                    self.firsts.append(float(found.group(3)))


def worker_settings(params: FleetParams, home: Path, concurrency: int) -> WorkerSettings:
    return WorkerSettings(
        concurrency=concurrency,
        heartbeat_s=params.heartbeat_s,
        lease_ttl_s=max(30.0, params.heartbeat_s * 6),
        poll_s=0.05,
        home=home,
        env={},
    )


@dataclass
class _Measured:
    wall: float
    cpu0: os.times_result
    cpu1: os.times_result
    peak: RssPeak
    delays: list[float]
    error: str | None
    started: float  # the wall clock when the run started
    firsts: list[float]  # the wall clock of each agent's first command
    # Worker processes' own CPU (theirs, reported by them; only with --workers > 1). The
    # parent's own counts would hold the gateway service alone, and its children's would
    # mix the workers with what they start; the report counts them as corral's own.
    workers_user: float = 0.0
    workers_sys: float = 0.0


async def _run(params: FleetParams, root: Path, repo: Path, gw: Gateway) -> dict[str, Any]:
    probe = Probe()
    probe.register(lambda deployment, scope: gw.model(deployment, scope=scope))
    store = await Store.open(params.store_url, home=root / ".corral")
    if params.db_pool:
        await _widen_pool(store, params.db_pool)
    try:
        cid = await store.create_campaign(_campaign(params, repo))
        settings = worker_settings(params, root / ".corral", params.agents)
        worker = Worker(store, settings, campaign_id=cid, on_event=probe.on_event)
        sampler = RssSampler().start()
        cpu0 = os.times()
        started, t0 = time.time(), time.perf_counter()
        error = None
        try:
            await worker.run(until_done=True)
        except Exception as exc:  # the worker itself gave up: report it, do not hide it
            error = crash_note(exc)
        finally:
            wall = time.perf_counter() - t0
            cpu1 = os.times()
            peak = sampler.stop()
        measured = _Measured(wall, cpu0, cpu1, peak, probe.delays, error, started, probe.firsts)
        return await _report(params, store, cid, measured)
    finally:
        await store.close()


async def _run_workers(params: FleetParams, root: Path, repo: Path, gw: Gateway) -> dict[str, Any]:
    """K worker processes over one store, sharing this process's gateway as a service."""
    store = await Store.open(params.store_url, home=root / ".corral")
    procs: list[asyncio.subprocess.Process] = []
    serving: asyncio.Task[None] | None = None
    try:
        cid = await store.create_campaign(_campaign(params, repo))
        public, admin = root / "gateway.sock", root / "gateway.admin"
        ready = asyncio.Event()
        serving = asyncio.create_task(
            serve_face(Face(gw), str(public), admin_path=str(admin), on_ready=lambda _: ready.set())
        )
        waiting = asyncio.ensure_future(ready.wait())
        await asyncio.wait({waiting, serving}, return_when=asyncio.FIRST_COMPLETED)
        if not ready.is_set():  # the service could not start (it says why)
            waiting.cancel()
            await serving
        config = {
            "params": dataclasses.asdict(params), "home": str(root / ".corral"),
            "campaign": cid, "public": str(public), "admin": str(admin),
            "concurrency": -(-params.agents // params.workers),
        }  # fmt: skip
        sampler = RssSampler().start()
        cpu0 = os.times()
        started, t0 = time.time(), time.perf_counter()
        argv = [sys.executable, "-m", "corral.bench.fleet_worker", json.dumps(config)]
        for _ in range(params.workers):
            procs.append(
                await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE)
            )
        # Every task gets 600 s, all in one wave: past that, a worker is hung, not slow.
        bound = params.deadline_s or _TASK_TIMEOUT_S + 120.0
        hung: list[str] = []
        try:
            done = await asyncio.wait_for(
                asyncio.gather(*(proc.communicate() for proc in procs)), bound
            )
            outputs = [out for out, _err in done]
        except TimeoutError:
            hung.append(f"the worker processes did not finish within {bound:g}s (killed)")
            outputs = [b""] * len(procs)
            for proc in procs:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
        wall = time.perf_counter() - t0
        cpu1 = os.times()
        peak = sampler.stop()
        merged = merge_worker_reports(
            [(proc.returncode, out) for proc, out in zip(procs, outputs, strict=True)]
        )
        measured = _Measured(
            wall, cpu0, cpu1, peak, merged.delays, "; ".join(hung + merged.errors) or None,
            started, merged.firsts, merged.cpu_user, merged.cpu_sys,
        )  # fmt: skip
        return await _report(params, store, cid, measured)
    finally:
        for proc in procs:  # we failed or were cancelled: no worker outlives the run
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if serving is not None:
            serving.cancel()
            await asyncio.gather(serving, return_exceptions=True)
        await store.close()


@dataclass
class WorkerReports:
    delays: list[float]
    firsts: list[float]
    errors: list[str]
    cpu_user: float  # the worker processes' own CPU over their runs
    cpu_sys: float


def merge_worker_reports(outputs: Sequence[tuple[int | None, bytes]]) -> WorkerReports:
    """Each worker's (exit status, stdout), whose last line is its report, merged."""
    merged = WorkerReports([], [], [], 0.0, 0.0)
    for status, out in outputs:
        try:
            part = json.loads(out.decode().strip().splitlines()[-1])
            if not isinstance(part, dict):
                raise ValueError("not a report")
        except (ValueError, IndexError):
            merged.errors.append(f"a worker process exited {status} without a report")
            continue
        merged.delays += part.get("delays") or []
        merged.firsts += part.get("firsts") or []
        merged.cpu_user += float(part.get("cpu_user_s") or 0.0)
        merged.cpu_sys += float(part.get("cpu_sys_s") or 0.0)
        if part.get("error"):
            merged.errors.append(str(part["error"]))
    return merged


async def _report(
    params: FleetParams, store: Store, campaign_id: str, m: _Measured
) -> dict[str, Any]:
    summary = await store.summary(campaign_id)
    admission = await _admission_delays(store, campaign_id)
    counts = summary["counts"]
    ok = int(counts.get("succeeded", 0))
    ideal = params.steps * params.latency
    children = _children_cpu(m.cpu1) - _children_cpu(m.cpu0)
    firsts = sorted(t - m.started for t in m.firsts)
    return {
        "system": "corral",
        "agents": params.agents,
        "steps": params.steps,
        "latency_s": params.latency,
        "sandbox": params.sandbox,
        "workers": params.workers,
        "wall_s": round(m.wall, 3),
        "ideal_s": round(ideal, 3),
        "wall_over_ideal": round(m.wall / ideal, 3) if ideal else None,
        "steps_per_s": round(len(m.delays) / m.wall, 1),  # commands that ran, not planned
        "sched_delay_p50_ms": summarize_ms(m.delays)["p50_ms"],
        "sched_delay_p99_ms": summarize_ms(m.delays)["p99_ms"],
        "sched_delay_samples": len(m.delays),
        "admission_delay_p50_ms": summarize_ms(admission)["p50_ms"],
        "admission_delay_p99_ms": summarize_ms(admission)["p99_ms"],
        "first_command_p50_s": round(percentile(firsts, 0.5), 3) if firsts else None,
        "first_command_last_s": round(firsts[-1], 3) if firsts else None,
        "peak_rss_mb": m.peak.peak_mb,
        "rss_per_agent_mb": round(m.peak.peak_mb / params.agents, 2),
        "procs_at_peak": m.peak.procs_at_peak,
        "cpu_user_s": round(m.cpu1.user - m.cpu0.user + m.workers_user, 2),
        "cpu_sys_s": round(m.cpu1.system - m.cpu0.system + m.workers_sys, 2),
        "cpu_children_s": round(children - m.workers_user - m.workers_sys, 2),
        "failed": params.agents - ok,
        "error": m.error,
        "task_states": dict(counts),
        "settings": {
            "concurrency": params.agents,
            "workers": params.workers,
            "heartbeat_s": params.heartbeat_s,
            "store": "postgres" if params.store_url else "sqlite",
            "db_pool": params.db_pool or "as shipped (5+10, 30 s timeout)",
        },
    }


def crash_note(exc: BaseException) -> str:
    """A worker that gave up, in one line for the report (not hidden, not a traceback)."""
    first = str(exc).splitlines()[0][:200] if str(exc) else ""
    return f"worker crashed: {type(exc).__name__}: {first}"


def _children_cpu(t: os.times_result) -> float:
    return t.children_user + t.children_system


async def _widen_pool(store: Store, size: int) -> None:
    from sqlalchemy import event as sa_event
    from sqlalchemy.ext.asyncio import create_async_engine

    from corral.store import store as store_module

    old = store.engine
    store.engine = create_async_engine(old.url, pool_size=size, max_overflow=0, pool_timeout=3600)
    if old.url.drivername.startswith("sqlite"):
        sa_event.listen(store.engine.sync_engine, "connect", store_module._sqlite_pragmas)
    await old.dispose()


async def _admission_delays(store: Store, campaign_id: str) -> list[float]:
    out: list[float] = []
    for task in await store.tasks(campaign_id=campaign_id):
        for attempt in await store.attempts_of(task.id):
            # Tasks without dependencies are ready from creation on.
            out.append(max(0.0, (attempt["created_at"] - task.created_at).total_seconds()))
    return out
