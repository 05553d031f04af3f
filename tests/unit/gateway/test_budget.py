"""The in-memory ledger: hierarchical scopes, all-or-nothing reservations, exact sums."""

from __future__ import annotations

import pytest

from corral.domain.errors import BudgetExceeded
from corral.gateway.budget import BudgetLedger, BudgetScope, MemoryLedger, to_nano


def test_scope_keys_go_from_global_down_to_the_attempt() -> None:
    scope = BudgetScope(attempt="a1", task="t1", campaign="c1", team="infra")
    assert scope.keys() == ("global", "team:infra", "campaign:c1", "task:t1", "attempt:a1")
    assert BudgetScope().keys() == ("global",)


async def test_reserve_is_all_or_nothing_and_names_the_key_that_refused() -> None:
    ledger = MemoryLedger()
    assert isinstance(ledger, BudgetLedger)
    await ledger.set_limit("global", 10.0)
    await ledger.set_limit("task:t1", 1.0)
    keys = BudgetScope(task="t1").keys()
    first = await ledger.reserve(keys, 0.6, idempotency_key="c1")
    with pytest.raises(BudgetExceeded) as info:
        await ledger.reserve(keys, 0.6, idempotency_key="c2")
    assert info.value.scope_key == "task:t1" and "\n" not in str(info.value)
    assert (await ledger.state("global")).reserved_usd == pytest.approx(0.6)  # untouched
    await ledger.settle(first, 0.25)
    again = await ledger.reserve(keys, 0.6, idempotency_key="c3")
    assert (await ledger.state("task:t1")).spent_usd == pytest.approx(0.25)
    await ledger.settle(again, 0.0)
    assert ledger.rejected == 1


async def test_idempotent_reserve_and_settle() -> None:
    ledger = MemoryLedger()
    await ledger.set_limit("global", 1.0)
    r1 = await ledger.reserve(["global"], 0.5, idempotency_key="same")
    r2 = await ledger.reserve(["global"], 0.5, idempotency_key="same")
    assert r1 == r2 and (await ledger.state("global")).reserved_usd == pytest.approx(0.5)
    await ledger.settle(r1, 0.2)
    await ledger.settle(r1, 0.2)  # a retried settle charges once
    state = await ledger.state("global")
    assert state.spent_usd == pytest.approx(0.2) and state.reserved_nano == 0


async def test_sums_are_exact_in_nano_dollars() -> None:
    ledger = MemoryLedger()
    await ledger.set_limit("global", 0.3)
    for i in range(3):
        r = await ledger.reserve(["global"], 0.1, idempotency_key=f"c{i}")
        await ledger.settle(r, 0.1)
    state = await ledger.state("global")
    assert state.spent_nano == 3 * to_nano(0.1) <= state.limit_nano  # type: ignore[operator]
    with pytest.raises(BudgetExceeded):
        await ledger.reserve(["global"], 1e-9, idempotency_key="more")


async def test_an_overrun_is_charged_and_counted() -> None:
    ledger = MemoryLedger()
    r = await ledger.reserve(["global"], 0.1, idempotency_key="x")
    await ledger.settle(r, 0.15)
    assert ledger.overrun_nano == to_nano(0.15) - to_nano(0.1)
