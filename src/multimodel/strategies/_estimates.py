"""``adaptive``'s latency estimate of a candidate: the peak EWMA weighted, its idle decay
floored, taken to the request's length. A part of
:class:`~multimodel.strategies.adaptive.Adaptive` (which makes it a cost), shared by its scan
and its large-fleet choice.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import exp

from ..providers.base import Endpoint
from ..tracking.stats import RANK_TAU, DeploymentStats, StatsView
from .base import RouteContext
from .response_time import LONG_GENERATION, expected_latency

__all__ = ["LatencyEstimates"]


class LatencyEstimates:
    """The expected latency of candidates, from ``Adaptive``'s settings and state."""

    # Adaptive's settings and state (set in its __init__).
    idle_floor: float
    peak_weight: float
    explore_tau: float
    _sent: dict[str, float]

    def _latencies(
        self,
        candidates: Sequence[Endpoint],
        cells: Sequence[DeploymentStats],
        stats: StatsView,
        ctx: RouteContext,
        now: float,
        large: tuple[float, float] | None = None,
    ) -> list[float | None]:
        """The expected latency of each candidate (``None``: never measured): peaks weighted
        by ``peak_weight``, the idle decay floored with time constant ``explore_tau`` (in a
        large fleet, ``large``: its own peak weight and time constant, see
        :meth:`_large_settings`). One inlined pass: with :meth:`_costs`, this is the whole
        price of a choice (``benchmarks/run.py --only route``)."""
        stream = ctx.stream
        tokens = ctx.output_tokens
        plain = not stream and tokens < LONG_GENERATION
        idle_floor, sent = self.idle_floor, self._sent
        if large is None:
            peak_weight, tau = self.peak_weight, self.explore_tau
        else:
            peak_weight, tau = large
        # The expected latency: peaks weighted by peak_weight, the idle decay floored.
        lats: list[float | None] = []
        add = lats.append
        for c, cell in zip(candidates, cells, strict=True):
            # A deployment whose latency was learned against its answers' lengths: the recent
            # latency taken to this request's length (see tracking.lengths), 0 otherwise.
            per_token = 0.0 if stream else cell.length_per_token
            if plain or per_token:
                # cell.latency_estimate(now) and .latency_recent(), read as plain attributes:
                # two method calls per candidate were a fifth of a small fleet's choice.
                recent = cell.latency_peak
                if recent is None:
                    latency = None
                else:
                    # exp(-(now - at) / tau), written with one operation fewer (the same float:
                    # a - b is exactly -(b - a)).
                    idle = cell.latency_at - now
                    latency = recent * exp(idle / RANK_TAU) if idle < 0.0 else recent
                base = cell.ewma_latency
            else:  # streams (time to first token) and long generations (time per token)
                latency = expected_latency(c, stats, ctx, now)
                base = cell.ewma_ttft if stream else None
                if base is None:
                    base = cell.ewma_latency
                recent = cell.latency_recent(stream) if latency is not None else None
            if latency is None or base is None:
                add(latency)
                continue
            if latency > base:
                latency = base + peak_weight * (latency - base)
            else:
                # The floor: the plain EWMA, or the time-weighted estimate when lower: after a
                # pause (a brownout that ended) one fast answer moves it most of the way, where
                # the plain EWMA needs several (each after another idle wait: a recovered
                # deployment took a minute to get its traffic back).
                if recent is not None and recent < base:
                    base = recent
                floor = base * idle_floor
                if tau:
                    last = sent.get(c.name)
                    if last is None:  # idle since first seen
                        sent[c.name] = now
                    elif now > last:
                        floor *= exp((last - now) / tau)
                if not latency > floor:  # max(floor, latency) without the builtin's call
                    latency = floor
            # Every estimate above is at the recent answers' length: taken to this request's.
            add(latency * (cell.length_share + per_token * tokens) if per_token else latency)
        return lats

    def _estimate(
        self,
        candidate: Endpoint,
        cell: DeploymentStats,
        stats: StatsView,
        ctx: RouteContext,
        now: float,
        large: tuple[float, float],
        chosen: bool,
    ) -> float | None:
        """:meth:`_latencies` of one candidate of a large fleet (its challenger, or the
        member just chosen: ``chosen``, whose last choice is ``now``, so its floor has no
        decay). The same operations in the same order, for a non-streamed request of usual
        length; others go through :meth:`_latencies`. Two one-element lists and that loop's
        set-up per call were a fifth of a choice at 50 deployments."""
        stream = ctx.stream
        per_token = 0.0 if stream else cell.length_per_token
        if not per_token and (stream or ctx.output_tokens >= LONG_GENERATION):
            return self._latencies((candidate,), (cell,), stats, ctx, now, large)[0]
        recent = cell.latency_peak
        if recent is None:
            return None
        idle = cell.latency_at - now
        latency = recent * exp(idle / RANK_TAU) if idle < 0.0 else recent
        base = cell.ewma_latency
        if base is None:
            return latency
        if latency > base:
            latency = base + large[0] * (latency - base)
        else:
            if recent < base:  # noqa: PLR1730  # min() without the builtin's call
                base = recent
            floor = base * self.idle_floor
            tau = large[1]
            if tau and not chosen:  # chosen: its last choice is now, exp(0) is not applied
                sent = self._sent
                last = sent.get(candidate.name)
                if last is None:  # idle since first seen
                    sent[candidate.name] = now
                elif now > last:
                    floor *= exp((last - now) / tau)
            if not latency > floor:
                latency = floor
        return (
            latency * (cell.length_share + per_token * ctx.output_tokens) if per_token else latency
        )
