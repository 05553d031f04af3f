"""The one door to models: rate limits, budgets, routing, fallbacks, cost, recording.

    gateway = Gateway(load_config("gateway.yaml"))          # keys checked here, once
    decision = gateway.route(TaskInfo(kind="cve", attempt=2))  # record it as an event
    model = gateway.model(decision, scope=BudgetScope(attempt=a, task=t, campaign=c))
    AgentLoop(model=model, ...)                              # the loop is unchanged

Budget state sits behind `BudgetLedger` (in memory here). A store-backed ledger keeps
two tables: `budgets(key, limit_nano, spent_nano, reserved_nano)` and
`budget_reservations(id PRIMARY KEY, keys, amount_nano, settled_nano NULL)`; `reserve`
is one transaction that inserts the reservation (the id is the idempotency key) and
runs `UPDATE budgets SET reserved_nano = reserved_nano + :a WHERE key IN (...) AND
spent_nano + reserved_nano + :a <= limit_nano`, rolling back unless every key updated.
"""

from corral.gateway.budget import (
    BudgetLedger,
    BudgetScope,
    BudgetState,
    MemoryLedger,
    Reservation,
)
from corral.gateway.config import (
    Deployment,
    GatewayConfig,
    Price,
    RateLimits,
    RouteMatch,
    RouteRule,
    load_config,
    parse_config,
)
from corral.gateway.face import Face, Grant, Grants
from corral.gateway.gateway import Gateway, GatewayStats
from corral.gateway.http11 import HttpServer
from corral.gateway.model import GatewayModel
from corral.gateway.routing import RouteDecision, TaskInfo, route

__all__ = [
    "BudgetLedger",
    "BudgetScope",
    "BudgetState",
    "Deployment",
    "Face",
    "Gateway",
    "GatewayConfig",
    "GatewayModel",
    "GatewayStats",
    "Grant",
    "Grants",
    "HttpServer",
    "MemoryLedger",
    "Price",
    "RateLimits",
    "Reservation",
    "RouteDecision",
    "RouteMatch",
    "RouteRule",
    "TaskInfo",
    "load_config",
    "parse_config",
    "route",
]
