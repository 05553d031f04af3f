"""Plain pieces of the fake provider: what a reply or fault is, and what it records."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from corral.domain import Completion

__all__ = [
    "FakeStats",
    "Fault",
    "LatencySampler",
    "RawReply",
    "RecordedRequest",
    "Reply",
    "estimate_tokens",
    "exponential",
    "uniform",
]

# An injected failure: an HTTP status, a 200 whose body is not JSON ("malformed"), a
# JSON body without choices ("no_choices"), or a connection closed unanswered.
Fault = int | Literal["malformed", "no_choices", "disconnect"]


@dataclass(frozen=True)
class RawReply:
    """Exactly this response, for shapes a Completion cannot express (bad JSON arguments,
    odd error bodies). A dict `body` is sent as JSON, bytes as they are."""

    body: Mapping[str, Any] | bytes
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)


# A reply: a Completion, a mapping in ScriptedModel's turn shape
# ({thought, tool_calls: [{tool, args}], usage}), or a RawReply.
Reply = Completion | RawReply | Mapping[str, Any]
LatencySampler = Callable[[random.Random], float]


def uniform(low: float, high: float) -> LatencySampler:
    """Latency drawn uniformly from [low, high] seconds."""
    return lambda rng: rng.uniform(low, high)


def exponential(mean: float) -> LatencySampler:
    """Latency with an exponential distribution (long tail) of the given mean."""
    return lambda rng: rng.expovariate(1.0 / mean) if mean > 0 else 0.0


@dataclass(frozen=True)
class RecordedRequest:
    """One request as received, kept for assertions (`body` is None if not JSON)."""

    index: int
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    received_at: float


@dataclass
class FakeStats:
    """Counters kept by the server thread (what a benchmark reports)."""

    requests: int = 0
    completed: int = 0
    rate_limited: int = 0
    faults: int = 0
    unauthorized: int = 0
    bad_requests: int = 0
    in_flight: int = 0  # admitted requests still being answered
    max_in_flight: int = 0


def estimate_tokens(value: Any) -> int:
    """About four characters a token, as providers' own rough estimators do."""
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return max(1, len(text) // 4)
