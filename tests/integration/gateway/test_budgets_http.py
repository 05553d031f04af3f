"""Budgets under contention, against the real fake provider: never overspent."""

from __future__ import annotations

import asyncio

import pytest

from corral.domain.errors import BudgetExceeded
from corral.gateway import BudgetScope, Gateway
from corral.testing import FakeProvider

from .conftest import ask, config, deployment


async def test_1000_concurrent_callers_never_overspend_any_level() -> None:
    budgets = {"global": 0.5, "team:a": 0.3, "campaign:c1": 0.2}
    budgets |= {f"task:t{i}": 0.004 for i in range(50)}
    async with FakeProvider(latency=0.01) as fp:
        gw = Gateway(config(deployment("d", fp), budgets=budgets), env={})

        async def caller(i: int) -> str:
            team = "a" if i % 2 else "b"
            scope = BudgetScope(task=f"t{i % 50}", campaign=f"c{i % 3}", team=team)
            try:
                await gw.complete("d", ask(i), scope=scope)
            except BudgetExceeded:
                return "rejected"
            return "ok"

        async with gw:
            outcomes = await asyncio.gather(*(caller(i) for i in range(1000)))
            states = {key: await gw.ledger.state(key) for key in budgets}
    assert outcomes.count("rejected") > 0 and outcomes.count("ok") > 0
    for key, state in states.items():
        assert state.reserved_nano == 0, key  # everything settled
        assert state.limit_nano is not None and state.spent_nano <= state.limit_nano, key
    # What was charged is what the provider reported (the fake counts ~4 chars a token).
    spent = (await gw.ledger.state("global")).spent_usd
    expected = (gw.stats.input_tokens * 10 + gw.stats.output_tokens * 30) / 1e6
    assert spent == pytest.approx(expected, rel=1e-6)
    assert fp.stats.completed == outcomes.count("ok")


async def test_a_call_that_cannot_reserve_fails_at_once_without_a_request() -> None:
    async with FakeProvider() as fp:
        gw = Gateway(config(deployment("d", fp), budgets={"attempt:a1": 0.0001}), env={})
        async with gw:
            with pytest.raises(BudgetExceeded, match="attempt:a1") as info:
                await gw.complete("d", ask(), scope=BudgetScope(attempt="a1"))
            await gw.complete("d", ask(), scope=BudgetScope(attempt="a2"))  # others unaffected
        assert info.value.scope_key == "attempt:a1"
        assert fp.stats.requests == 1 and gw.stats.budget_rejected == 1


async def test_a_failed_call_is_not_charged_and_a_lost_answer_is_charged_worst_case() -> None:
    async with FakeProvider() as fp:
        gw = Gateway(config(deployment("d", fp), transient_retries=0), env={})
        async with gw:
            fp.fail_next(400)
            with pytest.raises(Exception, match="HTTP 400"):
                await gw.complete("d", ask(), scope=BudgetScope(task="x"))
            assert (await gw.ledger.state("task:x")).spent_nano == 0
        gw = Gateway(config(deployment("d", fp), transient_retries=0), env={})
        async with gw:  # a fresh connection: a drop is not mistaken for a stale one
            fp.fail_next("disconnect")
            with pytest.raises(Exception, match="closed without an answer"):
                await gw.complete("d", ask(), scope=BudgetScope(task="y"))
            assert (await gw.ledger.state("task:y")).spent_nano > 0
