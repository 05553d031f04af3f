"""Fallbacks and cooldown against real servers: errors, timeouts, context windows."""

from __future__ import annotations

from corral.gateway import Gateway, TaskInfo
from corral.testing import FakeProvider

from .conftest import ask, config, deployment

ROUTES = [{"name": "all", "profile": "default", "models": ["cheap", "strong"]}]


async def test_escalation_on_retry_uses_the_stronger_model_first() -> None:
    async with FakeProvider(model="cheap-m") as cheap, FakeProvider(model="strong-m") as strong:
        cfg = config(deployment("cheap", cheap), deployment("strong", strong), routes=ROUTES)
        async with Gateway(cfg, env={}) as gw:
            first = gw.route(TaskInfo(kind="fix", attempt=1))
            second = gw.route(TaskInfo(kind="fix", attempt=2))
            await gw.model(first).complete(ask(), [])
            await gw.model(second).complete(ask(), [])
        assert first.models[0] == "cheap" and second.models[0] == "strong"
        assert cheap.stats.completed == 1 and strong.stats.completed == 1


async def test_fallback_on_errors_and_cooldown_after_repeated_failures() -> None:
    async with FakeProvider(respond=lambda r: 500) as bad, FakeProvider() as good:
        cfg = config(
            deployment("cheap", bad),
            deployment("strong", good),
            routes=ROUTES,
            cooldown_failures=2,
            cooldown_s=60,
            transient_retries=1,
        )
        async with Gateway(cfg, env={}) as gw:
            model = gw.model(gw.route(TaskInfo()))
            for i in range(5):
                answer = await model.complete(ask(i), [])
                assert answer.cost_usd > 0
            assert gw.slots["cheap"].health.cooling(gw.clock())
        assert bad.stats.requests == 2  # one call, one retry, then it cooled down
        assert good.stats.completed == 5 and gw.stats.failed_calls == 0


async def test_fallback_on_a_context_window_error() -> None:
    async with FakeProvider(context_window=20) as small, FakeProvider() as big:
        cfg = config(deployment("cheap", small), deployment("strong", big), routes=ROUTES)
        async with Gateway(cfg, env={}) as gw:
            answer = await gw.complete(gw.route(TaskInfo()), ask())
        assert answer.tool_calls and small.stats.bad_requests == 1 and big.stats.completed == 1
        assert gw.slots["cheap"].health.failures == 0  # the prompt's fault, not the server's


async def test_fallback_on_a_timeout() -> None:
    async with FakeProvider(latency=5.0) as slow, FakeProvider() as fast:
        cfg = config(
            deployment("cheap", slow, timeout_s=0.2),
            deployment("strong", fast),
            routes=ROUTES,
        )
        async with Gateway(cfg, env={}) as gw:
            await gw.complete(gw.route(TaskInfo()), ask())
        assert fast.stats.completed == 1 and gw.stats.fallbacks == 1
