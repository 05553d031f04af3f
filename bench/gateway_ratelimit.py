"""1,000 agents share one rate-limited account: corral's gateway vs LiteLLM's Router.

Both sides run in the same process against a fresh fake provider (real HTTP, token
buckets with 429 + Retry-After + x-ratelimit-* headers) limited to the same RPM/TPM,
and both are told those limits. Reports requests, 429s, failed tasks (agents whose call
raised), utilization (achieved / allowed on the binding limit, where a provider whose
buckets start full allows one minute's worth plus the refill over the window) and budget
overshoot (N agents spending one global budget).

LiteLLM's side of the budget run uses check-before / charge-after, which is what
`litellm.max_budget` does; corral reserves the worst case before the call.

    .venv/bin/python bench/gateway_ratelimit.py --agents 1000 --rpm 1200 --tpm 120000
    .venv/bin/python bench/gateway_ratelimit.py --quick --out DIR   # seconds, DIR/gateway.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

from corral.cli.gateway import _fake_config
from corral.domain import Completion, Message, Usage
from corral.gateway import Gateway
from corral.gateway.loadgen import budget_run, prompt, ratelimit_report, run_agents
from corral.models.openai_format import messages_to_openai
from corral.testing import FakeProvider, uniform

RESULTS = Path(__file__).resolve().parent / "results"
PRICE_IN, PRICE_OUT = 10.0, 30.0  # dollars per million tokens, both sides
MAX_TOKENS = 64


async def corral_ratelimit(args: argparse.Namespace) -> dict[str, Any]:
    latency = uniform(args.latency * 0.5, args.latency * 1.5)
    async with FakeProvider(rpm=args.rpm, tpm=args.tpm, latency=latency) as fp:
        async with Gateway(_fake_config(fp.base_url, rpm=args.rpm, tpm=args.tpm), env={}) as gw:
            steps: dict[int, int] = {}

            async def call(agent: int, deadline: float) -> Completion:
                steps[agent] = steps.get(agent, 0) + 1
                return await gw.complete("fake", prompt(agent, steps[agent]), deadline=deadline)

            result = await run_agents(call, args.agents, args.duration)
        stats = fp.stats
    return ratelimit_report(
        result, rpm=args.rpm, tpm=args.tpm, requests=stats.requests, rate_limited=stats.rate_limited
    )


def litellm_router(base_url: str, args: argparse.Namespace) -> Any:
    from litellm import Router

    params = {
        "model": "openai/fake-model",
        "api_base": base_url,
        "api_key": "sk-fake",
        "rpm": args.rpm,
        "tpm": args.tpm,
        "input_cost_per_token": PRICE_IN / 1e6,
        "output_cost_per_token": PRICE_OUT / 1e6,
    }
    return Router(
        model_list=[{"model_name": "fake", "litellm_params": params}],
        routing_strategy="usage-based-routing-v2",
        num_retries=args.litellm_retries,
        timeout=120,
    )


async def litellm_call(router: Any, messages: list[Message]) -> Completion:
    response = await router.acompletion(
        model="fake", messages=messages_to_openai(messages), max_tokens=MAX_TOKENS
    )
    usage = response.usage
    return Completion(
        usage=Usage(input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens)
    )


async def litellm_ratelimit(args: argparse.Namespace) -> dict[str, Any]:
    latency = uniform(args.latency * 0.5, args.latency * 1.5)
    async with FakeProvider(rpm=args.rpm, tpm=args.tpm, latency=latency) as fp:
        router = litellm_router(fp.base_url, args)
        steps: dict[int, int] = {}

        async def call(agent: int, deadline: float) -> Completion:
            steps[agent] = steps.get(agent, 0) + 1
            return await litellm_call(router, prompt(agent, steps[agent]))

        result = await run_agents(call, args.agents, args.duration)
        stats = fp.stats
    return ratelimit_report(
        result, rpm=args.rpm, tpm=args.tpm, requests=stats.requests, rate_limited=stats.rate_limited
    )


async def corral_budget(args: argparse.Namespace) -> dict[str, Any]:
    async with FakeProvider(latency=0.01) as fp:
        async with Gateway(_fake_config(fp.base_url, rpm=None, tpm=None), env={}) as gw:
            return await budget_run(gw, "fake", agents=args.agents, budget_usd=args.budget_usd)


async def litellm_budget(args: argparse.Namespace) -> dict[str, Any]:
    async with FakeProvider(latency=0.01) as fp:
        args_nolimit = argparse.Namespace(**{**vars(args), "rpm": None, "tpm": None})
        router = litellm_router(fp.base_url, args_nolimit)
        spent = 0.0
        rejected = 0

        async def agent(i: int) -> None:
            nonlocal spent, rejected
            for step in range(100):
                if spent >= args.budget_usd:  # litellm.max_budget: check before the call
                    rejected += 1
                    return
                done = await litellm_call(router, prompt(i, step))
                spent += (
                    done.usage.input_tokens * PRICE_IN + done.usage.output_tokens * PRICE_OUT
                ) / 1e6

        await asyncio.gather(*(agent(i) for i in range(args.agents)))
    return {
        "agents": args.agents,
        "budget_usd": args.budget_usd,
        "spent_usd": round(spent, 9),
        "overshoot_usd": round(max(0.0, spent - args.budget_usd), 9),
        "rejected_calls": rejected,
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {
        "benchmark": "gateway_ratelimit",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
            "os": platform.system(),
        },
        "params": {k: v for k, v in vars(args).items() if k not in ("out", "quick")},
    }
    for name, ratelimit, budget in (
        ("corral", corral_ratelimit, corral_budget),
        ("litellm_router", litellm_ratelimit, litellm_budget),
    ):
        print(f"{name}: rate limit run ({args.duration:g}s)...", file=sys.stderr, flush=True)
        rate = await ratelimit(args)
        print(f"{name}: {json.dumps(rate)}", file=sys.stderr, flush=True)
        spend = await budget(args)
        print(f"{name}: {json.dumps(spend)}", file=sys.stderr, flush=True)
        out[name] = {"ratelimit": rate, "budget": spend}
    return out


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--rpm", type=int, default=1200)
    parser.add_argument("--tpm", type=int, default=120_000)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--latency", type=float, default=0.2, help="mean provider latency, s")
    parser.add_argument("--budget-usd", type=float, default=1.0)
    parser.add_argument("--litellm-retries", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS, help="directory for gateway.json")
    parser.add_argument("--quick", action="store_true", help="20 agents for 1 s, small budget")
    args = parser.parse_args(argv)
    if args.quick:
        args.agents, args.duration, args.latency, args.budget_usd = 20, 1.0, 0.05, 0.05
        args.rpm, args.tpm = 600, 60_000
    return args


if __name__ == "__main__":
    arguments = parse()
    report = asyncio.run(main(arguments))
    arguments.out.mkdir(parents=True, exist_ok=True)
    (arguments.out / "gateway.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
