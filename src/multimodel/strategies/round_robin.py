"""``round_robin``: each deployment in turn.

When to use it: deployments that are interchangeable in speed, price and limits, when you want
an exactly even split. It ignores latency and errors (failed deployments are still skipped by
the circuit breaker before the strategy is asked).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from ..providers.base import Endpoint
from ..tracking.stats import StatsView
from .base import RouteContext, register_strategy

__all__ = ["RoundRobin"]


@register_strategy("round_robin")
class RoundRobin:
    """Rotate through the candidates; exact under threads (``itertools.count`` is atomic)."""

    def __init__(self) -> None:
        self._counter = itertools.count()

    def choose(
        self, candidates: Sequence[Endpoint], stats: StatsView, ctx: RouteContext
    ) -> Endpoint:
        """See :meth:`multimodel.strategies.Strategy.choose`."""
        return candidates[next(self._counter) % len(candidates)]
