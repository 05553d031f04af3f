"""The fake provider's rate limiter, on a fake clock."""

from __future__ import annotations

import math

from corral.testing.ratelimit import RateLimiter, format_duration


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_requests_per_minute_refill_continuously() -> None:
    clock = Clock()
    limiter = RateLimiter(rpm=60, clock=clock)
    assert all(limiter.admit(0).allowed for _ in range(60))
    denied = limiter.admit(0)
    assert not denied.allowed and denied.reason == "requests"
    assert denied.retry_after == 1.0
    assert denied.headers["x-ratelimit-remaining-requests"] == "0"
    clock.now += 1.0
    assert limiter.admit(0).allowed


def test_tokens_per_minute_and_correction() -> None:
    clock = Clock()
    limiter = RateLimiter(tpm=600, clock=clock)  # 10 tokens a second
    assert limiter.admit(500).allowed
    denied = limiter.admit(200)
    assert not denied.allowed and denied.reason == "tokens"
    assert denied.retry_after == 10.0  # 100 left, 100 more needed at 10/s
    limiter.correct(-400)  # the call used 400 fewer tokens than reserved
    assert limiter.admit(200).allowed
    assert limiter.headers()["x-ratelimit-remaining-tokens"] == "300"
    assert math.isinf(limiter.admit(601).retry_after)  # can never fit


def test_no_limits_always_admits_and_sends_no_headers() -> None:
    limiter = RateLimiter()
    assert limiter.admit(10**9).allowed
    assert limiter.headers() == {}


def test_format_duration_matches_openai_style() -> None:
    assert format_duration(0.02) == "20ms"
    assert format_duration(1.5) == "1.5s"
    assert format_duration(6.0) == "6s"
    assert format_duration(123.5) == "2m3.5s"
