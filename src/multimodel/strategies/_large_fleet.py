"""``adaptive`` in a large fleet: a cached elite of the lowest-cost candidates and one random
challenger per choice (or two random choices, ``remember=False``), the elite ranked again every
few choices. A part of :class:`~multimodel.strategies.adaptive.Adaptive`, which scores.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import compress
from math import exp
from operator import ne
from typing import TYPE_CHECKING

from .._core.trace import LazyScores
from ..providers.base import Endpoint
from ..tracking.stats import RERANK_RING, DeploymentStats, StatsView, Tracker
from ._estimates import LatencyEstimates
from ._ties import Ties
from .base import RouteContext

if TYPE_CHECKING:
    from ._util import Fleet, FleetCache

__all__ = ["REFRESH_SECONDS", "LargeFleet"]

REFRESH_SECONDS = 0.5
"""The longest time between two rankings of a large fleet (the elite's latency estimates are
kept in between)."""
_UNMEASURED_BUSY = 1e2  # an unmeasured deployment with its probe in flight waits for the answer
_FLOORS = "adaptive/floors"  # Fleet.extra key of the kept _Floors
_Floors = tuple[int, list[float], list[int], "dict[object, int] | None"]
"""``(Tracker.reranked when read, each deployment's floor key, the loads they were read at,
{record: position} or None when a record is listed twice)``."""


class LargeFleet(LatencyEstimates, Ties):
    """The large-fleet choices of :class:`~multimodel.strategies.adaptive.Adaptive`."""

    if TYPE_CHECKING:  # Adaptive's settings, state and scoring
        elite: int
        refresh: int
        load_factor: float | None
        scan_max: int
        large_peak_weight: float
        default_latency: float
        _elite: _Elite | None
        _elite_age: int
        _fleets: FleetCache[Fleet]

        def _costs(
            self,
            names: Sequence[str],
            cells: Sequence[DeploymentStats],
            lats: Sequence[float | None],
            prior: float | None,
            stats: StatsView,
            now: float,
        ) -> list[float]: ...

        def _scores(
            self, candidates: Sequence[Endpoint], stats: StatsView, ctx: RouteContext, now: float
        ) -> tuple[list[float], list[DeploymentStats]]: ...

    def _choose_large(
        self, candidates: Sequence[Endpoint], stats: StatsView, ctx: RouteContext, now: float
    ) -> tuple[Endpoint, LazyScores]:
        """A large fleet: the ``elite`` lowest-cost candidates of the last ranking and one
        random challenger.

        The scan of a few leaders gives the best deployment all the traffic it can serve (two
        random choices gave the best of 50 a quarter of its oracle share: p95 1.8x the
        oracle's); the challenger keeps exploring the rest (an unmeasured one ties with the
        best estimate and gets its probe; one measured slow is retried as its idle floor
        falls). The elite's latency estimates are kept from the ranking (at most ``refresh``
        choices or :data:`REFRESH_SECONDS` old; the chosen one's is taken again); their load,
        failures and holds are read at every choice. A deployment measured for the first time
        (the tracker's ``ranked`` count moved) ranks the fleet again at once: in a cold start,
        the elite ranked before any answer holds deployments whose probe is in flight, and
        kept sending them more for up to ``refresh`` choices after the first answers."""
        elite = self._elite
        self._elite_age = age = self._elite_age + 1
        ranked = getattr(stats, "ranked", -1)
        if (
            elite is None
            or age >= self.refresh
            or now - elite.at > REFRESH_SECONDS
            or ranked != elite.ranked
            or (candidates is not elite.candidates and not elite.matches(candidates))
        ):
            self._elite = elite = self._rank(candidates, stats, ctx, now)
            elite.ranked = ranked
            self._elite_age = 0
        # The elite's lists are read as they are (no copies, no per-choice name list): with
        # the ranking, this is the price of a choice at 50 deployments.
        cells, lats, names = elite.cells, elite.lats, elite.names
        large = elite.large  # the peak weight and exploration decay of the fleet ranked
        j = int(self._rng.draw() * len(candidates))  # self._rng.index, inlined
        if j not in elite.index:
            challenger = candidates[j]
            every = elite.fleet_cells
            cell = (
                every[j]
                if every is not None and candidates is elite.candidates
                else stats.get(challenger.name)
            )
            cells = [*cells, cell]
            lats = [*lats, self._estimate(challenger, cell, stats, ctx, now, large, False)]
            names = [*names, challenger.name]
        costs = self._costs(names, cells, lats, None, stats, now)
        k = self._pick(costs, cells, False)
        if k < len(elite.lats):
            chosen = elite.members[k]
            # Chosen: its idle floor is reset (so its estimate is taken again without the
            # floor's decay, ``chosen=True``: what reading ``_sent`` would find).
            self._sent[chosen.name] = now
            elite.lats[k] = self._estimate(chosen, cells[k], stats, ctx, now, large, True)
        else:  # the challenger
            chosen = candidates[j]
        return chosen, LazyScores(names, costs)

    def _rank(
        self, candidates: Sequence[Endpoint], stats: StatsView, ctx: RouteContext, now: float
    ) -> _Elite:
        """The ``elite`` lowest-cost candidates now. A shortlist of twice as many is ranked by
        the floor of each estimate (see :meth:`_latencies`) at its load, with its exploration
        decay (unmeasured first unless their probe is in flight); only the shortlist is scored
        in full.

        The floors before their decay are kept between rankings (see :func:`_floors`): only
        the deployments re-measured since, or whose load changed, are read again."""
        fleet = self._fleets.get(candidates, stats)
        cells, floors = _floors(fleet, stats, self.load_factor)
        large = self._large_settings(len(candidates))
        # The exploration decay, exp((last chosen - now) / tau), applied to the kept floors:
        # the same operations in the same order as reading each record, so the same keys.
        tau = large[1] or math.inf
        get = self._sent.get
        keys = [
            floor * exp((get(name, now) - now) / tau)
            for floor, name in zip(floors, fleet.names, strict=True)
        ]
        # sorted()[:k] is heapq.nsmallest(k) (both stable), without its Python-level loop.
        short = sorted(range(len(keys)), key=keys.__getitem__)[: 2 * self.elite]
        members = list(map(candidates.__getitem__, short))
        short_cells = list(map(cells.__getitem__, short))
        names = list(map(fleet.names.__getitem__, short))
        lats = self._latencies(members, short_cells, stats, ctx, now, large)
        costs = self._costs(names, short_cells, lats, None, stats, now)
        best = sorted(range(len(short)), key=costs.__getitem__)[: self.elite]
        return _Elite(
            candidates,
            list(map(members.__getitem__, best)),
            list(map(short.__getitem__, best)),
            list(map(names.__getitem__, best)),
            list(map(short_cells.__getitem__, best)),
            list(map(lats.__getitem__, best)),
            now,
            large,
            fleet.cells,
        )

    def _large_settings(self, size: int) -> tuple[float, float]:
        """The peak weight and the exploration time constant in a fleet of ``size``
        candidates: ``large_peak_weight``, and ``explore_tau`` times ``size / scan_max``.

        The time constant: each deployment's idle floor falls with the time since it was last
        chosen, so with a per-deployment constant the traffic spent re-measuring the
        deployments outside the elite grows with the fleet (at 60 s, a fleet of 50 sent about
        a request a second to deployments measured 1.2-3x slower than the best, each likely in
        the tail: ``large_fleet`` seed 0, 37 requests above 1.1x the oracle's p95 after the
        first 10 s, the oracle's 12). Scaled, the fleet as a whole is re-measured at the rate
        of a scanned fleet of ``scan_max``: a deployment measured slow is still retried, later.

        The peak weight: a leader's spike (about one answer in ten of a σ = 0.3 lognormal)
        hands its traffic to the next of several near-equal deployments, at every ranking; a
        deployment that really turns slow leaves the elite within a few answers anyway (the
        plain EWMA moves 30 % of the way per answer, the elite is ranked every ``refresh``
        choices)."""
        return self.large_peak_weight, self.explore_tau * max(1.0, size / max(self.scan_max, 1))

    def _two_choices(
        self, candidates: Sequence[Endpoint], stats: StatsView, ctx: RouteContext, now: float
    ) -> tuple[Endpoint, dict[str, float]]:
        """Two random candidates, the lower cost wins (Finagle's P2C; ``remember=False``); an
        unmeasured one is scored at the other's estimate."""
        i, j = self._rng.sample2(len(candidates))
        pair = [candidates[i], candidates[j]]
        (cost_a, cost_b), _ = self._scores(pair, stats, ctx, now)
        scores = {pair[0].name: cost_a, pair[1].name: cost_b}
        return (pair[0] if cost_a <= cost_b else pair[1]), scores


def _best(lats: Sequence[float | None], default: float) -> float:
    """The lowest known latency (the prior of unmeasured candidates), else ``default``."""
    known = [x for x in lats if x is not None]
    return min(known) if known else default


def _floor_keys(
    cells: Sequence[DeploymentStats], loads: Sequence[int], load_factor: float | None
) -> list[float]:
    """Each deployment's ranking key before its exploration decay: the floor of its latency
    estimate (the lower of its plain and its recent EWMA) at the load ``loads`` (its requests
    in flight), or, unmeasured, 0 (ranked first) unless its probe is in flight."""
    # Comprehensions that read the attributes (specialized slot reads), not maps of
    # attrgetters: a generic attribute lookup per value cost more than the loop.
    if load_factor is None:
        return [
            _UNMEASURED_BUSY * k
            if (x := cell.ewma_latency) is None
            else min(x, cell.latency_peak or x) * cell.load_scale * (1.0 + cell.congestion * k)
            for cell, k in zip(cells, loads, strict=True)
        ]
    return [
        _UNMEASURED_BUSY * k
        if (x := cell.ewma_latency) is None
        else min(x, cell.latency_peak or x) * (1.0 + load_factor * k)
        for cell, k in zip(cells, loads, strict=True)
    ]


def _floors(
    fleet: Fleet, stats: StatsView, load_factor: float | None
) -> tuple[Sequence[DeploymentStats], list[float]]:
    """The fleet's records and their :func:`_floor_keys`, kept up to date between rankings.

    A key changes only when its deployment is re-measured (its EWMAs, congestion and load
    scale are set together with its rank keys, and the tracker names the record in its ring
    of re-ranked records, :attr:`~multimodel.tracking.stats.Tracker.reranks`) or when its
    load changes (read for every deployment, compared as a list). So a ranking re-reads
    those records only, not the fleet: the result is the same as reading every record afresh
    (the full read when the ring has moved on too far, or the stats are not the tracker's).
    A published state is never modified, so concurrent rankings each read a consistent one."""
    cells = fleet.cells
    if cells is None:  # not the tracker: read through ``get``, in full
        cells = [stats.get(name) for name in fleet.names]
        return cells, _floor_keys(cells, [cell.in_flight for cell in cells], load_factor)
    tracker: Tracker = stats  # type: ignore[assignment]  # cells: the tracker's records
    count = tracker.reranked  # before the records are read: a later update is re-read
    loads = [cell.in_flight for cell in cells]
    kept: _Floors | None = fleet.extra.get(_FLOORS)
    where = None if kept is None else kept[3]
    if kept is not None and where is not None and count - kept[0] <= RERANK_RING:
        seen, floors, kept_loads, _ = kept
        # The positions of the records re-measured since (None: another fleet's record).
        ring = tracker.reranks
        found = set(map(where.get, map(ring.__getitem__, _ring_slots(seen, count))))
        if tracker.reranked - seen <= RERANK_RING:  # else the ring moved on while read
            found.discard(None)
            changed: list[int] = list(found)  # type: ignore[arg-type]  # None discarded
            if loads != kept_loads:
                changed.extend(compress(range(len(loads)), map(ne, loads, kept_loads)))
            if changed:
                floors = floors.copy()  # copy on write: a published state is never modified
                fresh = _floor_keys(
                    list(map(cells.__getitem__, changed)),
                    list(map(loads.__getitem__, changed)),
                    load_factor,
                )
                for i, key in zip(changed, fresh, strict=True):
                    floors[i] = key
            if changed or seen != count:
                fleet.extra[_FLOORS] = (count, floors, loads, where)
            return cells, floors
    floors = _floor_keys(cells, loads, load_factor)
    if kept is None:
        where = dict(zip(cells, range(len(cells)), strict=True))
    if where is not None and len(where) < len(cells):
        where = None  # a record listed twice: read in full every time
    fleet.extra[_FLOORS] = (count, floors, loads, where)
    return cells, floors


def _ring_slots(seen: int, count: int) -> list[int]:
    """The ring's slots of the re-rankings ``seen`` to ``count - 1``."""
    return [n % RERANK_RING for n in range(seen, count)]


class _Elite:
    """The leaders of a large fleet at the last ranking, and their latency estimates then."""

    __slots__ = (
        "at",
        "candidates",
        "cells",
        "fleet_cells",
        "index",
        "large",
        "lats",
        "members",
        "names",
        "ranked",
    )

    def __init__(
        self,
        candidates: Sequence[Endpoint],
        members: list[Endpoint],
        index: list[int],
        names: list[str],
        cells: list[DeploymentStats],
        lats: list[float | None],
        at: float,
        large: tuple[float, float],
        fleet_cells: list[DeploymentStats] | None = None,
    ) -> None:
        self.candidates = candidates  # the list ranked (the router passes the same one again)
        self.members = members
        self.index = index
        self.names = names
        self.cells = cells
        self.lats = lats
        self.at = at
        self.large = large
        self.ranked = -1  # the tracker's count of measured deployments when ranked
        # The tracker's record of every candidate (by position in ``candidates``), or None.
        self.fleet_cells = fleet_cells

    def matches(self, candidates: Sequence[Endpoint]) -> bool:
        """Whether ``candidates`` has the elite at the same positions (another list: a retry,
        or a deployment cooling down, changes them)."""
        n = len(candidates)
        return all(
            i < n and candidates[i].name == name
            for i, name in zip(self.index, self.names, strict=True)
        )
