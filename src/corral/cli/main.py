"""The `corral` command. Thin: parse flags, call a service, print. Sync only at this edge."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from corral.cli.audit import register as register_audit
from corral.cli.common import HomeOpt, JsonOpt, StoreOpt, fail, run_async
from corral.cli.cve import register as register_cve
from corral.cli.cve import register_hooks as register_cve_hooks
from corral.cli.fleet import register as register_fleet
from corral.cli.gateway import register as register_gateway
from corral.cli.refactor import register as register_refactor
from corral.cli.refactor import register_hooks as register_refactor_hooks
from corral.cli.sandbox import register as register_sandbox

if TYPE_CHECKING:
    from corral.domain import Event
    from corral.orchestrator import RunResult

# Heavy modules (the orchestrator, the store, SQLAlchemy, httpx, ...) are imported by the
# commands that use them, so `corral --help` starts without them; see _before_any_command.

app = typer.Typer(
    help="corral: run fleets of autonomous coding agents safely.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


_fail = fail
_run_async = run_async


@app.callback()
def _before_any_command() -> None:
    # What importing the CLI used to do, now done before any sub-command runs (or shows
    # its help; `corral --help` alone skips it): every log line of the CLI process is
    # redacted, and the workflows' models and deliveries are known to the orchestrator.
    from corral.orchestrator.policy import install_log_redaction

    install_log_redaction()
    register_cve_hooks()
    register_refactor_hooks()


def _printer(enabled: bool) -> Any:
    from corral.cli.render import event_line

    def show(event: Event) -> None:
        if enabled:
            typer.echo(event_line(event))

    return show


def _result_json(r: RunResult) -> dict[str, Any]:
    from corral.cli.render import event_json

    return {
        "status": r.status.value,
        "reason": r.reason,
        "steps": r.steps,
        "cost_usd": r.cost_usd,
        "diff": r.diff,
        "patch": r.patch_path,
        "attempt_id": r.attempt_id,
        "events": [event_json(e) for e in r.events],
    }


def _finish(r: RunResult, as_json: bool) -> NoReturn:
    if as_json:
        typer.echo(json.dumps(_result_json(r), indent=2))
    else:
        typer.echo(f"\n{r.status.value}: {r.reason}")
        typer.echo(f"attempt {r.attempt_id} · {r.steps} steps · ${r.cost_usd:.4f}")
        if r.patch_path:
            typer.echo(f"patch: {r.patch_path}")
    raise typer.Exit(0 if r.ok else 1)


@app.command()
def run(
    task: Annotated[str, typer.Argument(help="What the agent should do.")],
    repo: Annotated[Path, typer.Option("--repo", help="The repository to work on.")],
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            envvar="CORRAL_MODEL",
            help="scripted:PATH, openai/gpt-4o, anthropic/claude-sonnet-4-5, "
            "openai-compatible:http://host:port/v1#name",
        ),
    ] = None,
    sandbox: Annotated[str, typer.Option("--sandbox", help="bwrap, docker or local.")] = "bwrap",
    unsafe_local: Annotated[
        bool, typer.Option("--unsafe-local", help="Allow the unisolated local sandbox.")
    ] = False,
    profile: Annotated[
        str,
        typer.Option("--profile", help="Egress profile from HOME/egress.yaml (default: none)."),
    ] = "default",
    max_steps: Annotated[int, typer.Option("--max-steps", min=1)] = 50,
    max_cost: Annotated[float | None, typer.Option("--max-cost-usd", min=0)] = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Wall-time limit, seconds.")] = 1800,
    as_json: JsonOpt = False,
    home: HomeOpt = Path(".corral"),
) -> None:
    """Run one agent on one repository in a disposable sandbox."""
    from corral.agent.config import AgentConfig, AgentLimits
    from corral.orchestrator import run_task

    if not model:
        _fail("no model given: pass --model SPEC (for example scripted:./agent.yaml)")
    config = AgentConfig(
        limits=AgentLimits(max_steps=max_steps, max_cost_usd=max_cost, max_wall_s=timeout)
    )
    result = _run_async(
        run_task(
            task,
            repo,
            model=model,
            sandbox=sandbox,
            unsafe_local=unsafe_local,
            config=config,
            home=home,
            env=os.environ,
            on_event=_printer(not as_json),
            profile=profile,
        )
    )
    _finish(result, as_json)


async def _events(attempt_id: str, home: Path, url: str | None) -> tuple[str, list[Event]]:
    from corral.store import Store

    store = await Store.open(url, home=home)
    try:
        full = await store.resolve_attempt_id(attempt_id)
        return full, await store.events(full)
    finally:
        await store.close()


@app.command()
def events(
    attempt_id: Annotated[str, typer.Argument(help="An attempt id (or a unique prefix).")],
    as_json: JsonOpt = False,
    home: HomeOpt = Path(".corral"),
    store: StoreOpt = None,
) -> None:
    """Print an attempt's events."""
    from corral.cli.render import event_json, event_line

    full, evs = _run_async(_events(attempt_id, home, store))
    if as_json:
        typer.echo(json.dumps({"attempt_id": full, "events": [event_json(e) for e in evs]}))
        return
    for e in evs:
        typer.echo(event_line(e))


