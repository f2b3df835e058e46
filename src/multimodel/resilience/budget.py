"""Spend limits per window and scope, with alerts.

A :class:`Budget` caps spend in USD over a calendar window (UTC hour, day or month) for a scope:
everything, one provider, model, deployment, user or tag (``key=None`` with a scope other than
``all`` gives each provider / model / user ... its own budget)::

    Client(deployments=[...], budgets=[
        Budget(name="hourly", limit=Decimal("100"), window="hour"),          # the seed's rule
        Budget(name="per-user", scope="user", limit=Decimal("5"), window="day", alert_at=0.8),
        Budget(name="gpt-4o", scope="model", key="gpt-4o", limit=Decimal("50"), window="month"),
    ])

* Crossing ``alert_at`` × limit (or ``soft_limit``) fires one ``budget_alert`` event per window
  (``client.on("budget_alert", fn)``).
* A hard ``limit`` makes routing skip the deployments it covers; when nothing is left the call
  raises :class:`~multimodel.errors.BudgetExceeded` before anything is sent.
* Each attempt reserves its *estimated* cost before it is sent (prompt estimate and
  ``max_tokens`` at the deployment's prices) and settles with the real cost afterwards. A request
  is admitted only if spend + reservations + its estimate fit, so concurrent requests cannot
  overshoot by more than the gap between estimates and real costs of those in flight.

Deployments without prices count as free (their cost is unknown: see ``PricingWarning``).
Everything is in-process and thread-safe; time is passed in.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from ..errors import ConfigError
from ..providers.base import Endpoint

__all__ = ["Budget", "BudgetAlert", "BudgetBook", "BudgetReservation"]

Window = Literal["hour", "day", "month"]
Scope = Literal["all", "provider", "model", "deployment", "user", "tag"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Budget:
    """A spend limit (see the module docstring).

    Args:
        name: shown in alerts, errors and routing traces.
        limit: hard limit in USD per window (``None``: alerts only).
        window: ``hour``, ``day`` or ``month`` (calendar, UTC).
        scope: what the spend is counted over.
        key: the provider / model / deployment / user / tag; ``None`` = each one separately.
        alert_at: fraction of ``limit`` that fires an alert (ignored if ``soft_limit`` is set).
        soft_limit: USD that fires an alert.
    """

    name: str
    limit: Decimal | None = None
    window: Window = "day"
    scope: Scope = "all"
    key: str | None = None
    alert_at: float | None = 0.8
    soft_limit: Decimal | None = None

    def __post_init__(self) -> None:
        if self.limit is None and self.soft_limit is None and self.alert_at is None:
            raise ConfigError(f"budget {self.name!r} needs a limit or a soft_limit")
        if self.limit is not None and self.limit < 0:
            raise ConfigError(f"budget {self.name!r}: limit must be >= 0")
        if self.window not in ("hour", "day", "month"):
            raise ConfigError(f"budget {self.name!r}: window must be hour, day or month")
        if self.scope not in ("all", "provider", "model", "deployment", "user", "tag"):
            raise ConfigError(f"budget {self.name!r}: unknown scope {self.scope!r}")

    @property
    def threshold(self) -> Decimal | None:
        """The spend that fires the alert."""
        if self.soft_limit is not None:
            return self.soft_limit
        if self.limit is not None and self.alert_at is not None:
            return self.limit * Decimal(str(self.alert_at))
        return None


@dataclass(frozen=True, slots=True)
class BudgetAlert:
    """A budget crossed its alert threshold (fired once per window)."""

    budget: str
    scope: str
    key: str | None
    window: str
    period: str
    spent: Decimal
    threshold: Decimal
    limit: Decimal | None
    at: float
    type: str = "budget_alert"


class _Cell:
    """Spend of one budget key in one window period."""

    __slots__ = ("alerted", "period", "reserved", "spent")

    def __init__(self, period: str) -> None:
        self.period = period
        self.spent = Decimal(0)
        self.reserved = Decimal(0)
        self.alerted = False


class BudgetReservation:
    """Estimated spend held for one attempt; settle it with the real cost."""

    __slots__ = ("budgets", "cells", "estimate", "shared")

    def __init__(
        self,
        cells: list[tuple[int, str, _Cell]],
        estimate: Decimal,
        budgets: list[Budget] | None = None,
    ) -> None:
        self.cells = cells
        self.estimate = estimate
        self.budgets = budgets or []
        self.shared = False  # whether the shared state holds it too (``shared_state=``)


def _period(window: Window, wall: float) -> str:
    t = time.gmtime(wall)
    if window == "hour":
        return time.strftime("%Y-%m-%dT%H", t)
    if window == "day":
        return time.strftime("%Y-%m-%d", t)
    return time.strftime("%Y-%m", t)


class BudgetBook:
    """The spend of every budget of one client."""

    def __init__(
        self,
        budgets: Iterable[Budget],
        *,
        wall: Callable[[], float],
        alert: Callable[[BudgetAlert], None] | None = None,
    ) -> None:
        self.budgets = list(budgets)
        names = [b.name for b in self.budgets]
        if len(set(names)) != len(names):
            raise ConfigError("budget names must be unique")
        self._wall = wall
        self._alert = alert
        self._lock = threading.Lock()
        self._cells: dict[tuple[int, str], _Cell] = {}
        # Called with (reservation, actual cost) when a reservation the shared state also
        # holds is settled (``shared_state=``); alerts then come from the shared state.
        self.on_settle: Callable[[BudgetReservation, Decimal], None] | None = None

    def __bool__(self) -> bool:
        return bool(self.budgets)

    def _keys(
        self, budget: Budget, endpoint: Endpoint, user: str | None, tags: tuple[str, ...]
    ) -> list[str]:
        """The keys of ``budget`` that an attempt on ``endpoint`` counts against."""
        scope = budget.scope
        if scope == "all":
            return ["*"]
        values: list[str]
        if scope == "provider":
            values = [endpoint.provider]
        elif scope == "model":
            values = [endpoint.model]
        elif scope == "deployment":
            values = [endpoint.name]
        elif scope == "user":
            values = [user] if user is not None else []
        else:
            values = list(tags)
        if budget.key is not None:
            return [budget.key] if budget.key in values else []
        return values

    def _cell(self, index: int, key: str, period: str) -> _Cell:
        cell = self._cells.get((index, key))
        if cell is None or cell.period != period:
            cell = self._cells[(index, key)] = _Cell(period)
        return cell

    def blocked(
        self, endpoint: Endpoint, user: str | None, tags: tuple[str, ...], estimate: Decimal
    ) -> str | None:
        """Why an attempt of ``estimate`` USD on ``endpoint`` would break a hard limit."""
        wall = self._wall()
        with self._lock:
            for index, budget in enumerate(self.budgets):
                if budget.limit is None:
                    continue
                period = _period(budget.window, wall)
                for key in self._keys(budget, endpoint, user, tags):
                    cell = self._cell(index, key, period)
                    spent, reserved = cell.spent, cell.reserved
                    if spent + reserved + estimate > budget.limit:
                        who = "" if key == "*" else f" for {budget.scope} {key!r}"
                        return (
                            f"budget {budget.name!r}{who}: ${spent + reserved:.4f} of "
                            f"${budget.limit} per {budget.window} used"
                        )
        return None

    def reserve(
        self, endpoint: Endpoint, user: str | None, tags: tuple[str, ...], estimate: Decimal
    ) -> BudgetReservation | None:
        """Hold ``estimate`` against every budget covering the attempt; ``None`` if one is full."""
        wall = self._wall()
        cells: list[tuple[int, str, _Cell]] = []
        with self._lock:
            for index, budget in enumerate(self.budgets):
                period = _period(budget.window, wall)
                for key in self._keys(budget, endpoint, user, tags):
                    cell = self._cell(index, key, period)
                    if budget.limit is not None and (
                        cell.spent + cell.reserved + estimate > budget.limit
                    ):
                        for _, _, held in cells:  # undo what this attempt held so far
                            held.reserved -= estimate
                        return None
                    cell.reserved += estimate
                    cells.append((index, key, cell))
        return BudgetReservation(cells, estimate, self.budgets)

    def settle(self, reservation: BudgetReservation | None, cost: Decimal | None) -> None:
        """Release the hold and add the real ``cost`` (``None``: unknown, counted as 0)."""
        if reservation is None:
            return
        actual = cost if cost is not None else Decimal(0)
        fleet = reservation.shared and self.on_settle is not None
        if self.on_settle is not None and (fleet or actual):
            # The fleet's reservation, or spend admitted on local state (Redis was down),
            # which the shared state writes back when Redis answers again.
            self.on_settle(reservation, actual)
            reservation.shared = False  # settled once
        alerts: list[BudgetAlert] = []
        wall = self._wall()
        with self._lock:
            for index, key, cell in reservation.cells:
                cell.reserved -= reservation.estimate
                cell.spent += actual
                spent = cell.spent
                budget = self.budgets[index]
                threshold = budget.threshold
                if (
                    actual
                    and not fleet  # the shared state fires it, once for the fleet
                    and not cell.alerted
                    and threshold is not None
                    and spent >= threshold
                ):
                    cell.alerted = True
                    alerts.append(
                        BudgetAlert(
                            budget=budget.name,
                            scope=budget.scope,
                            key=None if key == "*" else key,
                            window=budget.window,
                            period=cell.period,
                            spent=spent,
                            threshold=threshold,
                            limit=budget.limit,
                            at=wall,
                        )
                    )
        if self._alert is not None:
            for alert in alerts:
                self._alert(alert)

    def spent(self, name: str, key: str = "*") -> Decimal:
        """USD spent in the current window of budget ``name`` (for ``key``)."""
        wall = self._wall()
        for index, budget in enumerate(self.budgets):
            if budget.name == name:
                with self._lock:
                    return self._cell(index, key, _period(budget.window, wall)).spent
        raise ConfigError(f"no budget named {name!r}")
