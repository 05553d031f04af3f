"""Requests- and tokens-per-minute limits as the big providers apply them.

Token buckets that refill continuously (capacity = the per-minute limit), the way
OpenAI documents its limits, with the same response headers, so a client (the gateway)
can be tested against realistic 429s: `Retry-After`, `retry-after-ms`,
`x-ratelimit-limit-*`, `x-ratelimit-remaining-*`, `x-ratelimit-reset-*`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Admission", "Bucket", "RateLimiter", "format_duration"]


def format_duration(seconds: float) -> str:
    """OpenAI's reset format: `120ms`, `1.5s`, `2m3.5s`."""
    if seconds < 1:
        return f"{max(0, math.ceil(seconds * 1000))}ms"
    minutes, rest = divmod(seconds, 60)
    text = f"{rest:.3f}".rstrip("0").rstrip(".") + "s"
    return f"{int(minutes)}m{text}" if minutes else text


class Bucket:
    """`capacity` units, refilled at capacity/60 per second; may go negative (debt)."""

    def __init__(self, per_minute: int, now: float) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.level = self.capacity
        self.stamp = now

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_for(self, amount: float) -> float:
        """Seconds until `amount` is available (inf if it can never fit)."""
        if amount > self.capacity:
            return math.inf
        return max(0.0, (amount - self.level) / self.rate)

    def reset_in(self) -> float:
        return max(0.0, (self.capacity - self.level) / self.rate)


@dataclass(frozen=True)
class Admission:
    allowed: bool
    retry_after: float  # seconds; 0 when allowed, inf when the request can never fit
    reason: str  # "", "requests" or "tokens"
    headers: dict[str, str]


class RateLimiter:
    """Decides whether a request is admitted now; not thread-safe (one event loop owns it)."""

    def __init__(
        self,
        rpm: int | None = None,
        tpm: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.clock = clock
        now = clock()
        self.requests = Bucket(rpm, now) if rpm else None
        self.tokens = Bucket(tpm, now) if tpm else None

    def admit(self, tokens: int) -> Admission:
        """Take one request and `tokens` tokens, or say how long to wait."""
        now = self.clock()
        waits: list[tuple[float, str]] = []
        for bucket, amount, reason in (
            (self.requests, 1, "requests"),
            (self.tokens, tokens, "tokens"),
        ):
            if bucket is not None:
                bucket.refill(now)
                waits.append((bucket.wait_for(amount), reason))
        wait, reason = max(waits, default=(0.0, ""))
        if wait > 0:
            return Admission(False, wait, reason, self.headers())
        if self.requests is not None:
            self.requests.level -= 1
        if self.tokens is not None:
            self.tokens.level -= tokens
        return Admission(True, 0.0, "", self.headers())

    def correct(self, extra_tokens: int) -> None:
        """Charge (or refund) the difference between the estimate and what was used."""
        if self.tokens is not None:
            self.tokens.refill(self.clock())
            self.tokens.level = min(self.tokens.capacity, self.tokens.level - extra_tokens)

    def headers(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, bucket in (("requests", self.requests), ("tokens", self.tokens)):
            if bucket is None:
                continue
            out[f"x-ratelimit-limit-{name}"] = str(int(bucket.capacity))
            out[f"x-ratelimit-remaining-{name}"] = str(max(0, math.floor(bucket.level)))
            out[f"x-ratelimit-reset-{name}"] = format_duration(bucket.reset_in())
        return out
