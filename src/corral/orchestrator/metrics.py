"""Prometheus metrics of a worker: tasks by state, attempts, retries, queue wait, tokens, cost."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from corral.domain import Event, ModelCalled, TaskState


class FleetMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.tasks = Gauge("corral_tasks", "Tasks by state", ["state"], registry=r)
        self.attempts = Counter("corral_attempts", "Attempts started", registry=r)
        self.retries = Counter("corral_retries", "Attempts that were retries", registry=r)
        self.queue_wait = Histogram(
            "corral_queue_wait_seconds",
            "Time a task waited ready before it started",
            buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60, 300, 1800),
            registry=r,
        )
        self.tokens = Counter("corral_tokens", "Model tokens", ["direction"], registry=r)
        self.cost = Counter("corral_cost_usd", "Model cost in USD", registry=r)

    def on_claim(self, attempt_number: int, waited_s: float) -> None:
        self.attempts.inc()
        if attempt_number > 1:
            self.retries.inc()
        self.queue_wait.observe(max(waited_s, 0.0))

    def on_event(self, event: Event) -> None:
        if isinstance(event, ModelCalled):
            u = event.completion.usage
            self.tokens.labels("input").inc(u.input_tokens)
            self.tokens.labels("output").inc(u.output_tokens)
            self.cost.inc(event.completion.cost_usd)

    def set_states(self, counts: dict[str, int]) -> None:
        for state in TaskState:
            self.tasks.labels(state.value).set(counts.get(state.value, 0))
