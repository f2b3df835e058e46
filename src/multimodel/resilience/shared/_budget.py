"""Budgets held by the fleet: the settlement of a reservation's real cost, and the alert the
first process to cross a threshold fires (once per window for the fleet). The check and the
reservation itself are part of admission.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from ._core import NANO, TTL, Emit, Op, SharedCore, Wall, nano

__all__ = ["BudgetSettlement"]


class BudgetSettlement(SharedCore):
    """Budget settlement (a part of ``RedisState``)."""

    def spent(self, reservation: Any, actual: Decimal, *, emit: Emit | None, wall: Wall) -> None:
        """Queue the settlement of a budget reservation the fleet holds (real cost in place of
        the estimate); the process whose settlement crosses an alert threshold first fires the
        alert, once per window for the fleet. Spend the fleet did not reserve (admitted on
        local state during an outage) is kept, and written when Redis answers again."""
        if not reservation.shared:
            with self._lock:
                self._missed_spend.append((reservation, actual, emit, wall))
            return
        self._spend(reservation, nano(actual) - nano(reservation.estimate), emit, wall)

    def _spend(self, reservation: Any, delta: int, emit: Emit | None, wall: Wall) -> None:
        for index, key, cell in reservation.cells:
            budget = reservation.budgets[index]
            threshold = budget.threshold
            base = self._budget_key(budget.name, key, cell.period)
            then = None
            if emit is not None and threshold is not None:
                then = _alerter(emit, wall, budget, key, cell.period, threshold)
            args = (delta, -1 if threshold is None else nano(threshold), TTL[budget.window])
            self._queue(Op("spend", (base, base + ":alerted"), args, then))


def _alerter(
    emit: Emit,
    wall: Wall,
    budget: Any,
    key: str,
    period: str,
    threshold: Decimal,
) -> Callable[[Any], None]:
    """What fires a budget alert when a settlement's result says this process crossed first."""
    from ..budget import BudgetAlert

    def then(result: Any) -> None:
        if int(result) < 0:
            return
        emit(
            BudgetAlert(
                budget=budget.name,
                scope=budget.scope,
                key=None if key == "*" else key,
                window=budget.window,
                period=period,
                spent=Decimal(int(result)) / NANO,
                threshold=threshold,
                limit=budget.limit,
                at=wall(),
            )
        )

    return then
