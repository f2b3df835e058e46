"""``response_time``: the deployment expected to answer soonest.

When to use it: latency-sensitive traffic over deployments whose speed differs and drifts.

The estimate is a *peak* EWMA (Finagle's): a latency spike raises it at once, and it decays
back as fast answers return, or while the deployment is idle, so a deployment that was slow
once is tried again later instead of being starved. Streams are scored by time to first token.
Long generations (``max_tokens`` of 512 or more) are scored by first-token time plus the
deployment's time per output token times ``max_tokens``, because a deployment that starts fast
but generates slowly loses on long answers. A deployment with no measurement yet is probed
first (one probe at a time), never starved.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..providers.base import Endpoint
from ..tracking.stats import StatsView
from ._util import LockedRandom, pick_min
from .base import RouteContext, register_strategy

__all__ = ["ResponseTime", "expected_latency"]

LONG_GENERATION = 512


def expected_latency(
    endpoint: Endpoint, stats: StatsView, ctx: RouteContext, now: float
) -> float | None:
    """Seconds ``endpoint`` is expected to take for the request (``None``: never measured)."""
    cell = stats.get(endpoint.name)
    stream = ctx.stream
    if stream:
        estimate = cell.ttft_estimate(now)
        if estimate is None:
            estimate = cell.latency_estimate(now)
    else:
        estimate = cell.latency_estimate(now)
    tpot = cell.ewma_tpot
    max_tokens = ctx.output_tokens
    if not stream and tpot is not None and max_tokens >= LONG_GENERATION:
        first = cell.ttft_estimate(now)
        base = first if first is not None else (estimate or 0.0) * 0.2
        long_estimate = base + tpot * max_tokens
        estimate = long_estimate if estimate is None else max(estimate, long_estimate)
    return estimate


@register_strategy("response_time")
class ResponseTime:
    """Lowest expected latency (peak EWMA); unmeasured deployments are probed."""

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
        """The choice and each candidate's expected seconds (-1: to be probed; lower wins)."""
        now = stats.now()
        scores: list[float] = []
        for c in candidates:
            estimate = expected_latency(c, stats, ctx, now)
            if estimate is None:
                cell = stats.get(c.name)
                # Probe an unmeasured deployment, but only one request at a time.
                estimate = -1.0 if cell.in_flight == 0 else float("inf")
            scores.append(estimate)
        chosen = pick_min(candidates, scores, self._rng)
        return chosen, {c.name: v for c, v in zip(candidates, scores, strict=True)}
