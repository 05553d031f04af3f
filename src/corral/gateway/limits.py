"""Per-deployment admission: token buckets, a priority queue of waiters, and pauses.

The buckets mirror how providers meter (capacity = the per-minute limit, refilled
continuously), so a request the gateway admits is one the provider would admit too.
Waiters sit in one heap ordered by (priority, arrival); a single timer wakes the queue
when the head can go, so nothing polls. A 429 pauses the deployment for every caller;
an exhausted account pauses every deployment on it.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from corral.domain.errors import RateLimited
from corral.gateway.config import RateLimits

__all__ = ["Account", "Bucket", "DeploymentLimiter", "Need", "Permit", "Ticket"]

Clock = Callable[[], float]


class Bucket:
    """A per-minute limit refilled continuously at limit/60 per second; the level may go
    negative (debt). The capacity keeps `headroom_s` of refill in hand: a request reaches
    the provider a little after we admit it, and meanwhile a full provider bucket wastes
    its refill, so a bucket exactly as big as the provider's would overshoot it."""

    def __init__(self, per_minute: float, now: float, headroom_s: float = 0.0) -> None:
        self.headroom_s = headroom_s
        self.limit = float(per_minute)
        self.rate = self.limit / 60.0
        self.capacity = max(1.0, self.limit - self.rate * headroom_s)
        self.level = self.capacity
        self.stamp = now

    def refill(self, now: float) -> None:
        if now > self.stamp:
            self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
            self.stamp = now

    def wait_for(self, amount: float) -> float:
        """Seconds until `amount` is there (a request larger than the bucket waits for a
        full bucket, then runs into debt, as providers allow)."""
        missing = min(amount, self.capacity) - self.level
        return missing / self.rate if missing > 1e-9 else 0.0

    def shrink(self, per_minute: float) -> None:
        self.limit = per_minute
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, per_minute - self.rate * self.headroom_s)
        self.level = min(self.level, self.capacity)


@dataclass(frozen=True)
class Need:
    """What one call takes from the buckets: its prompt estimate and its output cap."""

    input_tokens: int
    output_tokens: int

    def amounts(self) -> dict[str, float]:
        return {
            "requests": 1.0,
            "tokens": float(self.input_tokens + self.output_tokens),
            "input_tokens": float(self.input_tokens),
            "output_tokens": float(self.output_tokens),
        }


@dataclass(frozen=True, order=True)
class Ticket:
    """A place in the queue; a call keeps its ticket across 429 retries."""

    rank: int  # -priority: higher priority sorts first
    seq: int


@dataclass(frozen=True)
class Permit:
    need: Need
    ticket: Ticket


@dataclass(order=True)
class _Waiter:
    ticket: Ticket
    need: Need = field(compare=False)
    future: asyncio.Future[Permit] = field(compare=False)


