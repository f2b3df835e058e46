"""``least_connections``: the deployment with the fewest requests in flight.

When to use it: deployments of similar speed whose capacity is limited by concurrency (a
self-hosted vLLM or Ollama server, a provider account with a concurrency cap). It adapts to a
slow deployment only through its growing queue; use ``adaptive`` to weigh latency too. Ties are
broken at random so that idle deployments share the load instead of the first one taking it.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..providers.base import Endpoint
from ..tracking.stats import StatsView
from ._util import LockedRandom, pick_min
from .base import RouteContext, register_strategy

__all__ = ["LeastConnections"]


@register_strategy("least_connections")
class LeastConnections:
    """Fewest in-flight requests, random tie-break."""

    def __init__(self, seed: int | None = None) -> None:
        self._rng = LockedRandom(seed)

    def choose(
        self, candidates: Sequence[Endpoint], stats: StatsView, ctx: RouteContext
    ) -> Endpoint:
        """See :meth:`multimodel.strategies.Strategy.choose`."""
        return self.choose_scored(candidates, stats, ctx)[0]

    def choose_scored(
        self, candidates: Sequence[Endpoint], stats: StatsView, ctx: RouteContext
    ) -> tuple[Endpoint, dict[str, float]]:
        """The choice and each candidate's requests in flight (lower is better)."""
        get = stats.get
        names = [c.name for c in candidates]
        loads = [get(name).in_flight for name in names]
        chosen = pick_min(candidates, loads, self._rng)
        return chosen, dict(zip(names, map(float, loads), strict=True))
