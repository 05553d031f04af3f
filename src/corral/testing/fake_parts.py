"""Plain pieces of the fake provider: what a reply or fault is, and what it records."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from corral.domain import Completion
from corral.gateway.http11 import HttpResponse

__all__ = [
    "FakeStats",
    "Fault",
    "LatencySampler",
    "RawReply",
    "RecordedRequest",
    "Reply",
    "error_response",
    "estimate_tokens",
    "exponential",
    "fault_response",
    "json_response",
    "retry_headers",
    "uniform",
]

# An injected failure: an HTTP status, a 200 whose body is not JSON ("malformed"), a
# JSON body without choices ("no_choices"), a connection closed unanswered
# ("disconnect"), or an account out of credit ("quota": 429 insufficient_quota, no
# Retry-After, as OpenAI sends it).
Fault = int | Literal["malformed", "no_choices", "disconnect", "quota"]


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


def error_response(
    status: int, message: str, kind: str, code: str | None = None, **headers: str
) -> HttpResponse:
    """An error in OpenAI's shape: {"error": {message, type, param, code}}."""
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return HttpResponse(status, json.dumps(body).encode(), headers=dict(headers))


def json_response(body: Any, headers: Mapping[str, str] | None = None) -> HttpResponse:
    return HttpResponse(200, json.dumps(body).encode(), headers=dict(headers or {}))


def retry_headers(seconds: float) -> dict[str, str]:
    """Whole seconds in Retry-After (as HTTP says), the exact delay in retry-after-ms."""
    return {
        "retry-after": str(max(1, math.ceil(seconds))),
        "retry-after-ms": str(int(seconds * 1000)),
    }


def fault_response(fault: Fault, index: int, retry_after: float) -> HttpResponse:
    """The response that injects `fault` (see Fault)."""
    if fault == "disconnect":
        return HttpResponse(0, drop=True)
    if fault == "malformed":
        return HttpResponse(200, b'{"id": "chatcmpl-broken", "choices": [{"mess')
    if fault == "quota":
        return error_response(
            429,
            "You exceeded your current quota, please check your plan and billing details.",
            "insufficient_quota",
            "insufficient_quota",
        )
    if fault == "no_choices":
        return json_response({"id": f"chatcmpl-fake-{index}", "object": "chat.completion"})
    if isinstance(fault, str):
        raise ValueError(f"unknown fault {fault!r}")
    headers = retry_headers(retry_after) if fault in (429, 503) else {}
    code = "rate_limit_exceeded" if fault == 429 else None
    return error_response(fault, f"injected failure {fault}", "server_error", code, **headers)