class Account:
    """Deployments that share a provider account; a quota error pauses all of them."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.paused_until = 0.0
        self.reason = ""
        self.limiters: list[DeploymentLimiter] = []

    def pause(self, until: float, reason: str) -> None:
        if until > self.paused_until:
            self.paused_until, self.reason = until, reason
        for limiter in self.limiters:
            limiter.wake()


class DeploymentLimiter:
    """Admits calls to one deployment within its limits, in priority then arrival order."""

    _BUCKETS = ("requests", "tokens", "input_tokens", "output_tokens")

    def __init__(
        self,
        limits: RateLimits,
        *,
        account: Account | None = None,
        clock: Clock = time.monotonic,
        jitter: float = 0.2,
        rng: random.Random | None = None,
        headroom_s: float = 0.5,
    ) -> None:
        self.clock = clock
        self.jitter = jitter
        self.rng = rng or random.Random()
        self.account = account or Account("")
        self.account.limiters.append(self)
        now = clock()
        per_minute = {
            "requests": limits.rpm,
            "tokens": limits.tpm,
            "input_tokens": limits.input_tpm,
            "output_tokens": limits.output_tpm,
        }
        self.headroom_s = headroom_s
        self.buckets = {k: Bucket(v, now, headroom_s) for k, v in per_minute.items() if v}
        self.max_concurrent = limits.max_concurrent
        self.in_flight = 0
        self.paused_until = 0.0
        self.pauses = 0  # how many times a 429 paused this deployment
        self.admitted = 0
        self._heap: list[_Waiter] = []
        self._seq = itertools.count()
        self._timer: asyncio.TimerHandle | None = None

    # --- queue -----------------------------------------------------------------------

    def ticket(self, priority: int = 0) -> Ticket:
        return Ticket(-priority, next(self._seq))

    @property
    def waiting(self) -> int:
        return sum(1 for w in self._heap if not w.future.done())

    def blocked_for(self) -> float:
        """Seconds this deployment stays paused (by a 429 or its account's quota)."""
        return max(0.0, max(self.paused_until, self.account.paused_until) - self.clock())

    def check_fits(self, need: Need) -> None:
        """A call larger than a whole minute of budget can never be admitted: fail now."""
        for name, amount in need.amounts().items():
            bucket = self.buckets.get(name)
            if bucket is not None and name != "requests" and amount > bucket.limit:
                raise RateLimited(
                    f"this call needs {int(amount)} {name.replace('_', ' ')}, more than the "
                    f"deployment's limit of {int(bucket.limit)} per minute"
                )

    async def acquire(self, need: Need, ticket: Ticket, deadline: float | None) -> Permit:
        """Wait for a turn; raises RateLimited if `deadline` (clock time) passes first."""
        self.check_fits(need)
        future: asyncio.Future[Permit] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._heap, _Waiter(ticket, need, future))
        self._pump()
        if future.done():
            return future.result()
        try:
            if deadline is None:
                return await future
            async with asyncio.timeout(max(0.0, deadline - self.clock())):
                return await future
        except (TimeoutError, asyncio.CancelledError) as exc:
            if future.done() and not future.cancelled():
                self.release(future.result(), None)  # admitted just as we gave up
            else:
                future.cancel()
            self._pump()
            if isinstance(exc, TimeoutError):
                raise RateLimited(
                    f"no capacity before the deadline ({self.describe_block()})", status=429
                ) from None
            raise

    def describe_block(self) -> str:
        if self.account.paused_until > self.clock():
            return f"account paused: {self.account.reason}"
        if self.paused_until > self.clock():
            return "deployment paused after a 429"
        return f"{self.waiting} callers waiting for rate-limit capacity"

    def release(self, permit: Permit, used: tuple[int, int] | None) -> None:
        """A call ended; `used` = (input, output) tokens corrects the estimate."""
        self.in_flight -= 1
        if used is not None:
            now = self.clock()
            actual = {
                "tokens": used[0] + used[1],
                "input_tokens": used[0],
                "output_tokens": used[1],
            }
            reserved = permit.need.amounts()
            for name, value in actual.items():
                bucket = self.buckets.get(name)
                if bucket is not None:
                    bucket.refill(now)
                    bucket.level = min(bucket.capacity, bucket.level + reserved[name] - value)
        self._pump()

    def wake(self) -> None:
        self._pump()

    def _wait(self, need: Need, now: float) -> float:
        wait = max(self.paused_until, self.account.paused_until) - now
        for name, amount in need.amounts().items():
            bucket = self.buckets.get(name)
            if bucket is not None:
                bucket.refill(now)
                wait = max(wait, bucket.wait_for(amount))
        return wait

    def _pump(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        now = self.clock()
        while self._heap:
            head = self._heap[0]
            if head.future.done():
                heapq.heappop(self._heap)
                continue
            if self.max_concurrent is not None and self.in_flight >= self.max_concurrent:
                return  # a release() pumps again
            wait = self._wait(head.need, now)
            if wait > 1e-6:
                loop = asyncio.get_running_loop()
                self._timer = loop.call_later(wait, self._pump)
                return
            for name, amount in head.need.amounts().items():
                bucket = self.buckets.get(name)
                if bucket is not None:
                    bucket.level -= amount
            heapq.heappop(self._heap)
            self.in_flight += 1
            self.admitted += 1
            head.future.set_result(Permit(head.need, head.ticket))

    # --- what the provider told us ---------------------------------------------------

    def pause(self, seconds: float, *, drain: bool = True) -> float:
        """Pause for `seconds` plus up to `jitter` of it, for every caller; returns the
        pause applied. Draining empties the buckets so traffic resumes at the refill
        rate instead of as a burst."""
        now = self.clock()
        applied = seconds * (1.0 + self.rng.uniform(0.0, self.jitter))
        self.paused_until = max(self.paused_until, now + applied)
        self.pauses += 1
        if drain:
            for bucket in self.buckets.values():
                bucket.refill(now)
                bucket.level = min(bucket.level, 0.0)
        self._pump()
        return applied

    def observe(self, headers: Mapping[str, str]) -> bool:
        """Tighten local limits from `x-ratelimit-limit-*` / `-remaining-*` (never loosen);
        a limit we were not told about is learned. Returns True if any header was seen."""
        seen = False
        now = self.clock()
        for name in ("requests", "tokens"):
            limit = _number(headers.get(f"x-ratelimit-limit-{name}"))
            remaining = _number(headers.get(f"x-ratelimit-remaining-{name}"))
            if limit is None and remaining is None:
                continue
            seen = True
            bucket = self.buckets.get(name)
            if bucket is None and limit is not None and limit > 0:
                bucket = self.buckets[name] = Bucket(limit, now, self.headroom_s)
            if bucket is None:
                continue
            bucket.refill(now)
            if limit is not None and 0 < limit < bucket.limit:
                bucket.shrink(limit)
            if remaining is not None:
                bucket.level = min(bucket.level, remaining)
        return seen


def _number(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None
