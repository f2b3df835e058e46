"""``response_time``: the deployment expected to answer soonest.

When to use it: latency-sensitive traffic over deployments whose speed differs and drifts.

The estimate is a *peak* EWMA (Finagle's): a latency spike raises it at once, and it decays
back as fast answers return, or while the deployment is idle, so a deployment that was slow
once is tried again later instead of being starved. Streams are scored by time to first token.
Long generations (``max_tokens`` of 512 or more) are scored by first-token time plus the
deployment's time per output token times ``max_tokens``, because a deployment that starts fast
but generates slowly loses on long answers. A deployment with no measurement yet is probed
first (one probe at a time), never starved; so is one whose last attempt failed (every few
requests, one probe at a time, see :class:`~multimodel.strategies._util.Prober`).

Cost: once every candidate has been measured, one C-level scan of the tracker's rank keys (see
:meth:`~multimodel.tracking.sketches.PeakEWMA.rank`: ordering by them is ordering by the
decayed estimates, without reading the clock or calling ``exp`` per deployment), about 2 µs
for 50 deployments. Long generations, unmeasured deployments and stats views other than the
tracker are scored one candidate at a time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from operator import attrgetter
from typing import Any

from .._core.trace import LazyScores
from ..providers.base import Endpoint
from ..tracking.stats import RANK_TAU, StatsView
from ._util import (
    Fleet,
    FleetCache,
    LockedRandom,
    Prober,
    pick_min,
    pick_min_index,
    picker,
    probe_scores,
)
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
        self._fleets: FleetCache[Fleet] = FleetCache(Fleet)
        self._prober = Prober()

    def choose(
        self, candidates: Sequence[Endpoint], stats: StatsView, ctx: RouteContext
    ) -> Endpoint:
        """See :meth:`multimodel.strategies.Strategy.choose`."""
        return self.choose_scored(candidates, stats, ctx)[0]

    def choose_scored(
        self, candidates: Sequence[Endpoint], stats: StatsView, ctx: RouteContext
    ) -> tuple[Endpoint, Mapping[str, float]]:
        """The choice and each candidate's expected seconds (-1: to be probed; lower wins)."""
        fleet = self._fleets.get(candidates, stats)
        if len(candidates) > 1:
            now = stats.now()
            probe = self._prober.due(candidates, stats, now)
            if probe is not None:
                return probe, probe_scores(probe, stats, now)  # -1: a probe
        ranks = measured_ranks(fleet, ctx)
        if ranks is not None:
            chosen = candidates[pick_min_index(ranks, self._rng)]
            return chosen, LazyScores(fleet.names, ranks, seconds_from_rank(stats.now()))
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


_LATENCY_RANK = attrgetter("latency_rank")
_STREAM_RANK = attrgetter("stream_rank")


def measured_ranks(fleet: Fleet, ctx: RouteContext) -> list[float] | None:
    """Each candidate's rank key for :func:`expected_latency`, when one scan can stand for it:
    the stats are the tracker's, every candidate is measured, and the request is not a long
    generation (whose estimate adds time per token). ``None`` otherwise."""
    cells = fleet.cells
    if cells is None or (not ctx.stream and ctx.output_tokens >= LONG_GENERATION):
        return None
    stream = ctx.stream
    ranks: list[float] = list(map(_STREAM_RANK if stream else _LATENCY_RANK, cells))
    if not fleet.measured[stream]:
        if None in ranks:
            return None
        fleet.measured[stream] = True  # estimates are never forgotten: checked until true
    return ranks


def speed_ranks(fleet: Fleet, ctx: RouteContext, ranked: int) -> list[float] | None:
    """Rank keys standing for the latency estimates (see :func:`measured_ranks`),
    with an unmeasured candidate given the best rank: the formula scores it like the fastest
    (performance 1), so that it gets tried. ``None`` when the keys cannot be used.

    ``ranked`` is the tracker's count of rank keys set: while it is unchanged, so are the
    positions of the unmeasured candidates (a deployment under ``intelligent`` may stay
    unmeasured for good when another model always scores higher)."""
    cells = fleet.cells
    stream = ctx.stream
    if cells is None or (not stream and ctx.output_tokens >= LONG_GENERATION):
        return None
    rank_of = _STREAM_RANK if stream else _LATENCY_RANK
    ranks: list[Any] = list(map(rank_of, cells))
    if fleet.measured[stream]:
        return ranks
    seen_at, missing, pick = fleet.unmeasured[stream]
    if seen_at != ranked:
        missing = [i for i, k in enumerate(ranks) if k is None]
        if not missing:
            fleet.measured[stream] = True  # estimates are never forgotten
            return ranks
        present = [i for i, k in enumerate(ranks) if k is not None]
        pick = picker(present) if present else None
        fleet.unmeasured[stream] = (ranked, missing, pick)
    # The unmeasured get the best measured rank; the measured are read in one C call (an
    # itemgetter over the list), the few missing filled in a loop (no per-item method calls).
    best = 0.0 if pick is None else min(pick(ranks))
    for i in missing:
        ranks[i] = best
    return ranks


def seconds_from_rank(now: float) -> Callable[[float], float]:
    """Turns a rank key back into the estimate in seconds at ``now``."""
    shift = now / RANK_TAU
    return lambda rank: math.exp(rank - shift)
