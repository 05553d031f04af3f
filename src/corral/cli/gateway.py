"""`corral serve`, `corral fake-provider` and `corral bench ratelimit|budget`.

Thin: flags in, a gateway service called, one JSON object or one line out. `bench_app`
is module-level so other commands (`bench fleet`, ...) can be added to the same group.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

bench_app = typer.Typer(help="Benchmarks: the gateway under load, budgets under contention.")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _one_line(exc: BaseException) -> str:
    text = str(exc).splitlines()
    return text[0] if text else type(exc).__name__


def serve(
    config: Annotated[Path, typer.Option("--config", help="Gateway config (YAML).")],
    socket: Annotated[
        Path, typer.Option("--socket", help="Unix socket for sandboxed agents.")
    ] = Path(".corral/gateway.sock"),
    admin_socket: Annotated[
        Path | None,
        typer.Option(
            "--admin-socket", help="Admin socket (tokens, budgets); default SOCKET.admin."
        ),
    ] = None,
    record: Annotated[
        Path | None, typer.Option("--record", help="Append every request and response here.")
    ] = Path(".corral/gateway-records.jsonl"),
    no_record: Annotated[bool, typer.Option("--no-record", help="Do not record.")] = False,
    replay: Annotated[
        Path | None, typer.Option("--replay", help="Serve recorded responses; call no provider.")
    ] = None,
) -> None:
    """Serve the OpenAI-compatible face of the gateway on a Unix socket."""
    from corral.domain import CorralError
    from corral.gateway import Face, Gateway, load_config
    from corral.gateway.face import serve_face
    from corral.orchestrator.heap import tune_for_fleet

    try:
        gateway = Gateway(
            load_config(config),
            record_to=None if no_record or replay else record,
            replay_from=replay,
        )
    except CorralError as exc:
        _fail(_one_line(exc))
    admin = admin_socket or socket.with_name(socket.name + ".admin")

    def ready(addresses: list[str]) -> None:
        typer.echo(f"gateway serving {addresses[0]} (admin {addresses[1]})", err=True)

    async def go() -> None:
        async with gateway:
            await serve_face(Face(gateway), str(socket), admin_path=str(admin), on_ready=ready)

    tune_for_fleet()
    try:
        asyncio.run(go())
    except KeyboardInterrupt:
        pass


def fake_provider(
    port: Annotated[int, typer.Option("--port")] = 8000,
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    rpm: Annotated[int | None, typer.Option("--rpm", min=1)] = None,
    tpm: Annotated[int | None, typer.Option("--tpm", min=1)] = None,
    latency: Annotated[float, typer.Option("--latency", min=0, help="Seconds per request.")] = 0.0,
    api_key: Annotated[str | None, typer.Option("--api-key")] = None,
    model: Annotated[str, typer.Option("--model")] = "fake-model",
) -> None:
    """Run the fake OpenAI-compatible provider (real HTTP, 429s, Retry-After)."""
    from corral.testing import FakeProvider, run_fake_provider

    def ready(fp: FakeProvider) -> None:
        typer.echo(f"fake provider serving {fp.base_url} (model {fp.model})", err=True)

    try:
        run_fake_provider(
            host=host,
            port=port,
            rpm=rpm,
            tpm=tpm,
            latency=latency,
            api_key=api_key,
            model=model,
            on_ready=ready,
        )
    except OSError as exc:
        _fail(f"cannot serve on {host}:{port}: {exc.strerror or exc}")


def _fake_config(base_url: str, *, rpm: int | None, tpm: int | None) -> Any:
    from corral.gateway import parse_config

    return parse_config(
        {
            "deployments": [
                {
                    "name": "fake",
                    "model": f"openai-compatible:{base_url}#fake-model",
                    "limits": {"rpm": rpm, "tpm": tpm},
                    "price": {"input_per_mtok": 10.0, "output_per_mtok": 30.0},
                    "max_output_tokens": 64,
                }
            ]
        }
    )


async def ratelimit_bench(
    *, agents: int, rpm: int, tpm: int | None, duration: float, latency: float
) -> dict[str, Any]:
    """N agents through the gateway against a fake provider with the same limits."""
    from corral.gateway import Gateway
    from corral.gateway.loadgen import prompt, ratelimit_report, run_agents
    from corral.testing import FakeProvider, uniform

    sampler = uniform(latency * 0.5, latency * 1.5)
    async with FakeProvider(rpm=rpm, tpm=tpm, latency=sampler) as fp:
        async with Gateway(_fake_config(fp.base_url, rpm=rpm, tpm=tpm), env={}) as gw:
            steps: dict[int, int] = {}

            async def call(agent: int, deadline: float) -> Any:
                steps[agent] = steps.get(agent, 0) + 1
                return await gw.complete("fake", prompt(agent, steps[agent]), deadline=deadline)

            result = await run_agents(call, agents, duration)
        stats = fp.stats
        return ratelimit_report(
            result, rpm=rpm, tpm=tpm, requests=stats.requests, rate_limited=stats.rate_limited
        )


async def budget_bench(*, agents: int, budget_usd: float) -> dict[str, Any]:
    from corral.gateway import Gateway
    from corral.gateway.loadgen import budget_run
    from corral.testing import FakeProvider

    async with FakeProvider(latency=0.01) as fp:
        async with Gateway(_fake_config(fp.base_url, rpm=None, tpm=None), env={}) as gw:
            return await budget_run(gw, "fake", agents=agents, budget_usd=budget_usd)


def _print(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(data))
    else:
        for key, value in data.items():
            typer.echo(f"{key}: {value}")


@bench_app.command("ratelimit")
def bench_ratelimit(
    agents: Annotated[int, typer.Option("--agents", min=1)] = 1000,
    rpm: Annotated[int, typer.Option("--rpm", min=1)] = 1200,
    tpm: Annotated[int | None, typer.Option("--tpm", min=1)] = None,
    duration: Annotated[float, typer.Option("--duration", min=0.1)] = 10.0,
    latency: Annotated[float, typer.Option("--latency", min=0)] = 0.2,
    as_json: JsonOpt = False,
) -> None:
    """N concurrent agents through the gateway against a rate-limited fake provider."""
    data = asyncio.run(
        ratelimit_bench(agents=agents, rpm=rpm, tpm=tpm, duration=duration, latency=latency)
    )
    _print(data, as_json)


@bench_app.command("budget")
def bench_budget(
    agents: Annotated[int, typer.Option("--agents", min=1)] = 1000,
    budget_usd: Annotated[float, typer.Option("--budget-usd", min=0)] = 1.0,
    as_json: JsonOpt = False,
) -> None:
    """N concurrent agents spend one global budget; the gateway must never overshoot it."""
    _print(asyncio.run(budget_bench(agents=agents, budget_usd=budget_usd)), as_json)


def register(app: typer.Typer) -> None:
    """Add the gateway commands to the `corral` app."""
    app.command("serve")(serve)
    app.command("fake-provider")(fake_provider)
    app.add_typer(bench_app, name="bench")
    import corral.cli.bench_fleet  # noqa: F401  (adds `bench fleet` to bench_app)
