"""How an attempt gets its model.

Provider models (PROVIDER/MODEL, openai-compatible:URL#MODEL) are called through the
gateway, so rate limits and budgets hold across the whole fleet: one configured gateway
(`--gateway FILE`, with routes), or one built per model spec on first use, all sharing
one budget ledger; or a gateway service shared by several workers (`--gateway-socket`).
`model: route` lets the gateway's (or the service's) routing rules choose. Per-attempt
models that call no provider (scripted, playbook, replay) are built fresh per attempt:
they hold state (their next turn) that must not be shared.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from corral.domain import ConfigError
from corral.gateway import (
    BudgetScope,
    Deployment,
    Gateway,
    GatewayConfig,
    MemoryLedger,
    Price,
    RouteDecision,
    TaskInfo,
)
from corral.gateway.budget import BudgetLedger
from corral.gateway.remote import GatewayService
from corral.models import parse_model_spec
from corral.orchestrator.hooks import build_model, is_registered
from corral.ports import Model
from corral.store import CampaignRow, Lease, TaskRow

ROUTE = "route"


def is_provider_spec(spec: str) -> bool:
    return not (spec == ROUTE or spec.startswith("scripted:") or is_registered(spec))


def route_info(task: TaskRow, lease: Lease, repo_files: int | None) -> TaskInfo:
    """What routing may look at, for this attempt."""
    return TaskInfo(
        kind=task.kind, labels=task.spec.labels, attempt=lease.number, repo_files=repo_files
    )


@dataclass
class FleetModels:
    """The gateway side of a worker: shared limits and one budget ledger."""

    gateway: Gateway | None = None  # a configured gateway (deployments, routes, budgets)
    # A gateway service shared with other worker processes (`corral serve`): its
    # deployments, limits and budgets hold for all of them.
    service: GatewayService | None = None
    env: Mapping[str, str] | None = None
    ledger: BudgetLedger = field(default_factory=MemoryLedger)
    _by_spec: dict[str, Gateway] = field(default_factory=dict)
    _budgets_set: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        if self.gateway is not None:
            self.ledger = self.gateway.ledger

    def _gateway_for(self, spec: str) -> Gateway:
        if self.gateway is not None:
            try:
                self.gateway.candidates(spec)
                return self.gateway
            except ConfigError:
                pass  # not one of its deployments: serve it on its own, same ledger
        gw = self._by_spec.get(spec)
        if gw is None:
            # Local OpenAI-compatible servers have no public price: count them as free.
            price = Price(input_per_mtok=0, output_per_mtok=0) if ":" in spec else None
            config = GatewayConfig(deployments=(Deployment(name=spec, model=spec, price=price),))
            gw = Gateway(config, env=self.env, ledger=self.ledger)
            self._by_spec[spec] = gw
        return gw

    async def set_budget(self, key: str, usd: float | None) -> None:
        if usd is not None and key not in self._budgets_set:
            self._budgets_set.add(key)
            await self.ledger.set_limit(key, usd)

    async def for_attempt(
        self, task: TaskRow, campaign: CampaignRow, lease: Lease, repo_files: int | None
    ) -> tuple[Model, RouteDecision | None]:
        spec = task.spec.model or ""
        await self.set_budget(f"campaign:{campaign.id}", campaign.budget_usd)
        scope = BudgetScope(
            attempt=lease.attempt_id, task=task.id, campaign=campaign.id, team=campaign.team
        )
        deadline = time.monotonic() + task.spec.timeout_s
        if self.service is not None and (spec == ROUTE or is_provider_spec(spec)):
            usd = campaign.budget_usd
            budgets = {f"campaign:{campaign.id}": usd} if usd is not None else None
            decision = None
            if spec == ROUTE:
                decision = await self.service.route(route_info(task, lease, repo_files))
            remote = self.service.model(
                decision or spec, scope, budgets=budgets, ttl_s=task.spec.timeout_s,
                priority=task.priority,
            )  # fmt: skip
            return remote, decision
        if spec == ROUTE:
            if self.gateway is None or not self.gateway.config.routes:
                raise ConfigError("model 'route' needs a gateway config with routes (--gateway)")
            decision = self.gateway.route(route_info(task, lease, repo_files))
            model = self.gateway.model(
                decision, scope=scope, priority=task.priority, deadline=deadline
            )
            return model, decision
        if is_provider_spec(spec):
            gw = self._gateway_for(spec)
            return gw.model(spec, scope=scope, priority=task.priority, deadline=deadline), None
        return build_model(spec, task, self.env), None

    async def for_run(self, spec: str, attempt_id: str, max_cost_usd: float | None) -> Model:
        """A single `corral run`: a provider spec through the gateway, budgeted per attempt."""
        if not is_provider_spec(spec):
            return parse_model_spec(spec, env=self.env)
        await self.set_budget(f"attempt:{attempt_id}", max_cost_usd)
        return self._gateway_for(spec).model(spec, scope=BudgetScope(attempt=attempt_id))

    async def aclose(self) -> None:
        for gw in self._by_spec.values():
            await gw.aclose()
        self._by_spec.clear()
        if self.service is not None:
            await self.service.aclose()