async def _attempts(home: Path, url: str | None) -> list[dict[str, Any]]:
    from corral.store import Store

    store = await Store.open(url, home=home)
    try:
        return [
            {
                "id": a.id,
                "status": a.status.value,
                "steps": a.steps,
                "cost_usd": a.cost_usd,
                "task": a.task,
                "created_at": a.created_at.isoformat(),
            }
            for a in await store.list_attempts()
        ]
    finally:
        await store.close()


@app.command()
def attempts(
    as_json: JsonOpt = False, home: HomeOpt = Path(".corral"), store: StoreOpt = None
) -> None:
    """List recent attempts."""
    rows = _run_async(_attempts(home, store))
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for r in rows:
        typer.echo(f"{r['id']}  {r['status']:<9} {r['steps']:>3} steps  {r['task'][:60]}")


@app.command()
def replay(
    attempt_id: Annotated[str, typer.Argument(help="The attempt to re-run.")],
    repo: Annotated[
        Path | None, typer.Option("--repo", help="Use this repo instead of the recorded one.")
    ] = None,
    as_json: JsonOpt = False,
    home: HomeOpt = Path(".corral"),
) -> None:
    """Re-run an attempt from its recorded model responses; reports whether it reproduced."""
    from corral.orchestrator import replay_attempt
    from corral.store import Store

    async def go() -> Any:
        store = await Store.open(home=home)
        try:
            return await replay_attempt(
                attempt_id, store=store, home=home, repo=repo, on_event=_printer(not as_json)
            )
        finally:
            await store.close()

    r = _run_async(go())
    reproduced = r.same_actions and r.same_diff
    if as_json:
        out = _result_json(r.run) | {
            "replay_of": r.original_id,
            "same_actions": r.same_actions,
            "same_diff": r.same_diff,
            "reproduced": reproduced,
        }
        typer.echo(json.dumps(out, indent=2))
    else:
        typer.echo(f"\nreplay of {r.original_id}: {r.run.status.value}")
        typer.echo(f"same actions: {r.same_actions} · same diff: {r.same_diff}")
    raise typer.Exit(0 if reproduced else 1)


@app.command()
def demo(
    sandbox: Annotated[str, typer.Option("--sandbox")] = "bwrap",
    unsafe_local: Annotated[bool, typer.Option("--unsafe-local")] = False,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1)] = 4,
    as_json: JsonOpt = False,
    home: HomeOpt = Path(".corral"),
) -> None:
    """A CVE campaign over a dozen generated repos: real advisories, no API key."""
    from corral.cli.cve import run_campaign_command
    from corral.cli.demo import advisory_db, fresh_run_dir, generate_repos
    from corral.workflows.cve.campaign import CampaignOptions

    if sandbox not in ("bwrap", "local", "docker"):
        _fail(f"unknown sandbox {sandbox!r}")
    repos = generate_repos(fresh_run_dir(home / "demo" / "cve-repos"))
    if not as_json:
        typer.echo(f"demo: {len(repos)} repos in {repos[0].parent}\n", err=True)
    opts = CampaignOptions(
        db=(str(advisory_db()),), concurrency=concurrency, sandbox=sandbox,  # type: ignore[arg-type]
        unsafe_local=unsafe_local, use_index=False, name="cve-demo",
    )  # fmt: skip
    report = _run_async(run_campaign_command([str(r) for r in repos], opts, home, None, as_json))
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    from corral.workflows.cve.outcome import report_markdown

    typer.echo(report_markdown(report))
    typer.echo(f"report: {report['files']['markdown']}")
    typer.echo("review the repo that broke: corral review list --home " + str(home))


def main() -> None:  # pragma: no cover - console entry
    app(prog_name="corral")
    sys.exit(0)


register_cve(app)
register_gateway(app)
register_fleet(app)
register_sandbox(app)
register_audit(app)
register_refactor(app)
