"""Fleet commands: campaigns, tasks, cancel/retry, the worker, and the review queue."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from corral.cli.common import HomeOpt, JsonOpt, StoreOpt, fail, run_async, with_store

if TYPE_CHECKING:
    from corral.orchestrator.models import FleetModels
    from corral.orchestrator.settings import WorkerSettings
    from corral.store import Store

campaign_app = typer.Typer(help="Run many tasks as one campaign.", no_args_is_help=True)
tasks_app = typer.Typer(help="Inspect tasks.", no_args_is_help=True)
review_app = typer.Typer(help="The human review queue.", no_args_is_help=True)
ConcurrencyOpt = Annotated[
    int, typer.Option("--concurrency", min=1, help="Attempts run at once by this process.")
]


ZombieOpt = Annotated[
    float,
    typer.Option("--zombie-after", help="Kill an attempt with no new event for this long (s)."),
]
LeaseOpt = Annotated[
    float, typer.Option("--lease-ttl", help="Seconds a dead worker's attempts stay leased.")
]


GatewayOpt = Annotated[
    Path | None,
    typer.Option(
        "--gateway",
        help="Gateway config (deployments, limits, routes, budgets) for provider calls.",
    ),
]


ServiceOpt = Annotated[
    Path | None,
    typer.Option(
        "--gateway-socket",
        help="A running `corral serve` (its socket; the admin socket is SOCKET.admin), "
        "shared with other workers so limits and budgets hold for all of them.",
    ),
]


# What a fleet process runs on; importing the CLI used to load all of it.
FLEET_MODULES = (
    "corral.cli.render",
    "corral.orchestrator.campaigns",
    "corral.orchestrator.metrics",
    "corral.orchestrator.models",
    "corral.orchestrator.policy",
    "corral.orchestrator.settings",
    "corral.orchestrator.worker",
    "corral.store",
)


def tune_for_fleet(*more: str) -> None:
    """The heap set for a long-running fleet process, once the modules it runs on (and
    `more`) are loaded: tune_for_fleet freezes what is loaded by then out of the GC."""
    from corral.orchestrator.heap import tune_for_fleet as tune

    for name in (*FLEET_MODULES, *more):
        importlib.import_module(name)
    tune()


def _models(gateway: Path | None, service: Path | None = None) -> FleetModels:
    """Provider calls go through a gateway: a shared service, the configured one, or one
    per model spec."""
    from corral.orchestrator.models import FleetModels

    env = dict(os.environ)
    if service is not None:
        if gateway is not None:
            fail("use --gateway or --gateway-socket, not both (the service has its own config)")
        if not service.is_socket():
            fail(f"no gateway service at {service}: start one with `corral serve`")
        from corral.gateway.remote import GatewayService

        admin = service.with_name(service.name + ".admin")
        return FleetModels(service=GatewayService(service, admin), env=env)
    if gateway is None:
        return FleetModels(env=env)
    from corral.gateway import Gateway

    return FleetModels(gateway=Gateway.from_file(gateway, env=env), env=env)


def worker_settings(
    home: Path, concurrency: int, zombie_after: float = 600.0, lease_ttl: float = 15.0
) -> WorkerSettings:
    from corral.orchestrator.settings import WorkerSettings

    return WorkerSettings(
        home=home, concurrency=concurrency, env=dict(os.environ),
        zombie_after_s=zombie_after, lease_ttl_s=lease_ttl,
        heartbeat_s=min(1.0, lease_ttl / 3),
    )  # fmt: skip


async def _run_with_progress(
    store: Store, cid: str, settings: WorkerSettings, as_json: bool, models: FleetModels
) -> dict[str, Any]:
    try:
        return await _run_shown(store, cid, settings, as_json, models)
    finally:
        await models.aclose()
        if models.gateway is not None:
            await models.gateway.aclose()


async def _run_shown(
    store: Store, cid: str, settings: WorkerSettings, as_json: bool, models: FleetModels
) -> dict[str, Any]:
    from corral.cli.render import campaign_progress
    from corral.orchestrator.campaigns import run_campaign

    if as_json:
        return await run_campaign(store, cid, settings, models=models)
    camp = await store.get_campaign(cid)
    with campaign_progress(camp.name if camp else cid, "done") as show:
        status = await run_campaign(store, cid, settings, progress=show, models=models)
        show(await store.summary(cid))
    return status


def print_status(status: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(status, indent=2))
        return
    typer.echo(f"campaign {status['id']} ({status['name']}): {status['state']}")
    counts = " · ".join(f"{k} {v}" for k, v in sorted(status["counts"].items()))
    typer.echo(f"  {counts} · ${status['cost_usd']:.4f}")
    for t in status["tasks"]:
        reason = f"  {t['reason'][:70]}" if t["reason"] else ""
        typer.echo(f"  {t['key']:<24} {t['state']:<13} attempts {t['attempts']}{reason}")


def exit_for(status: dict[str, Any]) -> None:
    """Exit 0 only if every task succeeded."""
    from corral.domain import TaskState

    ok = all(t["state"] == TaskState.succeeded.value for t in status["tasks"])
    raise typer.Exit(0 if ok else 1)


def run_found(
    find: Callable[[Store], Awaitable[str]],
    settings: WorkerSettings,
    as_json: bool,
    gateway: Path | None,
    home: Path,
    url: str | None,
) -> dict[str, Any]:
    """Find (or create) the campaign and run it to the end (a progress bar unless JSON)."""
    tune_for_fleet()

    async def go(s: Store) -> dict[str, Any]:
        cid = await find(s)
        return await _run_with_progress(s, cid, settings, as_json, _models(gateway))

    return with_store(url, home, go)


@campaign_app.command("run")
def campaign_run(
    file: Annotated[Path, typer.Argument(help="The campaign YAML file.")],
    concurrency: ConcurrencyOpt = 8,
    as_json: JsonOpt = False,
    zombie_after: ZombieOpt = 600.0,
    lease_ttl: LeaseOpt = 15.0,
    gateway: GatewayOpt = None,
    home: HomeOpt = Path(".corral"),
    store: StoreOpt = None,
) -> None:
    """Create a campaign from FILE and run it to the end."""
    from corral.orchestrator.campaigns import create_from_file

    async def create(s: Store) -> str:
        cid = await create_from_file(s, file, env=dict(os.environ), home=home)
        if not as_json:
            typer.echo(f"campaign {cid}", err=True)
        return cid

    settings = worker_settings(home, concurrency, zombie_after, lease_ttl)
    status = run_found(create, settings, as_json, gateway, home, store)
    print_status(status, as_json)
    exit_for(status)


@campaign_app.command("resume")
def campaign_resume(
    campaign_id: Annotated[str, typer.Argument()],
    concurrency: ConcurrencyOpt = 8,
    as_json: JsonOpt = False,
    zombie_after: ZombieOpt = 600.0,
    lease_ttl: LeaseOpt = 15.0,
    gateway: GatewayOpt = None,
    home: HomeOpt = Path(".corral"),
    store: StoreOpt = None,
) -> None:
    """Carry on a campaign after a crash: finished tasks stay finished, lost ones retry."""
    from corral.orchestrator.campaigns import reopen_campaign

    async def reopen(s: Store) -> str:
        return await reopen_campaign(s, campaign_id)

    settings = worker_settings(home, concurrency, zombie_after, lease_ttl)
    status = run_found(reopen, settings, as_json, gateway, home, store)
    print_status(status, as_json)
    exit_for(status)


@campaign_app.command("status")
def campaign_status_cmd(
    campaign_id: Annotated[str, typer.Argument()],
    as_json: JsonOpt = False,
    home: HomeOpt = Path(".corral"),
    store: StoreOpt = None,
) -> None:
    """Per-task state, attempts and cost."""
    from corral.orchestrator.campaigns import campaign_status

    async def go(s: Store) -> dict[str, Any]:
        return await campaign_status(s, await s.resolve_campaign_id(campaign_id))

    print_status(with_store(store, home, go), as_json)


@campaign_app.command("ls")
def campaign_ls(
    as_json: JsonOpt = False, home: HomeOpt = Path(".corral"), store: StoreOpt = None
) -> None:
    """Recent campaigns."""

    async def go(s: Store) -> list[dict[str, Any]]:
        return [
            {"id": c.id, "name": c.name, "team": c.team, "state": c.state}
            | {"done": (sm := await s.summary(c.id))["done"], "total": sm["total"]}
            for c in await s.list_campaigns()
        ]

    rows = with_store(store, home, go)
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for r in rows:
        typer.echo(f"{r['id']}  {r['state']:<9} {r['done']}/{r['total']}  {r['name']}")


@tasks_app.command("ls")
def tasks_ls(
    campaign: Annotated[str | None, typer.Option("--campaign")] = None,
    state: Annotated[str | None, typer.Option("--state")] = None,
    as_json: JsonOpt = False,
    home: HomeOpt = Path(".corral"),
    store: StoreOpt = None,
) -> None:
    """Tasks, optionally of one campaign and in one state."""
    from corral.domain import TaskState

    if state is not None and state not in TaskState.__members__:
        fail(f"unknown state {state!r}; one of: {', '.join(TaskState.__members__)}")

    async def go(s: Store) -> list[dict[str, Any]]:
        cid = await s.resolve_campaign_id(campaign) if campaign else None
        rows = await s.tasks(campaign_id=cid, states=[TaskState(state)] if state else None)
        return [
            {"id": t.id, "campaign": t.campaign_id, "key": t.key, "state": t.state.value,
             "attempts": t.attempts, "priority": t.priority}
            for t in rows
        ]  # fmt: skip

    rows = with_store(store, home, go)
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for r in rows:
        typer.echo(f"{r['id']}  {r['state']:<13} {r['attempts']} attempts  {r['key']}")


def cancel(
    ref: Annotated[str, typer.Argument(help="A task id, CAMPAIGN/KEY, or a campaign id.")],
    home: HomeOpt = Path(".corral"),
    store: StoreOpt = None,
) -> None:
    """Cancel a task or a whole campaign; running sandboxes stop within seconds."""

    async def go(s: Store) -> int:
        if ref.startswith("cmp_"):
            cid = await s.resolve_campaign_id(ref)
            ids = [t.id for t in await s.tasks(campaign_id=cid)]
            n = await s.request_cancel(ids)
            await s.set_campaign_state(cid, "cancelled")
            return n
        return await s.request_cancel([(await s.get_task(ref)).id])

    n = with_store(store, home, go)
    typer.echo(f"cancelled {n} task(s)")


def retry(
    ref: Annotated[str, typer.Argument(help="A failed, cancelled, rejected or skipped task.")],
    home: HomeOpt = Path(".corral"),
    store: StoreOpt = None,
) -> None:
    """Give a failed, cancelled, rejected or skipped task another attempt.

    A worker or `campaign resume` runs it; what its failure skipped waits for it again.
    """

    from corral.domain import CorralError

    async def go(s: Store) -> list[str]:
        task = await s.get_task(ref)
        opened = await s.reopen_task(task.id)
        await s.set_campaign_state(task.campaign_id, "running")
        return opened

    try:
        opened = with_store(store, home, go)
    except CorralError as e:
        fail(str(e))
    more = f", and {len(opened) - 1} tasks that depend on it" if len(opened) > 1 else ""
    typer.echo(f"task {ref} is open again{more} (each runs once what it depends on succeeded)")


def worker(
    concurrency: ConcurrencyOpt = 8,
    metrics_port: Annotated[int | None, typer.Option("--metrics-port")] = None,
    zombie_after: ZombieOpt = 600.0,
    lease_ttl: LeaseOpt = 15.0,
    gateway: GatewayOpt = None,
    gateway_socket: ServiceOpt = None,
    home: HomeOpt = Path(".corral"),
    store: StoreOpt = None,
) -> None:
    """Run the scheduler and executor against the store until stopped (Ctrl-C, SIGTERM)."""
    from corral.orchestrator.metrics import FleetMetrics
    from corral.orchestrator.worker import Worker

    models = _models(gateway, gateway_socket)
    tune_for_fleet()
    metrics = FleetMetrics()
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port, registry=metrics.registry)

    async def go(s: Store) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        w = Worker(
            s, worker_settings(home, concurrency, zombie_after, lease_ttl), metrics=metrics,
            models=models,
        )  # fmt: skip
        typer.echo(f"worker {w.owner} running (concurrency {concurrency})", err=True)

        async def states() -> None:
            while not stop.is_set():
                counts: dict[str, int] = {}
                for c in await s.list_campaigns(500):
                    for k, v in (await s.summary(c.id))["counts"].items():
                        counts[k] = counts.get(k, 0) + v
                metrics.set_states(counts)
                await asyncio.sleep(2)

        sampler = asyncio.create_task(states())
        try:
            await w.run(stop=stop)
        finally:
            sampler.cancel()

    with_store(store, home, go)


def _review_json(r: Any) -> dict[str, Any]:
    return {
        "id": r.id, "task_id": r.task_id, "attempt_id": r.attempt_id, "state": r.state,
        "reason": r.reason, "comment": r.comment, "decided_by": r.decided_by,
        "created_at": r.created_at.isoformat(),
    }  # fmt: skip


@review_app.command("list")
def review_list(
    all_states: Annotated[bool, typer.Option("--all", help="Decided ones too.")] = False,
    as_json: JsonOpt = False,
    home: HomeOpt = Path(".corral"),
    store: StoreOpt = None,
) -> None:
    """Tasks waiting for a human decision."""
    rows = with_store(store, home, lambda s: s.reviews(state=None if all_states else "pending"))
    if as_json:
        typer.echo(json.dumps([_review_json(r) for r in rows]))
        return
    for r in rows:
        typer.echo(f"{r.id}  {r.state:<9} task {r.task_id}  {r.reason[:70]}")


@review_app.command("show")
def review_show(
    review_id: Annotated[str, typer.Argument()],
    as_json: JsonOpt = False,
    home: HomeOpt = Path(".corral"),
    store: StoreOpt = None,
) -> None:
    """What the agent did and what approving it would deliver."""
    from corral.orchestrator.policy import default_redactor

    r = with_store(store, home, lambda s: s.get_review(review_id))
    red = default_redactor()  # stored redacted; again here for rows older than a secret
    diff, reason = red.redact(r.diff), red.redact(r.reason)
    if as_json:
        typer.echo(json.dumps(_review_json(r) | {"reason": reason, "diff": diff}))
        return
    typer.echo(f"review {r.id} ({r.state}) of task {r.task_id}\n{reason}\n\n{diff}")


def _decide(
    review_id: str, approve: bool, comment: str | None, home: Path, url: str | None
) -> None:
    from corral.orchestrator.policy import AuditService

    async def go(s: Store) -> bool:
        r = await s.get_review(review_id)
        by = os.environ.get("USER", "unknown")
        done = await s.decide_review(r.id, approve=approve, comment=comment, by=by)
        if done:
            await AuditService(s).review_decided(
                review_id=r.id, task_id=r.task_id, attempt_id=r.attempt_id,
                approved=approve, by=by, comment=comment,
            )  # fmt: skip
        return done

    if not with_store(url, home, go):
        fail(f"review {review_id!r} was already decided")
    typer.echo(f"{'approved' if approve else 'rejected'} {review_id}")


@review_app.command("approve")
def review_approve(
    review_id: Annotated[str, typer.Argument()],
    comment: Annotated[str | None, typer.Option("--comment")] = None,
    home: HomeOpt = Path(".corral"),
    store: StoreOpt = None,
) -> None:
    """Approve: a worker (or `campaign resume`) delivers the result and the task succeeds."""
    _decide(review_id, True, comment, home, store)


@review_app.command("reject")
def review_reject(
    review_id: Annotated[str, typer.Argument()],
    comment: Annotated[str | None, typer.Option("--comment")] = None,
    home: HomeOpt = Path(".corral"),
    store: StoreOpt = None,
) -> None:
    """Reject: the task ends as rejected and nothing is delivered."""
    _decide(review_id, False, comment, home, store)


def register(app: typer.Typer) -> None:
    app.add_typer(campaign_app, name="campaign")
    app.add_typer(tasks_app, name="tasks")
    app.add_typer(review_app, name="review")
    app.command()(cancel)
    app.command()(retry)
    app.command()(worker)


__all__ = ["register", "run_async"]
