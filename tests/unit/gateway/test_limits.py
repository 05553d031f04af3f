"""The limiter: priority order, concurrency, pauses with jitter, headers, deadlines."""

from __future__ import annotations

import asyncio
import random

import pytest

from corral.domain.errors import RateLimited
from corral.gateway.config import RateLimits
from corral.gateway.limits import Bucket, DeploymentLimiter, Need, Permit

SMALL = Need(input_tokens=10, output_tokens=10)


async def test_waiters_are_served_by_priority_then_arrival() -> None:
    limiter = DeploymentLimiter(RateLimits(max_concurrent=1))
    first = await limiter.acquire(SMALL, limiter.ticket(), None)
    order: list[str] = []

    async def wait(name: str, priority: int) -> None:
        permit = await limiter.acquire(SMALL, limiter.ticket(priority), None)
        order.append(name)
        limiter.release(permit, None)

    tasks = [
        asyncio.create_task(wait(name, prio))
        for name, prio in [("low-1", 0), ("high-1", 5), ("low-2", 0), ("high-2", 5), ("mid", 2)]
    ]
    await asyncio.sleep(0.01)
    assert order == [] and limiter.waiting == 5
    limiter.release(first, None)
    await asyncio.gather(*tasks)
    assert order == ["high-1", "high-2", "mid", "low-1", "low-2"]


async def test_a_ticket_keeps_its_place_across_retries() -> None:
    limiter = DeploymentLimiter(RateLimits(max_concurrent=1))
    early = limiter.ticket()
    held = await limiter.acquire(SMALL, limiter.ticket(), None)
    later = asyncio.create_task(limiter.acquire(SMALL, limiter.ticket(), None))
    await asyncio.sleep(0)
    retried = asyncio.create_task(limiter.acquire(SMALL, early, None))  # arrives last
    await asyncio.sleep(0)
    limiter.release(held, None)
    done, _ = await asyncio.wait({later, retried}, return_when=asyncio.FIRST_COMPLETED)
    assert done == {retried}
    limiter.release(retried.result(), None)
    limiter.release(await later, None)


async def test_deadline_raises_rate_limited_and_leaves_the_queue_clean() -> None:
    limiter = DeploymentLimiter(RateLimits(max_concurrent=1))
    held = await limiter.acquire(SMALL, limiter.ticket(), None)
    loop = asyncio.get_running_loop()
    with pytest.raises(RateLimited):
        await limiter.acquire(SMALL, limiter.ticket(), limiter.clock() + 0.05)
    assert limiter.waiting == 0
    limiter.release(held, None)
    assert loop is asyncio.get_running_loop()
    assert isinstance(await limiter.acquire(SMALL, limiter.ticket(), None), Permit)


async def test_a_call_bigger_than_a_minute_of_tokens_fails_at_once() -> None:
    limiter = DeploymentLimiter(RateLimits(tpm=100))
    with pytest.raises(RateLimited, match="more than the deployment's limit"):
        await limiter.acquire(Need(90, 20), limiter.ticket(), None)


def test_pause_honours_retry_after_plus_bounded_jitter_that_differs_by_seed() -> None:
    pauses = []
    for seed in range(5):
        limiter = DeploymentLimiter(RateLimits(rpm=60), jitter=0.2, rng=random.Random(seed))
        limiter._pump = lambda: None  # type: ignore[method-assign]  # no loop needed here
        pauses.append(limiter.pause(2.0))
        assert limiter.buckets["requests"].level <= 0  # drained: resume at the refill rate
    assert all(2.0 <= p <= 2.4 for p in pauses)
    assert len(set(pauses)) == 5  # callers of different gateways do not return in lockstep


def test_headers_tighten_and_teach_limits_but_never_loosen() -> None:
    limiter = DeploymentLimiter(RateLimits(rpm=100), headroom_s=0)
    limiter.observe({"x-ratelimit-remaining-requests": "7", "x-ratelimit-limit-requests": "100"})
    assert limiter.buckets["requests"].level <= 7
    limiter.observe({"x-ratelimit-remaining-requests": "90"})
    assert limiter.buckets["requests"].level < 8  # never loosened
    limiter.observe({"x-ratelimit-limit-requests": "50"})
    assert limiter.buckets["requests"].limit == 50
    assert "tokens" not in limiter.buckets
    assert limiter.observe(
        {"x-ratelimit-limit-tokens": "1000", "x-ratelimit-remaining-tokens": "10"}
    )
    assert limiter.buckets["tokens"].limit == 1000 and limiter.buckets["tokens"].level == 10
    assert not limiter.observe({"content-type": "application/json"})


def test_bucket_refills_continuously_and_keeps_headroom() -> None:
    bucket = Bucket(60, now=0.0, headroom_s=0.5)
    assert bucket.capacity == 59.5
    bucket.level = 0
    bucket.refill(2.0)
    assert bucket.level == 2.0
    assert bucket.wait_for(5) == 3.0
    assert bucket.wait_for(1000) == pytest.approx(57.5)  # waits for a full bucket, then debt


async def test_release_corrects_the_token_estimate() -> None:
    limiter = DeploymentLimiter(RateLimits(tpm=6000, input_tpm=6000), headroom_s=0)
    permit = await limiter.acquire(Need(1000, 500), limiter.ticket(), None)
    tokens = limiter.buckets["tokens"]
    assert tokens.level == pytest.approx(4500, abs=1)
    limiter.release(permit, (400, 100))  # used 500, reserved 1500
    assert tokens.level == pytest.approx(5500, abs=1)
    assert limiter.buckets["input_tokens"].level == pytest.approx(5600, abs=1)
