"""Hierarchical budgets: reserve the worst case before a call, settle the truth after.

Amounts are kept as integer nano-dollars so that thousands of concurrent reservations
add up exactly: "never overspent" is an integer comparison, not a float tolerance.

`BudgetLedger` is the small interface the gateway needs. `MemoryLedger` keeps the state
in this process; a store-backed ledger does the same check-and-add inside one database
transaction (see the module `corral.gateway` docstring for the intended schema).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from corral.domain.errors import BudgetExceeded

__all__ = [
    "GLOBAL",
    "BudgetLedger",
    "BudgetScope",
    "BudgetState",
    "MemoryLedger",
    "Reservation",
    "from_nano",
    "to_nano",
]

GLOBAL = "global"
NANO = 1_000_000_000


def to_nano(usd: float) -> int:
    """Dollars → nano-dollars, rounded up (a reservation is never smaller than the cost)."""
    return math.ceil(round(usd * NANO, 3))


def from_nano(nano: int) -> float:
    return nano / NANO


@dataclass(frozen=True)
class BudgetScope:
    """Who a call is charged to; every level that is set is charged, plus `global`."""

    attempt: str | None = None
    task: str | None = None
    campaign: str | None = None
    team: str | None = None

    def keys(self) -> tuple[str, ...]:
        levels = (("team", self.team), ("campaign", self.campaign), ("task", self.task))
        out = [GLOBAL, *(f"{name}:{value}" for name, value in levels if value)]
        if self.attempt:
            out.append(f"attempt:{self.attempt}")
        return tuple(out)


@dataclass(frozen=True)
class Reservation:
    id: str
    keys: tuple[str, ...]
    amount_nano: int


@dataclass(frozen=True)
class BudgetState:
    key: str
    limit_nano: int | None
    spent_nano: int
    reserved_nano: int

    @property
    def spent_usd(self) -> float:
        return from_nano(self.spent_nano)

    @property
    def reserved_usd(self) -> float:
        return from_nano(self.reserved_nano)

    @property
    def limit_usd(self) -> float | None:
        return None if self.limit_nano is None else from_nano(self.limit_nano)


@runtime_checkable
class BudgetLedger(Protocol):
    """Check-and-reserve against every key atomically; settle exactly once."""

    async def set_limit(self, key: str, limit_usd: float | None) -> None: ...

    async def reserve(
        self, keys: Sequence[str], amount_usd: float, *, idempotency_key: str
    ) -> Reservation:
        """Reserve on every key or on none; raises BudgetExceeded naming the first key
        that cannot take it. The same idempotency key returns the same reservation."""
        ...

    async def settle(self, reservation: Reservation, actual_usd: float) -> None:
        """Release the reservation and charge `actual_usd` (idempotent)."""
        ...

    async def state(self, key: str) -> BudgetState: ...


@dataclass
class _Account:
    limit: int | None = None
    spent: int = 0
    reserved: int = 0


@dataclass
class MemoryLedger:
    """In-process ledger; every method is atomic because none awaits before it is done."""

    _accounts: dict[str, _Account] = field(default_factory=dict)
    _open: dict[str, Reservation] = field(default_factory=dict)
    _settled: set[str] = field(default_factory=set)
    rejected: int = 0  # reservations refused (what `bench budget` reports)
    overrun_nano: int = 0  # actual cost above the reservation (an estimate was too low)

    def _account(self, key: str) -> _Account:
        return self._accounts.setdefault(key, _Account())

    async def set_limit(self, key: str, limit_usd: float | None) -> None:
        self._account(key).limit = None if limit_usd is None else int(limit_usd * NANO)

    async def reserve(
        self, keys: Sequence[str], amount_usd: float, *, idempotency_key: str
    ) -> Reservation:
        known = self._open.get(idempotency_key)
        if known is not None:
            return known
        amount = to_nano(amount_usd)
        for key in keys:
            acc = self._account(key)
            if acc.limit is not None and acc.spent + acc.reserved + amount > acc.limit:
                self.rejected += 1
                left = max(0, acc.limit - acc.spent - acc.reserved)
                raise BudgetExceeded(
                    f"budget {key} cannot cover this call: needs up to "
                    f"${from_nano(amount):.6f}, ${from_nano(left):.6f} of "
                    f"${from_nano(acc.limit):.4f} is left",
                    scope_key=key,
                    limit_usd=from_nano(acc.limit),
                )
        for key in keys:
            self._account(key).reserved += amount
        reservation = Reservation(idempotency_key, tuple(keys), amount)
        self._open[idempotency_key] = reservation
        return reservation

    async def settle(self, reservation: Reservation, actual_usd: float) -> None:
        if reservation.id in self._settled or reservation.id not in self._open:
            return
        del self._open[reservation.id]
        self._settled.add(reservation.id)
        actual = to_nano(actual_usd)
        self.overrun_nano += max(0, actual - reservation.amount_nano)
        for key in reservation.keys:
            acc = self._account(key)
            acc.reserved -= reservation.amount_nano
            acc.spent += actual

    async def state(self, key: str) -> BudgetState:
        acc = self._accounts.get(key, _Account())
        return BudgetState(key, acc.limit, acc.spent, acc.reserved)

    def keys(self) -> list[str]:
        return sorted(self._accounts)
