"""One attempt of one task, end to end: the smallest orchestration service.

Validates every input before anything runs, then: sandbox → repo map → agent loop →
diff → patch file, with every event persisted as it happens.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from corral.agent.config import AgentConfig, AgentLimits
from corral.agent.loop import completions_of
from corral.domain import (
    ActionTaken,
    AttemptEnded,
    AttemptStarted,
    ConfigError,
    Event,
    RunStatus,
    new_id,
)
from corral.models import ReplayModel
from corral.orchestrator.egress import FleetEgress
from corral.orchestrator.execute import EventHook, execute_attempt
from corral.orchestrator.hooks import check_model
from corral.orchestrator.models import FleetModels
from corral.orchestrator.policy import Policy, default_redactor, effective_policy, task_policy
from corral.ports import Model, Sandbox
from corral.sandbox import SandboxLimits, open_sandbox
from corral.store import Store


@dataclass(frozen=True)
class RunResult:
    attempt_id: str
    status: RunStatus
    reason: str
    steps: int
    cost_usd: float
    diff: str
    patch_path: str | None
    events: list[Event] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status is RunStatus.finished


def check_repo(repo: str | Path) -> Path:
    path = Path(repo).expanduser()
    if not path.exists():
        raise ConfigError(f"repo {str(repo)!r} does not exist")
    if not path.is_dir():
        raise ConfigError(f"repo {str(repo)!r} is not a directory")
    return path.resolve()


async def run_task(
    task: str,
    repo: str | Path,
    *,
    model: str | Model,
    sandbox: str = "bwrap",
    unsafe_local: bool = False,
    config: AgentConfig | None = None,
    sandbox_limits: SandboxLimits | None = None,
    store: Store | None = None,
    home: str | Path = ".corral",
    env: Mapping[str, str] | None = None,
    on_event: EventHook | None = None,
    policy: Policy | None = None,
    profile: str = "default",
) -> RunResult:
    """Run one agent on one repo in a fresh sandbox; returns when it finishes or stops.

    `profile` names an egress profile of HOME/egress.yaml (`default`: no network).
    Bad input (empty task, missing repo, unknown model, missing key, unknown sandbox,
    unknown profile) raises ConfigError before any sandbox starts or any event is written.
    """
    if not task.strip():
        raise ConfigError("the task is empty: say what the agent should do")
    repo_path = check_repo(repo)
    home_path = Path(home)
    rules = policy or effective_policy(home_path, repo_path)  # a bad policy file fails here
    cfg = config or AgentConfig()
    models = FleetModels(env=env)
    attempt_id = new_id("att")
    if isinstance(model, str):
        check_model(model, env)  # a bad spec or a missing key fails before anything runs
        the_model = await models.for_run(model, attempt_id, cfg.limits.max_cost_usd)
    else:
        the_model = model
    limits = sandbox_limits or SandboxLimits(default_timeout=cfg.limits.command_timeout_s)
    egress = FleetEgress.from_file(home_path / "egress.yaml", None, env)
    egress.check(profile)  # an unknown profile fails before anything is opened
    own_store = store is None
    db = store or await Store.open(home=home_path)
    egress.store = db  # every request through the proxy is audited in this store
    try:
        channel = await egress.channel(profile, attempt_id)
        box = open_sandbox(
            sandbox, repo_path, limits=limits, unsafe_local=unsafe_local, egress=channel
        )
        return await _run(
            attempt_id, task, repo_path, the_model, box, cfg, db, home_path, on_event, rules
        )
    finally:
        await egress.close()
        if own_store:
            await db.close()
        if isinstance(model, str):  # we built it, so we close its connections
            await _aclose(the_model)
            await models.aclose()


async def _aclose(obj: object) -> None:
    close = getattr(obj, "aclose", None)
    if close is not None:
        await close()


async def _run(
    attempt_id: str,
    task: str,
    repo: Path,
    model: Model,
    box: Sandbox,
    cfg: AgentConfig,
    store: Store,
    home: Path,
    on_event: EventHook | None,
    policy: Policy,
) -> RunResult:
    await store.create_attempt(
        attempt_id, task=task, repo=str(repo), model=model.name, sandbox=box.kind
    )
    out = await execute_attempt(
        attempt_id=attempt_id, task=task, repo=repo, model=model, box=box, config=cfg,
        store=store, home=home, hooks=[on_event] if on_event else [], policy=policy,
    )  # fmt: skip
    o = out.outcome
    r = default_redactor()  # the row and what the caller prints: redacted like the events
    await store.end_attempt(
        attempt_id,
        status=o.status,
        reason=r.redact(o.reason),
        steps=o.steps,
        cost_usd=o.cost_usd,
        patch_path=out.patch_path,
    )
    return RunResult(
        attempt_id=attempt_id,
        status=o.status,
        reason=r.redact(o.reason),
        steps=o.steps,
        cost_usd=o.cost_usd,
        diff=r.redact(out.diff),
        patch_path=out.patch_path,
        events=out.events,
    )


@dataclass(frozen=True)
class ReplayResult:
    original_id: str
    run: RunResult
    same_actions: bool
    same_diff: bool


def _actions(events: list[Event]) -> list[tuple[str, str]]:
    return [(e.tool, repr(sorted(e.args.items()))) for e in events if isinstance(e, ActionTaken)]


async def replay_attempt(
    attempt_id: str,
    *,
    store: Store,
    home: str | Path = ".corral",
    repo: str | Path | None = None,
    unsafe_local: bool = False,
    on_event: EventHook | None = None,
) -> ReplayResult:
    """Re-run an attempt from its recorded model responses, on a fresh copy of its repo."""
    full_id = await store.resolve_attempt_id(attempt_id)
    events = await store.events(full_id)
    started = next((e for e in events if isinstance(e, AttemptStarted)), None)
    if started is None:
        raise ConfigError(f"attempt {full_id} has no recorded start; it cannot be replayed")
    original_diff = next((e.diff for e in events if isinstance(e, AttemptEnded)), "")
    model = ReplayModel(completions_of(events), name=f"replay:{started.model}")
    record = await store.get_attempt(full_id)
    policy = None
    if record is not None and record.task_id:  # a campaign task: its own policy snapshot
        policy = task_policy(Path(home), (await store.get_task(record.task_id)).spec)
    limits = AgentLimits.model_validate(started.limits) if started.limits else AgentLimits()
    run = await run_task(
        started.task,
        repo or started.repo,
        model=model,
        sandbox=started.sandbox,
        unsafe_local=unsafe_local or started.sandbox == "local",
        config=AgentConfig(limits=limits, system_prompt=started.system_prompt or None),
        store=store,
        home=home,
        on_event=on_event,
        policy=policy,
    )
    return ReplayResult(
        original_id=full_id,
        run=run,
        same_actions=_actions(run.events) == _actions(events),
        same_diff=run.diff == original_diff,
    )
