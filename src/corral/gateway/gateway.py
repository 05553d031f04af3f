"""The Gateway: the one door every model call of every agent goes through.

Per call: reserve the worst-case cost against every budget of the caller's scope (or
fail at once), wait for the deployment's rate limits in priority order, call, and on a
429 pause the deployment for everyone and retry (until the caller's deadline); settle
the actual cost; fall back to the next deployment on errors; record everything.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from corral.domain import (
    Completion,
    ConfigError,
    Message,
    ModelError,
    ProviderError,
    ToolSpec,
)
from corral.domain.errors import BudgetExceeded
from corral.gateway.budget import BudgetLedger, BudgetScope, MemoryLedger
from corral.gateway.config import Deployment, GatewayConfig, Price, load_config
from corral.gateway.limits import Account, DeploymentLimiter, Need
from corral.gateway.prices import resolve_price
from corral.gateway.recording import Recorder, Replayer
from corral.gateway.routing import Health, RouteDecision, TaskInfo, route
from corral.gateway.upstream import HttpUpstream, ModelUpstream, Upstream
from corral.gateway.wire import WirePrompt
from corral.models import OpenAICompatModel, parse_model_spec
from corral.models.spec import OPENAI_COMPATIBLE_KEY_VAR

if TYPE_CHECKING:
    from corral.gateway.model import GatewayModel

__all__ = ["Gateway", "GatewayStats", "Target"]

Target = str | Sequence[str] | RouteDecision


@dataclass
class GatewayStats:
    """Fleet-wide counters (what benchmarks and `corral serve` report)."""

    calls: int = 0  # complete() calls
    upstream_requests: int = 0  # requests sent to providers (including retried 429s)
    completed: int = 0
    rate_limited: int = 0  # 429s received
    quota_errors: int = 0
    failed_calls: int = 0  # complete() raised (budget refusals excluded)
    budget_rejected: int = 0
    fallbacks: int = 0
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass
class _Slot:
    """One deployment at runtime."""

    config: Deployment
    price: Price
    upstream: Upstream | None
    limiter: DeploymentLimiter
    context_window: int
    health: Health = field(default_factory=Health)


@dataclass
class _Flight:
    """Whether a request is out with no answer yet (what it cost is then unknown)."""

    unknown: bool = False


def _is_quota(error: ProviderError) -> bool:
    text = str(error).lower()
    return error.status == 429 and ("quota" in text or "billing" in text)


def _transient(error: ProviderError) -> bool:
    return error.status is None or error.status >= 500


class Gateway:
    """One per process; the only holder of provider keys. Everything is checked here, at
    startup: unknown models and missing keys raise ConfigError with one line."""

    def __init__(
        self,
        config: GatewayConfig,
        *,
        env: Mapping[str, str] | None = None,
        ledger: BudgetLedger | None = None,
        record_to: str | Path | None = None,
        replay_from: str | Path | None = None,
        clock: Callable[[], float] | None = None,
        seed: int | None = None,
    ) -> None:
        self.config = config
        self.clock = clock or time.monotonic
        self.ledger: BudgetLedger = ledger or MemoryLedger()
        self.stats = GatewayStats()
        self.replayer = Replayer(replay_from) if replay_from else None
        self.recorder = Recorder(record_to) if record_to else None
        self._rng = random.Random(seed)
        self._ids = itertools.count(1)
        self._limits_applied = False
        environ = os.environ if env is None else env
        accounts: dict[str, Account] = {}
        self.slots: dict[str, _Slot] = {}
        for dep in config.deployments:
            account = accounts.setdefault(dep.account_name, Account(dep.account_name))
            self.slots[dep.name] = self._build(dep, environ, account)

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: object) -> Gateway:
        return cls(load_config(path), **kwargs)  # type: ignore[arg-type]

    def _build(self, dep: Deployment, env: Mapping[str, str], account: Account) -> _Slot:
        upstream: Upstream | None = None
        window = dep.context_window or 128_000
        if self.replayer is None:  # replay needs no provider, so no key
            upstream = self._upstream(dep, env)
            window = dep.context_window or upstream.context_window
        limiter = DeploymentLimiter(
            dep.limits,
            account=account,
            clock=self.clock,
            jitter=self.config.jitter,
            rng=random.Random(self._rng.random()),
        )
        return _Slot(dep, resolve_price(dep), upstream, limiter, window)

    @staticmethod
    def _upstream(dep: Deployment, env: Mapping[str, str]) -> Upstream:
        try:
            model = parse_model_spec(dep.model, env=env)
        except ConfigError as exc:
            raise type(exc)(f"deployment {dep.name!r}: {exc}") from None
        if isinstance(model, OpenAICompatModel):
            var = dep.api_key_env or OPENAI_COMPATIBLE_KEY_VAR
            key = env.get(var)
            if dep.api_key_env and not key:
                raise ConfigError(f"deployment {dep.name!r} needs {var} set in the environment")
            return HttpUpstream(
                model.base_url,
                model.model,
                api_key=key or None,
                context_window=dep.context_window or model.context_window,
            )
        return ModelUpstream(model)

    async def _apply_limits(self) -> None:
        if not self._limits_applied:
            self._limits_applied = True
            for key, usd in self.config.budgets.items():
                await self.ledger.set_limit(key, usd)

    async def __aenter__(self) -> Gateway:
        await self._apply_limits()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for slot in self.slots.values():
            if slot.upstream is not None:
                await slot.upstream.aclose()
        if self.recorder is not None:
            self.recorder.close()

    # --- the public surface ----------------------------------------------------------

    def route(self, task: TaskInfo) -> RouteDecision:
        return route(self.config.routes, task)

    def model(
        self,
        target: Target,
        *,
        scope: BudgetScope | None = None,
        priority: int = 0,
        deadline: float | None = None,
    ) -> GatewayModel:
        """A `corral.ports.Model` whose every call goes through this gateway."""
        from corral.gateway.model import GatewayModel

        return GatewayModel(self, target, scope or BudgetScope(), priority, deadline)

    def candidates(self, target: Target) -> tuple[str, ...]:
        if isinstance(target, RouteDecision):
            names: tuple[str, ...] = target.models
        elif isinstance(target, str):
            names = (self._resolve_name(target),)
        else:
            names = tuple(self._resolve_name(t) for t in target)
        if not names:
            raise ConfigError("no deployment given")
        return names

    def _resolve_name(self, name: str) -> str:
        if name in self.slots:
            return name
        for slot in self.slots.values():  # a model spec that a deployment serves
            if slot.config.model == name:
                return slot.config.name
        known = ", ".join(sorted(self.slots))
        raise ConfigError(f"unknown deployment {name!r}; the gateway serves: {known}")

    async def complete(
        self,
        target: Target,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec] = (),
        *,
        scope: BudgetScope | None = None,
        priority: int = 0,
        deadline: float | None = None,
        max_tokens: int | None = None,
    ) -> Completion:
        """One model call through limits, budgets and fallbacks. `deadline` is a
        `time.monotonic()` instant; waiting for rate limits never goes past it."""
        await self._apply_limits()
        self.stats.calls += 1
        names = self.candidates(target)
        scope = scope or BudgetScope()
        if deadline is None:
            deadline = self.clock() + self.config.default_deadline_s
        order = self._order(names)
        last: ProviderError | None = None
        try:
            for i, name in enumerate(order):
                if i:
                    self.stats.fallbacks += 1
                try:
                    return await self._call(
                        self.slots[name],
                        messages,
                        tools,
                        scope,
                        priority,
                        deadline,
                        max_tokens,
                        can_fall_back=i < len(order) - 1,
                    )
                except ProviderError as exc:  # also RateLimited, ContextWindowExceeded
                    last = exc
            assert last is not None
            raise last
        except BudgetExceeded:
            self.stats.budget_rejected += 1
            raise
        except ModelError:
            self.stats.failed_calls += 1
            raise

    def _order(self, names: Sequence[str]) -> list[str]:
        """Healthy deployments first, in the given order; cooling or quota-paused ones
        last (still tried rather than failing the call outright)."""
        now = self.clock()
        ready: list[str] = []
        resting: list[str] = []
        for name in dict.fromkeys(names):
            slot = self.slots[name]
            blocked = slot.health.cooling(now) or slot.limiter.account.paused_until > now
            (resting if blocked else ready).append(name)
        return ready + resting

    # --- one deployment --------------------------------------------------------------

    async def _call(
        self,
        slot: _Slot,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        scope: BudgetScope,
        priority: int,
        deadline: float,
        max_tokens: int | None,
        *,
        can_fall_back: bool,
    ) -> Completion:
        dep = slot.config
        out_cap = min(max_tokens or dep.max_output_tokens, dep.max_output_tokens)
        prompt = WirePrompt(messages, tools)
        need = Need(prompt.estimated_tokens, out_cap)
        slot.limiter.check_fits(need)
        worst = slot.price.cost(need.input_tokens, need.output_tokens)
        call_id = f"call-{next(self._ids)}"
        reservation = await self.ledger.reserve(scope.keys(), worst, idempotency_key=call_id)
        # Charged when a request was sent and we cannot know what it cost (no answer,
        # an unreadable one, or the caller gave up mid-flight): the worst case.
        flight = _Flight()
        charged = 0.0
        try:
            completion = await self._attempts(
                slot, messages, tools, prompt, need, priority, deadline, can_fall_back, flight
            )
            charged = completion.cost_usd
            self._record(slot, messages, tools, out_cap, scope, completion, None)
            return completion
        except ProviderError as exc:
            self._record(slot, messages, tools, out_cap, scope, None, exc)
            answered = exc.status is not None and exc.status >= 400
            charged = worst if flight.unknown and not answered else 0.0
            raise
        except asyncio.CancelledError:
            charged = worst if flight.unknown else 0.0
            raise
        finally:
            await self.ledger.settle(reservation, charged)

    async def _attempts(
        self,
        slot: _Slot,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        prompt: WirePrompt,
        need: Need,
        priority: int,
        deadline: float,
        can_fall_back: bool,
        flight: _Flight,
    ) -> Completion:
        if self.replayer is not None:
            done = self.replayer.answer(slot.config.name, messages, tools, need.output_tokens)
            return done
        limiter = slot.limiter
        ticket = limiter.ticket(priority)
        transient_left = self.config.transient_retries
        while True:
            permit = await limiter.acquire(need, ticket, deadline)
            self.stats.upstream_requests += 1
            assert slot.upstream is not None
            flight.unknown = True
            try:
                left = max(0.001, min(slot.config.timeout_s, deadline - self.clock()))
                async with asyncio.timeout(left):
                    completion, headers = await slot.upstream.call(
                        messages, tools, max_tokens=need.output_tokens, prompt=prompt
                    )
            except TimeoutError:
                limiter.release(permit, None)
                self._failed(slot)
                raise ProviderError(
                    f"{slot.config.name}: no answer within {left:.3g}s (timeout)"
                ) from None
            except ProviderError as exc:
                if exc.status == 429:
                    flight.unknown = False
                    self._rate_limited(slot, exc)  # pause first, so no waiter slips in
                    limiter.release(permit, None)
                    if _is_quota(exc) and can_fall_back:
                        raise
                    continue  # keep our place in the queue; acquire() enforces the deadline
                limiter.release(permit, None)
                limiter.observe(exc.headers)
                if _transient(exc):
                    self._failed(slot)
                    if transient_left > 0 and not slot.health.cooling(self.clock()):
                        transient_left -= 1
                        await asyncio.sleep(min(0.05 + self._rng.random() * 0.2, 0.25))
                        continue
                raise
            except BaseException:
                limiter.release(permit, None)
                raise
            flight.unknown = False
            usage = completion.usage
            limiter.release(permit, (usage.input_tokens, usage.output_tokens))
            limiter.observe(headers)  # after the correction, so it can only tighten
            slot.health.succeeded()
            self.stats.completed += 1
            self.stats.input_tokens += usage.input_tokens
            self.stats.output_tokens += usage.output_tokens
            cost = slot.price.cost(usage.input_tokens, usage.output_tokens)
            return completion.model_copy(update={"cost_usd": cost})

    def _rate_limited(self, slot: _Slot, exc: ProviderError) -> None:
        self.stats.rate_limited += 1
        limiter = slot.limiter
        seen = limiter.observe(exc.headers)
        if _is_quota(exc):
            self.stats.quota_errors += 1
            limiter.account.pause(self.clock() + self.config.quota_pause_s, str(exc))
        else:
            limiter.pause(exc.retry_after or self.config.default_retry_after_s, drain=not seen)

    def _failed(self, slot: _Slot) -> None:
        slot.health.failed(self.clock(), self.config.cooldown_failures, self.config.cooldown_s)

    def _record(
        self,
        slot: _Slot,
        messages: Sequence[Message],
        tools: Sequence[ToolSpec],
        max_tokens: int,
        scope: BudgetScope,
        completion: Completion | None,
        error: BaseException | None,
    ) -> None:
        if self.recorder is not None:
            self.recorder.record(
                deployment=slot.config.name,
                messages=messages,
                tools=tools,
                max_tokens=max_tokens,
                scope=scope.keys(),
                completion=completion,
                error=error,
            )
